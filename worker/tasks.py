"""Thin tasks: re-read by id, call one domain function, retry what is retryable.

Arguments are ids only (never an address or a URL: task arguments reach logs and Redis).
Both tasks are shared tasks with explicit names, so every Celery app instance (ours, a test's)
knows them; they enqueue through ``self.app`` by name.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlmodel import Session

from config.celery import COMPILE_DUE_TASK, SEND_TASK, SWEEP_TASK, retry_countdown
from config.settings import Settings, get_settings
from models.clock import parse_instant, system_clock
from models.db import get_engine, session_scope
from models.delivery import (
    DeliveryPolicy,
    UnknownNotification,
    attempt_delivery,
    resumable_ids,
)
from models.tables import DeliveryState
from worker.notify import default_transport

log = logging.getLogger(__name__)


def _now() -> datetime:
    return system_clock()


@shared_task(bind=True, name=SEND_TASK, max_retries=None, ignore_result=True)
def send_notification(self: Task[Any, Any], notification_id: int, now: str | None = None) -> str:
    """Deliver one notification; retry a transient failure with capped exponential backoff.

    ``now``: the instant of a rehearsal sweep (ISO 8601), so the message reads as it would
    then ("due in 8 days"); beat's sweeps leave it out: the real time."""
    settings = get_settings()
    policy = DeliveryPolicy.from_settings(settings)
    at = datetime.fromisoformat(now) if now else _now()
    # One connection for the claim, the render and the record: each transaction would
    # otherwise check one out of the pool again, and ping the server before using it.
    with (
        get_engine(settings.sqlalchemy_url).connect() as connection,
        Session(bind=connection, expire_on_commit=False) as session,
    ):
        try:
            outcome = attempt_delivery(
                session, notification_id, at, default_transport(settings), policy=policy
            )
        except UnknownNotification:
            log.warning("notification %s does not exist; nothing to send", notification_id)
            return "unknown"
    for follow_up in outcome.follow_up_ids:
        self.app.send_task(SEND_TASK, args=[follow_up], kwargs=_now_kwargs(now))
    if outcome.state is DeliveryState.RETRYING:
        raise self.retry(countdown=retry_countdown(settings, self.request.retries))
    if outcome.state is DeliveryState.SENDING:
        # Another worker holds a fresh claim. Look again once it would be stale: by then
        # that worker has finished (nothing to do) or died (this task takes over).
        countdown = min(
            int(policy.stale_after.total_seconds()) + 1,
            settings.broker_visibility_timeout_seconds - 1,
        )
        raise self.retry(countdown=countdown)
    return outcome.state.value


@shared_task(bind=True, name=SWEEP_TASK, ignore_result=True)
def sweep(self: Task[Any, Any], now: str | None = None) -> dict[str, int]:
    """Claim what is due (``models.sweep.sweep``), commit, then enqueue one send per row;
    also re-enqueue rows whose task was lost (pending, retrying or claimed too long ago).

    ``now``: an ISO 8601 instant to sweep at (rehearsals); beat leaves it out: the real time."""
    from models.sweep import sweep as sweep_due

    settings = get_settings()
    engine = get_engine(settings.sqlalchemy_url)
    at = parse_instant(now, settings.timezone) if now else _now()
    with session_scope(engine) as session:
        result = sweep_due(session, at, settings)
    due = list(result.notification_ids)
    with session_scope(engine) as session:
        lost = resumable_ids(
            session,
            at,
            policy=DeliveryPolicy.from_settings(settings),
            lost_after=lost_after(settings),
        )
    queued = 0
    kwargs = _now_kwargs(at.isoformat() if now else None)
    # One producer (and broker connection) for the whole batch, not one acquired per task.
    with self.app.producer_or_acquire() as producer:
        for notification_id in dict.fromkeys([*due, *lost]):
            self.app.send_task(SEND_TASK, args=[notification_id], kwargs=kwargs, producer=producer)
            queued += 1
    if result.deferred:
        log.info("sweep deferred: %s", result.deferred)
    return {"claimed": len(due), "requeued": len(set(lost) - set(due)), "queued": queued}


@shared_task(bind=True, name=COMPILE_DUE_TASK, ignore_result=True)
def compile_due(self: Task[Any, Any], now: str | None = None) -> dict[str, int]:
    """Compile the draft of every open cycle that has become due (``models.publishing.
    compile_due_cycles``: deadline passed, or every request submitted; once per trigger)."""
    from models.publishing import compile_due_cycles

    settings = get_settings()
    engine = get_engine(settings.sqlalchemy_url)
    at = parse_instant(now, settings.timezone) if now else _now()
    with session_scope(engine) as session:
        done = compile_due_cycles(session, at, timezone=settings.timezone)
    if done:
        log.info("compiled due cycles: %s", [(d.year, d.trigger, d.version) for d in done])
    return {"compiled": len(done)}


def _now_kwargs(now: str | None) -> dict[str, str]:
    return {"now": now} if now else {}


def lost_after(settings: Settings) -> timedelta:
    """How long a row may wait for its task before the sweep enqueues it again: longer than
    the longest retry delay plus a send plus a sweep interval (a duplicate task is harmless,
    the claim lets one of them send; this only keeps them rare)."""
    return timedelta(
        seconds=settings.retry_backoff_max_seconds
        + settings.task_time_limit_seconds
        + settings.sweep_interval_seconds
    )
