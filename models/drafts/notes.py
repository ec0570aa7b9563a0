"""What the coordinator should look at beside the draft (``review_notes``): who answered,
milestones no longer planned, carried-forward and offered entries, stale edits.

Separate because it only reads: the draft page, the CLI and the bench ask for it after a
compile, and nothing that changes the draft depends on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.drafts.compiling import COMPILED
from models.drafts.working import raw
from models.tables import (
    Agency,
    AnnualReport,
    AuditEvent,
    Cycle,
    EntryOrigin,
    Milestone,
    MilestoneStatus,
    ObjectiveReport,
    ReportEntry,
    RevisionKind,
    Section,
    SubmissionRevision,
    UpdateRequest,
)

# --- what the coordinator should look at -------------------------------------------------------


@dataclass(frozen=True)
class DroppedMilestone:
    milestone_id: int
    objective_id: int
    agency: str
    text: str
    due: str | None
    reason: str | None


class EntryNote(NamedTuple):
    """What the draft view shows beside an entry (a named tuple: one per entry of the draft,
    20,000 on a large plan, and a tuple is the cheapest immutable record to make)."""

    origin: str
    updated_by: str | None
    offered_milestone: int | None


@dataclass(frozen=True)
class ReviewNotes:
    answered: list[str]
    not_answered: list[str]
    dropped: list[DroppedMilestone]
    offered: int
    carried_forward: int
    stale_edits: list[int]
    entries: dict[int, EntryNote]


def review_notes(session: Session, cycle: Cycle, *, entries: bool = True) -> ReviewNotes:
    """Who answered, milestones no longer planned (with reasons), counts of carried-forward
    entries and offered achievements, and (``entries``) per entry of the working draft its
    origin and author. A fixed number of queries, no answer parsed."""
    from models.submissions import WITHDRAWN_NOTE

    acronyms = dict(session.execute(sa.select(col(Agency.id), col(Agency.acronym))).all())
    requested = session.exec(
        select(UpdateRequest.agency_id).where(UpdateRequest.cycle_id == cycle.id)
    ).all()
    answered = set(
        session.exec(
            select(UpdateRequest.agency_id)
            .join(
                SubmissionRevision,
                col(SubmissionRevision.update_request_id) == col(UpdateRequest.id),
            )
            .where(
                UpdateRequest.cycle_id == cycle.id,
                col(SubmissionRevision.kind) == RevisionKind.SUBMITTED,
            )
            .distinct()
        ).all()
    )
    # Dropped in this cycle: the submission that dropped it stamped updated_at.
    dropped_query = sa.select(
        col(Milestone.id),
        col(Milestone.objective_id),
        col(Milestone.lead_agency_id),
        col(Milestone.text),
        col(Milestone.due_text),
        col(Milestone.status_note),
    ).where(
        col(Milestone.plan_id) == cycle.plan_id,
        col(Milestone.status) == MilestoneStatus.DROPPED,
        col(Milestone.updated_at) >= cycle.opened_at,
        sa.or_(col(Milestone.status_note).is_(None), col(Milestone.status_note) != WITHDRAWN_NOTE),
    )
    if cycle.closed_at is not None:
        dropped_query = dropped_query.where(col(Milestone.updated_at) <= cycle.closed_at)
    dropped = [
        DroppedMilestone(
            milestone_id=mid,
            objective_id=objective_id,
            agency=acronyms.get(lead, "") if lead else "",
            text=text,
            due=due,
            reason=(note or "").strip() or None,
        )
        for mid, objective_id, lead, text, due, note in session.execute(
            dropped_query.order_by(col(Milestone.id))
        ).all()
    ]
    report_ids = (
        select(ObjectiveReport.id)
        .join(AnnualReport, col(AnnualReport.id) == ObjectiveReport.annual_report_id)
        .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
    )
    offered_entry = sa.and_(
        col(ReportEntry.section) != Section.MILESTONE, col(ReportEntry.milestone_id).is_not(None)
    )
    offered, carried = session.execute(
        sa.select(
            sa.func.count().filter(offered_entry),
            sa.func.count().filter(col(ReportEntry.origin) == EntryOrigin.CARRIED_FORWARD),
        ).where(col(ReportEntry.objective_report_id).in_(report_ids))
    ).one()
    notes: dict[int, EntryNote] = {}
    if entries:
        # Enum columns as their stored values: the note shows the value (what converting each
        # row to the enum and back would give).
        milestone_section = Section.MILESTONE.value
        rows: Sequence[Sequence[Any]] = session.execute(
            sa.select(
                col(ReportEntry.id),
                raw(col(ReportEntry.section)),
                raw(col(ReportEntry.origin)),
                col(ReportEntry.updated_by),
                col(ReportEntry.milestone_id),
            ).where(col(ReportEntry.objective_report_id).in_(report_ids))
        ).all()
        for entry_id, section, origin, updated_by, milestone_id in rows:
            notes[entry_id] = EntryNote(
                origin, updated_by, milestone_id if section != milestone_section else None
            )
    last_compile = session.exec(
        select(AuditEvent)
        .where(AuditEvent.cycle_id == cycle.id, AuditEvent.action == COMPILED)
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    stale = list(last_compile.detail.get("stale_edits", [])) if last_compile else []
    return ReviewNotes(
        answered=sorted(acronyms[a] for a in answered if a in acronyms),
        not_answered=sorted(acronyms[a] for a in requested if a not in answered and a in acronyms),
        dropped=dropped,
        offered=int(offered or 0),
        carried_forward=int(carried or 0),
        stale_edits=stale,
        entries=notes,
    )
