"""Compiling a cycle's answers into the year's report draft, the coordinator's edits to it,
and its numbered versions.

The working draft is the year's ``AnnualReport`` rows (objective reports, entries, links).
Every change to it (a compile, a coordinator's edit) is snapshotted as a new numbered
``ReportVersion`` (never overwritten), so the latest version always shows the working draft
and every version renders in every format from its stored content.

What a compile builds, per objective:

- active agencies: the agencies whose latest *submitted* answer says something about the
  objective (an achievement, further work, a new milestone or progress on one of its
  milestones), in last year's order, new ones after; when nobody answered, last year's line;
- key achievements and areas for further work: each answering agency's own, plus its
  milestones completed this year offered as achievements (the entry keeps the milestone's
  id, so the dashboard marks it and the coordinator can keep, edit or remove it); an agency
  that did not answer for the objective (no submitted answer, or one that says nothing about
  it) keeps last year's entries there, copied with origin ``carried_forward`` and
  ``not_updated`` (rendered visibly marked; the coordinator may remove them);
- upcoming milestones: the objective's open milestones (not completed, not dropped) sorted
  by due period, undated last; a milestone whose lead agency did not answer is marked not
  updated. "(Delayed from …)" comes from each milestone's history (the compiler's
  ``milestone_as_of``: the first baseline, however many times it moved).

Milestones an agency reported as no longer planned are not silently dropped: ``review_notes``
lists them (with the reason) for the coordinator.

Coordinator edits (edit an entry's text, move it up, down or to the other section, remove
it) are audit events (``entry.edited``, ``entry.moved``, ``entry.removed``) naming the entry
by what it is (objective, section, agency, text) rather than by row id. A recompile rebuilds
the draft from the answers and then replays the edits in order: an edit whose entry is still
there (the agency's answer did not change that text) is kept; one whose entry changed is
dropped and listed on the compile's audit event (``stale_edits``), because the agency's new
answer wins. Milestone entries take their text and order from the plan and are not edited
here.
"""

from __future__ import annotations

import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import Session, col, delete, select

from models import audit
from models.answers import Answer, MilestoneProgress
from models.compiler import EntryRow, ReportRows, build_document
from models.document import Link, ReportDocument
from models.tables import (
    Agency,
    AnnualReport,
    AuditEvent,
    Cycle,
    EntryLink,
    EntryOrigin,
    EntryStyle,
    Milestone,
    MilestoneStatus,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    ReportEntry,
    ReportVersion,
    RevisionKind,
    Section,
    SubmissionRevision,
    UpdateRequest,
    VersionState,
)

COMPILED = "draft.compiled"
EDITED = "entry.edited"
MOVED = "entry.moved"
REMOVED = "entry.removed"
EDIT_ACTIONS = (EDITED, MOVED, REMOVED)
OPEN_STATUSES = (MilestoneStatus.PLANNED, MilestoneStatus.ON_TRACK, MilestoneStatus.DELAYED)
TEXT_SECTIONS = (Section.ACHIEVEMENT, Section.FURTHER_WORK)
MAX_ENTRY_TEXT = 5000
REPORT_TIMEZONE = "Pacific/Auckland"


class DraftError(ValueError):
    """A draft operation that cannot be done; the message says why."""


# --- the working draft in memory ------------------------------------------------------------


@dataclass(slots=True)
class DraftEntry:
    section: Section
    text: str | None
    agency_id: int | None
    origin: EntryOrigin
    milestone_id: int | None = None
    not_updated: bool = False
    style: EntryStyle = EntryStyle.BULLET
    links: list[Link] = field(default_factory=list)
    updated_by: str | None = None
    updated_at: datetime | None = None
    id: int | None = None

    def identity(self) -> tuple[Any, ...]:
        return (self.section, self.agency_id, self.milestone_id, self.text)

    def comparable(self) -> tuple[Any, ...]:
        return (
            self.section,
            self.text,
            self.agency_id,
            self.origin,
            self.milestone_id,
            self.not_updated,
            self.style,
            tuple((link.title, link.url, link.site) for link in self.links),
        )


@dataclass
class ObjectiveDraft:
    objective_id: int
    intro: str | None = None
    # (agency id, name as written)
    active: list[tuple[int, str]] = field(default_factory=list)
    entries: dict[Section, list[DraftEntry]] = field(
        default_factory=lambda: {section: [] for section in Section}
    )

    def comparable(self) -> tuple[Any, ...]:
        return (
            self.intro,
            tuple(self.active),
            tuple(
                tuple(entry.comparable() for entry in self.entries[section]) for section in Section
            ),
        )

    def find(self, identity: Sequence[Any]) -> DraftEntry | None:
        section = Section(identity[0])
        for entry in self.entries[section]:
            if list(entry.identity()) == [section, *identity[1:]]:
                return entry
        return None


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


_SECTIONS = {section.value: section for section in Section}
_ORIGINS = {origin.value: origin for origin in EntryOrigin}
_STYLES = {style.value: style for style in EntryStyle}
_STATUSES = {status.value: status for status in MilestoneStatus}


def _raw(column: Any) -> sa.ColumnElement[str]:
    """An enum column as its stored value (a dictionary lookup turns it into the enum far
    faster than the column type does, row by row)."""
    return sa.type_coerce(column, sa.String())


def load_drafts(
    session: Session, annual_id: int, *, milestone_lines: bool = True
) -> dict[int, ObjectiveDraft]:
    """An annual report's objective reports as drafts, by objective id (four queries, plain
    rows: no ORM objects, which cost more than the query on a large plan).

    Without ``milestone_lines`` only the milestone entries that have links are read: what
    compile needs of last year's report (a plan's milestone lines are most of its rows)."""
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual_id)
    drafts: dict[int, ObjectiveDraft] = {}
    by_report: dict[int, ObjectiveDraft] = {}
    for report_id, objective_id, intro in session.execute(
        sa.select(
            col(ObjectiveReport.id), col(ObjectiveReport.objective_id), col(ObjectiveReport.intro)
        ).where(col(ObjectiveReport.annual_report_id) == annual_id)
    ).all():
        drafts[objective_id] = by_report[report_id] = ObjectiveDraft(objective_id, intro=intro)
    for report_id, agency_id, name in session.execute(
        sa.select(
            col(ObjectiveReportAgency.objective_report_id),
            col(ObjectiveReportAgency.agency_id),
            col(ObjectiveReportAgency.name_as_written),
        )
        .where(col(ObjectiveReportAgency.objective_report_id).in_(report_ids))
        .order_by(col(ObjectiveReportAgency.position))
    ).all():
        by_report[report_id].active.append((agency_id, name))
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(report_ids))
    links: dict[int, list[Link]] = defaultdict(list)
    for entry_id, title, url, site in session.execute(
        sa.select(
            col(EntryLink.entry_id), col(EntryLink.title), col(EntryLink.url), col(EntryLink.site)
        )
        .where(col(EntryLink.entry_id).in_(entry_ids))
        .order_by(col(EntryLink.position))
    ).all():
        links[entry_id].append(Link.trusted({"title": title, "url": url, "site": site}))
    query = sa.select(
        col(ReportEntry.id),
        col(ReportEntry.objective_report_id),
        _raw(col(ReportEntry.section)),
        col(ReportEntry.text),
        col(ReportEntry.agency_id),
        _raw(col(ReportEntry.origin)),
        col(ReportEntry.milestone_id),
        col(ReportEntry.not_updated),
        _raw(col(ReportEntry.style)),
        col(ReportEntry.updated_by),
        col(ReportEntry.updated_at),
    ).where(col(ReportEntry.objective_report_id).in_(report_ids))
    if not milestone_lines:
        query = query.where(
            sa.or_(
                col(ReportEntry.section) != Section.MILESTONE,
                col(ReportEntry.id).in_(select(EntryLink.entry_id)),
            )
        )
    sections, origins, styles = _SECTIONS, _ORIGINS, _STYLES
    rows: Sequence[Sequence[Any]] = (
        session.connection()
        .execute(query.order_by(col(ReportEntry.position), col(ReportEntry.id)))
        .all()
    )
    for row in rows:
        (entry_id, report_id, section_value, text, agency_id, origin, milestone_id) = row[:7]
        not_updated, style, updated_by, updated_at = row[7:]
        section = sections[section_value]
        by_report[report_id].entries[section].append(
            DraftEntry(
                section,
                text,
                agency_id,
                origins[origin],
                milestone_id,
                bool(not_updated),
                styles[style],
                links.get(entry_id, []),
                updated_by,
                updated_at,
                entry_id,
            )
        )
    return drafts


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
class _Plan:
    objectives: list[Objective]
    milestones_by_objective: dict[int, list[_Milestone]]
    milestones: dict[int, _Milestone]


def _load_plan(session: Session, plan_id: int) -> _Plan:
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
                _raw(col(Milestone.status)),
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
    return _Plan(objectives, by_objective, milestones)


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
    return _build_drafts(session, cycle, now, actor, _load_plan(session, cycle.plan_id))


def _build_drafts(
    session: Session, cycle: Cycle, now: datetime, actor: str, plan: _Plan
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


# --- coordinator edits -------------------------------------------------------------------------


def apply_edit(draft: ObjectiveDraft, detail: Mapping[str, Any], actor: str, now: datetime) -> bool:
    """Apply one recorded edit to a draft; False when its entry is no longer there."""
    identity = detail.get("entry")
    if not isinstance(identity, list) or len(identity) != 4:
        return False
    entry = draft.find(identity)
    if entry is None:
        return False
    op = detail.get("op")
    entries = draft.entries[entry.section]
    if op == "edit":
        entry.text = str(detail["new_text"])
        entry.origin = EntryOrigin.COORDINATOR
        entry.not_updated = False
    elif op == "remove":
        entries.remove(entry)
        return True
    elif op == "move":
        direction = detail.get("direction")
        index = entries.index(entry)
        if direction == "up" and index > 0:
            entries[index - 1], entries[index] = entries[index], entries[index - 1]
        elif direction == "down" and index < len(entries) - 1:
            entries[index + 1], entries[index] = entries[index], entries[index + 1]
        elif direction in ("achievement", "further_work"):
            target = Section(str(direction))
            if target is entry.section:
                return True
            entries.remove(entry)
            entry.section = target
            draft.entries[target].append(entry)
        else:
            return True
    else:
        return False
    entry.updated_by = actor
    entry.updated_at = now
    return True


def _recorded_edits(session: Session, cycle_id: int) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.cycle_id == cycle_id, col(AuditEvent.action).in_(EDIT_ACTIONS))
            .order_by(col(AuditEvent.id))
        )
    )


# --- writing the working draft ----------------------------------------------------------------


def annual_report(session: Session, cycle: Cycle, now: datetime) -> AnnualReport:
    annual = session.exec(
        select(AnnualReport).where(
            AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year
        )
    ).first()
    if annual is None:
        annual = AnnualReport(plan_id=cycle.plan_id, year=cycle.year, created_at=now)
        session.add(annual)
        session.flush()
    return annual


def _table(model: type[Any]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def write_drafts(
    session: Session,
    annual: AnnualReport,
    drafts: Mapping[int, ObjectiveDraft],
    now: datetime,
    actor: str,
    *,
    stored: Mapping[int, ObjectiveDraft] | None = None,
) -> int:
    """Store the drafts as the annual report's rows; objectives whose draft is unchanged keep
    their rows (and entry ids). Returns how many objective reports were written; every
    entry of ``drafts`` gets the id of its row.

    Bulk statements (one executemany per table), so the number of queries does not grow with
    the plan."""
    return _write_drafts(session, annual, drafts, now, actor, stored=stored)[0]


_ENTRY_COLUMNS = (
    "objective_report_id",
    "section",
    "position",
    "style",
    "text",
    "milestone_id",
    "agency_id",
    "origin",
    "not_updated",
    "updated_by",
    "updated_at",
)


def _write_drafts(
    session: Session,
    annual: AnnualReport,
    drafts: Mapping[int, ObjectiveDraft],
    now: datetime,
    actor: str,
    *,
    stored: Mapping[int, ObjectiveDraft] | None = None,
    unchanged: set[int] | None = None,
) -> tuple[int, dict[int, int]]:
    """``write_drafts``, with the objective report ids by objective id; ``unchanged``: the
    objectives whose draft equals the stored one, when the caller has compared them."""
    assert annual.id is not None
    if stored is None:
        stored = load_drafts(session, annual.id)
    session.flush()
    report_ids: dict[int, int] = {
        objective_id: report_id
        for report_id, objective_id in session.execute(
            sa.select(col(ObjectiveReport.id), col(ObjectiveReport.objective_id)).where(
                col(ObjectiveReport.annual_report_id) == annual.id
            )
        ).all()
    }
    gone = [oid for oid in report_ids if oid not in drafts]
    if unchanged is None:
        unchanged = {
            oid
            for oid, draft in drafts.items()
            if oid in stored and stored[oid].comparable() == draft.comparable()
        }
    changed = [oid for oid in drafts if oid not in unchanged]
    # Unchanged drafts keep their rows: their entries are the stored ones, in the same order.
    for objective_id in unchanged:
        for section in Section:
            kept = stored[objective_id].entries[section]
            for entry, row in zip(drafts[objective_id].entries[section], kept, strict=True):
                entry.id = row.id
    _clear_ids(session, [report_ids[o] for o in [*gone, *changed] if o in report_ids])
    if gone:
        session.execute(
            sa.delete(_table(ObjectiveReport)).where(
                _table(ObjectiveReport).c.id.in_([report_ids[o] for o in gone])
            )
        )
        for objective_id in gone:
            del report_ids[objective_id]
    for objective_id in changed:
        known = stored.get(objective_id)
        if objective_id in report_ids and (
            known is None or known.intro != drafts[objective_id].intro
        ):
            session.execute(
                sa.update(_table(ObjectiveReport))
                .where(_table(ObjectiveReport).c.id == report_ids[objective_id])
                .values(intro=drafts[objective_id].intro)
            )
    new = [o for o in changed if o not in report_ids]
    if new:
        session.execute(
            sa.insert(_table(ObjectiveReport)),
            [
                {"annual_report_id": annual.id, "objective_id": o, "intro": drafts[o].intro}
                for o in new
            ],
        )
        for report_id, objective_id in session.execute(
            sa.select(col(ObjectiveReport.id), col(ObjectiveReport.objective_id)).where(
                col(ObjectiveReport.annual_report_id) == annual.id,
                col(ObjectiveReport.objective_id).in_(new),
            )
        ).all():
            report_ids[objective_id] = report_id
    agency_rows: list[dict[str, Any]] = []
    entry_rows: list[tuple[Any, ...]] = []
    for objective_id in changed:
        report_id = report_ids[objective_id]
        draft = drafts[objective_id]
        agency_rows.extend(
            {
                "objective_report_id": report_id,
                "agency_id": agency_id,
                "position": position,
                "name_as_written": name,
            }
            for position, (agency_id, name) in enumerate(draft.active)
        )
        for section in Section:
            section_value = section.value
            for position, entry in enumerate(draft.entries[section]):
                entry_rows.append(
                    (
                        report_id,
                        section_value,
                        position,
                        entry.style.value,
                        entry.text,
                        entry.milestone_id,
                        entry.agency_id,
                        entry.origin.value,
                        entry.not_updated,
                        entry.updated_by or actor,
                        entry.updated_at or now,
                    )
                )
    if agency_rows:
        session.execute(sa.insert(_table(ObjectiveReportAgency)), agency_rows)
    if entry_rows:
        _insert_many(session, _table(ReportEntry), _ENTRY_COLUMNS, entry_rows)
        # The new rows' ids, for the entries (the document names them) and their links.
        written = [report_ids[o] for o in changed]
        ids = {
            (report_id, section, position): entry_id
            for entry_id, report_id, section, position in session.connection().execute(
                sa.select(
                    col(ReportEntry.id),
                    col(ReportEntry.objective_report_id),
                    _raw(col(ReportEntry.section)),
                    col(ReportEntry.position),
                ).where(col(ReportEntry.objective_report_id).in_(written))
            )
        }
        link_rows: list[dict[str, Any]] = []
        for objective_id in changed:
            report_id = report_ids[objective_id]
            for section, entries in drafts[objective_id].entries.items():
                for position, entry in enumerate(entries):
                    entry.id = entry_id = ids[(report_id, section.value, position)]
                    link_rows.extend(
                        {
                            "entry_id": entry_id,
                            "position": index,
                            "title": link.title,
                            "url": link.url,
                            "site": link.site,
                        }
                        for index, link in enumerate(entry.links)
                    )
        if link_rows:
            session.execute(sa.insert(_table(EntryLink)), link_rows)
    if changed or gone or annual.last_updated is None:
        annual.last_updated = now.astimezone(ZoneInfo(REPORT_TIMEZONE)).date()
        session.add(annual)
    session.flush()
    session.expire_all()
    return len(changed) + len(gone), report_ids


def _insert_many(
    session: Session, table: sa.Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """One executemany of plain tuples: what ``session.execute(insert, dicts)`` sends, without
    its per-row parameter handling (most of the cost of writing 20,000 entries). Values are
    given as stored (enum values, not members); columns whose type converts a value on the
    way in (timestamps on SQLite) still do."""
    connection = session.connection()
    dialect = connection.dialect
    processors = [
        (index, processor)
        for index, name in enumerate(names)
        if not isinstance(table.c[name].type, sa.Enum)
        and (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if processors:
        rows = [_processed(row, processors) for row in rows]
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    # Only the table's own column names go into the statement (quoted); values are parameters.
    columns = ", ".join(quote(name) for name in names)
    marks = ", ".join(mark for _ in names)
    statement = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})"  # noqa: S608
    connection.exec_driver_sql(
        statement,
        rows,
    )


def _processed(
    row: tuple[Any, ...], processors: Sequence[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    values = list(row)
    for index, processor in processors:
        if values[index] is not None:
            values[index] = processor(values[index])
    return tuple(values)


def _clear_ids(session: Session, ids: list[int]) -> None:
    if not ids:
        return
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(ids))
    session.exec(delete(EntryLink).where(col(EntryLink.entry_id).in_(entry_ids)))
    session.exec(delete(ReportEntry).where(col(ReportEntry.objective_report_id).in_(ids)))
    session.exec(
        delete(ObjectiveReportAgency).where(col(ObjectiveReportAgency.objective_report_id).in_(ids))
    )


# --- versions ---------------------------------------------------------------------------------


def versions(session: Session, cycle: Cycle) -> list[ReportVersion]:
    """The cycle year's report versions, oldest first."""
    # The content (the whole report as JSON) loads only when a version is opened.
    return list(
        session.exec(
            select(ReportVersion)
            .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
            .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
            .order_by(col(ReportVersion.number))
            .options(defer(ReportVersion.content))  # type: ignore[arg-type]
        )
    )


def latest_version(session: Session, cycle: Cycle) -> ReportVersion | None:
    return session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
        .order_by(col(ReportVersion.number).desc())
        .limit(1)
        .options(defer(ReportVersion.content))  # type: ignore[arg-type]
    ).first()


def find_version(session: Session, cycle: Cycle, number: int) -> ReportVersion:
    version = session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(
            AnnualReport.plan_id == cycle.plan_id,
            AnnualReport.year == cycle.year,
            ReportVersion.number == number,
        )
    ).first()
    if version is None:
        raise DraftError(f"the {cycle.year} report has no version {number}")
    return version


def version_document(version: ReportVersion) -> ReportDocument:
    """The document a version holds. Read it, never change it: the one of a stored version
    is shared (see ``_DocumentCache``)."""
    state = sa.inspect(version)
    if "content" in state.unloaded and state.session is not None and version.id is not None:
        session = state.session
        key = (str(session.get_bind().engine.url), version.id, version.checksum)
        cached = _documents.get(key)
        if cached is not None:
            return cached
        # Not loaded yet (``versions`` defers it): the stored JSON text validated as it is,
        # rather than decoded into Python objects first and those validated (a large
        # report's content is several megabytes).
        text = session.execute(
            sa.select(sa.cast(col(ReportVersion.content), sa.Text())).where(
                col(ReportVersion.id) == version.id
            )
        ).scalar_one()
        document = ReportDocument.model_validate_json(text)
        _documents.put(key, document)
        return document
    return ReportDocument.model_validate(version.content)


class _DocumentCache:
    """The last few versions' documents, per process. A stored version never changes (its
    content and checksum are frozen), while a coordinator opens the same one again and again
    (the draft page, its downloads, the redlines); validating a large report's JSON is a good
    share of each of those pages. The key holds the database, the version and its checksum,
    so another database, or a row whose checksum differs, is never served this entry."""

    SIZE = 3

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, str], ReportDocument] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> ReportDocument | None:
        with self._lock:
            document = self._entries.pop(key, None)
            if document is not None:
                self._entries[key] = document  # the most recently used last
            return document

    def put(self, key: tuple[str, int, str], document: ReportDocument) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = document
            while len(self._entries) > self.SIZE:
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_documents = _DocumentCache()


def snapshot(
    session: Session,
    cycle: Cycle,
    annual: AnnualReport,
    now: datetime,
    actor: str,
    *,
    rows: ReportRows | None = None,
) -> tuple[ReportVersion, bool]:
    """The working draft as a new numbered draft version; the latest version instead when
    the draft has not changed since it (returned with False). ``rows``: the report's rows as
    just written (see ``build_document``)."""
    assert annual.id is not None
    doc = build_document(session, cycle.plan_id, cycle.year, rows=rows)
    canonical = doc.canonical_json()
    checksum = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    latest = latest_version(session, cycle)
    if latest is not None and latest.checksum == checksum:
        return latest, False
    # The content is stored as the canonical JSON already made for the checksum (the same
    # document as ``model_dump``, without converting and serialising it a second time).
    content: sa.ColumnElement[Any] = sa.literal(canonical, sa.Text())
    if session.get_bind().dialect.name != "sqlite":
        content = sa.cast(content, _table(ReportVersion).c.content.type)
    version_id = session.execute(
        sa.insert(_table(ReportVersion))
        .values(
            annual_report_id=annual.id,
            number=(latest.number + 1) if latest else 1,
            state=VersionState.DRAFT,
            content=content,
            checksum=checksum,
            created_at=now,
            created_by=actor,
        )
        .returning(_table(ReportVersion).c.id)
    ).scalar_one()
    version = session.exec(
        select(ReportVersion)
        .where(ReportVersion.id == version_id)
        .options(defer(ReportVersion.content))  # type: ignore[arg-type]
    ).one()
    return version, True


def _report_rows(
    drafts: Mapping[int, ObjectiveDraft], report_ids: Mapping[int, int], plan: _Plan
) -> ReportRows | None:
    """The drafts as the report rows they were just written as (entry ids set by
    ``write_drafts``), milestone lines with their milestone's columns; None when an entry is
    not one the plan explains (the document is then read back from the database)."""
    reports: dict[int, tuple[int, str | None]] = {}
    active: dict[int, list[tuple[int, str]]] = {}
    entries: list[EntryRow] = []
    links: dict[int, list[Link]] = {}
    milestones = plan.milestones
    milestone_section = Section.MILESTONE
    for objective_id, draft in drafts.items():
        report_id = report_ids.get(objective_id)
        if report_id is None:
            return None
        reports[objective_id] = (report_id, draft.intro)
        active[report_id] = list(draft.active)
        for section, section_entries in draft.entries.items():
            section_value = section.value
            for entry in section_entries:
                entry_id = entry.id
                if entry_id is None:
                    return None
                if entry.links:
                    links[entry_id] = entry.links
                if section is not milestone_section:
                    entries.append(
                        (
                            entry_id,
                            report_id,
                            section_value,
                            entry.style.value,
                            entry.text,
                            entry.agency_id,
                            entry.not_updated,
                            entry.milestone_id,
                            None,
                            None,
                            None,
                            None,
                            None,
                            None,
                        )
                    )
                    continue
                milestone = milestones.get(entry.milestone_id or 0)
                if milestone is None:
                    return None
                entries.append(
                    (
                        entry_id,
                        report_id,
                        section_value,
                        entry.style.value,
                        entry.text,
                        entry.agency_id,
                        entry.not_updated,
                        milestone.id,
                        milestone.text,
                        milestone.due_text,
                        milestone.due_start,
                        milestone.due_end,
                        milestone.status.value,
                        milestone.lead_agency_id,
                    )
                )
    return ReportRows(reports, active, entries, links)


def lock_cycle(session: Session, cycle: Cycle) -> None:
    """Serialise the review steps of one cycle (compile, edit, approve, publish) until the
    transaction ends, so two compiles at once run one after the other and the second sees
    the first's version. PostgreSQL: the cycle's row is locked. SQLite: a write takes the
    database's write lock now, before anything is read (a read first would decide on data
    another writer is about to change)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            sa.update(_table(Cycle)).where(_table(Cycle).c.id == cycle.id).values(id=cycle.id)
        )
    else:
        session.execute(
            sa.select(col(Cycle.id)).where(col(Cycle.id) == cycle.id).with_for_update()
        ).all()
    session.refresh(cycle)


# --- the operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    version: ReportVersion
    created: bool
    objective_reports_written: int
    stale_edits: list[int]


def compile_cycle(session: Session, cycle: Cycle, now: datetime, actor: str) -> ReportVersion:
    """Compile the cycle's submitted answers into the year's draft; see the module docs."""
    return compile_cycle_result(session, cycle, now, actor).version


def compile_cycle_result(
    session: Session,
    cycle: Cycle,
    now: datetime,
    actor: str,
    *,
    triggers: Sequence[str] = (),
) -> Compiled:
    """``compile_cycle`` with what it did; ``triggers`` (what made a scheduled compile due)
    are recorded on its audit event so each one compiles once."""
    assert cycle.id is not None
    lock_cycle(session, cycle)
    plan = _load_plan(session, cycle.plan_id)
    drafts = _build_drafts(session, cycle, now, actor, plan)
    stale: list[int] = []
    for event in _recorded_edits(session, cycle.id):
        objective_id = event.detail.get("objective_id")
        draft = drafts.get(objective_id) if isinstance(objective_id, int) else None
        if draft is None or not apply_edit(draft, event.detail, event.actor, event.at):
            assert event.id is not None
            stale.append(event.id)
    # Edited entries keep the time and author of the edit; unchanged entries keep theirs.
    annual = annual_report(session, cycle, now)
    assert annual.id is not None
    stored = load_drafts(session, annual.id)
    # An unchanged draft keeps its rows as they are (stamps included): only the others need
    # their unchanged entries' stamps, and each draft is compared once.
    unchanged = {
        objective_id
        for objective_id, draft in drafts.items()
        if objective_id in stored and stored[objective_id].comparable() == draft.comparable()
    }
    for objective_id, draft in drafts.items():
        if objective_id not in unchanged:
            _keep_stamps(draft, stored.get(objective_id))
    written, report_ids = _write_drafts(
        session, annual, drafts, now, actor, stored=stored, unchanged=unchanged
    )
    # The document from what was just written, rather than read back.
    rows = _report_rows(drafts, report_ids, plan)
    version, created = snapshot(session, cycle, annual, now, actor, rows=rows)
    audit.record(
        session,
        actor=actor,
        action=COMPILED,
        at=now,
        cycle_id=cycle.id,
        subject=f"report_version:{version.id}",
        detail={
            "version": version.number,
            "new_version": created,
            "objective_reports_written": written,
            "stale_edits": stale,
            ANSWERS_MARK: answers_mark(session, cycle),
            **({"triggers": list(triggers)} if triggers else {}),
        },
    )
    session.flush()
    return Compiled(version, created, written, stale)


# --- answers submitted since the last compile ------------------------------------------------

# The compile's audit event records which submitted answers it read (a digest of each
# request's latest submitted revision number), so approving can tell whether an agency
# submitted again since: its new answer is not in any version yet.
ANSWERS_MARK = "answers"


def answers_mark(session: Session, cycle: Cycle) -> str:
    """A digest of each request's latest submitted revision in the cycle (one query)."""
    rows = session.execute(
        sa.select(
            col(SubmissionRevision.update_request_id), sa.func.max(col(SubmissionRevision.number))
        )
        .join(UpdateRequest, col(UpdateRequest.id) == col(SubmissionRevision.update_request_id))
        .where(
            col(UpdateRequest.cycle_id) == cycle.id,
            col(SubmissionRevision.kind) == RevisionKind.SUBMITTED,
        )
        .group_by(col(SubmissionRevision.update_request_id))
    ).all()
    marks = ",".join(f"{request_id}:{number}" for request_id, number in sorted(rows))
    return hashlib.sha256(marks.encode("ascii")).hexdigest()[:16]


def submitted_since_compile(session: Session, cycle: Cycle) -> list[str] | None:
    """None when the latest compile read every answer submitted so far (or nothing was
    compiled yet); else the acronyms of the agencies that submitted since, by name (empty
    when they cannot be told apart: the answers changed all the same)."""
    last = session.exec(
        select(AuditEvent)
        .where(AuditEvent.cycle_id == cycle.id, AuditEvent.action == COMPILED)
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    if last is None or last.id is None:
        return None
    recorded = last.detail.get(ANSWERS_MARK)
    if recorded is not None and recorded == answers_mark(session, cycle):
        return None
    later = sorted(
        set(
            session.exec(
                select(Agency.acronym)
                .join(AuditEvent, col(AuditEvent.agency_id) == col(Agency.id))
                .where(
                    AuditEvent.cycle_id == cycle.id,
                    AuditEvent.action == "request.submitted",
                    col(AuditEvent.id) > last.id,
                )
            ).all()
        )
    )
    if recorded is None and not later:
        return None  # compiled before the digest was recorded, and nothing submitted since
    return later


def _keep_stamps(draft: ObjectiveDraft, stored: ObjectiveDraft | None) -> None:
    """Unchanged entries keep their stored author and time, so a recompile of the same
    answers changes nothing."""
    if stored is None:
        return
    for section in Section:
        previous = {e.comparable(): e for e in stored.entries[section]}
        for entry in draft.entries[section]:
            same = previous.get(entry.comparable())
            if same is not None and entry.origin is not EntryOrigin.COORDINATOR:
                entry.updated_by = same.updated_by
                entry.updated_at = same.updated_at
            elif same is not None:
                entry.updated_by = entry.updated_by or same.updated_by
                entry.updated_at = entry.updated_at or same.updated_at


MILESTONE_TEXT = (
    "milestones take their text and order from the plan; edit the achievements and areas for "
    "further work"
)


def entry_in_draft(session: Session, cycle: Cycle, entry_id: int) -> ReportEntry:
    """An entry of the cycle year's working draft; DraftError when it is not one."""
    return _entry(session, cycle, entry_id).entry


@dataclass(frozen=True)
class EntryRef:
    entry: ReportEntry
    report: ObjectiveReport


def _entry(session: Session, cycle: Cycle, entry_id: int) -> EntryRef:
    row = session.exec(
        select(ReportEntry, ObjectiveReport, AnnualReport)
        .join(ObjectiveReport, col(ObjectiveReport.id) == ReportEntry.objective_report_id)
        .join(AnnualReport, col(AnnualReport.id) == ObjectiveReport.annual_report_id)
        .where(ReportEntry.id == entry_id)
    ).first()
    if row is None or row[2].plan_id != cycle.plan_id or row[2].year != cycle.year:
        raise DraftError(f"entry {entry_id} is not in the {cycle.year} draft")
    return EntryRef(row[0], row[1])


def _edit(
    session: Session,
    cycle: Cycle,
    entry_id: int,
    detail: dict[str, Any],
    action: str,
    now: datetime,
    actor: str,
) -> ReportVersion:
    assert cycle.id is not None
    lock_cycle(session, cycle)
    ref = _entry(session, cycle, entry_id)
    entry = ref.entry
    if entry.section not in TEXT_SECTIONS:
        raise DraftError(MILESTONE_TEXT)
    annual = annual_report(session, cycle, now)
    assert annual.id is not None
    # The draft is read once: the edited objective's is a copy, the others are the stored
    # ones themselves (unchanged, so not written).
    stored = load_drafts(session, annual.id)
    drafts = dict(stored)
    draft = drafts[ref.report.objective_id] = deepcopy(stored[ref.report.objective_id])
    detail = {
        **detail,
        "objective_id": ref.report.objective_id,
        "entry": [entry.section.value, entry.agency_id, entry.milestone_id, entry.text],
    }
    if not apply_edit(draft, detail, actor, now):
        raise DraftError(f"entry {entry_id} could not be changed")
    audit.record(
        session,
        actor=actor,
        action=action,
        at=now,
        cycle_id=cycle.id,
        agency_id=entry.agency_id,
        subject=f"entry:{entry_id}",
        detail=detail,
    )
    write_drafts(session, annual, drafts, now, actor, stored=stored)
    version, _created = snapshot(session, cycle, annual, now, actor)
    return version


def edit_entry(
    session: Session, cycle: Cycle, entry_id: int, text: str, now: datetime, actor: str
) -> ReportVersion:
    """Replace an achievement's or further work's text (attributed to ``actor``)."""
    text = text.strip()
    if not text:
        raise DraftError("the entry's text is empty: remove the entry instead")
    if len(text) > MAX_ENTRY_TEXT:
        raise DraftError(f"the entry's text is longer than {MAX_ENTRY_TEXT} characters")
    current = _entry(session, cycle, entry_id).entry
    if current.text == text:
        latest = latest_version(session, cycle)
        if latest is not None:
            return latest
    return _edit(
        session,
        cycle,
        entry_id,
        {"op": "edit", "previous_text": current.text, "new_text": text},
        EDITED,
        now,
        actor,
    )


MOVES = ("up", "down", "achievement", "further_work")


def move_entry(
    session: Session, cycle: Cycle, entry_id: int, direction: str, now: datetime, actor: str
) -> ReportVersion:
    """Move an entry up or down its list, or to the other section ("achievement",
    "further_work")."""
    if direction not in MOVES:
        raise DraftError(f"{direction!r} is not a move (one of: {', '.join(MOVES)})")
    return _edit(
        session, cycle, entry_id, {"op": "move", "direction": direction}, MOVED, now, actor
    )


def remove_entry(
    session: Session, cycle: Cycle, entry_id: int, now: datetime, actor: str
) -> ReportVersion:
    return _edit(session, cycle, entry_id, {"op": "remove"}, REMOVED, now, actor)


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
                _raw(col(ReportEntry.section)),
                _raw(col(ReportEntry.origin)),
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
