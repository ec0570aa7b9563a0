"""The Celery tasks through a real worker on the real Redis, sending to a real SMTP server.

In-process worker: ``celery.contrib.pytest`` (``celery_app``/``celery_worker``), its own queue
and Redis key prefix per run. The database is a fresh one per test (``db_url``), with the
published 2021 report imported and the 2022 cycle opened, so the messages are the real ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from celery import Celery
from sqlmodel import Session, col, select

# Before any test app exists: celery.contrib.pytest forgets the shared-task registrations
# made while one of its apps is current, so a module imported by the first test's worker
# would leave the second test's app without our tasks.
import worker.tasks  # noqa: F401
from config import celery as celery_conf
from config import settings as settings_module
from config.celery import SEND_TASK, SWEEP_TASK
from config.settings import Settings
from models.contacts import add_contact, find_agency
from models.cycles import find_plan, open_cycle
from models.db import make_engine, upgrade
from models.importer import import_report
from models.tables import Agency, DeliveryState, Notification, RequestState, UpdateRequest
from tests.services import REDIS_URL, require_redis
from tests.smtp_server import SmtpServer

pytestmark = [pytest.mark.redis, pytest.mark.smtp]

RUN = uuid.uuid4().hex[:10]
QUEUE = f"rc-test-{RUN}"
KEY_PREFIX = f"rc-test-{RUN}:"
OPENED_AT = datetime(2022, 3, 1, 21, 0, tzinfo=UTC)  # 10:00 on 2 March in Auckland
BASE_URL = "https://reports.example.govt.nz"


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class World:
    engine: sa.Engine
    update_request_ids: list[int]

    def states(self) -> dict[int, DeliveryState]:
        with Session(self.engine) as session:
            rows = session.exec(select(Notification.id, Notification.state)).all()
        return {row_id: DeliveryState(state) for row_id, state in rows if row_id is not None}

    def notification(self, notification_id: int) -> Notification:
        with Session(self.engine) as session:
            found = session.get(Notification, notification_id)
            assert found is not None
            return found

    def all_settled(self) -> bool:
        return all(
            state in (DeliveryState.SENT, DeliveryState.FAILED) for state in self.states().values()
        )


def build_world(db_url: str, report_text: str) -> World:
    """The 2021 report imported; contacts at NZ Police and MBIE (and a coordinator); the 2022
    cycle opened: one update_request notification per contact, not sent yet."""
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        import_report(session, report_text, OPENED_AT)
        police = find_agency(session, "NZP")
        mbie = find_agency(session, "MBIE")
        add_contact(session, police, "sam.tipene@police.example.govt.nz", OPENED_AT, name="Sam")
        add_contact(session, mbie, "plan.team@mbie.example.govt.nz", OPENED_AT)
        add_contact(session, mbie, "coordinator@mbie.example.govt.nz", OPENED_AT, coordinator=True)
        opened = open_cycle(session, find_plan(session), 2022, date(2022, 6, 30), OPENED_AT, "test")
        session.commit()
    return World(engine=engine, update_request_ids=list(opened.notification_ids))


@pytest.fixture(scope="module", autouse=True)
def _clean_redis_keys() -> Iterator[None]:
    """This run's queues and bindings go when the module is done."""
    yield
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=KEY_PREFIX + "*"):
            client.delete(key)
    except redis.ConnectionError:
        pass  # no Redis, nothing was written
    finally:
        client.close()


@pytest.fixture
def world(db_url: str, report_2021_text: str) -> Iterator[World]:
    built = build_world(db_url, report_2021_text)
    yield built
    built.engine.dispose()


def worker_settings_env(
    db_url: str, smtp: SmtpServer, data_dir: Path, **extra: str
) -> dict[str, str]:
    values = {
        "REPORTCYCLE_DATABASE_URL": db_url,
        "REPORTCYCLE_DATA_DIR": str(data_dir),
        "REPORTCYCLE_MAIL_URL": smtp.url,
        "REPORTCYCLE_MAIL_FROM": "Plan of Action <reportcycle@example.govt.nz>",
        "REPORTCYCLE_BASE_URL": BASE_URL,
        "REPORTCYCLE_BROKER_URL": require_redis(),
        "REPORTCYCLE_TASK_QUEUE": QUEUE,
        "REPORTCYCLE_BROKER_KEY_PREFIX": KEY_PREFIX,
        "REPORTCYCLE_RETRY_BACKOFF_SECONDS": "1",
        "REPORTCYCLE_RETRY_BACKOFF_MAX_SECONDS": "2",
    }
    values.update(extra)
    return values


@pytest.fixture
def worker_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The settings the in-process worker's tasks read (get_settings())."""
    values = worker_settings_env(db_url, smtp_server, tmp_path / "data")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings_module.get_settings.cache_clear()
    yield values
    settings_module.get_settings.cache_clear()


@pytest.fixture
def celery_config(worker_env: dict[str, str]) -> dict[str, Any]:
    config = celery_conf.celery_config(Settings())
    config.pop("beat_schedule")
    return config


@pytest.fixture(scope="session")
def celery_includes() -> list[str]:
    return ["worker.tasks"]


@pytest.fixture
def celery_worker_parameters() -> dict[str, Any]:
    return {"perform_ping_check": False, "queues": (QUEUE,)}


def test_a_message_goes_broker_worker_apprise_smtp(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    for notification_id in world.update_request_ids:
        celery_app.send_task(SEND_TASK, args=[notification_id])

    wait_until("every update request sent", world.all_settled)
    mails = smtp_server.wait_for(len(world.update_request_ids))

    # MBIE's contact also reads for its business units INZ and ENZ (no contacts of their own).
    assert len(world.update_request_ids) == 4
    assert set(world.states().values()) == {DeliveryState.SENT}
    assert sorted(address for mail in mails for address in mail.rcpt_tos) == [
        "plan.team@mbie.example.govt.nz",
        "plan.team@mbie.example.govt.nz",
        "plan.team@mbie.example.govt.nz",
        "sam.tipene@police.example.govt.nz",
    ]
    assert sorted(mail.subject.split("'")[0] for mail in mails) == [
        "Please send ENZ",
        "Please send INZ",
        "Please send MBIE",
        "Please send NZP",
    ]
    [police] = smtp_server.to("sam.tipene@police.example.govt.nz")
    assert police.subject.startswith("Please send NZP's 2022 progress update by")
    assert police.subject.endswith("30 June 2022")
    assert str(police.message["From"]) == "Plan of Action <reportcycle@example.govt.nz>"
    assert police.message_id.startswith("<notification-")
    assert f"{BASE_URL}/r/" in police.text
    assert f"{BASE_URL}/r/" in police.html
    assert {mail.message_id for mail in mails} == {
        f"<notification-{n}.c{world.notification(n).cycle_id}@reports.example.govt.nz>"
        for n in world.update_request_ids
    }
    with Session(world.engine) as session:
        states = session.exec(
            select(Agency.acronym, UpdateRequest.state)
            .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
            .where(col(Agency.acronym).in_(["NZP", "MBIE", "INZ", "ENZ", "DIA"]))
        ).all()
    # after_sent ran: the requests whose link went out are "sent" (the others wait for a
    # contact).
    assert sorted(states) == [
        ("DIA", RequestState.PENDING),
        ("ENZ", RequestState.SENT),
        ("INZ", RequestState.SENT),
        ("MBIE", RequestState.SENT),
        ("NZP", RequestState.SENT),
    ]


def test_a_task_delivered_twice_sends_once(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    notification_id = world.update_request_ids[0]
    for _ in range(3):
        celery_app.send_task(SEND_TASK, args=[notification_id])

    wait_until("the message sent", lambda: world.states()[notification_id] is DeliveryState.SENT)
    # Let the other two tasks run too: they find the row sent and do nothing.
    wait_until("the queue drained", lambda: queue_is_empty(celery_app))

    assert len(smtp_server.wait_for(1)) == 1
    assert world.notification(notification_id).attempts == 1


def test_smtp_451_is_retried_by_the_worker_and_delivered_once(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    notification_id = world.update_request_ids[0]
    smtp_server.fail_next(2)

    celery_app.send_task(SEND_TASK, args=[notification_id])

    wait_until("the message sent", lambda: world.states()[notification_id] is DeliveryState.SENT)
    assert len(smtp_server.wait_for(1)) == 1
    assert world.notification(notification_id).attempts == 3
    assert smtp_server.data_started == 3


def test_smtp_server_down_then_back_is_delivered_once_by_the_worker(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    notification_id = world.update_request_ids[0]
    smtp_server.stop()

    celery_app.send_task(SEND_TASK, args=[notification_id])
    wait_until(
        "a failed attempt", lambda: world.notification(notification_id).last_error is not None
    )
    assert "refused the connection" in (world.notification(notification_id).last_error or "")
    smtp_server.start()

    wait_until("the message sent", lambda: world.states()[notification_id] is DeliveryState.SENT)
    wait_until("the queue drained", lambda: queue_is_empty(celery_app))
    assert len(smtp_server.messages) == 1
    assert world.notification(notification_id).attempts >= 2


def test_a_refused_recipient_fails_and_the_worker_tells_the_coordinator(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    smtp_server.refuse("sam.tipene@police.example.govt.nz")
    for notification_id in world.update_request_ids:
        celery_app.send_task(SEND_TASK, args=[notification_id])

    # Four update requests (MBIE's contact reads for INZ and ENZ too) and the notice.
    wait_until("the delivery_failed notice sent", lambda: len(world.states()) == 5)
    wait_until("everything settled", world.all_settled)

    mails = smtp_server.wait_for(4)
    assert sorted(a for mail in mails for a in mail.rcpt_tos) == [
        "coordinator@mbie.example.govt.nz",
        "plan.team@mbie.example.govt.nz",
        "plan.team@mbie.example.govt.nz",
        "plan.team@mbie.example.govt.nz",
    ]
    [notice] = smtp_server.to("coordinator@mbie.example.govt.nz")
    assert "sam.tipene@police.example.govt.nz" in notice.text
    assert "550" in notice.text
    with Session(world.engine) as session:
        failed = session.exec(
            select(Notification).where(
                Notification.recipient == "sam.tipene@police.example.govt.nz"
            )
        ).one()
    assert failed.state is DeliveryState.FAILED
    assert failed.last_error is not None and "550" in failed.last_error


def test_the_sweep_task_claims_what_is_due_and_requeues_lost_rows(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    # Nobody enqueued the update requests (as if the process died after the commit); eight
    # days before the deadline, on a Wednesday morning in Auckland, the sweep runs.
    celery_app.send_task(SWEEP_TASK, kwargs={"now": "2022-06-22T10:00:00+12:00"})

    wait_until("reminders claimed", lambda: len(world.states()) > 2)
    wait_until("everything sent", world.all_settled)

    states = world.states()
    assert set(states.values()) == {DeliveryState.SENT}
    mails = smtp_server.wait_for(len(states))
    assert len(mails) == len(states)
    assert len({mail.message_id for mail in mails}) == len(states)
    subjects = sorted(mail.subject for mail in mails)
    assert any(subject.startswith("Reminder: NZP's 2022 update is due") for subject in subjects), (
        subjects
    )
    assert any(subject.startswith("Please send NZP's 2022") for subject in subjects)


def queue_is_empty(app: Celery) -> bool:
    """Nothing waiting in our queue and nothing held unacknowledged by a worker (with acks
    late, a running task and a retry waiting for its countdown are both unacknowledged)."""
    client = redis.Redis.from_url(str(app.conf.broker_url))
    try:
        waiting = client.llen(KEY_PREFIX + QUEUE)
        unacked = client.zcard(KEY_PREFIX + "unacked_index")
    finally:
        client.close()
    return bool(waiting == 0 and unacked == 0)


def test_the_worker_killed_mid_send_delivers_exactly_once(
    world: World, smtp_server: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    """A real ``celery -A worker.app worker`` is killed (SIGKILL, with its pool) while the
    SMTP server holds the DATA; the task comes back from Redis after the visibility timeout,
    a second worker takes over the stale claim, and the message arrives once."""
    from tests.worker_process import WorkerProcess

    notification_id = world.update_request_ids[0]
    run = uuid.uuid4().hex[:8]
    env = worker_settings_env(
        db_url,
        smtp_server,
        tmp_path / "data",
        REPORTCYCLE_TASK_QUEUE=f"{QUEUE}-kill-{run}",
        REPORTCYCLE_BROKER_KEY_PREFIX=f"{KEY_PREFIX}kill-{run}:",
        REPORTCYCLE_BROKER_VISIBILITY_TIMEOUT_SECONDS="12",
        REPORTCYCLE_TASK_TIME_LIMIT_SECONDS="6",
    )
    smtp_server.delay_data(60)

    with WorkerProcess(env, tmp_path / "worker-1.log") as first:
        first.enqueue(SEND_TASK, notification_id)
        smtp_server.wait_for_data(1)
        first.kill()
    assert smtp_server.messages == []
    assert world.notification(notification_id).state is DeliveryState.SENDING

    smtp_server.delay_data(0)
    with WorkerProcess(env, tmp_path / "worker-2.log") as second:
        wait_until(
            "the second worker to send it",
            lambda: world.states()[notification_id] is DeliveryState.SENT,
            timeout=90,
        )
        wait_until("the Redis queue drained", second.queue_is_empty, timeout=30)

    mails = smtp_server.messages
    assert len(mails) == 1
    assert mails[0].rcpt_tos == (world.notification(notification_id).recipient,)
    sent = world.notification(notification_id)
    assert sent.attempts == 2
    assert smtp_server.data_started == 2


def test_two_sweeps_at_once_send_nothing_twice(
    world: World, smtp_server: SmtpServer, celery_app: Celery, celery_worker: Any
) -> None:
    for _ in range(2):
        celery_app.send_task(SWEEP_TASK, kwargs={"now": "2022-06-22T10:00:00+12:00"})

    wait_until("reminders claimed", lambda: len(world.states()) > 2)
    wait_until("the queue drained", lambda: queue_is_empty(celery_app))
    wait_until("everything sent", world.all_settled)

    states = world.states()
    mails = smtp_server.messages
    assert len(mails) == len(states)
    assert len({mail.message_id for mail in mails}) == len(states)
