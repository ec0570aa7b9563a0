"""The ``reportcycle.compile_due`` task through a real Celery worker on the real Redis: a
cycle past its deadline is compiled once, however many times the task runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from sqlmodel import Session, select

import worker.tasks  # noqa: F401  (registered before any test app exists)
from config import celery as celery_conf
from config import settings as settings_module
from config.celery import COMPILE_DUE_TASK
from config.settings import Settings
from models import drafts
from models.tables import AuditEvent, ReportVersion
from tests.services import REDIS_URL
from tests.smtp_server import SmtpServer
from tests.test_worker import World, build_world, wait_until, worker_settings_env

pytestmark = [pytest.mark.redis]

RUN = uuid.uuid4().hex[:10]
QUEUE = f"rc-review-{RUN}"
KEY_PREFIX = f"rc-review-{RUN}:"
AFTER_DEADLINE = "2022-07-02T10:00:00+12:00"  # the 2022 cycle's deadline is 30 June


@pytest.fixture(scope="module", autouse=True)
def _clean_redis_keys() -> Iterator[None]:
    yield
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=KEY_PREFIX + "*"):
            client.delete(key)
    except redis.ConnectionError:
        pass
    finally:
        client.close()


@pytest.fixture
def world(db_url: str, report_2021_text: str) -> Iterator[World]:
    built = build_world(db_url, report_2021_text)
    yield built
    built.engine.dispose()


@pytest.fixture
def worker_env(
    monkeypatch: pytest.MonkeyPatch, db_url: str, smtp_server: SmtpServer, tmp_path: Path
) -> Iterator[dict[str, str]]:
    values = worker_settings_env(
        db_url,
        smtp_server,
        tmp_path / "data",
        REPORTCYCLE_TASK_QUEUE=QUEUE,
        REPORTCYCLE_BROKER_KEY_PREFIX=KEY_PREFIX,
    )
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


def queue_is_empty(app: Celery) -> bool:
    """Nothing waiting in this run's queue, nothing held unacknowledged by the worker."""
    client = redis.Redis.from_url(str(app.conf.broker_url))
    try:
        waiting = client.llen(KEY_PREFIX + QUEUE)
        unacked = client.zcard(KEY_PREFIX + "unacked_index")
    finally:
        client.close()
    return bool(waiting == 0 and unacked == 0)


def compiles(world: World) -> list[AuditEvent]:
    with Session(world.engine) as session:
        return list(
            session.exec(select(AuditEvent).where(AuditEvent.action == drafts.COMPILED)).all()
        )


def test_the_compile_due_task_compiles_a_cycle_past_its_deadline_once(
    world: World, celery_app: Celery, celery_worker: Any
) -> None:
    celery_app.send_task(COMPILE_DUE_TASK, kwargs={"now": "2022-06-01T10:00:00+12:00"})
    celery_app.send_task(COMPILE_DUE_TASK, kwargs={"now": AFTER_DEADLINE})
    wait_until("the draft compiled", lambda: len(compiles(world)) == 1)
    for _ in range(2):
        celery_app.send_task(COMPILE_DUE_TASK, kwargs={"now": AFTER_DEADLINE})
    wait_until("the queue drained", lambda: queue_is_empty(celery_app))
    [event] = compiles(world)
    assert event.actor == "schedule" and event.detail["triggers"] == ["deadline"]
    with Session(world.engine) as session:
        assert [v.number for v in session.exec(select(ReportVersion))] == [1]
