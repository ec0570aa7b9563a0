"""The batch task (``reportcycle.send_notifications``) in a real ``celery -A worker.app
worker`` subprocess on the real Redis, sending to a real SMTP server: the sweep's batches
delivered once, a transient failure retried alone, a worker killed mid-batch."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlmodel import Session, select

from config.celery import SEND_BATCH_TASK, SWEEP_TASK
from models.tables import DeliveryState, Notification
from tests.services import REDIS_URL
from tests.smtp_server import SmtpServer
from tests.test_worker import World, build_world, wait_until, worker_settings_env
from tests.worker_process import WorkerProcess
from worker.tasks import batches

pytestmark = [pytest.mark.redis, pytest.mark.smtp]


@pytest.fixture
def world(db_url: str, report_2021_text: str) -> Iterator[World]:
    built = build_world(db_url, report_2021_text)
    yield built
    built.engine.dispose()


@pytest.fixture
def env(db_url: str, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A queue and key prefix of this test's own, removed afterwards."""
    run = uuid.uuid4().hex[:10]
    prefix = f"rc-test-batch-{run}:"
    yield worker_settings_env(
        db_url,
        smtp_server,
        tmp_path / "data",
        REPORTCYCLE_TASK_QUEUE=f"rc-test-batch-{run}",
        REPORTCYCLE_BROKER_KEY_PREFIX=prefix,
        # A worker's death is noticed by Redis after this; a claim is stale after the limit.
        REPORTCYCLE_BROKER_VISIBILITY_TIMEOUT_SECONDS="16",
        REPORTCYCLE_TASK_TIME_LIMIT_SECONDS="10",
    )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    finally:
        client.close()


def attempts(world: World) -> dict[int, int]:
    with Session(world.engine) as session:
        rows = session.exec(select(Notification.id, Notification.attempts)).all()
    return {row_id: count for row_id, count in rows if row_id is not None}


def test_batches_are_even_and_keep_the_order() -> None:
    assert batches([]) == []
    assert batches(list(range(5)), size=25) == [list(range(5))]
    assert batches(list(range(30)), size=25) == [list(range(15)), list(range(15, 30))]
    assert [len(b) for b in batches(list(range(1000)), size=25)] == [25] * 40
    assert [len(b) for b in batches(list(range(51)), size=25)] == [17, 17, 17]
    assert [n for b in batches(list(range(51)), size=25) for n in b] == list(range(51))


def test_the_sweep_s_batches_are_delivered_once_by_a_worker_process(
    world: World, smtp_server: SmtpServer, env: dict[str, str], tmp_path: Path
) -> None:
    with WorkerProcess(env, tmp_path / "worker.log", concurrency=2) as worker:
        # Eight days before the deadline: reminders, and the update requests nobody enqueued.
        worker.producer().send_task(SWEEP_TASK, kwargs={"now": "2022-06-22T10:00:00+12:00"})
        wait_until("reminders claimed", lambda: len(world.states()) > 4)
        wait_until("everything sent", world.all_settled, timeout=90)
        wait_until("the Redis queue drained", worker.queue_is_empty, timeout=30)
        log = worker.log()

    states = world.states()
    assert set(states.values()) == {DeliveryState.SENT}
    mails = smtp_server.messages
    assert len(mails) == len(states)
    assert len({mail.message_id for mail in mails}) == len(states)
    assert set(attempts(world).values()) == {1}
    assert SEND_BATCH_TASK in log


def test_a_transient_failure_in_a_batch_is_retried_alone(
    world: World, smtp_server: SmtpServer, env: dict[str, str], tmp_path: Path
) -> None:
    ids = world.update_request_ids
    smtp_server.fail_next(1)  # the first message of the batch: 451

    with WorkerProcess(env, tmp_path / "worker.log") as worker:
        worker.enqueue(SEND_BATCH_TASK, ids)
        wait_until("everything sent", world.all_settled, timeout=60)
        wait_until("the Redis queue drained", worker.queue_is_empty, timeout=30)

    assert set(world.states().values()) == {DeliveryState.SENT}
    # One more DATA than messages: the failed one's second attempt, nobody else's.
    assert len(smtp_server.messages) == len(ids)
    assert smtp_server.data_started == len(ids) + 1
    assert attempts(world) == {ids[0]: 2, **{n: 1 for n in ids[1:]}}


def test_a_worker_killed_mid_batch_delivers_each_message_once(
    world: World, smtp_server: SmtpServer, env: dict[str, str], tmp_path: Path
) -> None:
    """The worker dies (SIGKILL, with its pool) while the server holds the third message's
    DATA: two were sent, the third is claimed, the fourth waits. Redis hands the batch to a
    second worker once the visibility timeout has passed: it finds the first two sent, takes
    the stale claim over and sends the last two, each once."""
    ids = world.update_request_ids
    assert len(ids) == 4
    smtp_server.delay_data(60, after=2)

    with WorkerProcess(env, tmp_path / "worker-1.log") as first:
        first.enqueue(SEND_BATCH_TASK, ids)
        smtp_server.wait_for_data(3)
        first.kill()
    assert len(smtp_server.messages) == 2
    states = world.states()
    assert [states[n] for n in ids] == [
        DeliveryState.SENT,
        DeliveryState.SENT,
        DeliveryState.SENDING,
        DeliveryState.PENDING,
    ]

    smtp_server.delay_data(0)
    with WorkerProcess(env, tmp_path / "worker-2.log") as second:
        wait_until("the second worker to finish the batch", world.all_settled, timeout=90)
        wait_until("the Redis queue drained", second.queue_is_empty, timeout=30)

    assert set(world.states().values()) == {DeliveryState.SENT}
    mails = smtp_server.messages
    assert len({mail.message_id for mail in mails}) == len(mails) == 4
    assert smtp_server.data_started == 5
    assert attempts(world) == {ids[0]: 1, ids[1]: 1, ids[2]: 2, ids[3]: 1}
