"""Import a published report into the database: the plan's structure, its agencies, the
year's objective reports and the milestones with their delay history.

Idempotent: importing the same document again changes nothing. An objective report that
differs from what is stored is replaced (its entries), milestones are matched by objective
and text so their history is kept. All in the caller's transaction: nothing half-imported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, delete, select

from models.agencies import AgencyDirectory, AgencyInfo
from models.compiler import build_document
from models.document import Block, Link, MilestoneLine, ObjectiveSection, ReportDocument
from models.periods import parse_period
from models.report_text import parse_report
from models.tables import (
    Action,
    Agency,
    AnnualReport,
    EntryLink,
    EntryOrigin,
    EntryStyle,
    Milestone,
    MilestoneRevision,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    Pillar,
    Plan,
    ReportEntry,
    Section,
)

IMPORT_ACTOR = "import"


@dataclass(frozen=True)
class ImportSummary:
    plan_id: int
    year: int
    pillars: int
    objectives: int
    actions: int
    achievements: int
    further_work: int
    milestones: int
    links: int
    agencies: int
    # Objective reports written (new or replaced); 0 when the import changed nothing.
    objective_reports_written: int

    def counts(self) -> dict[str, int]:
        data = asdict(self)
        return {
            key: data[key]
            for key in (
                "pillars",
                "objectives",
                "actions",
                "achievements",
                "further_work",
                "milestones",
                "links",
                "agencies",
            )
        }


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80] or "plan"


def import_report(
    session: Session,
    text: str,
    now: datetime,
    *,
    directory: AgencyDirectory | None = None,
    actor: str = IMPORT_ACTOR,
) -> ImportSummary:
    """Parse ``text`` (the published format) and store it. Raises ImportFormatError."""
    return store_document(session, parse_report(text), now, directory=directory, actor=actor)


def attribute_agencies(doc: ReportDocument, directory: AgencyDirectory) -> None:
    """Fill in each milestone's lead and each entry's agency.

    A milestone's lead is the first agency its text names ("INZ will…"), else the objective's
    first active agency (a coordinator can correct it). An entry belongs to one of the
    objective's active agencies, the one that answers for it next year: the first active
    agency the text names (a business unit counts for its parent: INZ for MBIE), else the
    first active agency."""
    for objective in doc.objectives():
        for agency in objective.active_agencies:
            directory.add(AgencyInfo(agency.acronym, agency.name))
    matcher = directory.matcher()
    for objective in doc.objectives():
        active = [agency.acronym for agency in objective.active_agencies]
        fallback = active[0] if active else None
        for block in [*objective.achievements, *objective.further_work]:
            if block.agency is None:
                block.agency = _first_active(matcher.find_all(block.text), active, directory)
                block.agency = block.agency or fallback
        for milestone in objective.milestones:
            milestone.lead = milestone.lead or matcher.find(milestone.text) or fallback


def _first_active(named: list[str], active: list[str], directory: AgencyDirectory) -> str | None:
    for acronym in named:
        info = directory.get(acronym)
        for candidate in (acronym, info.parent if info else None):
            if candidate in active:
                return candidate
    return None


def _comparable(value: Any) -> Any:
    """A section as plain data without the fields only the database knows."""
    # "lead" too: an existing milestone keeps its lead (a coordinator may have corrected the
    # importer's guess), so a guess that differs is no change to write.
    ignored = {
        "entry_id",
        "milestone_id",
        "history",
        "status",
        "not_updated",
        "start",
        "end",
        "lead",
    }
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in ignored}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


class _Store:
    def __init__(self, session: Session, doc: ReportDocument, now: datetime, actor: str) -> None:
        self.session = session
        self.doc = doc
        self.now = now
        self.actor = actor

    def agencies(self, directory: AgencyDirectory) -> dict[str, Agency]:
        named: dict[str, str] = {}
        for objective in self.doc.objectives():
            for active in objective.active_agencies:
                named.setdefault(active.acronym, active.name)
            for item in [*objective.achievements, *objective.further_work]:
                if item.agency:
                    named.setdefault(item.agency, item.agency)
            for milestone in objective.milestones:
                if milestone.lead:
                    named.setdefault(milestone.lead, milestone.lead)
        # Parents of business units (INZ, ENZ → MBIE) come along.
        for acronym in list(named):
            info = directory.get(acronym)
            if info and info.parent:
                named.setdefault(info.parent, info.parent)

        existing = {
            agency.acronym: agency
            for agency in self.session.exec(
                select(Agency).where(col(Agency.acronym).in_(list(named)))
            )
        }
        for acronym, written in named.items():
            info = directory.get(acronym)
            agency = existing.get(acronym)
            if agency is None:
                agency = Agency(
                    acronym=acronym,
                    full_name=info.full_name if info else written,
                    aliases=list(info.aliases) if info else [],
                )
                self.session.add(agency)
                existing[acronym] = agency
            names = [written] if written != acronym else []
            new_aliases = [
                name for name in names if name != agency.full_name and name not in agency.aliases
            ]
            if new_aliases:
                agency.aliases = [*agency.aliases, *new_aliases]
        self.session.flush()
        for acronym, agency in existing.items():
            info = directory.get(acronym)
            if agency.parent_id is None and info and info.parent in existing:
                agency.parent_id = existing[info.parent].id
        return existing

    def plan(self) -> Plan:
        slug = slugify(self.doc.title)
        plan = self.session.exec(select(Plan).where(Plan.slug == slug)).first()
        intro = [
            block.model_dump(exclude={"entry_id", "agency", "not_updated"})
            for block in self.doc.intro
        ]
        if plan is None:
            plan = Plan(slug=slug, title=self.doc.title, intro=intro, created_at=self.now)
            self.session.add(plan)
            self.session.flush()
        elif plan.intro != intro:
            plan.intro = intro
        return plan

    def structure(self, plan: Plan) -> dict[str, Objective]:
        """Pillars, objectives and actions, matched by name, title and number."""
        assert plan.id is not None
        session = self.session
        pillars = {p.name: p for p in session.exec(select(Pillar).where(Pillar.plan_id == plan.id))}
        objectives = {
            o.title: o for o in session.exec(select(Objective).where(Objective.plan_id == plan.id))
        }
        actions = {
            a.number: a for a in session.exec(select(Action).where(Action.plan_id == plan.id))
        }
        position = 0
        for pillar_position, section in enumerate(self.doc.pillars):
            pillar = pillars.get(section.name)
            if pillar is None:
                pillar = Pillar(plan_id=plan.id, name=section.name, position=pillar_position)
                session.add(pillar)
                session.flush()
                pillars[section.name] = pillar
            elif pillar.position != pillar_position:
                pillar.position = pillar_position
            assert pillar.id is not None
            for objective_section in section.objectives:
                position += 1
                objective = objectives.get(objective_section.title)
                if objective is None:
                    objective = Objective(
                        plan_id=plan.id,
                        pillar_id=pillar.id,
                        position=position,
                        title=objective_section.title,
                        actions_footnote=objective_section.actions_footnote,
                    )
                    session.add(objective)
                    session.flush()
                    objectives[objective.title] = objective
                else:
                    _set(
                        objective,
                        pillar_id=pillar.id,
                        position=position,
                        actions_footnote=objective_section.actions_footnote,
                    )
                assert objective.id is not None
                for action_position, line in enumerate(objective_section.actions):
                    action = actions.get(line.number)
                    values: dict[str, Any] = {
                        "objective_id": objective.id,
                        "position": action_position,
                        "text": line.text,
                        "footnoted": line.footnoted,
                        "incorporated_into": line.incorporated_into,
                    }
                    if action is None:
                        action = Action(plan_id=plan.id, number=line.number, **values)
                        session.add(action)
                        actions[line.number] = action
                    else:
                        _set(action, **values)
        session.flush()
        return objectives

    def objective_reports(
        self,
        plan: Plan,
        objectives: dict[str, Objective],
        agencies: dict[str, Agency],
    ) -> int:
        assert plan.id is not None
        session = self.session
        year = self.doc.year
        annual = session.exec(
            select(AnnualReport).where(AnnualReport.plan_id == plan.id, AnnualReport.year == year)
        ).first()
        stored: dict[str, ObjectiveSection] = {}
        if annual is None:
            annual = AnnualReport(
                plan_id=plan.id,
                year=year,
                last_updated=self.doc.last_updated,
                created_at=self.now,
            )
            session.add(annual)
            session.flush()
        else:
            annual.last_updated = self.doc.last_updated
            stored = {o.title: o for o in build_document(session, plan.id, year).objectives()}
        assert annual.id is not None

        reports = {
            r.objective_id: r
            for r in session.exec(
                select(ObjectiveReport).where(ObjectiveReport.annual_report_id == annual.id)
            )
        }
        milestones = {
            (m.objective_id, m.text): m
            for m in session.exec(select(Milestone).where(Milestone.plan_id == plan.id))
        }
        written = 0
        for section in self.doc.objectives():
            if section.year is None:
                continue
            objective = objectives[section.title]
            assert objective.id is not None
            known = stored.get(section.title)
            if (
                known is not None
                and known.year is not None
                and _comparable(known.model_dump()) == _comparable(section.model_dump())
            ):
                continue
            report = reports.get(objective.id)
            if report is None:
                report = ObjectiveReport(annual_report_id=annual.id, objective_id=objective.id)
                session.add(report)
            else:
                self._clear(report)
            report.intro = section.intro
            session.flush()
            assert report.id is not None
            for position, active in enumerate(section.active_agencies):
                session.add(
                    ObjectiveReportAgency(
                        objective_report_id=report.id,
                        agency_id=_id(agencies[active.acronym]),
                        position=position,
                        name_as_written=active.name,
                    )
                )
            entries: list[tuple[ReportEntry, list[Link]]] = []
            for block_section, blocks in (
                (Section.ACHIEVEMENT, section.achievements),
                (Section.FURTHER_WORK, section.further_work),
            ):
                for position, block in enumerate(blocks):
                    entries.append(
                        (
                            self._block_entry(report.id, block_section, position, block, agencies),
                            block.links,
                        )
                    )
            # New milestones of the objective in one flush (PostgreSQL batches the INSERTs),
            # then their "(Delayed from …)" baselines, which need their ids.
            created: list[tuple[Milestone, MilestoneLine]] = []
            for line in section.milestones:
                if (objective.id, line.text) not in milestones:
                    milestone = self._milestone(plan.id, objective.id, line, agencies)
                    milestones[(objective.id, line.text)] = milestone
                    created.append((milestone, line))
            session.flush()
            for milestone, line in created:
                self._baseline(milestone, line)
            for position, line in enumerate(section.milestones):
                milestone = milestones[(objective.id, line.text)]
                entries.append(
                    (
                        ReportEntry(
                            objective_report_id=report.id,
                            section=Section.MILESTONE,
                            position=position,
                            milestone_id=milestone.id,
                            agency_id=milestone.lead_agency_id,
                            origin=EntryOrigin.IMPORTED,
                            updated_by=self.actor,
                            updated_at=self.now,
                        ),
                        line.links,
                    )
                )
            session.add_all([entry for entry, _ in entries])
            session.flush()
            for entry, links in entries:
                for position, link in enumerate(links):
                    session.add(
                        EntryLink(
                            entry_id=_id(entry),
                            position=position,
                            title=link.title,
                            url=link.url,
                            site=link.site,
                        )
                    )
            written += 1
        session.flush()
        return written

    def _block_entry(
        self,
        report_id: int,
        section: Section,
        position: int,
        block: Block,
        agencies: dict[str, Agency],
    ) -> ReportEntry:
        return ReportEntry(
            objective_report_id=report_id,
            section=section,
            position=position,
            style=EntryStyle(block.style),
            text=block.text,
            agency_id=agencies[block.agency].id if block.agency else None,
            origin=EntryOrigin.IMPORTED,
            updated_by=self.actor,
            updated_at=self.now,
        )

    def _milestone(
        self, plan_id: int, objective_id: int, line: MilestoneLine, agencies: dict[str, Agency]
    ) -> Milestone:
        milestone = Milestone(
            plan_id=plan_id,
            objective_id=objective_id,
            lead_agency_id=agencies[line.lead].id if line.lead else None,
            text=line.text,
            due_text=line.due,
            due_start=line.start,
            due_end=line.end,
            first_reported_year=self.doc.year,
            created_at=self.now,
            updated_at=self.now,
        )
        self.session.add(milestone)
        return milestone

    def _baseline(self, milestone: Milestone, line: MilestoneLine) -> None:
        """The revision that "(Delayed from X)" stands for: from X to the current period."""
        if line.delayed_from:
            previous_start: date | None = None
            previous_end: date | None = None
            try:
                baseline = parse_period(line.delayed_from)
                previous_start, previous_end = baseline.start, baseline.end
            except ValueError:
                pass  # an unreadable baseline is kept as text, undated
            self.session.add(
                MilestoneRevision(
                    milestone_id=_id(milestone),
                    sequence=1,
                    year=self.doc.year,
                    previous_due_text=line.delayed_from,
                    previous_start=previous_start,
                    previous_end=previous_end,
                    new_due_text=line.due,
                    new_start=line.start,
                    new_end=line.end,
                    reason=None,
                    changed_by=self.actor,
                    changed_at=self.now,
                )
            )

    def _clear(self, report: ObjectiveReport) -> None:
        session = self.session
        # The rows are about to change under the compile's digest of them.
        report.draft_digest = None
        session.add(report)
        entry_ids = select(ReportEntry.id).where(ReportEntry.objective_report_id == report.id)
        session.exec(delete(EntryLink).where(col(EntryLink.entry_id).in_(entry_ids)))
        session.exec(delete(ReportEntry).where(col(ReportEntry.objective_report_id) == report.id))
        session.exec(
            delete(ObjectiveReportAgency).where(
                col(ObjectiveReportAgency.objective_report_id) == report.id
            )
        )


def _id(row: Agency | ReportEntry | Milestone) -> int:
    assert row.id is not None
    return row.id


def _set(row: Any, **values: Any) -> None:
    """Assign only what differs, so an unchanged import writes nothing."""
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)


def store_document(
    session: Session,
    doc: ReportDocument,
    now: datetime,
    *,
    directory: AgencyDirectory | None = None,
    actor: str = IMPORT_ACTOR,
) -> ImportSummary:
    directory = directory or AgencyDirectory.load()
    attribute_agencies(doc, directory)
    store = _Store(session, doc, now, actor)
    agencies = store.agencies(directory)
    plan = store.plan()
    objectives = store.structure(plan)
    written = store.objective_reports(plan, objectives, agencies)
    assert plan.id is not None
    all_objectives = doc.objectives()
    return ImportSummary(
        plan_id=plan.id,
        year=doc.year,
        pillars=len(doc.pillars),
        objectives=len(all_objectives),
        actions=sum(len(o.actions) for o in all_objectives),
        achievements=sum(len(o.achievements) for o in all_objectives),
        further_work=sum(len(o.further_work) for o in all_objectives),
        milestones=sum(len(o.milestones) for o in all_objectives),
        links=sum(
            sum(len(block.links) for block in [*o.achievements, *o.further_work])
            + sum(len(milestone.links) for milestone in o.milestones)
            for o in all_objectives
        ),
        agencies=len(agencies),
        objective_reports_written=written,
    )
