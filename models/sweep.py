"""The sweep: from dates in the database, what is due now, claimed as notification rows.

What it finds (all in a constant number of set-based queries, whatever the plan's size):

- milestone reminders to the lead agency before the end of each milestone's due period
  (settings: 30 and 7 days before), for milestones neither completed nor dropped, when the
  agency has an update request in an open cycle that it has not submitted;
- deadline reminders to every agency that has not submitted (14, 7 and 1 days before);
- escalation once an agency is past the deadline without submitting: to the agency and the
  coordinators, then again every 7 days;
- slip flags: a milestone whose due period has ended without being completed or dropped gets
  ``slipped_on`` set, and its lead agency and the coordinators are told, once.

Each recipient gets ONE digest per sweep listing everything due for it. Reminders fall on
working mornings (see ``models.policy``): on a weekend, public holiday or in quiet hours the
sweep claims nothing and the work waits for the next working morning. A reminder whose day
has passed without being claimed (the service was down) is still sent, but only the most
specific one: not the 30-day reminder once the 7-day one is due. Reminder steps that fell due
before the cycle opened are covered by the update request itself.

Idempotency keys (unique per recipient = contact + channel):
``mr:m{milestone}:{due_end}:{days}d:c{contact}:{channel}`` (milestone reminder),
``dr:r{request}:{deadline}:{days}d:…`` (deadline reminder), ``esc:r{request}:{deadline}:w{n}:…``
(escalation round n), ``slip:m{milestone}:{due_end}:…`` (slip notice). A changed deadline or
re-dated milestone therefore gets fresh reminders. A milestone reminder's item also names its
step and period end (``milestone-7d-2022-03-31``), so the candidate query leaves out, in the
database, milestones whose current reminder is already claimed: a quiet sweep reads next to
nothing whatever the plan's size. (A contact added after a milestone's reminder went to its
colleagues is not sent that reminder again; it gets the next one.) The sweep sends nothing: it
returns the ids of the rows it claimed for delivery.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col

from models.clock import as_aware
from models.contacts import (
    Recipient,
    active_contacts,
    agency_parents,
    recipient_label,
    route_through_parents,
    split_recipients,
)
from models.cycles import (
    OPEN_MILESTONE,
    UPDATE_REQUEST,
    deadline_expression,
    update_request_key,
)
from models.notifications import (
    Claim,
    ClaimItem,
    claim_notifications,
    digest_key,
    table_of,
)
from models.notifications import taken_item_keys as _taken
from models.policy import ReminderPolicy
from models.tables import (
    AuditEvent,
    Cycle,
    CycleState,
    Milestone,
    Notification,
    NotificationItem,
    RequestState,
    UpdateRequest,
)

if TYPE_CHECKING:
    from config.settings import Settings

# Requests still waiting for the agency's answer: they get deadline reminders and escalation.
NOT_SUBMITTED = (RequestState.PENDING, RequestState.SENT, RequestState.OPENED, RequestState.DRAFT)
# Requests the agency still works on: they get milestone reminders.
IN_PROGRESS = (*NOT_SUBMITTED, RequestState.CHANGES_REQUESTED)

REMINDER = "reminder"
ESCALATION = "escalation"
SLIPPED = "slipped"
ACTOR = "sweep"


@dataclass(frozen=True)
class DigestSummary:
    """One claimed message, for printing: who, what kind, how many reasons."""

    notification_id: int
    kind: str
    recipient: str
    agency: int | None
    milestone_reminders: int
    deadline_days: int | None
    escalations: int
    slipped: int


@dataclass
class SweepResult:
    now: datetime
    # Why nothing went out (weekend, holiday, quiet hours); None when the sweep ran.
    deferred: str | None = None
    notification_ids: list[int] = field(default_factory=list)
    # Update requests sent late: the agency had no contacts when the cycle opened.
    update_requests: int = 0
    milestone_reminders: int = 0
    deadline_reminders: int = 0
    escalations: int = 0
    slipped_milestone_ids: list[int] = field(default_factory=list)
    digests: list[DigestSummary] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return len(self.notification_ids)


@dataclass(frozen=True)
class _Request:
    id: int
    agency_id: int
    cycle_id: int
    plan_id: int
    deadline: date
    opened_at: datetime
    state: RequestState
    year: int


@dataclass
class _Digest:
    """Everything due for one recipient in this sweep."""

    recipient: Recipient
    audience: str  # "agency" or "coordinator"
    agency_id: int | None = None
    request: _Request | None = None
    items: list[ClaimItem] = field(default_factory=list)
    milestone_ids: list[int] = field(default_factory=list)
    deadline_days: int | None = None
    escalations: list[dict[str, int]] = field(default_factory=list)
    slipped: list[int] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.escalations:
            return ESCALATION
        if self.milestone_ids or self.deadline_days is not None:
            return REMINDER
        return SLIPPED

    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = {"audience": self.audience}
        if self.agency_id is not None:
            context["agency_id"] = self.agency_id
        if self.request is not None:
            context["cycle_id"] = self.request.cycle_id
            context["update_request_id"] = self.request.id
        context["milestone_ids"] = list(self.milestone_ids)
        if self.deadline_days is not None:
            context["deadline_days"] = self.deadline_days
        context["escalations"] = list(self.escalations)
        context["slipped_milestone_ids"] = list(self.slipped)
        return context


class _DueAt:
    """``policy.due_at`` with a cache: holiday look-ups per distinct day, not per row."""

    def __init__(self, policy: ReminderPolicy) -> None:
        self._policy = policy
        self._cache: dict[date, datetime] = {}

    def __call__(self, nominal: date) -> datetime:
        found = self._cache.get(nominal)
        if found is None:
            found = self._cache[nominal] = self._policy.due_at(nominal)
        return found


def sweep(
    session: Session,
    now: datetime,
    settings: Settings,
    *,
    policy: ReminderPolicy | None = None,
) -> SweepResult:
    """Claim every message due at ``now``; the caller commits and delivers the ids."""
    policy = policy or ReminderPolicy.from_settings(settings)
    result = SweepResult(now=now)
    reason = policy.why_not(now)
    if reason is not None:
        result.deferred = reason
        return result
    today = policy.today(now)
    due_at = _DueAt(policy)

    requests = _open_requests(session)
    recipients = _Recipients(session)
    # Milestone reminders and slip notices carry the link of the plan's latest open cycle.
    request_for = {
        (r.plan_id, r.agency_id): r for r in sorted(requests, key=lambda r: (r.year, r.id))
    }

    digests: dict[tuple[Any, ...], _Digest] = {}

    def agency_digest(recipient: Recipient, agency_id: int, request: _Request | None) -> _Digest:
        contact, channel = recipient
        # Per agency too: a parent's contact who also reads for a business unit gets the
        # unit's digest, with the unit's link, apart from the parent's own.
        key = ("agency", contact.id, channel, agency_id, request.cycle_id if request else None)
        if key not in digests:
            digests[key] = _Digest(recipient, "agency", agency_id=agency_id, request=request)
        return digests[key]

    def coordinator_digest(recipient: Recipient) -> _Digest:
        contact, channel = recipient
        key = ("coordinator", contact.id, channel)
        if key not in digests:
            digests[key] = _Digest(recipient, "coordinator")
        return digests[key]

    # Candidates whose keys may already be taken: collected first, checked in one query.
    candidates: list[tuple[_Digest, ClaimItem, Callable[[_Digest], None]]] = []

    def offer(digest: _Digest, item: ClaimItem, apply: Callable[[_Digest], None]) -> None:
        candidates.append((digest, item, apply))

    _milestone_reminders(
        session, policy, now, today, due_at, recipients, request_for, offer, agency_digest
    )
    _deadline_and_escalation(
        policy,
        now,
        today,
        due_at,
        requests,
        recipients,
        offer,
        agency_digest,
        coordinator_digest,
    )

    taken = _taken(session, [item.key for _d, item, _a in candidates])
    for digest, item, apply in candidates:
        if item.key not in taken:
            taken.add(item.key)  # never the same reason twice in one digest
            digest.items.append(item)
            apply(digest)

    # Slip flags last: flagged and told in the same transaction, so "told once" holds even
    # when two sweeps run at once (the second finds nothing left to flag).
    result.slipped_milestone_ids = _flag_slipped(
        session,
        now,
        today,
        recipients,
        request_for,
        agency_digest,
        coordinator_digest,
    )

    claims = [
        Claim(
            kind=digest.kind,
            key=digest_key(digest.kind, digest.recipient[0], digest.recipient[1], digest.items),
            contact=digest.recipient[0],
            channel=digest.recipient[1],
            context=digest.context(),
            cycle_id=digest.request.cycle_id if digest.request else None,
            agency_id=digest.agency_id,
            items=tuple(digest.items),
        )
        for digest in digests.values()
        if digest.items
    ]
    claims += _requests_to_send(session, requests, recipients)
    claimed = claim_notifications(session, claims, now)
    result.notification_ids = [notification_id for notification_id, _claim in claimed]
    _summarise(result, claimed)
    return result


class _Recipients:
    """The active contacts by agency (a business unit's routed through its parent's) and the
    coordinators, read when a sweep first has something to send: a quiet sweep, with nothing
    due, never reads them."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._loaded: tuple[dict[int, list[Recipient]], list[Recipient]] | None = None

    def _load(self) -> tuple[dict[int, list[Recipient]], list[Recipient]]:
        if self._loaded is None:
            by_agency, coordinators = split_recipients(active_contacts(self._session))
            by_agency = route_through_parents(by_agency, agency_parents(self._session))
            self._loaded = (by_agency, coordinators)
        return self._loaded

    @property
    def by_agency(self) -> dict[int, list[Recipient]]:
        return self._load()[0]

    @property
    def coordinators(self) -> list[Recipient]:
        return self._load()[1]


def _open_requests(session: Session) -> list[_Request]:
    rows = session.execute(
        sa.select(
            col(UpdateRequest.id),
            col(UpdateRequest.agency_id),
            col(UpdateRequest.state),
            col(Cycle.id),
            col(Cycle.plan_id),
            # The agency's own deadline when it was given an extension.
            deadline_expression(),
            col(Cycle.opened_at),
            col(Cycle.year),
        )
        .join(Cycle, col(Cycle.id) == UpdateRequest.cycle_id)
        .where(col(Cycle.state) == CycleState.OPEN, col(Cycle.closed_at).is_(None))
        .order_by(col(UpdateRequest.id))
    ).all()
    return [
        _Request(
            id=row[0],
            agency_id=row[1],
            state=RequestState(row[2]),
            cycle_id=row[3],
            plan_id=row[4],
            deadline=row[5],
            opened_at=as_aware(row[6]),
            year=row[7],
        )
        for row in rows
    ]


Offer = Callable[[_Digest, ClaimItem, Callable[[_Digest], None]], None]
AgencyDigest = Callable[[Recipient, int, "_Request | None"], _Digest]
CoordinatorDigest = Callable[[Recipient], _Digest]


def _most_specific(
    offsets: tuple[int, ...], end: date, now: datetime, due_at: _DueAt
) -> tuple[int, datetime] | None:
    """The smallest offset whose reminder is due by ``now`` (and its due time), if any."""
    for days in sorted(offsets):
        when = due_at(end - timedelta(days=days))
        if when <= now:
            return days, when
    return None


def milestone_step(days: int, due_end: date) -> str:
    """A milestone reminder's step, naming the period end it counts from (a re-dated
    milestone is reminded again)."""
    return f"milestone-{days}d-{due_end.isoformat()}"


def _milestone_reminders(
    session: Session,
    policy: ReminderPolicy,
    now: datetime,
    today: date,
    due_at: _DueAt,
    recipients: _Recipients,
    request_for: dict[tuple[int, int], _Request],
    offer: Offer,
    agency_digest: AgencyDigest,
) -> None:
    if not policy.milestone_days:
        return
    # Which period ends have a reminder due now, and which one (the most specific): worked
    # out per day of the window, so the database returns only milestones whose reminder is
    # due and not yet claimed (a quiet sweep reads next to nothing).
    due: dict[date, tuple[int, datetime]] = {}
    for offset in range(max(policy.milestone_days) + 1):
        end = today + timedelta(days=offset)
        found = _most_specific(policy.milestone_days, end, now, due_at)
        if found is not None and found[1].date() <= end:
            due[end] = found
    if not due:
        return
    step_for_end = sa.case(
        {end: milestone_step(days, end) for end, (days, _when) in due.items()},
        value=col(Milestone.due_end),
    )
    claimed = (
        sa.select(sa.literal(1))
        .where(
            col(NotificationItem.milestone_id) == Milestone.id,
            col(NotificationItem.step) == step_for_end,
        )
        .exists()
    )
    rows = session.execute(
        sa.select(
            col(Milestone.id),
            col(Milestone.plan_id),
            col(Milestone.lead_agency_id),
            col(Milestone.due_end),
        )
        .join(Cycle, col(Cycle.plan_id) == Milestone.plan_id)
        .join(
            UpdateRequest,
            sa.and_(
                col(UpdateRequest.cycle_id) == Cycle.id,
                col(UpdateRequest.agency_id) == Milestone.lead_agency_id,
            ),
        )
        .where(
            col(Cycle.state) == CycleState.OPEN,
            col(Cycle.closed_at).is_(None),
            col(UpdateRequest.state).in_(IN_PROGRESS),
            col(Milestone.due_end).in_(list(due)),
            col(Milestone.status).in_(OPEN_MILESTONE),
            ~claimed,
        )
        .order_by(col(Milestone.id))
    ).all()
    seen: set[int] = set()
    for milestone_id, plan_id, agency_id, due_end in rows:
        request = request_for.get((plan_id, agency_id))
        if milestone_id in seen or request is None or request.state not in IN_PROGRESS:
            continue
        seen.add(milestone_id)
        days, when = due[due_end]
        if when < request.opened_at:
            continue  # due before the cycle opened: the update request covered it
        for recipient in recipients.by_agency.get(agency_id, []):
            contact, channel = recipient
            digest = agency_digest(recipient, agency_id, request)
            item = ClaimItem(
                key=f"mr:m{milestone_id}:{due_end}:{days}d:c{contact.id}:{channel}",
                milestone_id=milestone_id,
                step=milestone_step(days, due_end),
            )
            offer(digest, item, _add_milestone(milestone_id))


def _add_milestone(milestone_id: int) -> Callable[[_Digest], None]:
    def apply(digest: _Digest) -> None:
        digest.milestone_ids.append(milestone_id)

    return apply


def _deadline_and_escalation(
    policy: ReminderPolicy,
    now: datetime,
    today: date,
    due_at: _DueAt,
    requests: list[_Request],
    recipients: _Recipients,
    offer: Offer,
    agency_digest: AgencyDigest,
    coordinator_digest: CoordinatorDigest,
) -> None:
    interval = policy.escalation_interval_days
    for request in requests:
        if request.state not in NOT_SUBMITTED:
            continue
        deadline = request.deadline
        if today <= deadline:
            found = _most_specific(policy.deadline_days, deadline, now, due_at)
            if found is None:
                continue
            days, when = found
            if when.date() > deadline or when < request.opened_at:
                continue
            for recipient in recipients.by_agency.get(request.agency_id, []):
                contact, channel = recipient
                item = ClaimItem(
                    key=f"dr:r{request.id}:{deadline}:{days}d:c{contact.id}:{channel}",
                    step=f"deadline-{days}d",
                )
                offer(
                    agency_digest(recipient, request.agency_id, request),
                    item,
                    _set_deadline(days),
                )
            continue
        # Past the deadline: escalation round n falls on deadline + 1 + n * interval.
        first = deadline + timedelta(days=1)
        n = (today - first).days // interval
        while n >= 0 and due_at(first + timedelta(days=n * interval)) > now:
            n -= 1
        if n < 0:
            continue
        escalation = {"update_request_id": request.id, "round": n}
        step = f"escalation-r{request.id}-w{n}"
        targets = [
            (r, agency_digest(r, request.agency_id, request))
            for r in recipients.by_agency.get(request.agency_id, [])
        ] + [(r, coordinator_digest(r)) for r in recipients.coordinators]
        for (contact, channel), digest in targets:
            item = ClaimItem(
                key=f"esc:r{request.id}:{deadline}:w{n}:c{contact.id}:{channel}", step=step
            )
            offer(digest, item, _add_escalation(escalation))


def _requests_to_send(
    session: Session, requests: list[_Request], recipients: _Recipients
) -> list[Claim]:
    """Update requests still pending because the agency had no contacts when the cycle
    opened: sent to the contacts it has now. The key is the one ``open_cycle`` uses, so a
    recipient that already has its request (sent or on its way) gets nothing twice."""
    claims = []
    for request in requests:
        if request.state != RequestState.PENDING:
            continue
        for contact, channel in recipients.by_agency.get(request.agency_id, []):
            claims.append(
                Claim(
                    kind=UPDATE_REQUEST,
                    key=update_request_key(request.id, contact, channel),
                    contact=contact,
                    channel=channel,
                    context={
                        "cycle_id": request.cycle_id,
                        "update_request_id": request.id,
                        "agency_id": request.agency_id,
                    },
                    cycle_id=request.cycle_id,
                    agency_id=request.agency_id,
                )
            )
    if not claims:
        return []
    # Most are already claimed (a request stays pending until a message is sent): look the
    # keys up rather than sending the database an insert that does nothing.
    existing = set(
        session.execute(
            sa.select(col(Notification.idempotency_key)).where(
                col(Notification.idempotency_key).in_([claim.key for claim in claims])
            )
        ).scalars()
    )
    return [claim for claim in claims if claim.key not in existing]


def _set_deadline(days: int) -> Callable[[_Digest], None]:
    def apply(digest: _Digest) -> None:
        digest.deadline_days = days

    return apply


def _add_escalation(escalation: dict[str, int]) -> Callable[[_Digest], None]:
    def apply(digest: _Digest) -> None:
        digest.escalations.append(dict(escalation))

    return apply


def _flag_slipped(
    session: Session,
    now: datetime,
    today: date,
    recipients: _Recipients,
    request_for: dict[tuple[int, int], _Request],
    agency_digest: AgencyDigest,
    coordinator_digest: CoordinatorDigest,
) -> list[int]:
    flagged = _flag_and_audit(session, now, today)
    for milestone_id, plan_id, agency_id, due_end in flagged:
        step = "slipped"
        targets: list[tuple[Recipient, _Digest]] = []
        if agency_id is not None:
            request = request_for.get((plan_id, agency_id))
            if request is not None and request.state not in IN_PROGRESS:
                request = None
            targets += [
                (r, agency_digest(r, agency_id, request))
                for r in recipients.by_agency.get(agency_id, [])
            ]
        targets += [(r, coordinator_digest(r)) for r in recipients.coordinators]
        for (contact, channel), digest in targets:
            digest.items.append(
                ClaimItem(
                    key=f"slip:m{milestone_id}:{due_end}:c{contact.id}:{channel}",
                    milestone_id=milestone_id,
                    step=step,
                )
            )
            digest.slipped.append(milestone_id)
    return [row[0] for row in flagged]


def _flag_and_audit(session: Session, now: datetime, today: date) -> list[tuple[Any, ...]]:
    """Set ``slipped_on`` on every milestone whose period ended without it being completed or
    dropped, and write one ``milestone.slipped`` audit event for each, in the database (no
    row passes through Python twice); the flagged milestones (id, plan, lead agency, period
    end) by id. A milestone already flagged is left alone: the conditional UPDATE makes a
    second sweep, even one running at the same time, find nothing left to flag."""
    milestones = table_of(Milestone)
    flag = (
        sa.update(milestones)
        .where(
            milestones.c.due_end < today,
            milestones.c.status.in_(OPEN_MILESTONE),
            milestones.c.slipped_on.is_(None),
        )
        .values(slipped_on=today, updated_at=now)
        .returning(
            milestones.c.id, milestones.c.plan_id, milestones.c.lead_agency_id, milestones.c.due_end
        )
    )
    audit_events = table_of(AuditEvent)
    columns = ["at", "actor", "action", "agency_id", "subject", "detail"]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One statement: the UPDATE's rows feed the audit INSERT (a data-modifying CTE).
        flagged = flag.cte("flagged")
        audit = sa.insert(audit_events).from_select(
            columns,
            sa.select(*_audit_values(flagged.c, now, today, sa.func.json_build_object)).order_by(
                flagged.c.id
            ),
        )
        return [
            tuple(row)
            for row in connection.execute(
                sa.select(flagged).add_cte(audit.cte("audited")).order_by(flagged.c.id)
            )
        ]
    rows = sorted((tuple(row) for row in connection.execute(flag)), key=lambda row: row[0])
    if rows:
        # SQLite has no data-modifying CTE: the flagged ids go back as one JSON array.
        ids = sa.func.json_each(json.dumps([row[0] for row in rows])).table_valued("value")
        connection.execute(
            sa.insert(audit_events).from_select(
                columns,
                sa.select(*_audit_values(milestones.c, now, today, sa.func.json_object))
                .where(milestones.c.id.in_(sa.select(ids.c.value)))
                .order_by(milestones.c.id),
            )
        )
    return rows


def _audit_values(
    milestone: Any, now: datetime, today: date, json_object: Callable[..., Any]
) -> list[Any]:
    """The columns of a milestone.slipped audit event, as SQL over the milestone's columns."""
    return [
        sa.literal(now, table_of(AuditEvent).c.at.type),  # stored as the ORM stores it
        sa.literal(ACTOR),
        sa.literal("milestone.slipped"),
        milestone.lead_agency_id,
        sa.literal("milestone:") + sa.cast(milestone.id, sa.String),
        json_object("due_end", milestone.due_end, "slipped_on", sa.literal(today.isoformat())),
    ]


def _summarise(result: SweepResult, claimed: list[tuple[int, Claim]]) -> None:
    """Count what was claimed: distinct reasons (not one per recipient), and each digest."""
    reasons: dict[str, set[str]] = defaultdict(set)
    for notification_id, claim in claimed:
        for item in claim.items:
            # An item key is its reason followed by ":c{contact}:{channel}".
            reason = item.key.rsplit(":", 2)[0]
            reasons[reason.split(":", 1)[0]].add(reason)
        context = claim.context
        result.digests.append(
            DigestSummary(
                notification_id=notification_id,
                kind=claim.kind,
                recipient=recipient_label(claim.contact, claim.channel),
                agency=claim.agency_id,
                milestone_reminders=len(context.get("milestone_ids", [])),
                deadline_days=context.get("deadline_days"),
                escalations=len(context.get("escalations", [])),
                slipped=len(context.get("slipped_milestone_ids", [])),
            )
        )
    result.update_requests = sum(1 for _id, claim in claimed if claim.kind == UPDATE_REQUEST)
    result.milestone_reminders = len(reasons["mr"])
    result.deadline_reminders = len(reasons["dr"])
    result.escalations = len(reasons["esc"])


__all__ = ["DigestSummary", "SweepResult", "sweep"]
