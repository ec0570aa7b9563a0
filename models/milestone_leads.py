"""Who leads a milestone: listing the plan's milestones with their leads, and a coordinator's
correction of a lead the importer inferred wrongly.

The importer takes a milestone's lead from its text ("INZ will…"), else the objective's first
active agency; that guess decides who is asked about the milestone and reminded of it, so a
coordinator must be able to correct it. A correction is audited, survives re-importing the
same report (existing milestones keep their lead), and, when the plan's cycle is open and the
new lead has no update request in it, adds one: the next sweep sends it with its link."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import audit
from models.clock import as_aware
from models.contacts import find_agency
from models.cycles import OPEN_MILESTONE
from models.tables import (
    Agency,
    AuditEvent,
    Cycle,
    CycleState,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    Objective,
    Plan,
    UpdateRequest,
)

LEAD_CHANGED = "milestone.lead_changed"
SLIPPED = "slipped"
STATUS_CHOICES = (*(status.value for status in MilestoneStatus), SLIPPED)


class LeadError(ValueError):
    """A correction that cannot be made; the message says why."""


@dataclass(frozen=True)
class MilestoneRow:
    id: int
    objective: str
    due: str | None
    lead: str | None
    status: MilestoneStatus
    text: str
    slipped_on: date | None = None

    @property
    def label(self) -> str:
        """The status as people say it: an open milestone whose period ended has slipped."""
        if self.slipped_on is not None and self.status in OPEN_MILESTONE:
            return SLIPPED
        return self.status.value.replace("_", " ")


def list_milestones(
    session: Session,
    plan: Plan,
    *,
    agency: Agency | None = None,
    search: str | None = None,
    status: str | None = None,
) -> list[MilestoneRow]:
    """The plan's milestones in objective order, by due date (undated last); optionally only
    those ``agency`` leads, whose text contains ``search`` (case-insensitive), or in
    ``status`` (a MilestoneStatus value, or ``slipped``: its period ended, not completed)."""
    query = (
        sa.select(
            col(Milestone.id),
            col(Objective.title),
            col(Milestone.due_text),
            col(Agency.acronym),
            col(Milestone.status),
            col(Milestone.text),
            col(Milestone.slipped_on),
        )
        .join(Objective, col(Objective.id) == col(Milestone.objective_id))
        .outerjoin(Agency, col(Agency.id) == col(Milestone.lead_agency_id))
        .where(col(Milestone.plan_id) == plan.id)
        .order_by(
            col(Objective.position),
            col(Milestone.due_end).is_(None),
            col(Milestone.due_end),
            col(Milestone.id),
        )
    )
    if agency is not None:
        query = query.where(col(Milestone.lead_agency_id) == agency.id)
    if search:
        query = query.where(sa.func.lower(col(Milestone.text)).contains(search.lower()))
    if status == SLIPPED:
        query = query.where(
            col(Milestone.slipped_on).is_not(None), col(Milestone.status).in_(OPEN_MILESTONE)
        )
    elif status:
        try:
            wanted = MilestoneStatus(status)
        except ValueError:
            raise LeadError(f"status {status!r}: one of {', '.join(STATUS_CHOICES)}") from None
        query = query.where(col(Milestone.status) == wanted)
    return [MilestoneRow(*row) for row in session.execute(query).all()]


@dataclass(frozen=True)
class LeadChange:
    milestone: Milestone
    previous: Agency | None
    lead: Agency
    # The update request added for the new lead in the plan's open cycle, if one was needed.
    added_request: UpdateRequest | None = None
    cycle: Cycle | None = None


def change_lead(
    session: Session,
    milestone_id: int,
    agency_name: str,
    now: datetime,
    actor: str,
    *,
    reason: str | None = None,
) -> LeadChange:
    """Make ``agency_name`` (acronym or alias) the milestone's lead; the caller commits."""
    milestone = session.get(Milestone, milestone_id)
    if milestone is None:
        raise LeadError(
            f"no milestone {milestone_id} (reportcycle milestone list shows their numbers)"
        )
    lead = find_agency(session, agency_name)
    previous = session.get(Agency, milestone.lead_agency_id) if milestone.lead_agency_id else None
    if previous is not None and previous.id == lead.id:
        raise LeadError(f"{lead.acronym} already leads milestone {milestone_id}")
    milestone.lead_agency_id = lead.id
    milestone.updated_at = now
    session.add(milestone)

    cycle = session.exec(
        select(Cycle)
        .where(col(Cycle.plan_id) == milestone.plan_id, col(Cycle.state) == CycleState.OPEN)
        .order_by(col(Cycle.year).desc())
    ).first()
    added: UpdateRequest | None = None
    if cycle is not None and cycle.id is not None:
        has_request = session.exec(
            select(UpdateRequest.id).where(
                col(UpdateRequest.cycle_id) == cycle.id,
                col(UpdateRequest.agency_id) == lead.id,
            )
        ).first()
        if has_request is None:
            # Pending, like a request of an agency that had no contacts at opening: the
            # next sweep sends it to the agency's contacts (or its parent's).
            added = UpdateRequest(cycle_id=cycle.id, agency_id=lead.id or 0, created_at=now)
            session.add(added)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=LEAD_CHANGED,
        at=now,
        cycle_id=cycle.id if cycle is not None else None,
        agency_id=lead.id,
        subject=f"milestone:{milestone_id}",
        detail={
            "from": previous.acronym if previous is not None else None,
            "to": lead.acronym,
            "reason": reason,
            **({"update_request_added": added.id} if added is not None else {}),
        },
    )
    session.flush()
    return LeadChange(milestone, previous, lead, added, cycle if added is not None else None)


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    by: str
    what: str
    reason: str | None


def milestone_history(session: Session, milestone_id: int) -> list[HistoryLine]:
    """Every change of the milestone's due period and of its lead, oldest first."""
    lines = [
        HistoryLine(
            at=as_aware(revision.changed_at),
            by=revision.changed_by,
            what=f"due {revision.previous_due_text or 'undated'} → "
            f"{revision.new_due_text or 'undated'} (reported in {revision.year})",
            reason=revision.reason,
        )
        for revision in session.exec(
            select(MilestoneRevision).where(col(MilestoneRevision.milestone_id) == milestone_id)
        ).all()
    ]
    for event in session.exec(
        select(AuditEvent).where(
            col(AuditEvent.action) == LEAD_CHANGED,
            col(AuditEvent.subject) == f"milestone:{milestone_id}",
        )
    ).all():
        detail = event.detail or {}
        lines.append(
            HistoryLine(
                at=as_aware(event.at),
                by=event.actor,
                what=f"lead {detail.get('from') or 'nobody'} → {detail.get('to')}",
                reason=detail.get("reason"),
            )
        )
    return sorted(lines, key=lambda line: line.at)
