"""Building the drafts from the cycle's submitted answers and last year's report, before any
coordinator edit: the per-objective rules the package docstring lists.

Separate from storing and versioning: it only reads the cycle and returns drafts in
memory, so it can be run and tested without writing anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.answers import Answer, MilestoneProgress
from models.document import Link
from models.drafts.working import TEXT_SECTIONS, DraftEntry, ObjectiveDraft, load_drafts, raw
from models.tables import (
    Agency,
    AnnualReport,
    Cycle,
    EntryOrigin,
    Milestone,
    MilestoneStatus,
    Objective,
    RevisionKind,
    Section,
    SubmissionRevision,
    UpdateRequest,
)

OPEN_STATUSES = (MilestoneStatus.PLANNED, MilestoneStatus.ON_TRACK, MilestoneStatus.DELAYED)


# --- reading the cycle ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmittedAnswer:
    agency_id: int
    request_id: int
    revision: int
    author: str
    answer: Answer


def submitted_answers(session: Session, cycle: Cycle) -> dict[int, SubmittedAnswer]:
    """Each agency's latest submitted answer in the cycle (one query)."""
    latest = (
        sa.select(
            col(SubmissionRevision.update_request_id).label("request_id"),
            sa.func.max(col(SubmissionRevision.number)).label("number"),
        )
        .join(UpdateRequest, col(UpdateRequest.id) == col(SubmissionRevision.update_request_id))
        .where(
            col(UpdateRequest.cycle_id) == cycle.id,
            col(SubmissionRevision.kind) == RevisionKind.SUBMITTED,
        )
        .group_by(col(SubmissionRevision.update_request_id))
        .subquery()
    )
    rows = session.exec(
        select(SubmissionRevision, UpdateRequest.agency_id)
        .join(
            latest,
            sa.and_(
                col(SubmissionRevision.update_request_id) == latest.c.request_id,
                col(SubmissionRevision.number) == latest.c.number,
            ),
        )
        .join(UpdateRequest, col(UpdateRequest.id) == col(SubmissionRevision.update_request_id))
    ).all()
    return {
        agency_id: SubmittedAnswer(
            agency_id=agency_id,
            request_id=revision.update_request_id,
            revision=revision.number,
            author=revision.author,
            answer=Answer.model_validate(revision.content),
        )
        for revision, agency_id in rows
    }


def previous_report(session: Session, plan_id: int, year: int) -> AnnualReport | None:
    return session.exec(
        select(AnnualReport)
        .where(AnnualReport.plan_id == plan_id, col(AnnualReport.year) < year)
        .order_by(col(AnnualReport.year).desc())
        .limit(1)
    ).first()


_STATUSES = {status.value: status for status in MilestoneStatus}


# --- compiling ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Milestone:
    """What compiling needs of a milestone (plain rows are far cheaper than ORM objects; not
    frozen: a frozen dataclass costs twice as much to make, and a plan has 20,000)."""

    id: int
    objective_id: int
    lead_agency_id: int | None
    text: str
    due_text: str | None
    due_start: date | None
    due_end: date | None
    status: MilestoneStatus
    completed_on: date | None
    first_reported_year: int


@dataclass
class Plan:
    objectives: list[Objective]
    milestones_by_objective: dict[int, list[_Milestone]]
    milestones: dict[int, _Milestone]


def load_plan(session: Session, plan_id: int) -> Plan:
    objectives = list(
        session.exec(
            select(Objective).where(Objective.plan_id == plan_id).order_by(col(Objective.position))
        )
    )
    by_objective: dict[int, list[_Milestone]] = defaultdict(list)
    milestones: dict[int, _Milestone] = {}
    statuses = _STATUSES
    rows: Sequence[Sequence[Any]] = (
        session.connection()
        .execute(
            sa.select(
                col(Milestone.id),
                col(Milestone.objective_id),
                col(Milestone.lead_agency_id),
                col(Milestone.text),
                col(Milestone.due_text),
                col(Milestone.due_start),
                col(Milestone.due_end),
                raw(col(Milestone.status)),
                col(Milestone.completed_on),
                col(Milestone.first_reported_year),
            ).where(col(Milestone.plan_id) == plan_id)
        )
        .all()
    )
    for mid, objective_id, lead, text, due_text, start, end, status, done, first in rows:
        milestone = _Milestone(
            mid, objective_id, lead, text, due_text, start, end, statuses[status], done, first
        )
        milestones[mid] = milestone
        by_objective[objective_id].append(milestone)
    return Plan(objectives, by_objective, milestones)


def _due_order(milestone: _Milestone) -> tuple[Any, ...]:
    return (
        milestone.due_start is None,
        milestone.due_start or date.max,
        milestone.due_end or date.max,
        milestone.id or 0,
    )


def build_drafts(
    session: Session, cycle: Cycle, now: datetime, actor: str
) -> dict[int, ObjectiveDraft]:
    """The cycle's drafts built from the answers, before any coordinator edit."""
    return build_drafts_for_plan(session, cycle, now, actor, load_plan(session, cycle.plan_id))


def build_drafts_for_plan(
    session: Session, cycle: Cycle, now: datetime, actor: str, plan: Plan
) -> dict[int, ObjectiveDraft]:
    year = cycle.year
    answers = submitted_answers(session, cycle)
    agencies = {a.id: a for a in session.exec(select(Agency)) if a.id is not None}
    previous = previous_report(session, cycle.plan_id, year)
    # Of last year's milestone lines only their links carry over (below).
    last = (
        load_drafts(session, previous.id, milestone_lines=False) if previous and previous.id else {}
    )

    # What each answer says, by objective.
    said: dict[int, set[int]] = defaultdict(set)  # objective id -> agencies that answered it
    # milestone id -> (agency, its achievement line)
    completed: dict[int, tuple[int | None, str | None]] = {}
    for agency_id, submitted in answers.items():
        answer = submitted.answer
        objective_ids = [
            *(a.objective_id for a in answer.achievements),
            *(f.objective_id for f in answer.further_work),
            *(n.objective_id for n in answer.new_milestones),
        ]
        for objective_id in objective_ids:
            said[objective_id].add(agency_id)
        for progress in answer.milestones:
            milestone = plan.milestones.get(progress.milestone_id)
            if milestone is None or progress.progress is None:
                continue
            said[milestone.objective_id].add(agency_id)
            if progress.progress is MilestoneProgress.COMPLETED:
                completed[progress.milestone_id] = (agency_id, progress.achievement)

    drafts: dict[int, ObjectiveDraft] = {}
    for objective in plan.objectives:
        assert objective.id is not None
        before = last.get(objective.id)
        last_names = dict(before.active) if before else {}
        order = [agency_id for agency_id, _ in before.active] if before else []
        answered_here = said.get(objective.id, set())
        for agency_id in sorted(answered_here - set(order), key=lambda a: agencies[a].acronym):
            order.append(agency_id)
        draft = ObjectiveDraft(objective.id)
        draft.active = [
            (agency_id, last_names.get(agency_id) or agencies[agency_id].full_name)
            for agency_id in order
            if agency_id in answered_here
        ]
        if not draft.active and before is not None:
            # Nobody answered for it: the objective reads as last year, every entry marked.
            draft.active = list(before.active)
            draft.intro = before.intro

        in_due_order = sorted(plan.milestones_by_objective.get(objective.id, []), key=_due_order)
        offered_ids = [
            m.id
            for m in in_due_order
            if m.id is not None
            and m.status is MilestoneStatus.COMPLETED
            and (m.id in completed or (m.completed_on is not None and m.completed_on.year == year))
        ]
        # Each answering agency's new entries, by section.
        fresh: dict[int | None, dict[Section, list[DraftEntry]]] = defaultdict(
            lambda: {section: [] for section in TEXT_SECTIONS}
        )
        for agency_id in answered_here:
            own = answers[agency_id]
            for achievement in own.answer.achievements:
                if achievement.objective_id == objective.id:
                    fresh[agency_id][Section.ACHIEVEMENT].append(
                        _submitted(
                            Section.ACHIEVEMENT,
                            achievement.text,
                            agency_id,
                            own,
                            _links(achievement.link_title, achievement.link_url),
                        )
                    )
            for work in own.answer.further_work:
                if work.objective_id == objective.id:
                    fresh[agency_id][Section.FURTHER_WORK].append(
                        _submitted(Section.FURTHER_WORK, work.text, agency_id, own, [])
                    )
        last_links = (
            {e.milestone_id: e.links for e in before.entries[Section.MILESTONE]} if before else {}
        )
        # Milestones completed this year, offered as achievements of their agency, with the
        # links their line had last year (the form asks for no link on completion).
        for offered in offered_ids:
            milestone = plan.milestones[offered]
            by, line = completed.get(offered, (milestone.lead_agency_id, None))
            text = (line or "").strip() or milestone.text
            mine = fresh[by][Section.ACHIEVEMENT]
            if any(entry.text == text for entry in mine):
                continue
            mine.append(
                DraftEntry(
                    section=Section.ACHIEVEMENT,
                    text=text,
                    agency_id=by,
                    origin=EntryOrigin.SUBMITTED,
                    milestone_id=offered,
                    links=list(last_links.get(offered, [])),
                    updated_by=answers[by].author if by in answers else actor,
                )
            )
        # Last year's order is kept: an answering agency's new entries take the place of its
        # old ones; the entries of agencies that did not answer stay, marked; agencies new to
        # the objective come after, in the active agencies' order.
        for section in TEXT_SECTIONS:
            placed: set[int | None] = set()
            target = draft.entries[section]
            for entry in before.entries[section] if before else []:
                if entry.agency_id not in answered_here:
                    target.append(_carried(entry, actor, now))
                elif entry.agency_id not in placed:
                    target.extend(fresh[entry.agency_id][section])
                    placed.add(entry.agency_id)
            for owner in [*order, *[a for a in fresh if a not in order]]:
                if owner in fresh and owner not in placed:
                    target.extend(fresh[owner][section])
                    placed.add(owner)
        for milestone in in_due_order:
            if milestone.status not in OPEN_STATUSES:
                continue
            lead = milestone.lead_agency_id
            reported = lead in answers
            draft.entries[Section.MILESTONE].append(
                DraftEntry(
                    section=Section.MILESTONE,
                    text=None,
                    agency_id=lead,
                    origin=EntryOrigin.SUBMITTED if reported else EntryOrigin.CARRIED_FORWARD,
                    milestone_id=milestone.id,
                    not_updated=not reported and milestone.first_reported_year < year,
                    links=list(last_links.get(milestone.id, [])),
                    updated_by=answers[lead].author if lead in answers else actor,
                )
            )
        has_entries = any(draft.entries[section] for section in Section)
        if before is not None or draft.active or has_entries:
            drafts[objective.id] = draft
    return drafts


def _carried(entry: DraftEntry, actor: str, now: datetime) -> DraftEntry:
    return replace(
        entry,
        origin=EntryOrigin.CARRIED_FORWARD,
        not_updated=True,
        links=list(entry.links),
        updated_by=actor,
        updated_at=now,
        id=None,
    )


def _links(title: str | None, url: str | None) -> list[Link]:
    title, url = (title or "").strip() or None, (url or "").strip() or None
    if not title and not url:
        return []
    return [Link(title=title or url or "", url=url)]


def _submitted(
    section: Section,
    text: str,
    agency_id: int | None,
    submitted: SubmittedAnswer,
    links: list[Link],
) -> DraftEntry:
    return DraftEntry(
        section=section,
        text=text.strip(),
        agency_id=agency_id,
        origin=EntryOrigin.SUBMITTED,
        links=links,
        updated_by=submitted.author,
    )
