"""The yearly reporting cycle: opening it, its status, moving its deadline (for everyone or
as one agency's extension), and re-issuing an agency's link."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from models import audit
from models.clock import as_aware
from models.contacts import (
    ContactError,
    agency_parents,
    find_agency,
    lead_agency_ids,
    reached_through,
)
from models.notifications import (
    Claim,
    claim_ids,
    claim_request_round,
    recipients,
)
from models.tables import (
    AccessToken,
    Agency,
    AnnualReport,
    Contact,
    Cycle,
    CycleState,
    Milestone,
    MilestoneStatus,
    Notification,
    Plan,
    RequestState,
    UpdateRequest,
)
from models.tables import DeliveryState as DS

UPDATE_REQUEST = "update_request"
LINK_REISSUED = "link_reissued"
DEADLINE_CHANGED = "deadline_changed"
OPEN_MILESTONE = (MilestoneStatus.PLANNED, MilestoneStatus.ON_TRACK, MilestoneStatus.DELAYED)


def update_request_key(request_id: int | None, contact: Contact, channel: str) -> str:
    return f"{UPDATE_REQUEST}:r{request_id}:c{contact.id}:{channel}"


class CycleError(ValueError):
    """A cycle operation that cannot be done; the message says why and what to do."""


# Requests still waiting for the agency's answer: their deadline matters to them.
AWAITING_ANSWER = (
    RequestState.PENDING,
    RequestState.SENT,
    RequestState.OPENED,
    RequestState.DRAFT,
    RequestState.CHANGES_REQUESTED,
)


def deadline_of(request: UpdateRequest, cycle: Cycle) -> date:
    """The agency's deadline: its extension when that is later than the cycle's deadline,
    else the cycle's."""
    extended = request.extended_deadline
    return extended if extended is not None and extended > cycle.deadline else cycle.deadline


def deadline_expression() -> sa.ColumnElement[date]:
    """``deadline_of`` in SQL, for a query that joins UpdateRequest and Cycle."""
    extended = col(UpdateRequest.extended_deadline)
    cycle_deadline = col(Cycle.deadline)
    # NULL > date is NULL, not true: no extension falls to the cycle's deadline.
    return sa.case((extended > cycle_deadline, extended), else_=cycle_deadline)


def find_plan(session: Session, slug: str | None = None) -> Plan:
    """The plan named by ``slug``, or the only plan when there is just one."""
    plans = session.exec(select(Plan).order_by(col(Plan.slug))).all()
    if slug is not None:
        for plan in plans:
            if plan.slug == slug:
                return plan
        known = ", ".join(p.slug for p in plans) or "none"
        raise CycleError(f"no plan {slug!r} (known: {known})")
    if not plans:
        raise CycleError("there is no plan yet: import a report first (reportcycle import)")
    if len(plans) > 1:
        known = ", ".join(p.slug for p in plans)
        raise CycleError(f"there are several plans ({known}): name one with --plan")
    return plans[0]


def find_cycle(session: Session, plan: Plan, year: int) -> Cycle:
    cycle = session.exec(
        select(Cycle).where(Cycle.plan_id == _id(plan), col(Cycle.year) == year)
    ).first()
    if cycle is None:
        raise CycleError(
            f"the {year} cycle of {plan.slug} has not been opened "
            f"(reportcycle cycle open {year} --deadline DATE)"
        )
    return cycle


@dataclass
class AgencyRequest:
    agency: Agency
    request: UpdateRequest
    messages: int
    # The ancestor whose contacts read for a business unit with none of its own (INZ → MBIE).
    routed_via: Agency | None = None

    @property
    def has_contacts(self) -> bool:
        return self.messages > 0


@dataclass
class OpenedCycle:
    cycle: Cycle
    requests: list[AgencyRequest] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)

    @property
    def no_contacts(self) -> list[Agency]:
        return [r.agency for r in self.requests if not r.has_contacts]


# A cycle chases agencies for weeks or months; a deadline further away than this is a typo
# (2032 for 2023), and reminders and escalation would then wait for years without a word.
LONGEST_CYCLE = timedelta(days=366)


def check_deadline(deadline: date, today: date, what: str) -> None:
    """A deadline must be between today and a year from today; the error names ``what``."""
    if deadline < today:
        raise CycleError(f"{what} {deadline.isoformat()} is before today ({today})")
    latest = today + LONGEST_CYCLE
    if deadline > latest:
        raise CycleError(
            f"{what} {deadline.isoformat()} is more than a year away (the latest is "
            f"{latest.isoformat()}); check the year"
        )


def open_cycle(
    session: Session,
    plan: Plan,
    year: int,
    deadline: date,
    now: datetime,
    actor: str,
    *,
    timezone: str = "Pacific/Auckland",
) -> OpenedCycle:
    """Open the ``year`` cycle of ``plan``: one update request per lead agency and one
    ``update_request`` notification per recipient (sent later by delivery). An agency with no
    contacts still gets its request, left pending, and is reported so someone adds one."""
    if not 1900 <= year <= 2199:
        raise CycleError(f"{year} is not a reporting year")
    check_deadline(deadline, now.astimezone(ZoneInfo(timezone)).date(), "the deadline")
    existing = session.exec(
        select(Cycle).where(Cycle.plan_id == _id(plan), col(Cycle.year) == year)
    ).first()
    if existing is not None:
        raise _already_open(plan, existing, ZoneInfo(timezone))
    # A cycle writes a new year's report on top of the latest one. A year already reported
    # (imported or published) would have its report replaced by the cycle's draft, and an
    # earlier year has no report before it to start from.
    latest = session.exec(
        select(sa.func.max(AnnualReport.year)).where(AnnualReport.plan_id == _id(plan))
    ).one()
    if latest is not None and year <= latest:
        raise CycleError(
            f"{year}: {plan.slug} already has reports up to {latest} (imported or published); "
            f"a cycle writes the report of a later year (the next is {latest + 1})"
        )
    agency_ids = lead_agency_ids(session, _id(plan))
    if not agency_ids:
        raise CycleError(
            f"no agency leads a milestone or is active on an objective of {plan.slug}: "
            "there is nobody to ask"
        )
    cycle = Cycle(
        plan_id=_id(plan),
        year=year,
        deadline=deadline,
        state=CycleState.OPEN,
        opened_at=now,
        opened_by=actor,
    )
    session.add(cycle)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        # Someone opened the same cycle a moment ago.
        raise CycleError(f"the {year} cycle of {plan.slug} is already open") from None
    agencies = {
        a.id: a for a in session.exec(select(Agency).where(col(Agency.id).in_(agency_ids))).all()
    }
    opened = OpenedCycle(cycle=cycle)
    claims: list[Claim] = []
    for agency_id in sorted(agency_ids, key=lambda a: agencies[a].acronym):
        request = UpdateRequest(cycle_id=_id(cycle), agency_id=agency_id, created_at=now)
        session.add(request)
        session.flush()
        found = recipients(session, agency_id)
        for contact, channel in found:
            claims.append(
                Claim(
                    kind=UPDATE_REQUEST,
                    key=update_request_key(request.id, contact, channel),
                    contact=contact,
                    channel=channel,
                    context={
                        "cycle_id": cycle.id,
                        "update_request_id": request.id,
                        "agency_id": agency_id,
                    },
                    cycle_id=cycle.id,
                    agency_id=agency_id,
                )
            )
        via = found[0][0].agency_id if found else agency_id
        opened.requests.append(
            AgencyRequest(
                agencies[agency_id],
                request,
                len(found),
                session.get(Agency, via) if via != agency_id else None,
            )
        )
    opened.notification_ids = claim_ids(session, claims, now)
    audit.record(
        session,
        actor=actor,
        action="cycle.opened",
        at=now,
        cycle_id=cycle.id,
        subject=f"plan:{plan.id}",
        detail={
            "year": year,
            "deadline": deadline.isoformat(),
            "requests": len(opened.requests),
            "messages": len(opened.notification_ids),
            "no_contacts": [a.acronym for a in opened.no_contacts],
        },
    )
    session.flush()
    return opened


def _already_open(plan: Plan, cycle: Cycle, zone: ZoneInfo) -> CycleError:
    when = as_aware(cycle.opened_at).astimezone(zone).date().isoformat()
    who = f" by {cycle.opened_by}" if cycle.opened_by else ""
    state = "" if cycle.state == CycleState.OPEN else f" and is now {cycle.state.value}"
    return CycleError(
        f"the {cycle.year} cycle of {plan.slug} was already opened on {when}{who}{state}; "
        f"see reportcycle cycle status {cycle.year}, or resend an agency's link with "
        f"reportcycle cycle resend {cycle.year} ACRONYM"
    )


# --- status ------------------------------------------------------------------------------

REMINDER_KINDS = ("reminder", "escalation")


@dataclass(frozen=True)
class StatusRow:
    agency: Agency
    request: UpdateRequest
    contacts: int
    reminders_sent: int
    milestones_due: int
    slipped: int
    # The agency's deadline: the cycle's, or its extension.
    deadline: date

    @property
    def extended(self) -> bool:
        return self.request.extended_deadline == self.deadline

    @property
    def state_label(self) -> str:
        if self.request.state == RequestState.PENDING:
            return "not sent (no contacts)" if self.contacts == 0 else "not sent yet"
        return self.request.state.value.replace("_", " ")


def cycle_status(
    session: Session, cycle: Cycle, *, tally: MilestoneTally | None = None
) -> list[StatusRow]:
    """One row per update request of the cycle, in a constant number of queries.
    ``tally``: the plan's milestone counts when the caller has read them (the overview)."""
    rows = session.exec(
        select(UpdateRequest, Agency)
        .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
        .where(UpdateRequest.cycle_id == _id(cycle))
        .order_by(col(Agency.acronym))
    ).all()
    contacts = _counts(
        session,
        sa.select(col(Contact.agency_id), sa.func.count())
        .where(col(Contact.active), col(Contact.is_coordinator).is_(False))
        .group_by(col(Contact.agency_id)),
    )
    # A reminder round is one sweep's messages to the agency (same created_at).
    reminders = _counts(
        session,
        sa.select(
            col(Notification.agency_id), sa.func.count(sa.distinct(col(Notification.created_at)))
        )
        .where(
            col(Notification.cycle_id) == _id(cycle),
            col(Notification.kind).in_(REMINDER_KINDS),
            col(Notification.state) == DS.SENT,
        )
        .group_by(col(Notification.agency_id)),
    )
    if tally is None:
        tally = tally_milestones(session, cycle)
    due = tally.due_by_lead()
    slipped = tally.slipped_by_lead()
    # A business unit without contacts is reached through its parent's (as the sweep does).
    parents = agency_parents(session)
    for request, _agency in rows:
        reached_by = reached_through(request.agency_id, parents, contacts)
        if reached_by is not None:
            contacts[request.agency_id] = contacts[reached_by]
    return [
        StatusRow(
            agency=agency,
            request=request,
            contacts=contacts.get(request.agency_id, 0),
            reminders_sent=reminders.get(request.agency_id, 0),
            milestones_due=due.get(request.agency_id, 0),
            slipped=slipped.get(request.agency_id, 0),
            deadline=deadline_of(request, cycle),
        )
        for request, agency in rows
    ]


@dataclass(frozen=True)
class TallyRow:
    objective_id: int
    lead_agency_id: int | None
    status: MilestoneStatus
    slipped: bool  # flagged slipped (its period ended before it was reported completed)
    count: int
    due_in_cycle: int  # of them, due within the cycle's year (or by its deadline)


@dataclass(frozen=True)
class MilestoneTally:
    """A plan's milestones counted by objective, lead agency, status and slip, with how many
    fall due in the cycle: one scan of the milestone table for everything the status table
    and the dashboard overview count (each count was a scan of its own, and on a plan of
    20,000 milestones each scan is most of a page's time)."""

    rows: list[TallyRow]

    def due_by_lead(self) -> dict[int, int]:
        due: dict[int, int] = defaultdict(int)
        for row in self.rows:
            if row.lead_agency_id is not None and row.status != MilestoneStatus.DROPPED:
                due[row.lead_agency_id] += row.due_in_cycle
        return {lead: count for lead, count in due.items() if count}

    def slipped_by_lead(self) -> dict[int, int]:
        slipped: dict[int, int] = defaultdict(int)
        for row in self.rows:
            if row.lead_agency_id is not None and row.slipped and row.status in OPEN_MILESTONE:
                slipped[row.lead_agency_id] += row.count
        return dict(slipped)


def tally_milestones(session: Session, cycle: Cycle) -> MilestoneTally:
    window_start = date(cycle.year, 1, 1)
    window_end = max(date(cycle.year, 12, 31), cycle.deadline)
    is_due = col(Milestone.due_end).between(window_start, window_end)
    slipped = col(Milestone.slipped_on).is_not(None)
    # Grouped by the tally index's own columns, in its order (ix_milestone_tally), so the
    # database reads the index in order and needs no sort; the slip is counted inside each
    # group rather than grouped on, which would take a sort of the whole plan.
    keys = (col(Milestone.objective_id), col(Milestone.lead_agency_id), col(Milestone.status))
    rows = session.execute(
        sa.select(
            *keys,
            sa.func.count(),
            sa.func.count(col(Milestone.slipped_on)),
            sa.func.sum(sa.case((is_due, 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(is_due, slipped), 1), else_=0)),
        )
        .where(col(Milestone.plan_id) == cycle.plan_id)
        .group_by(*keys)
    ).all()
    tally: list[TallyRow] = []
    for objective, lead, status, count, slipped_count, due, due_slipped in rows:
        value = MilestoneStatus(status)
        count, slipped_count = int(count), int(slipped_count)
        due, due_slipped = int(due or 0), int(due_slipped or 0)
        if count > slipped_count:
            tally.append(
                TallyRow(objective, lead, value, False, count - slipped_count, due - due_slipped)
            )
        if slipped_count:
            tally.append(TallyRow(objective, lead, value, True, slipped_count, due_slipped))
    return MilestoneTally(tally)


def _counts(session: Session, query: Any) -> dict[int, int]:
    return {key: int(count) for key, count in session.execute(query).all() if key is not None}


# --- the deadline --------------------------------------------------------------------------


@dataclass(frozen=True)
class MovedDeadline:
    """One agency whose deadline moved: from, to, and the messages telling it."""

    agency: Agency
    request: UpdateRequest
    previous: date
    deadline: date
    notification_ids: list[int]


@dataclass
class DeadlineChange:
    cycle: Cycle
    # The agency given its own deadline; None when the cycle's deadline moved.
    agency: Agency | None
    moved: list[MovedDeadline] = field(default_factory=list)

    @property
    def notification_ids(self) -> list[int]:
        return [i for m in self.moved for i in m.notification_ids]


def change_deadline(
    session: Session,
    cycle: Cycle,
    new: date,
    now: datetime,
    actor: str,
    *,
    agency_name: str | None = None,
    reason: str | None = None,
    timezone: str = "Pacific/Auckland",
) -> DeadlineChange:
    """Move the cycle's deadline, or (``agency_name``) give one agency a deadline of its own.

    Each agency whose deadline moves and that still owes its answer is told, with its link
    (a ``deadline_changed`` message). Reminders and escalation follow the new date by
    themselves: their idempotency keys name the deadline, so the sweep sends the steps of
    the new date afresh. An agency's deadline is never earlier than the cycle's: giving it
    the cycle's deadline ends its extension."""
    if cycle.state != CycleState.OPEN:
        raise CycleError(
            f"the {cycle.year} cycle is {cycle.state.value}: its deadline can no longer change"
        )
    check_deadline(new, now.astimezone(ZoneInfo(timezone)).date(), "the new deadline")
    reason = " ".join((reason or "").split()) or None
    rows = session.exec(
        select(UpdateRequest, Agency)
        .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
        .where(col(UpdateRequest.cycle_id) == _id(cycle))
        .order_by(col(Agency.acronym))
    ).all()
    before = {request.id: deadline_of(request, cycle) for request, _agency in rows}
    change = DeadlineChange(cycle=cycle, agency=None)
    if agency_name is None:
        if new == cycle.deadline:
            raise CycleError(f"the {cycle.year} deadline is already {new.isoformat()}")
        previous = cycle.deadline
        cycle.deadline = new
        session.add(cycle)
        targets = [(request, agency) for request, agency in rows]
    else:
        request, agency = _agency_request(session, cycle, agency_name)
        change.agency = agency
        if request.state not in AWAITING_ANSWER:
            raise CycleError(
                f"{agency.acronym} has {request.state.value.replace('_', ' ')} its answer: "
                "there is no deadline to extend (ask for changes to reopen it)"
            )
        if new < cycle.deadline:
            raise CycleError(
                f"{agency.acronym}'s deadline cannot be earlier than the cycle's "
                f"({cycle.deadline.isoformat()}); to bring everyone's forward, leave out --agency"
            )
        previous = before[request.id]
        if new == previous:
            raise CycleError(f"{agency.acronym}'s deadline is already {new.isoformat()}")
        # The cycle's own date is no extension: store none, so a later move of the cycle's
        # deadline carries this agency along with everyone else.
        request.extended_deadline = new if new > cycle.deadline else None
        session.add(request)
        targets = [(request, agency)]
    session.flush()
    for request, agency in targets:
        was, now_due = before[request.id], deadline_of(request, cycle)
        if was == now_due or request.state not in AWAITING_ANSWER:
            continue  # unchanged (an extension beyond the new date), or already answered
        ids = claim_request_round(
            session,
            kind=DEADLINE_CHANGED,
            request=request,
            audit_action="request.deadline_changed",
            now=now,
            actor=actor,
            detail={
                "previous": was.isoformat(),
                "deadline": now_due.isoformat(),
                "reason": reason,
            },
            context={"previous_deadline": was.isoformat(), "reason": reason},
        )
        change.moved.append(MovedDeadline(agency, request, was, now_due, ids))
    if agency_name is None:
        audit.record(
            session,
            actor=actor,
            action="cycle.deadline_changed",
            at=now,
            cycle_id=cycle.id,
            subject=f"cycle:{cycle.id}",
            detail={
                "previous": previous.isoformat(),
                "deadline": new.isoformat(),
                "reason": reason,
                "agencies_told": [m.agency.acronym for m in change.moved],
            },
        )
    session.flush()
    return change


def _agency_request(
    session: Session, cycle: Cycle, agency_name: str
) -> tuple[UpdateRequest, Agency]:
    """The update request of the agency named (acronym, name or alias) in ``cycle``."""
    try:
        agency = find_agency(session, agency_name)
    except ContactError as exc:
        raise CycleError(str(exc)) from None
    request = session.exec(
        select(UpdateRequest).where(
            col(UpdateRequest.cycle_id) == _id(cycle), col(UpdateRequest.agency_id) == agency.id
        )
    ).first()
    if request is None:
        raise CycleError(f"{agency.acronym} has no update request in the {cycle.year} cycle")
    return request, agency


# --- re-issue ----------------------------------------------------------------------------


@dataclass
class Reissued:
    agency: Agency
    request: UpdateRequest
    revoked: int
    notification_ids: list[int]


def resend_link(
    session: Session, cycle: Cycle, agency_name: str, now: datetime, actor: str
) -> Reissued:
    """Revoke every link the agency has for this cycle and send each contact a fresh one."""
    if cycle.state != CycleState.OPEN:
        raise CycleError(f"the {cycle.year} cycle is {cycle.state.value}: links are not resent")
    request, agency = _agency_request(session, cycle, agency_name)
    found = recipients(session, _agency_id(agency))
    if not found:
        raise CycleError(
            f"{agency.acronym} has no contacts: add one first "
            f"(reportcycle agency contact add {agency.acronym} EMAIL)"
        )
    revoked = session.execute(  # type: ignore[attr-defined]
        sa.update(AccessToken)
        .where(
            col(AccessToken.update_request_id) == request.id,
            col(AccessToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    ids = claim_request_round(
        session,
        kind=LINK_REISSUED,
        request=request,
        audit_action="token.reissued",
        now=now,
        actor=actor,
        detail={"revoked": int(revoked or 0)},
        found=found,
    )
    session.flush()
    return Reissued(agency, request, int(revoked or 0), ids)


def mark_request_sent(session: Session, request_id: int, now: datetime) -> bool:
    """The first message carrying the link went out: a pending request becomes sent. True
    when this call moved it. The condition is checked in the database, not on the session's
    copy: a request another process has moved on meanwhile (its link opened, its answer
    submitted) is left as it is, however old the copy this session holds."""
    table: sa.Table = UpdateRequest.__table__  # type: ignore[attr-defined]
    marked = (
        session.connection()
        .execute(
            sa.update(table)
            .where(table.c.id == request_id, table.c.state == RequestState.PENDING)
            .values(state=RequestState.SENT, sent_at=now)
        )
        .rowcount
        == 1
    )
    held = session.identity_map.get(identity_key(UpdateRequest, request_id))
    if isinstance(held, UpdateRequest):
        if marked:
            # What the UPDATE wrote, without making the copy dirty (no flush writes it).
            set_committed_value(held, "state", RequestState.SENT)
            set_committed_value(held, "sent_at", now)
        else:
            session.expire(held)  # read again when next used
    return marked


def _id(row: Plan | Cycle) -> int:
    assert row.id is not None
    return row.id


def _agency_id(agency: Agency) -> int:
    assert agency.id is not None
    return agency.id
