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

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from models import audit
from models.answers import Answer, MilestoneProgress
from models.compiler import build_document
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


@dataclass
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


def load_drafts(session: Session, annual_id: int) -> dict[int, ObjectiveDraft]:
    """An annual report's objective reports as drafts, by objective id (four queries)."""
    reports = {
        r.id: r
        for r in session.exec(
            select(ObjectiveReport).where(ObjectiveReport.annual_report_id == annual_id)
        )
    }
    drafts = {
        r.objective_id: ObjectiveDraft(r.objective_id, intro=r.intro) for r in reports.values()
    }
    by_report = {report_id: drafts[r.objective_id] for report_id, r in reports.items()}
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual_id)
    for row in session.exec(
        select(ObjectiveReportAgency)
        .where(col(ObjectiveReportAgency.objective_report_id).in_(report_ids))
        .order_by(col(ObjectiveReportAgency.position))
    ):
        by_report[row.objective_report_id].active.append((row.agency_id, row.name_as_written))
    entries = session.exec(
        select(ReportEntry)
        .where(col(ReportEntry.objective_report_id).in_(report_ids))
        .order_by(col(ReportEntry.position), col(ReportEntry.id))
    ).all()
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(report_ids))
    links: dict[int, list[Link]] = defaultdict(list)
    for link in session.exec(
        select(EntryLink)
        .where(col(EntryLink.entry_id).in_(entry_ids))
        .order_by(col(EntryLink.position))
    ):
        links[link.entry_id].append(Link(title=link.title, url=link.url, site=link.site))
    for entry in entries:
        by_report[entry.objective_report_id].entries[entry.section].append(
            DraftEntry(
                section=entry.section,
                text=entry.text,
                agency_id=entry.agency_id,
                origin=entry.origin,
                milestone_id=entry.milestone_id,
                not_updated=entry.not_updated,
                style=entry.style,
                links=links.get(entry.id or 0, []),
                updated_by=entry.updated_by,
                updated_at=entry.updated_at,
                id=entry.id,
            )
        )
    return drafts


# --- compiling ----------------------------------------------------------------------------------


@dataclass
class _Plan:
    objectives: list[Objective]
    milestones_by_objective: dict[int, list[Milestone]]
    milestones: dict[int, Milestone]


def _load_plan(session: Session, plan_id: int) -> _Plan:
    objectives = list(
        session.exec(
            select(Objective).where(Objective.plan_id == plan_id).order_by(col(Objective.position))
        )
    )
    by_objective: dict[int, list[Milestone]] = defaultdict(list)
    milestones: dict[int, Milestone] = {}
    for milestone in session.exec(select(Milestone).where(Milestone.plan_id == plan_id)):
        assert milestone.id is not None
        milestones[milestone.id] = milestone
        by_objective[milestone.objective_id].append(milestone)
    return _Plan(objectives, by_objective, milestones)


def _due_order(milestone: Milestone) -> tuple[Any, ...]:
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
    year = cycle.year
    plan = _load_plan(session, cycle.plan_id)
    answers = submitted_answers(session, cycle)
    agencies = {a.id: a for a in session.exec(select(Agency)) if a.id is not None}
    previous = previous_report(session, cycle.plan_id, year)
    last = load_drafts(session, previous.id) if previous and previous.id else {}

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

        objective_milestones = plan.milestones_by_objective.get(objective.id, [])
        offered_ids = [
            m.id
            for m in sorted(objective_milestones, key=_due_order)
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
        # Milestones completed this year, offered as achievements of their agency.
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
        last_links = (
            {e.milestone_id: e.links for e in before.entries[Section.MILESTONE]} if before else {}
        )
        for milestone in sorted(objective_milestones, key=_due_order):
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


def write_drafts(
    session: Session,
    annual: AnnualReport,
    drafts: Mapping[int, ObjectiveDraft],
    now: datetime,
    actor: str,
) -> int:
    """Store the drafts as the annual report's rows; objectives whose draft is unchanged keep
    their rows (and entry ids). Returns how many objective reports were written."""
    assert annual.id is not None
    stored = load_drafts(session, annual.id)
    reports = {
        r.objective_id: r
        for r in session.exec(
            select(ObjectiveReport).where(ObjectiveReport.annual_report_id == annual.id)
        )
    }
    gone = [reports[oid] for oid in reports if oid not in drafts]
    changed = [
        oid
        for oid, draft in drafts.items()
        if oid not in stored or stored[oid].comparable() != draft.comparable()
    ]
    _clear(
        session,
        [r for r in gone if r.id is not None] + [reports[o] for o in changed if o in reports],
    )
    for old in gone:
        session.delete(old)
    session.flush()
    entry_rows: list[tuple[ReportEntry, list[Link]]] = []
    for objective_id in changed:
        draft = drafts[objective_id]
        report = reports.get(objective_id)
        if report is None:
            report = ObjectiveReport(annual_report_id=annual.id, objective_id=objective_id)
        report.intro = draft.intro
        session.add(report)
        session.flush()
        assert report.id is not None
        for position, (agency_id, name) in enumerate(draft.active):
            session.add(
                ObjectiveReportAgency(
                    objective_report_id=report.id,
                    agency_id=agency_id,
                    position=position,
                    name_as_written=name,
                )
            )
        for section in Section:
            for position, entry in enumerate(draft.entries[section]):
                entry_rows.append(
                    (
                        ReportEntry(
                            objective_report_id=report.id,
                            section=section,
                            position=position,
                            style=entry.style,
                            text=entry.text,
                            milestone_id=entry.milestone_id,
                            agency_id=entry.agency_id,
                            origin=entry.origin,
                            not_updated=entry.not_updated,
                            updated_by=entry.updated_by or actor,
                            updated_at=entry.updated_at or now,
                        ),
                        entry.links,
                    )
                )
    session.add_all([row for row, _ in entry_rows])
    session.flush()
    for row, links in entry_rows:
        assert row.id is not None
        for position, link in enumerate(links):
            session.add(
                EntryLink(
                    entry_id=row.id,
                    position=position,
                    title=link.title,
                    url=link.url,
                    site=link.site,
                )
            )
    if changed or gone or annual.last_updated is None:
        annual.last_updated = now.astimezone(ZoneInfo(REPORT_TIMEZONE)).date()
        session.add(annual)
    session.flush()
    return len(changed) + len(gone)


def _clear(session: Session, reports: Iterable[ObjectiveReport]) -> None:
    ids = [r.id for r in reports if r.id is not None]
    if not ids:
        return
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(ids))
    session.exec(delete(EntryLink).where(col(EntryLink.entry_id).in_(entry_ids)))
    session.exec(delete(ReportEntry).where(col(ReportEntry.objective_report_id).in_(ids)))
    session.exec(
        delete(ObjectiveReportAgency).where(col(ObjectiveReportAgency.objective_report_id).in_(ids))
    )
    session.expire_all()


# --- versions ---------------------------------------------------------------------------------


def versions(session: Session, cycle: Cycle) -> list[ReportVersion]:
    """The cycle year's report versions, oldest first."""
    return list(
        session.exec(
            select(ReportVersion)
            .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
            .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
            .order_by(col(ReportVersion.number))
        )
    )


def latest_version(session: Session, cycle: Cycle) -> ReportVersion | None:
    return session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
        .order_by(col(ReportVersion.number).desc())
        .limit(1)
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
    return ReportDocument.model_validate(version.content)


def snapshot(
    session: Session, cycle: Cycle, annual: AnnualReport, now: datetime, actor: str
) -> tuple[ReportVersion, bool]:
    """The working draft as a new numbered draft version; the latest version instead when
    the draft has not changed since it (returned with False)."""
    assert annual.id is not None
    doc = build_document(session, cycle.plan_id, cycle.year)
    checksum = doc.checksum()
    latest = latest_version(session, cycle)
    if latest is not None and latest.checksum == checksum:
        return latest, False
    version = ReportVersion(
        annual_report_id=annual.id,
        number=(latest.number + 1) if latest else 1,
        state=VersionState.DRAFT,
        content=doc.model_dump(mode="json"),
        checksum=checksum,
        created_at=now,
        created_by=actor,
    )
    session.add(version)
    session.flush()
    return version, True


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
    drafts = build_drafts(session, cycle, now, actor)
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
    for objective_id, draft in drafts.items():
        _keep_stamps(draft, stored.get(objective_id))
    written = write_drafts(session, annual, drafts, now, actor)
    version, created = snapshot(session, cycle, annual, now, actor)
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
            **({"triggers": list(triggers)} if triggers else {}),
        },
    )
    session.flush()
    return Compiled(version, created, written, stale)


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
    ref = _entry(session, cycle, entry_id)
    entry = ref.entry
    if entry.section not in TEXT_SECTIONS:
        raise DraftError(
            "milestones take their text and order from the plan; edit the achievements and "
            "areas for further work"
        )
    annual = annual_report(session, cycle, now)
    assert annual.id is not None
    drafts = load_drafts(session, annual.id)
    draft = drafts[ref.report.objective_id]
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
    write_drafts(session, annual, {**drafts}, now, actor)
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


@dataclass(frozen=True)
class EntryNote:
    """What the draft view shows beside an entry."""

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


def review_notes(session: Session, cycle: Cycle) -> ReviewNotes:
    """Who answered, milestones no longer planned (with reasons), and per entry of the working
    draft its origin and author."""
    answers = submitted_answers(session, cycle)
    agencies = {a.id: a for a in session.exec(select(Agency)) if a.id is not None}
    requested = session.exec(
        select(UpdateRequest.agency_id).where(UpdateRequest.cycle_id == cycle.id)
    ).all()
    dropped_ids = {
        item.milestone_id: (agency_id, item.reason)
        for agency_id, submitted in answers.items()
        for item in submitted.answer.milestones
        if item.progress is MilestoneProgress.DROPPED
    }
    milestones = (
        {
            m.id: m
            for m in session.exec(select(Milestone).where(col(Milestone.id).in_(list(dropped_ids))))
        }
        if dropped_ids
        else {}
    )
    dropped = [
        DroppedMilestone(
            milestone_id=mid,
            objective_id=milestones[mid].objective_id,
            agency=agencies[agency_id].acronym,
            text=milestones[mid].text,
            due=milestones[mid].due_text,
            reason=(reason or "").strip() or None,
        )
        for mid, (agency_id, reason) in sorted(dropped_ids.items())
        if mid in milestones
    ]
    annual = session.exec(
        select(AnnualReport).where(
            AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year
        )
    ).first()
    notes: dict[int, EntryNote] = {}
    offered = carried = 0
    if annual is not None and annual.id is not None:
        report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual.id)
        for entry in session.exec(
            select(ReportEntry).where(col(ReportEntry.objective_report_id).in_(report_ids))
        ):
            assert entry.id is not None
            offered_milestone = (
                entry.milestone_id if entry.section is not Section.MILESTONE else None
            )
            offered += offered_milestone is not None
            carried += entry.origin is EntryOrigin.CARRIED_FORWARD
            notes[entry.id] = EntryNote(entry.origin.value, entry.updated_by, offered_milestone)
    last_compile = session.exec(
        select(AuditEvent)
        .where(AuditEvent.cycle_id == cycle.id, AuditEvent.action == COMPILED)
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    stale = list(last_compile.detail.get("stale_edits", [])) if last_compile else []
    return ReviewNotes(
        answered=sorted(agencies[a].acronym for a in answers),
        not_answered=sorted(
            agencies[a].acronym for a in requested if a not in answers and a in agencies
        ),
        dropped=dropped,
        offered=offered,
        carried_forward=carried,
        stale_edits=stale,
        entries=notes,
    )
