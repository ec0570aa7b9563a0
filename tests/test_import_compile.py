"""Importing the real 2021 report into the database and compiling it back (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from models.compiler import build_document, milestone_as_of
from models.importer import import_report
from models.render import render
from models.report_text import parse_report
from models.tables import Agency, Milestone, MilestoneRevision

NOW = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)
LATER = datetime(2022, 2, 1, 9, 0, tzinfo=UTC)


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that an import changed nothing."""
    session.flush()
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for name, table in SQLModel.metadata.tables.items():
        rows = session.connection().execute(sa.select(table).order_by(*table.primary_key))
        tables[name] = [tuple(row) for row in rows]
    return tables


def published_lines(text: str) -> list[str]:
    """The published document's lines, headings normalised as compile writes them."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [
        "Annual implementation report 2021"
        if line.lower() == "annual implementation report 2021"
        else line
        for line in lines
    ]


def test_import_counts_what_the_report_holds(session: Session, report_2021_text: str) -> None:
    summary = import_report(session, report_2021_text, NOW)
    assert summary.counts() == {
        "pillars": 3,
        "objectives": 10,
        "actions": 29,
        "achievements": 37,
        "further_work": 17,
        "milestones": 32,
        "links": 14,
        "agencies": 8,
    }
    assert summary.objective_reports_written == 10


def test_importing_the_same_report_twice_changes_nothing(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    before = snapshot(session)
    again = import_report(session, report_2021_text, LATER)
    assert again.objective_reports_written == 0
    assert snapshot(session) == before


def test_lead_agencies_are_inferred_from_the_milestone_text(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    rows = session.exec(
        select(Milestone.text, Agency.acronym).join(
            Agency, col(Agency.id) == col(Milestone.lead_agency_id)
        )
    ).all()

    def lead(start: str) -> str:
        (acronym,) = {acronym for text, acronym in rows if text.startswith(start)}
        return acronym

    assert lead("Police plan to deliver") == "NZP"
    assert lead("INZ will complete") == "INZ"
    assert lead("Ministry of Justice to further") == "MoJ"
    assert lead("The Operating Model") == "ENZ"
    # Nothing named: the objective's first active agency.
    assert lead("Bali Process Disruption") == "MBIE"
    parents = {agency.acronym: agency.parent_id for agency in session.exec(select(Agency)).all()}
    mbie = session.exec(select(Agency).where(Agency.acronym == "MBIE")).one()
    assert parents["INZ"] == parents["ENZ"] == mbie.id
    assert "Ministry of Business, Innovation & Employment" in mbie.aliases


def test_delayed_from_becomes_a_revision_with_the_baseline(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    bali = session.exec(
        select(Milestone).where(col(Milestone.text).startswith("Bali Process Disruption"))
    ).one()
    revisions = session.exec(
        select(MilestoneRevision).where(MilestoneRevision.milestone_id == bali.id)
    ).all()
    assert [
        (r.previous_due_text, r.previous_start, r.previous_end, r.new_due_text) for r in revisions
    ] == [("Quarter 3-4 2021", date(2021, 7, 1), date(2021, 12, 31), "Quarter 1 2022")]
    assert (bali.due_text, bali.due_start, bali.due_end) == (
        "Quarter 1 2022",
        date(2022, 1, 1),
        date(2022, 3, 31),
    )


def test_compiled_text_gives_back_the_published_document(
    session: Session, report_2021_text: str
) -> None:
    summary = import_report(session, report_2021_text, NOW)
    compiled = render(build_document(session, summary.plan_id, 2021), "txt").decode()
    expected = published_lines(report_2021_text)
    # The first objective gains the "Upcoming milestones" heading its dated bullets lacked.
    first_milestone = expected.index(
        "- December 2021 – Information about migrant exploitation published to MBIE website "
        "in 13 languages."
    )
    expected.insert(first_milestone, "Upcoming milestones")
    assert compiled.splitlines() == expected


def test_importing_the_compiled_text_gives_the_same_data(
    session: Session, report_2021_text: str
) -> None:
    summary = import_report(session, report_2021_text, NOW)
    doc = build_document(session, summary.plan_id, 2021)
    compiled = render(doc, "txt").decode()
    before = snapshot(session)
    again = import_report(session, compiled, LATER)
    assert again.counts() == summary.counts()
    assert again.objective_reports_written == 0
    assert snapshot(session) == before
    reparsed = parse_report(compiled)
    assert reparsed.model_dump(exclude={"pillars"}) == doc.model_dump(exclude={"pillars"})


def test_a_later_revision_does_not_change_an_earlier_years_report(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    bali = session.exec(
        select(Milestone).where(col(Milestone.text).startswith("Bali Process Disruption"))
    ).one()
    first = session.exec(
        select(MilestoneRevision).where(MilestoneRevision.milestone_id == bali.id)
    ).one()
    second = MilestoneRevision(
        milestone_id=bali.id or 0,
        sequence=2,
        year=2022,
        previous_due_text="Quarter 1 2022",
        previous_start=date(2022, 1, 1),
        previous_end=date(2022, 3, 31),
        new_due_text="Quarter 4 2022",
        new_start=date(2022, 10, 1),
        new_end=date(2022, 12, 31),
        reason="Partner countries' borders closed",
        changed_by="someone@mbie.govt.nz",
        changed_at=LATER,
    )
    bali.due_text, bali.due_start, bali.due_end = (
        "Quarter 4 2022",
        date(2022, 10, 1),
        date(2022, 12, 31),
    )
    as_2021 = milestone_as_of(bali, [first, second], 2021, "MBIE")
    as_2022 = milestone_as_of(bali, [first, second], 2022, "MBIE")
    assert (as_2021.due, as_2021.delayed_from) == ("Quarter 1 2022", "Quarter 3-4 2021")
    # However many times it moved, the report shows the first baseline.
    assert (as_2022.due, as_2022.delayed_from) == ("Quarter 4 2022", "Quarter 3-4 2021")
    assert [r.new for r in as_2022.history] == ["Quarter 1 2022", "Quarter 4 2022"]

    # The compiled 2021 report reads the same from the database (its own loop, not this
    # function): the period Bali had then, its first baseline, only the revisions up to 2021.
    session.add_all([second, bali])
    session.flush()
    doc = build_document(session, bali.plan_id, 2021)
    (line,) = [
        m
        for p in doc.pillars
        for o in p.objectives
        for m in o.milestones
        if m.milestone_id == bali.id
    ]
    same = {"due", "start", "end", "delayed_from", "lead", "status", "history", "text"}
    assert line.model_dump(include=same) == as_2021.model_dump(include=same)
    assert (line.start, line.end) == (date(2022, 1, 1), date(2022, 3, 31))
    assert [r.year for r in line.history] == [2021]


def test_macrons_and_markup_survive_import_and_compile(
    session: Session, report_2021_text: str
) -> None:
    text = report_2021_text.replace(
        "- Encourage other government agencies",
        "- Hui in Tāmaki Makaurau <script>alert(1)</script> & Aotearoa.\n"
        "- Encourage other government agencies",
    )
    summary = import_report(session, text, NOW)
    doc = build_document(session, summary.plan_id, 2021)
    txt = render(doc, "txt").decode()
    assert "- Hui in Tāmaki Makaurau <script>alert(1)</script> & Aotearoa." in txt
    html = render(doc, "html").decode()
    assert "<script>alert(1)</script>" not in html
    assert "Tāmaki Makaurau &lt;script&gt;alert(1)&lt;/script&gt; &amp; Aotearoa." in html


def test_entries_belong_to_an_active_agency_of_their_objective(
    session: Session, report_2021_text: str
) -> None:
    summary = import_report(session, report_2021_text, NOW)
    doc = build_document(session, summary.plan_id, 2021)
    for objective in doc.objectives():
        active = {agency.acronym for agency in objective.active_agencies}
        for block in [*objective.achievements, *objective.further_work]:
            assert block.agency in active, (objective.title, block.text[:40], block.agency)
    by_text = {b.text[:30]: b.agency for o in doc.objectives() for b in o.achievements}
    # INZ is a business unit of MBIE, which answers for it.
    assert by_text["Joint Immigration NZ (INZ)-Emp"] == "MBIE"
    # The first agency named that is active on the objective: OT, not NZ Police.
    assert by_text["NZ Police (NZP) and OT Special"] == "OT"
    # NZ Police is active on the first objective and named first there.
    assert by_text["New training modules on people"] == "MBIE"
