"""Thin tasks: re-read by id, call one domain function, retry what is retryable.

Arguments are ids only (never an address or a URL: task arguments reach logs and Redis).
The tasks are shared tasks with explicit names, so every Celery app instance (ours, a test's)
knows them; they enqueue through ``self.app`` by name.

The sweep's messages go out in batches (``send_notifications``: one task, one database
connection, one SMTP connection for up to ``SEND_BATCH_SIZE`` messages). Whatever one message
of a batch needs next (a retry after a transient failure, a look after another worker's fresh
claim, the coordinators' notices) is enqueued on its own as ``send_notification``, the
single-message task that retries, follow-ups and a coordinator's re-send use.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlmodel import Session

from config.celery import (
    COMPILE_DUE_TASK,
    SEND_BATCH_SIZE,
    SEND_BATCH_TASK,
    SEND_TASK,
    SWEEP_TASK,
    batch_time_budget,
    retry_countdown,
)
from config.settings import Settings, get_settings
from models.clock import parse_instant, system_clock
from models.db import get_engine, session_scope
from models.delivery import (
    DeliveryOutcome,
    DeliveryPolicy,
    UnknownNotification,
    attempt_delivery,
    deliver_batch,
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
        raise self.retry(countdown=_claim_countdown(settings, policy))
    return outcome.state.value


@shared_task(bind=True, name=SEND_BATCH_TASK, ignore_result=True)
def send_notifications(
    self: Task[Any, Any], notification_ids: list[int], now: str | None = None
) -> dict[str, int]:
    """Deliver a batch of notifications one after another (``models.delivery.deliver_batch``)
    on one database connection. Never retried as a whole: a message that needs another
    attempt is enqueued alone on ``send_notification``, with the delay it would have had
    there; messages the time budget left unstarted go on in a new batch.

    A worker that dies mid-batch: the batch comes back from Redis (acks late), and finds the
    messages it sent "sent", the one it was sending claimed (taken over once stale), the rest
    pending, so each message is sent once."""
    settings = get_settings()
    policy = DeliveryPolicy.from_settings(settings)
    fixed = datetime.fromisoformat(now) if now else None
    clock = (lambda: fixed) if fixed is not None else _now
    kwargs = _now_kwargs(now)
    with (
        get_engine(settings.sqlalchemy_url).connect() as connection,
        Session(bind=connection, expire_on_commit=False) as session,
    ):
        result = deliver_batch(
            session,
            notification_ids,
            clock,
            default_transport(settings),
            policy=policy,
            time_budget=batch_time_budget(settings),
        )
    for notification_id in result.unknown:
        log.warning("notification %s does not exist; nothing to send", notification_id)
    with self.app.producer_or_acquire() as producer:

        def enqueue(notification_id: int, **options: Any) -> None:
            self.app.send_task(
                SEND_TASK, args=[notification_id], kwargs=kwargs, producer=producer, **options
            )

        for outcome in result.outcomes:
            for follow_up in outcome.follow_up_ids:
                enqueue(follow_up)
            if outcome.state is DeliveryState.RETRYING:
                # As send_notification's own first retry; it counts the later ones from 1.
                enqueue(outcome.notification_id, countdown=retry_countdown(settings, 0), retries=1)
            elif outcome.state is DeliveryState.SENDING:
                enqueue(outcome.notification_id, countdown=_claim_countdown(settings, policy))
        for notification_id in result.errored:
            enqueue(notification_id, countdown=retry_countdown(settings, 0))
        if result.not_started:
            self.app.send_task(
                SEND_BATCH_TASK, args=[list(result.not_started)], kwargs=kwargs, producer=producer
            )
    return _batch_summary(result.outcomes, len(result.errored), len(result.not_started))


def _batch_summary(
    outcomes: tuple[DeliveryOutcome, ...], errored: int, handed_on: int
) -> dict[str, int]:
    summary = {"sent": sum(1 for o in outcomes if o.sent_now), "errored": errored}
    summary["retrying"] = sum(1 for o in outcomes if o.state is DeliveryState.RETRYING)
    summary["failed"] = sum(1 for o in outcomes if o.state is DeliveryState.FAILED)
    summary["handed_on"] = handed_on
    return summary


def _claim_countdown(settings: Settings, policy: DeliveryPolicy) -> int:
    """When to look again at a row another worker holds: once its claim would be stale."""
    return min(
        int(policy.stale_after.total_seconds()) + 1,
        settings.broker_visibility_timeout_seconds - 1,
    )


@shared_task(bind=True, name=SWEEP_TASK, ignore_result=True)
def sweep(self: Task[Any, Any], now: str | None = None) -> dict[str, int]:
    """Claim what is due (``models.sweep.sweep``), commit, then enqueue the rows in batches;
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
    kwargs = _now_kwargs(at.isoformat() if now else None)
    ids = list(dict.fromkeys([*due, *lost]))
    chunks = batches(ids)
    # One producer (and broker connection) for all the batches, not one acquired per task.
    with self.app.producer_or_acquire() as producer:
        for chunk in chunks:
            self.app.send_task(SEND_BATCH_TASK, args=[chunk], kwargs=kwargs, producer=producer)
    if result.deferred:
        log.info("sweep deferred: %s", result.deferred)
    return {
        "claimed": len(due),
        "requeued": len(set(lost) - set(due)),
        "queued": len(ids),
        "batches": len(chunks),
    }


def batches(ids: list[int], size: int = SEND_BATCH_SIZE) -> list[list[int]]:
    """``ids`` in order, in as few batches of at most ``size`` as can be, of even sizes (30
    messages are two batches of 15, one for each worker process, not 25 and 5)."""
    if not ids:
        return []
    count = -(-len(ids) // size)
    step, extra = divmod(len(ids), count)
    result: list[list[int]] = []
    start = 0
    for n in range(count):
        end = start + step + (1 if n < extra else 0)
        result.append(ids[start:end])
        start = end
    return result


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
