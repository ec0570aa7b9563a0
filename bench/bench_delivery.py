"""Delivery end to end: a sweep → Redis → Celery workers → Apprise → a local SMTP server,
against plain ``smtplib`` sending the same messages to the same server, as messages per second.

    .venv/bin/python -m bench.bench_delivery                  # ~1,000 messages, 1 worker x 2
    .venv/bin/python -m bench.bench_delivery --contacts 1 --workers 2 --concurrency 1
    .venv/bin/python -m bench.bench_delivery --backend postgresql

Setup (not timed): a generated plan with ``--agencies`` agencies (all of them lead agencies),
``--contacts`` contacts each, the 2022 cycle opened (its update requests marked delivered, so
they are not part of the run), real ``celery -A worker.app worker`` subprocesses on Redis
(``REPORTCYCLE_TEST_REDIS_URL``, default redis://127.0.0.1:6379/0; own queue and key prefix)
and an aiosmtpd server in this process (``tests/smtp_server.py``). The default worker is the
production one: one prefork worker of 2 processes (docker-compose.yml's
``WORKER_CONCURRENCY``, default 2) with ``config/celery.py``'s settings (acks late, prefetch
1); production's database is PostgreSQL (``--backend postgresql``).

Timed: from enqueueing ``reportcycle.sweep`` (at 10:00 a week before the deadline, so every
contact gets a deadline-reminder digest) until every notification it claimed is "sent" in the
database. The sweep enqueues its messages in batches (``reportcycle.send_notifications``, at
most ``SEND_BATCH_SIZE`` a task, one database connection each); each message is claimed,
rendered (Jinja, its own link token) and committed, sent (one recipient per SMTP
transaction, over a connection each worker process keeps open for up to 100 messages), and
recorded, as in production. Also printed: the CPU time of the worker's
processes per message (less sensitive than the rate to a shared machine).

Baseline: the very messages the server received, sent again with ``smtplib`` from this
process — over one connection, and over a connection per message.

Goal (issue 3): delivery at least half of plain smtplib's rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import smtplib
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import redis
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bench.common import print_table
from bench.generate_plan import generate_report_text
from config.celery import SWEEP_TASK
from models.contacts import add_contact
from models.cycles import find_plan, open_cycle
from models.db import make_engine, upgrade
from models.importer import import_report
from models.tables import Agency, DeliveryState, Notification, RequestState, UpdateRequest
from tests.services import scratch_postgres_database
from tests.smtp_server import ReceivedMail, SmtpServer
from tests.worker_process import WorkerProcess

REDIS_URL = os.environ.get("REPORTCYCLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OPENED_AT = datetime(2022, 3, 1, 21, 0, tzinfo=UTC)
DEADLINE = date(2022, 6, 30)
SWEEP_AT = "2022-06-23T10:00:00+12:00"  # a Thursday, 7 days before the deadline


@contextlib.contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'bench.db'}"
    else:
        with scratch_postgres_database() as url:
            yield url


def prepare(url: str, agencies: int, contacts: int) -> sa.Engine:
    engine = make_engine(url)
    upgrade(engine)
    text = generate_report_text(
        agencies=agencies, actions=agencies, milestones=agencies * 2, seed=1, year=2021
    )
    with Session(engine, expire_on_commit=False) as session:
        import_report(session, text, OPENED_AT)
        for agency in session.exec(select(Agency).order_by(col(Agency.id))).all():
            for n in range(contacts):
                add_contact(
                    session, agency, f"contact{n}@{agency.acronym.lower()}.example.org", OPENED_AT
                )
        open_cycle(session, find_plan(session), 2022, DEADLINE, OPENED_AT, "bench")
        # The update requests went out earlier: not part of this run.
        session.exec(sa.update(Notification).values(state=DeliveryState.SENT, sent_at=OPENED_AT))
        session.exec(sa.update(UpdateRequest).values(state=RequestState.SENT, sent_at=OPENED_AT))
        session.commit()
    return engine


def counts(engine: sa.Engine) -> tuple[int, int]:
    with Session(engine) as session:
        total = session.exec(select(sa.func.count()).select_from(Notification)).one()
        done = session.exec(
            select(sa.func.count())
            .select_from(Notification)
            .where(col(Notification.state).in_([DeliveryState.SENT, DeliveryState.FAILED]))
        ).one()
    return int(total), int(done)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far, from /proc (Linux): the
    worker's own cost per message, less sensitive than wall time to a shared machine."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of stat; fields[0] here is field 3.
        total += (int(fields[11]) + int(fields[12])) / ticks
        pending.extend(int(child) for child in children)
    return total


def resend(mails: list[ReceivedMail], server: SmtpServer, per_message: bool) -> float:
    started = time.perf_counter()
    if per_message:
        for mail in mails:
            with smtplib.SMTP(server.host, server.port) as smtp:
                smtp.sendmail(mail.mail_from, list(mail.rcpt_tos), mail.raw)
    else:
        with smtplib.SMTP(server.host, server.port) as smtp:
            for mail in mails:
                smtp.sendmail(mail.mail_from, list(mail.rcpt_tos), mail.raw)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=5, help="per agency")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size per worker")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--log-dir", type=Path, help="keep the workers' logs here")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="rc-bench-delivery-") as tmp,
        database(args.backend, Path(tmp)) as url,
        SmtpServer() as server,
    ):
        directory = Path(tmp)
        print(f"preparing {args.agencies} agencies x {args.contacts} contacts ({args.backend})…")
        engine = prepare(url, args.agencies, args.contacts)
        before, _ = counts(engine)
        env = {
            "REPORTCYCLE_DATABASE_URL": url,
            "REPORTCYCLE_DATA_DIR": str(directory / "data"),
            "REPORTCYCLE_BROKER_URL": REDIS_URL,
            "REPORTCYCLE_TASK_QUEUE": f"rc-bench-{run}",
            "REPORTCYCLE_BROKER_KEY_PREFIX": f"rc-bench-{run}:",
            "REPORTCYCLE_MAIL_URL": server.url,
            "REPORTCYCLE_MAIL_FROM": "reportcycle@example.org",
            "REPORTCYCLE_BASE_URL": "https://reports.example.org",
        }
        workers = [
            WorkerProcess(
                env, (args.log_dir or directory) / f"worker-{n}.log", concurrency=args.concurrency
            )
            for n in range(args.workers)
        ]
        try:
            for worker in workers:
                worker.start()
            # The celery main process; its pool processes are its children.
            pids = [worker._process.pid for worker in workers if worker._process is not None]
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            started = time.perf_counter()
            producer = workers[0].producer()
            producer.send_task(SWEEP_TASK, kwargs={"now": SWEEP_AT})
            producer.close()
            while True:
                total, done = counts(engine)
                if total > before and done == total:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        finally:
            for worker in workers:
                worker.stop()
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(match=f"rc-bench-{run}:*"):
                client.delete(key)
            client.close()
        messages = total - before
        mails = server.messages
        if len(mails) != messages:
            print(f"warning: {messages} notifications but {len(mails)} mails", file=sys.stderr)
        with Session(engine) as session:
            failed = session.exec(
                select(sa.func.count())
                .select_from(Notification)
                .where(Notification.state == DeliveryState.FAILED)
            ).one()
        engine.dispose()
        one_connection = resend(mails, server, per_message=False)
        per_message = resend(mails, server, per_message=True)

    rate = messages / elapsed
    rows = [
        ["reportcycle: sweep → Redis → worker → Apprise → SMTP", messages, f"{elapsed:.2f}",
         f"{rate:.0f}", "1.00"],
        ["smtplib, one connection", len(mails), f"{one_connection:.2f}",
         f"{len(mails) / one_connection:.0f}", f"{(len(mails) / one_connection) / rate:.2f}"],
        ["smtplib, a connection per message", len(mails), f"{per_message:.2f}",
         f"{len(mails) / per_message:.0f}", f"{(len(mails) / per_message) / rate:.2f}"],
    ]  # fmt: skip
    print_table(
        ["path", "messages", "seconds", "msg/s", "x reportcycle"],
        rows,
        title=(
            f"Delivery, {args.backend}, {args.workers} worker(s) x {args.concurrency}"
            f" ({failed} failed); goal: reportcycle >= 0.5 x smtplib"
        ),
    )
    best = max(len(mails) / one_connection, len(mails) / per_message)
    print(f"reportcycle / best smtplib: {rate / best:.2f} (goal >= 0.50)")
    print(
        f"worker CPU (all its processes): {worker_cpu:.2f} s,"
        f" {worker_cpu / messages * 1000:.1f} ms per message"
    )


if __name__ == "__main__":
    main()
