"""Delivering one notification: claim the row, render it, send it, record the outcome.

A notification is a row before it is a message. ``deliver`` is the one function that turns a
row into a message, whoever calls it (a Celery task, a redelivered task, the CLI):

1. claim: a conditional UPDATE moves the row to "sending" only from "pending" or "retrying", or
   from a "sending" whose claim is older than ``stale_after`` (the worker that claimed it died
   mid-send). Two callers racing for the same row: exactly one wins, the other sends nothing.
2. render (``models.messages.render_message``; it may issue the message's link token), and
   commit the claim and the token together: both are committed before anything is sent, so
   every other worker sees the claim. (A render that fails rolls the claim back; the row is
   claimed again to record the failure.)
3. send through the transport, outside any transaction (no lock is held on a slow server).
4. record: "sent" (with ``after_sent``), "retrying" (transient error, attempts left) or
   "failed" (permanent error, or no attempts left; the coordinators are told by a
   ``delivery_failed`` notification).

A row already sent is never sent again. The one window left is a crash after the server
accepted the message and before "sent" is committed: the row is then sent again once its claim
is stale, with the same Message-ID (derived from the notification id), so the duplicate is
detectable downstream.

This module commits: a claim that is not committed protects nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from models.tables import Contact, DeliveryState, Notification

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

DELIVERY_FAILED = "delivery_failed"
ERROR_MAX_CHARS = 500


class DeliveryError(Exception):
    """A message could not be sent. ``permanent``: retrying cannot help (5xx, bad address).

    The message must be fit for a log and a database column: no URL with credentials."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class UnknownNotification(LookupError):
    """No notification with this id (deleted, or an id from another database)."""


class RenderedMessage(Protocol):
    """What ``models.messages.Message`` holds: a subject and a plain and an HTML body."""

    @property
    def subject(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def html(self) -> str: ...


class Transport(Protocol):
    def send(self, notification: Notification, contact: Contact, message: RenderedMessage) -> None:
        """Send ``message`` to the recipient of ``notification``; raise DeliveryError."""


Renderer = Callable[[Session, Notification, datetime], RenderedMessage]
AfterSent = Callable[[Session, Notification, datetime], None]


@dataclass(frozen=True)
class DeliveryPolicy:
    """How long a claim protects a row, and how many attempts a message gets."""

    # A "sending" row claimed longer ago than this belongs to a worker that died: the task
    # time limit, after which Celery has killed any send still running.
    stale_after: timedelta = timedelta(minutes=5)
    max_attempts: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            stale_after=timedelta(seconds=settings.task_time_limit_seconds),
            max_attempts=settings.delivery_max_attempts,
        )


@dataclass(frozen=True)
class DeliveryOutcome:
    notification_id: int
    state: DeliveryState
    # True when this call sent the message (False: someone else has it, or it was done).
    sent_now: bool = False
    error: str | None = None
    # delivery_failed notifications claimed for the coordinators: send them next.
    follow_up_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def retryable(self) -> bool:
        return self.state is DeliveryState.RETRYING


def deliver(
    session: Session,
    notification_id: int,
    now: datetime,
    transport: Transport,
    *,
    policy: DeliveryPolicy | None = None,
    render: Renderer | None = None,
    after_sent: AfterSent | None = None,
) -> DeliveryState:
    """Deliver one notification (see the module docstring); its state afterwards."""
    return attempt_delivery(
        session,
        notification_id,
        now,
        transport,
        policy=policy,
        render=render,
        after_sent=after_sent,
    ).state


def attempt_delivery(
    session: Session,
    notification_id: int,
    now: datetime,
    transport: Transport,
    *,
    policy: DeliveryPolicy | None = None,
    render: Renderer | None = None,
    after_sent: AfterSent | None = None,
) -> DeliveryOutcome:
    """``deliver`` with the details a task needs: was it sent now, the error, follow-ups."""
    if now.tzinfo is None:
        raise ValueError("deliver needs an aware datetime for now")
    policy = policy or _default_policy()
    render = render or _default_renderer()
    after_sent = after_sent or _default_after_sent()

    notification = _claim(session, notification_id, now, policy)
    if notification is None:
        return _not_ours(session, notification_id)

    assert notification.claimed_at is not None
    claimed_at = notification.claimed_at
    contact = session.get(Contact, notification.contact_id) if notification.contact_id else None
    if contact is None or not contact.active:
        who = f"contact {notification.contact_id}" if notification.contact_id else "no contact"
        return _record_failure(
            session,
            notification,
            claimed_at,
            now,
            f"recipient is gone or inactive ({who})",
            permanent=True,
            policy=policy,
            tell_coordinators=False,
        )

    try:
        message = render(session, notification, now)
        # One commit for the claim and what rendering wrote (the link's token): both are in
        # the database before anything is sent, and every commit waits for a disk flush.
        session.commit()
    except Exception as exc:
        kind = notification.kind
        session.rollback()  # the claim with it: claimed again to record the failure
        log.exception("notification %s (%s) could not be rendered", notification_id, kind)
        reclaimed = _claim(session, notification_id, now, policy)
        if reclaimed is None:
            return _not_ours(session, notification_id)
        notification = reclaimed
        return _record_failure(
            session,
            notification,
            claimed_at,
            now,
            f"could not render the message: {type(exc).__name__}: {exc}",
            permanent=True,
            policy=policy,
        )

    try:
        transport.send(notification, contact, message)
    except DeliveryError as exc:
        return _record_failure(
            session, notification, claimed_at, now, str(exc), permanent=exc.permanent, policy=policy
        )
    except Exception as exc:
        # An unexpected transport error: treat as transient, the attempts bound it.
        log.exception("notification %s: transport error", notification_id)
        return _record_failure(
            session,
            notification,
            claimed_at,
            now,
            f"{type(exc).__name__}: {exc}",
            permanent=False,
            policy=policy,
        )
    _record_sent(session, notification, now, after_sent)
    return DeliveryOutcome(notification_id, DeliveryState.SENT, sent_now=True)


@dataclass(frozen=True)
class BatchResult:
    """What ``deliver_batch`` did: an outcome per id it attempted, and what it hands back."""

    outcomes: tuple[DeliveryOutcome, ...] = ()
    # No such notification (deleted, or an id from another database).
    unknown: tuple[int, ...] = ()
    # The attempt raised (the database went away …): to be tried again on its own.
    errored: tuple[int, ...] = ()
    # Not attempted: the time budget ran out, or an attempt raised before them.
    not_started: tuple[int, ...] = ()


def deliver_batch(
    session: Session,
    ids: Sequence[int],
    clock: Callable[[], datetime],
    transport: Transport,
    *,
    policy: DeliveryPolicy | None = None,
    time_budget: float | None = None,
    render: Renderer | None = None,
    after_sent: AfterSent | None = None,
) -> BatchResult:
    """``attempt_delivery`` for each id in turn, on one session (one connection) and one
    transport: each message is still claimed, committed with its token, sent and recorded on
    its own, so a batch gives no message fewer guarantees than a task per message would (a
    batch delivered again after its worker died finds the rows it sent "sent").

    ``clock`` gives each message its own instant. No message is started once ``time_budget``
    seconds have passed (the first always is): the rest come back in ``not_started``, for the
    caller to hand on, so a batch stays inside its task's time limit. An attempt that raises
    is rolled back and its id returned in ``errored``, with the rest in ``not_started``: what
    broke it (the database, most likely) would break them too, and the caller decides when to
    try again."""
    policy = policy or _default_policy()
    render = render or _default_renderer()
    after_sent = after_sent or _default_after_sent()
    started = time.monotonic()
    # The batch's recipients in one query instead of one each: held here, they stay in the
    # session's identity map, where each attempt's ``session.get`` finds its contact. (Read
    # as of the batch's start: a contact deactivated while its batch is under way still gets
    # this message, as one deactivated while its message is being sent does.)
    _recipients = session.execute(_BATCH_CONTACTS, {"batch_ids": list(ids)}).scalars().all()
    outcomes: list[DeliveryOutcome] = []
    unknown: list[int] = []
    for index, notification_id in enumerate(ids):
        if index and time_budget is not None and time.monotonic() - started >= time_budget:
            return BatchResult(tuple(outcomes), tuple(unknown), (), tuple(ids[index:]))
        try:
            outcome = attempt_delivery(
                session,
                notification_id,
                clock(),
                transport,
                policy=policy,
                render=render,
                after_sent=after_sent,
            )
        except UnknownNotification:
            unknown.append(notification_id)
            continue
        except Exception:
            log.exception("notification %s: delivery attempt failed", notification_id)
            with contextlib.suppress(Exception):
                session.rollback()
            return BatchResult(
                tuple(outcomes), tuple(unknown), (notification_id,), tuple(ids[index + 1 :])
            )
        outcomes.append(outcome)
    return BatchResult(tuple(outcomes), tuple(unknown))


def _not_ours(session: Session, notification_id: int) -> DeliveryOutcome:
    """Someone else holds the row, or it is done: its state, nothing sent."""
    state = session.execute(_STATE, {"state_id": notification_id}).scalar_one_or_none()
    session.commit()
    if state is None:
        raise UnknownNotification(f"no notification with id {notification_id}")
    return DeliveryOutcome(notification_id, DeliveryState(state))


_NOTIFICATION: sa.Table = Notification.__table__  # type: ignore[attr-defined]

# The statements of every delivery, built once (building one costs more than running it).
# The claim: a conditional UPDATE that returns the claimed row, loaded as the ORM would.
_CLAIM = (
    select(Notification)
    .from_statement(
        sa.update(_NOTIFICATION)
        .where(
            _NOTIFICATION.c.id == sa.bindparam("claim_id"),
            sa.or_(
                _NOTIFICATION.c.state.in_([DeliveryState.PENDING, DeliveryState.RETRYING]),
                sa.and_(
                    _NOTIFICATION.c.state == DeliveryState.SENDING,
                    _NOTIFICATION.c.claimed_at < sa.bindparam("stale_before"),
                ),
            ),
        )
        .values(
            state=DeliveryState.SENDING,
            claimed_at=sa.bindparam("claim_at"),
            attempts=_NOTIFICATION.c.attempts + 1,
        )
        # The claimed row comes back with the UPDATE: no second round trip to read it.
        .returning(*_NOTIFICATION.c)
    )
    .execution_options(populate_existing=True)
)
# Any claim: the message went out, whoever claims the row now must not send it again.
_MARK_SENT = (
    sa.update(_NOTIFICATION)
    .where(
        _NOTIFICATION.c.id == sa.bindparam("sent_id"),
        _NOTIFICATION.c.state == DeliveryState.SENDING,
    )
    .values(state=DeliveryState.SENT, sent_at=sa.bindparam("sent_now"), last_error=None)
)
_STATE = select(Notification.state).where(col(Notification.id) == sa.bindparam("state_id"))
_BATCH_CONTACTS = (
    select(Contact)
    .join(Notification, col(Notification.contact_id) == col(Contact.id))
    .where(col(Notification.id).in_(sa.bindparam("batch_ids", expanding=True)))
)


def _claim(
    session: Session, notification_id: int, now: datetime, policy: DeliveryPolicy
) -> Notification | None:
    """The row, claimed (not committed: the caller commits it with the rendered message, or
    with the failure); None when it is not ours to send. A concurrent claimant waits for
    our commit (PostgreSQL's row lock, SQLite's write lock) and then finds it claimed."""
    return session.execute(
        _CLAIM,
        {"claim_id": notification_id, "claim_at": now, "stale_before": now - policy.stale_after},
    ).scalar_one_or_none()


def _record_sent(
    session: Session, notification: Notification, now: datetime, after_sent: AfterSent
) -> None:
    assert notification.id is not None
    params = {"sent_id": notification.id, "sent_now": now}
    try:
        marked = session.connection().execute(_MARK_SENT, params).rowcount == 1
        if marked:  # else a takeover of our stale claim has recorded it already
            # What the UPDATE wrote, without making the object dirty (no flush writes it).
            for key, value in (
                ("state", DeliveryState.SENT),
                ("sent_at", now),
                ("last_error", None),
            ):
                set_committed_value(notification, key, value)
            after_sent(session, notification, now)
        session.commit()
    except Exception:
        # The message is out: being marked sent matters more than its side effects.
        session.rollback()
        log.exception("notification %s: after_sent failed; marked sent alone", notification.id)
        session.connection().execute(_MARK_SENT, params)
        session.commit()


def _record_failure(
    session: Session,
    notification: Notification,
    claimed_at: datetime,
    now: datetime,
    error: str,
    *,
    permanent: bool,
    policy: DeliveryPolicy,
    tell_coordinators: bool = True,
) -> DeliveryOutcome:
    assert notification.id is not None
    error = _short(error)
    attempts_left = notification.attempts < policy.max_attempts
    state = DeliveryState.RETRYING if not permanent and attempts_left else DeliveryState.FAILED
    if state is DeliveryState.FAILED and not permanent:
        error = _short(f"gave up after {notification.attempts} attempts: {error}")
    # Only our own claim: a slower attempt must not overwrite a newer one's outcome.
    result = session.exec(
        sa.update(Notification)
        .where(
            col(Notification.id) == notification.id,
            col(Notification.state) == DeliveryState.SENDING,
            col(Notification.claimed_at) == claimed_at,
        )
        .values(state=state, last_error=error)
        .execution_options(synchronize_session=False)
    )
    follow_ups: tuple[int, ...] = ()
    if result.rowcount == 1 and state is DeliveryState.FAILED and tell_coordinators:
        follow_ups = _tell_coordinators(session, notification, error, now)
    session.commit()
    log.warning(
        "notification %s (%s to %s): %s: %s",
        notification.id,
        notification.kind,
        notification.recipient,
        state.value,
        error,
    )
    return DeliveryOutcome(notification.id, state, error=error, follow_up_ids=follow_ups)


def _tell_coordinators(
    session: Session, failed: Notification, error: str, now: datetime
) -> tuple[int, ...]:
    """Claim a delivery_failed notification per coordinator (not for a failed one of those:
    a coordinator's dead address must not start a chain of failures)."""
    if failed.kind == DELIVERY_FAILED:
        return ()
    from models.notifications import claim_notification, coordinator_recipients

    ids: list[int] = []
    for contact, channel in coordinator_recipients(session):
        if contact.id == failed.contact_id and channel == failed.channel:
            continue
        claimed = claim_notification(
            session,
            kind=DELIVERY_FAILED,
            key=f"{DELIVERY_FAILED}:{failed.id}:{contact.id}:{channel}",
            contact=contact,
            channel=channel,
            context={
                "failed_notification_id": failed.id,
                "failed_kind": failed.kind,
                "failed_recipient": failed.recipient,
                "error": error,
                "agency_id": failed.agency_id,
                "cycle_id": failed.cycle_id,
            },
            now=now,
            cycle_id=failed.cycle_id,
            agency_id=failed.agency_id,
        )
        if claimed is not None and claimed.id is not None:
            ids.append(claimed.id)
    return tuple(ids)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def resumable_ids(
    session: Session, now: datetime, *, policy: DeliveryPolicy, lost_after: timedelta
) -> list[int]:
    """Rows whose task may have been lost, for the sweep task to enqueue again: pending rows
    older than ``lost_after`` (the process died between commit and enqueue), retrying rows
    whose last attempt is older than ``lost_after``, and "sending" rows whose claim is stale.
    Enqueueing a row twice is harmless: the claim lets one task send it."""
    state = col(Notification.state)
    claimed_at = col(Notification.claimed_at)
    rows = session.exec(
        select(Notification.id)
        .where(
            sa.or_(
                sa.and_(
                    state == DeliveryState.PENDING,
                    col(Notification.created_at) < now - lost_after,
                ),
                sa.and_(state == DeliveryState.RETRYING, claimed_at < now - lost_after),
                sa.and_(state == DeliveryState.SENDING, claimed_at < now - policy.stale_after),
            )
        )
        .order_by(col(Notification.id))
    ).all()
    return [row for row in rows if row is not None]


def deliver_now(
    engine: sa.Engine,
    ids: Iterable[int],
    now: datetime | Callable[[], datetime],
    transport: Transport | None = None,
    *,
    policy: DeliveryPolicy | None = None,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    render: Renderer | None = None,
    after_sent: AfterSent | None = None,
) -> list[DeliveryState]:
    """Deliver ``ids`` in this process (the CLI). A transient failure is retried up to
    ``attempts`` times with a short backoff, then left "retrying" for the worker.
    Coordinators' delivery_failed notices are delivered too (their states are not returned).

    ``now`` is an instant (every attempt acts at it) or a clock."""
    clock: Callable[[], datetime] = now if callable(now) else (lambda: now)
    if transport is None:
        from config.settings import get_settings
        from worker.notify import default_transport

        transport = default_transport(get_settings())
    states: list[DeliveryState] = []
    follow_ups: list[int] = []
    for notification_id in ids:
        outcome = _deliver_with_retries(
            engine,
            notification_id,
            clock,
            transport,
            policy,
            attempts,
            backoff_seconds,
            render,
            after_sent,
        )
        states.append(outcome.state)
        follow_ups.extend(outcome.follow_up_ids)
    for notification_id in follow_ups:
        _deliver_with_retries(
            engine,
            notification_id,
            clock,
            transport,
            policy,
            attempts,
            backoff_seconds,
            render,
            after_sent,
        )
    return states


def _deliver_with_retries(
    engine: sa.Engine,
    notification_id: int,
    clock: Callable[[], datetime],
    transport: Transport,
    policy: DeliveryPolicy | None,
    attempts: int,
    backoff_seconds: float,
    render: Renderer | None,
    after_sent: AfterSent | None,
) -> DeliveryOutcome:
    outcome: DeliveryOutcome | None = None
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(min(backoff_seconds * 2 ** (attempt - 1), 10.0))
        with Session(engine, expire_on_commit=False) as session:
            outcome = attempt_delivery(
                session,
                notification_id,
                clock(),
                transport,
                policy=policy,
                render=render,
                after_sent=after_sent,
            )
        if not outcome.retryable:
            break
    assert outcome is not None
    return outcome


def states_of(session: Session, ids: Sequence[int]) -> dict[int, DeliveryState]:
    rows = session.exec(
        select(Notification.id, Notification.state).where(col(Notification.id).in_(ids))
    ).all()
    return {row_id: DeliveryState(state) for row_id, state in rows if row_id is not None}


def _default_policy() -> DeliveryPolicy:
    from config.settings import get_settings

    return DeliveryPolicy.from_settings(get_settings())


def _default_renderer() -> Renderer:
    return cast(Renderer, importlib.import_module("models.messages").render_message)


def _default_after_sent() -> AfterSent:
    return cast(AfterSent, importlib.import_module("models.messages").after_sent)
