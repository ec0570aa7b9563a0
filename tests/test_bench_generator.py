"""The benchmark's plan generator writes documents the real parser and importer accept, with
the sizes asked for, and the same text for the same seed."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, col, select

from bench.generate_plan import generate_report_text, main, make_agencies
from models.compiler import build_document
from models.importer import import_report
from models.render import Format, render
from models.report_text import parse_report
from models.tables import Agency, Milestone, MilestoneRevision

NOW = datetime(2022, 1, 19, 9, 0, tzinfo=UTC)
SMALL = {"agencies": 3, "actions": 10, "milestones": 30}


def test_small_plan_parses_with_the_sizes_asked_for() -> None:
    doc = parse_report(generate_report_text(**SMALL, seed=7))

    objectives = doc.objectives()
    assert doc.year == 2021
    assert 3 <= len(doc.pillars) <= 6
    assert sum(len(o.actions) for o in objectives) == 10
    assert sum(len(o.milestones) for o in objectives) == 30
    active = {a.acronym for o in objectives for a in o.active_agencies}
    assert active == {a.acronym for a in make_agencies(3)}
    assert doc.last_updated is not None and doc.last_updated.isoformat() == "2022-01-19"


def test_large_plan_has_every_shape_the_importer_must_handle() -> None:
    text = generate_report_text(agencies=20, actions=200, milestones=2000, seed=3)
    doc = parse_report(text)
    objectives = doc.objectives()
    milestones = [m for o in objectives for m in o.milestones]

    assert len(milestones) == 2000
    assert sum(len(o.actions) for o in objectives) == 200
    assert len({a.acronym for o in objectives for a in o.active_agencies}) == 20
    assert any(m.delayed_from for m in milestones)
    assert any(m.due is not None and m.start is None for m in milestones)  # "Ongoing"
    dues = [m.due or "" for m in milestones]
    assert any(re.fullmatch(r"Quarter \d \d{4}", d) for d in dues)
    assert any(re.fullmatch(r"Q\d \d{4}", d) for d in dues)
    assert any(re.fullmatch(r"Quarter \d-\d \d{4}", d) for d in dues)
    assert any(re.fullmatch(r"[A-Z][a-z]+ \d{4}", d) for d in dues)
    assert any(re.fullmatch(r"\d{4}", d) for d in dues)
    assert any(link.site is None for o in objectives for b in o.achievements for link in b.links)
    assert any(not o.milestones for o in objectives)  # "None identified at this stage."
    assert any(a.number.startswith("N") and a.footnoted for o in objectives for a in o.actions)
    assert any(a.incorporated_into for o in objectives for a in o.actions)
    assert "Annual implementation Report 2021" in text
    assert "Annual implementation report 2021" in text
    assert "Tāmaki" in text and "&" in text
    # The first objective's milestones follow "Areas for further work" without a heading.
    assert objectives[0].milestones


def test_same_seed_same_text_other_seed_other_text() -> None:
    assert generate_report_text(**SMALL, seed=5) == generate_report_text(**SMALL, seed=5)
    assert generate_report_text(**SMALL, seed=5) != generate_report_text(**SMALL, seed=6)


def test_acronyms_are_unique_letters() -> None:
    acronyms = [a.acronym for a in make_agencies(800)]
    assert len(set(acronyms)) == 800
    assert all(a.isalpha() and a.isupper() for a in acronyms)
    assert len({a.name for a in make_agencies(800)}) == 800


def test_small_plan_imports_and_leads_come_from_the_text(session: Session) -> None:
    text = generate_report_text(**SMALL, seed=7)
    doc = parse_report(text)

    summary = import_report(session, text, NOW)

    assert summary.actions == 10
    assert summary.milestones == 30
    assert summary.objectives == len(doc.objectives())
    stored = session.exec(select(Milestone).where(Milestone.plan_id == summary.plan_id)).all()
    assert len(stored) == 30
    acronyms = {a.id: a.acronym for a in session.exec(select(Agency))}
    for milestone in stored:
        named = re.match(r"(G[A-Z]+) will ", milestone.text)
        if named:
            assert acronyms[milestone.lead_agency_id] == named[1], milestone.text
    delayed = sum(1 for o in doc.objectives() for m in o.milestones if m.delayed_from)
    revisions = session.exec(
        select(MilestoneRevision).where(
            col(MilestoneRevision.milestone_id).in_([m.id for m in stored])
        )
    ).all()
    assert len(revisions) == delayed

    compiled = render(build_document(session, summary.plan_id, summary.year), Format.TXT)
    again = parse_report(compiled.decode("utf-8"))
    assert [m.text for o in again.objectives() for m in o.milestones] == [
        m.text for o in doc.objectives() for m in o.milestones
    ]


def test_cli_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "plan.txt"
    assert main(["--agencies", "3", "--actions", "10", "--milestones", "30", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == generate_report_text(**SMALL)
