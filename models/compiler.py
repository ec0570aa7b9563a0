"""Build a year's ReportDocument from the database, in a fixed number of queries whatever
the plan's size (one per table, never one per row)."""

from __future__ import annotations

from collections import defaultdict

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


def milestone_as_of(
    milestone: Milestone, revisions: list[MilestoneRevision], year: int, lead: str | None
) -> MilestoneLine:
    """The milestone as the report of ``year`` shows it: the due period it had then, and
    "(Delayed from …)" with the first baseline of the revisions made up to that year."""
    revisions = sorted(revisions, key=lambda r: r.sequence)
    known = [r for r in revisions if r.year <= year]
    later = [r for r in revisions if r.year > year]
    if later:
        due, start, end = later[0].previous_due_text, later[0].previous_start, later[0].previous_end
    else:
        due, start, end = milestone.due_text, milestone.due_start, milestone.due_end
    return MilestoneLine(
        text=milestone.text,
        due=due,
        start=start,
        end=end,
        delayed_from=known[0].previous_due_text if known else None,
        lead=lead,
        status=milestone.status.value,
        history=[
            Revision(
                year=r.year,
                previous=r.previous_due_text,
                new=r.new_due_text,
                reason=r.reason,
                changed_by=r.changed_by,
            )
            for r in known
        ],
        milestone_id=milestone.id,
    )


def find_plan(session: Session, slug: str | None = None) -> Plan:
    """The plan named by ``slug``, or the only plan there is."""
    query = select(Plan).order_by(col(Plan.id))
    if slug:
        query = query.where(Plan.slug == slug)
    plans = list(session.exec(query.limit(2)))
    if not plans:
        raise ReportNotFound(
            f"no plan {slug!r} in the database"
            if slug
            else "no plan in the database yet: import a report first (reportcycle import PATH)"
        )
    if len(plans) > 1 and not slug:
        raise ReportNotFound("several plans in the database: name one with --plan")
    return plans[0]


def build_document(session: Session, plan_id: int, year: int) -> ReportDocument:
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
    actions_by_objective: dict[int, list[Action]] = defaultdict(list)
    for action in session.exec(
        select(Action).where(Action.plan_id == plan_id).order_by(col(Action.position))
    ):
        actions_by_objective[action.objective_id].append(action)

    acronyms = {a.id: a.acronym for a in session.exec(select(Agency))}
    reports = {
        r.objective_id: r
        for r in session.exec(
            select(ObjectiveReport).where(ObjectiveReport.annual_report_id == annual.id)
        )
    }
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual.id)
    active: dict[int, list[ObjectiveReportAgency]] = defaultdict(list)
    for row in session.exec(
        select(ObjectiveReportAgency)
        .where(col(ObjectiveReportAgency.objective_report_id).in_(report_ids))
        .order_by(col(ObjectiveReportAgency.position))
    ):
        active[row.objective_report_id].append(row)

    entries: dict[int, list[ReportEntry]] = defaultdict(list)
    for entry in session.exec(
        select(ReportEntry)
        .where(col(ReportEntry.objective_report_id).in_(report_ids))
        .order_by(col(ReportEntry.position), col(ReportEntry.id))
    ):
        entries[entry.objective_report_id].append(entry)
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(report_ids))
    links: dict[int, list[Link]] = defaultdict(list)
    for link in session.exec(
        select(EntryLink)
        .where(col(EntryLink.entry_id).in_(entry_ids))
        .order_by(col(EntryLink.position))
    ):
        links[link.entry_id].append(Link(title=link.title, url=link.url, site=link.site))
    milestone_ids = select(ReportEntry.milestone_id).where(
        col(ReportEntry.objective_report_id).in_(report_ids),
        col(ReportEntry.milestone_id).is_not(None),
    )
    milestones = {
        m.id: m for m in session.exec(select(Milestone).where(col(Milestone.id).in_(milestone_ids)))
    }
    revisions: dict[int, list[MilestoneRevision]] = defaultdict(list)
    for revision in session.exec(
        select(MilestoneRevision).where(col(MilestoneRevision.milestone_id).in_(milestone_ids))
    ):
        revisions[revision.milestone_id].append(revision)

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
                actions=[
                    ActionLine(
                        number=a.number,
                        text=a.text,
                        footnoted=a.footnoted,
                        incorporated_into=a.incorporated_into,
                    )
                    for a in actions_by_objective[objective.id or 0]
                ],
                actions_footnote=objective.actions_footnote,
            )
            pillar_section.objectives.append(section)
            report = reports.get(objective.id or 0)
            if report is None:
                continue
            assert report.id is not None
            section.year = year
            section.intro = report.intro
            section.active_agencies = [
                ActiveAgency(name=row.name_as_written, acronym=acronyms[row.agency_id])
                for row in active[report.id]
            ]
            ordered = sorted(
                entries[report.id], key=lambda e: (_SECTION_ORDER[e.section], e.position)
            )
            for entry in ordered:
                agency = acronyms.get(entry.agency_id) if entry.agency_id else None
                if entry.section is Section.MILESTONE:
                    milestone = milestones[entry.milestone_id]
                    line = milestone_as_of(
                        milestone,
                        revisions[milestone.id or 0],
                        year,
                        acronyms.get(milestone.lead_agency_id)
                        if milestone.lead_agency_id
                        else None,
                    )
                    line.links = links[entry.id or 0]
                    line.entry_id = entry.id
                    line.not_updated = entry.not_updated
                    section.milestones.append(line)
                    continue
                block = Block(
                    text=entry.text or "",
                    style=entry.style.value,
                    links=links[entry.id or 0],
                    agency=agency,
                    not_updated=entry.not_updated,
                    entry_id=entry.id,
                )
                target = (
                    section.achievements
                    if entry.section is Section.ACHIEVEMENT
                    else section.further_work
                )
                target.append(block)
    return doc


_SECTION_ORDER = {Section.ACHIEVEMENT: 0, Section.FURTHER_WORK: 1, Section.MILESTONE: 2}
