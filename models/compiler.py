"""Build a year's ReportDocument from the database, in a fixed number of queries whatever
the plan's size (one per table, never one per row)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.document import (
    ActionLine,
    ActiveAgency,
    Block,
    Link,
    MilestoneLine,
    ObjectiveSection,
    PillarSection,
    ReportDocument,
    Revision,
)
from models.tables import (
    Action,
    Agency,
    AnnualReport,
    EntryLink,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    Pillar,
    Plan,
    ReportEntry,
    Section,
)


class ReportNotFound(LookupError):
    pass


def _columns(model: Any, *names: str) -> list[sa.Column[Any]]:
    table: sa.Table = model.__table__
    return [table.c[name] for name in names]


def _tuples(session: Session, statement: sa.Select[Any]) -> Sequence[Sequence[Any]]:
    """Plain rows through Core, to unpack in a loop (the cheapest way to read a row)."""
    rows: Sequence[Sequence[Any]] = session.connection().execute(statement).all()
    return rows


def _raw(column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """An enum column as its stored value: the document holds values, so converting each row
    to the enum and back is work for nothing."""
    return sa.type_coerce(column, sa.String())


class MilestoneFields(Protocol):
    """What a report needs of a milestone (an ORM row or a selected row)."""

    @property
    def id(self) -> int | None: ...
    @property
    def text(self) -> str: ...
    @property
    def due_text(self) -> str | None: ...
    @property
    def due_start(self) -> date | None: ...
    @property
    def due_end(self) -> date | None: ...
    @property
    def status(self) -> MilestoneStatus | str: ...


class RevisionFields(Protocol):
    @property
    def sequence(self) -> int: ...
    @property
    def year(self) -> int: ...
    @property
    def previous_due_text(self) -> str | None: ...
    @property
    def previous_start(self) -> date | None: ...
    @property
    def previous_end(self) -> date | None: ...
    @property
    def new_due_text(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def changed_by(self) -> str: ...


# A revision as ``revised_as_of`` reads it: (milestone id, year, previous due text, previous
# start, previous end, new due text, reason, changed by), in the order they were made.
RevisionRow = Sequence[Any]


def revised_as_of(
    revisions: Iterable[RevisionRow], year: int
) -> tuple[tuple[str | None, date | None, date | None] | None, str | None, list[Revision]]:
    """What a milestone's revisions (in order) make of it in the report of ``year``: the due
    period it had then (the previous period of the first revision made later; None when
    none was), "(Delayed from …)" (the first baseline of those made up to that year), and
    those revisions as its history."""
    period: tuple[str | None, date | None, date | None] | None = None
    delayed_from: str | None = None
    history: list[Revision] = []
    for _, changed_in, previous, p_start, p_end, new, reason, by in revisions:
        if changed_in > year:
            if period is None:
                period = (previous, p_start, p_end)
            continue
        if not history:
            delayed_from = previous
        history.append(
            Revision.trusted(
                {
                    "year": changed_in,
                    "previous": previous,
                    "new": new,
                    "reason": reason,
                    "changed_by": by,
                }
            )
        )
    return period, delayed_from, history


def milestone_as_of(
    milestone: MilestoneFields,
    revisions: Sequence[RevisionFields],
    year: int,
    lead: str | None,
    *,
    links: list[Link] | None = None,
    entry_id: int | None = None,
    not_updated: bool = False,
) -> MilestoneLine:
    """The milestone as the report of ``year`` shows it: the due period it had then, and
    "(Delayed from …)" with the first baseline of the revisions made up to that year."""
    period, delayed_from, history = revised_as_of(
        (
            (
                milestone.id,
                r.year,
                r.previous_due_text,
                r.previous_start,
                r.previous_end,
                r.new_due_text,
                r.reason,
                r.changed_by,
            )
            for r in sorted(revisions, key=lambda r: r.sequence)
        ),
        year,
    )
    due, start, end = period or (milestone.due_text, milestone.due_start, milestone.due_end)
    # Rows from the database are trusted: construct without re-validating (20,000 of them).
    return MilestoneLine.trusted(
        {
            "text": milestone.text,
            "due": due,
            "start": start,
            "end": end,
            "delayed_from": delayed_from,
            "lead": lead,
            "status": MilestoneStatus(milestone.status).value,
            "links": links if links is not None else [],
            "history": history,
            "not_updated": not_updated,
            "milestone_id": milestone.id,
            "entry_id": entry_id,
        }
    )


# One report entry as the document needs it: the entry's columns, then its milestone's
# (None for an entry that is not a milestone line), enum columns as their stored values.
EntryRow = tuple[
    int,  # entry id
    int,  # objective report id
    str,  # section
    str,  # style
    str | None,  # text
    int | None,  # agency id
    bool,  # not updated
    int | None,  # milestone id
    Any,  # milestone text (a str for a milestone line)
    str | None,  # milestone due text
    date | None,  # milestone due start
    date | None,  # milestone due end
    Any,  # milestone status (a str for a milestone line)
    int | None,  # milestone lead agency id
]


@dataclass(frozen=True, slots=True)
class ReportRows:
    """A year's report rows, as ``read_report`` reads them."""

    # objective id -> (objective report id, intro)
    reports: dict[int, tuple[int, str | None]]
    # objective report id -> [(agency id, name as written)] in order
    active: dict[int, list[tuple[int, str]]]
    # in each section's order (a report's entries need not be together)
    entries: Sequence[EntryRow]
    # entry id -> its links in order
    links: dict[int, list[Link]]


def read_report(session: Session, annual_id: int) -> ReportRows:
    """An annual report's rows, in four queries of plain tuples."""
    reports: dict[int, tuple[int, str | None]] = {
        objective_id: (report_id, intro)
        for report_id, objective_id, intro in _tuples(
            session,
            sa.select(*_columns(ObjectiveReport, "id", "objective_id", "intro")).where(
                col(ObjectiveReport.annual_report_id) == annual_id
            ),
        )
    }
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual_id)
    active: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for report_id, agency_id, name in _tuples(
        session,
        sa.select(
            *_columns(ObjectiveReportAgency, "objective_report_id", "agency_id", "name_as_written")
        )
        .where(col(ObjectiveReportAgency.objective_report_id).in_(report_ids))
        .order_by(col(ObjectiveReportAgency.position)),
    ):
        active[report_id].append((agency_id, name))

    # The large tables are read as plain tuples of the columns a report needs, in report
    # order: no ORM identity map, no enum objects, no timestamps to convert (a plan may hold
    # 20,000 milestones, and at that size building the objects costs more than the queries).
    entry_table: sa.Table = ReportEntry.__table__  # type: ignore[attr-defined]
    milestone_table: sa.Table = Milestone.__table__  # type: ignore[attr-defined]
    entry, milestone = entry_table.c, milestone_table.c
    section_order = sa.case(
        {section.value: rank for section, rank in _SECTION_ORDER.items()},
        value=_raw(entry.section),
    )
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(report_ids))
    links: dict[int, list[Link]] = defaultdict(list)
    for entry_id, title, url, site in _tuples(
        session,
        sa.select(*_columns(EntryLink, "entry_id", "title", "url", "site"))
        .where(col(EntryLink.entry_id).in_(entry_ids))
        .order_by(col(EntryLink.position)),
    ):
        links[entry_id].append(Link.trusted({"title": title, "url": url, "site": site}))
    entries: Sequence[Any] = _tuples(
        session,
        sa.select(
            entry.id,
            entry.objective_report_id,
            _raw(entry.section),
            _raw(entry.style),
            entry.text,
            entry.agency_id,
            entry.not_updated,
            milestone.id,
            milestone.text,
            milestone.due_text,
            milestone.due_start,
            milestone.due_end,
            _raw(milestone.status),
            milestone.lead_agency_id,
        )
        .select_from(sa.outerjoin(entry_table, milestone_table, milestone.id == entry.milestone_id))
        .where(entry.objective_report_id.in_(report_ids))
        .order_by(entry.objective_report_id, section_order, entry.position, entry.id),
    )
    return ReportRows(reports, active, entries, links)


def build_document(
    session: Session, plan_id: int, year: int, *, rows: ReportRows | None = None
) -> ReportDocument:
    """The year's report of the plan. ``rows``: the report's own rows (objective reports,
    active agencies, entries, links) when the caller has them in memory exactly as stored
    (compile, which has just written them); read from the database otherwise."""
    plan = session.get(Plan, plan_id)
    if plan is None:
        raise ReportNotFound(f"no plan with id {plan_id}")
    annual = session.exec(
        select(AnnualReport).where(AnnualReport.plan_id == plan_id, AnnualReport.year == year)
    ).first()
    if annual is None:
        years = session.exec(select(AnnualReport.year).where(AnnualReport.plan_id == plan_id)).all()
        raise ReportNotFound(
            f"no {year} report for {plan.title!r}"
            + (f"; reports exist for {', '.join(map(str, sorted(years)))}" if years else "")
        )

    pillars = session.exec(
        select(Pillar).where(Pillar.plan_id == plan_id).order_by(col(Pillar.position))
    ).all()
    objectives = session.exec(
        select(Objective).where(Objective.plan_id == plan_id).order_by(col(Objective.position))
    ).all()
    actions_by_objective: dict[int, list[ActionLine]] = defaultdict(list)
    for objective_id, number, text, footnoted, incorporated_into in _tuples(
        session,
        sa.select(
            *_columns(Action, "objective_id", "number", "text", "footnoted", "incorporated_into")
        )
        .where(col(Action.plan_id) == plan_id)
        .order_by(col(Action.position)),
    ):
        actions_by_objective[objective_id].append(
            ActionLine.trusted(
                {
                    "number": number,
                    "text": text,
                    "footnoted": footnoted,
                    "incorporated_into": incorporated_into,
                }
            )
        )

    acronyms = {a.id: a.acronym for a in session.exec(select(Agency))}
    assert annual.id is not None
    report = rows if rows is not None else read_report(session, annual.id)
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual.id)
    milestone_ids = select(ReportEntry.milestone_id).where(
        col(ReportEntry.objective_report_id).in_(report_ids),
        col(ReportEntry.milestone_id).is_not(None),
    )
    # Each revised milestone's revisions in order, as plain tuples; the loop below reads them
    # as they come (a plan may have thousands of revised milestones: sorting and building a
    # row object for each cost more than the rest of its line).
    revisions: dict[int, list[RevisionRow]] = defaultdict(list)
    for revision in _tuples(
        session,
        sa.select(
            *_columns(
                MilestoneRevision,
                "milestone_id",
                "year",
                "previous_due_text",
                "previous_start",
                "previous_end",
                "new_due_text",
                "reason",
                "changed_by",
            )
        )
        .where(col(MilestoneRevision.milestone_id).in_(milestone_ids))
        .order_by(col(MilestoneRevision.milestone_id), col(MilestoneRevision.sequence)),
    ):
        revisions[revision[0]].append(revision)

    blocks: dict[int, tuple[list[Block], list[Block]]] = {}
    lines: dict[int, list[MilestoneLine]] = defaultdict(list)
    achievement, milestone_section = Section.ACHIEVEMENT.value, Section.MILESTONE.value
    no_links: list[Link] = []
    for (
        entry_id,
        report_id,
        section_value,
        style,
        text,
        agency_id,
        not_updated,
        milestone_id,
        milestone_text,
        due,
        start,
        end,
        status,
        lead_id,
    ) in report.entries:
        entry_links = report.links.get(entry_id, no_links)
        if section_value == milestone_section:
            delayed_from: str | None = None
            history: list[Revision] = []
            revised = revisions.get(milestone_id) if milestone_id is not None else None
            if revised is not None:
                period, delayed_from, history = revised_as_of(revised, year)
                if period is not None:
                    due, start, end = period
            line = MilestoneLine.trusted(
                {
                    "text": milestone_text,
                    "due": due,
                    "start": start,
                    "end": end,
                    "delayed_from": delayed_from,
                    "lead": acronyms.get(lead_id) if lead_id else None,
                    "status": status,
                    "links": list(entry_links) if entry_links else [],
                    "history": history,
                    "not_updated": not_updated,
                    "milestone_id": milestone_id,
                    "entry_id": entry_id,
                }
            )
            lines[report_id].append(line)
            continue
        pair = blocks.get(report_id)
        if pair is None:
            pair = blocks[report_id] = ([], [])
        pair[0 if section_value == achievement else 1].append(
            Block.trusted(
                {
                    "text": text or "",
                    "style": style,
                    "links": list(entry_links),
                    "agency": acronyms.get(agency_id) if agency_id else None,
                    "not_updated": not_updated,
                    "entry_id": entry_id,
                }
            )
        )

    by_pillar: dict[int, list[Objective]] = defaultdict(list)
    for objective in objectives:
        by_pillar[objective.pillar_id].append(objective)

    doc = ReportDocument(
        title=plan.title,
        year=year,
        intro=[Block.model_validate(block) for block in plan.intro],
        last_updated=annual.last_updated,
    )
    for pillar in pillars:
        pillar_section = PillarSection(name=pillar.name)
        doc.pillars.append(pillar_section)
        for objective in by_pillar[pillar.id or 0]:
            section = ObjectiveSection(
                title=objective.title,
                actions=actions_by_objective[objective.id or 0],
                actions_footnote=objective.actions_footnote,
            )
            pillar_section.objectives.append(section)
            found = report.reports.get(objective.id or 0)
            if found is None:
                continue
            report_id, intro = found
            section.year = year
            section.intro = intro
            section.active_agencies = [
                ActiveAgency(name=name, acronym=acronyms[agency_id])
                for agency_id, name in report.active.get(report_id, [])
            ]
            section.achievements, section.further_work = blocks.get(report_id, ([], []))
            section.milestones = lines.get(report_id, [])
    return doc


_SECTION_ORDER = {Section.ACHIEVEMENT: 0, Section.FURTHER_WORK: 1, Section.MILESTONE: 2}
