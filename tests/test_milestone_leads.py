"""A coordinator corrects who leads a milestone: on the real 2021 report, on both databases,
through the domain function and the command line."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models.compiler import build_document
from models.contacts import ContactError, add_contact, find_agency
from models.cycles import find_plan, open_cycle
from models.importer import import_report
from models.milestone_leads import LEAD_CHANGED, LeadError, change_lead, list_milestones
from models.sweep import sweep
from models.tables import Agency, AuditEvent, Milestone, Notification, RequestState, UpdateRequest
from tests.cycle_support import nz, settings
from tests.test_cycle_cli import REPORT, cli, run  # noqa: F401  (the cli fixture)

NOW = datetime(2022, 1, 25, tzinfo=UTC)


def _guessed_for_mbie(session: Session) -> Milestone:
    """A milestone the importer gave MBIE whose text names neither MBIE nor its units."""
    plan = find_plan(session)
    mbie = find_agency(session, "MBIE")
    for row in list_milestones(session, plan, agency=mbie):
        if not any(name in row.text for name in ("MBIE", "INZ", "ENZ", "Employment NZ")):
            found = session.get(Milestone, row.id)
            assert found is not None
            return found
    raise AssertionError("the 2021 report has no milestone MBIE leads by default")


def test_listing_filters_by_lead_and_text(session: Session, report_2021_text: str) -> None:
    import_report(session, report_2021_text, NOW)
    plan = find_plan(session)
    every = list_milestones(session, plan)
    assert len(every) == session.exec(select(Milestone)).all().__len__()
    inz = list_milestones(session, plan, agency=find_agency(session, "INZ"))
    assert inz and {row.lead for row in inz} == {"INZ"}
    assert any("Irregular Migration Liaison Officers" in row.text for row in inz)
    triage = list_milestones(session, plan, search="TRIAGE AND REPORTING MODEL")
    assert [row.lead for row in triage] == ["INZ"]
    assert triage[0].due == "Quarter 1 2022"


def test_a_corrected_lead_is_audited_shown_and_kept_by_a_reimport(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    milestone = _guessed_for_mbie(session)
    assert milestone.id is not None
    change = change_lead(
        session, milestone.id, "Police", NOW, "coordinator@example.govt.nz", reason="NZP runs it"
    )
    assert change.previous is not None and change.previous.acronym == "MBIE"
    assert change.lead.acronym == "NZP"
    assert change.added_request is None  # no cycle open

    session.refresh(milestone)
    assert milestone.lead_agency_id == find_agency(session, "NZP").id
    (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == LEAD_CHANGED)).all()
    assert event.subject == f"milestone:{milestone.id}"
    assert event.actor == "coordinator@example.govt.nz"
    assert event.detail == {"from": "MBIE", "to": "NZP", "reason": "NZP runs it"}
    plan_id = find_plan(session).id or 0
    lines = [
        line
        for objective in build_document(session, plan_id, 2021).objectives()
        for line in objective.milestones
        if line.milestone_id == milestone.id
    ]
    assert [line.lead for line in lines] == ["NZP"]

    # The same report again: nothing to write, and the correction stands.
    again = import_report(session, report_2021_text, NOW)
    assert again.objective_reports_written == 0
    session.refresh(milestone)
    assert milestone.lead_agency_id == find_agency(session, "NZP").id


def test_a_new_lead_without_a_request_in_the_open_cycle_gets_one_from_the_next_sweep(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    customs = Agency(acronym="NZCS", full_name="New Zealand Customs Service", aliases=["Customs"])
    session.add(customs)
    session.flush()
    add_contact(session, customs, "cass@customs.govt.nz", NOW, name="Cass")
    plan = find_plan(session)
    open_cycle(session, plan, 2022, date(2022, 6, 30), nz("2022-02-01"), "test")
    assert customs.id not in set(session.exec(select(UpdateRequest.agency_id)).all())

    milestone = _guessed_for_mbie(session)
    assert milestone.id is not None
    change = change_lead(session, milestone.id, "customs", nz("2022-02-02"), "coordinator")
    assert change.added_request is not None and change.cycle is not None
    assert change.added_request.state is RequestState.PENDING
    assert change.cycle.year == 2022

    swept = sweep(session, nz("2022-02-03"), settings())
    assert swept.update_requests == 1
    (sent,) = session.exec(
        select(Notification).where(
            col(Notification.id).in_(swept.notification_ids),
            Notification.recipient == "cass@customs.govt.nz",
        )
    ).all()
    assert sent.kind == "update_request" and sent.agency_id == customs.id

    # A second correction to the same agency adds nothing more.
    other = _guessed_for_mbie(session)
    assert other.id is not None
    assert change_lead(session, other.id, "NZCS", nz("2022-02-04"), "c").added_request is None


def test_bad_corrections_say_what_is_wrong_and_change_nothing(
    session: Session, report_2021_text: str
) -> None:
    import_report(session, report_2021_text, NOW)
    milestone = _guessed_for_mbie(session)
    assert milestone.id is not None
    with pytest.raises(LeadError, match="no milestone 999999"):
        change_lead(session, 999_999, "NZP", NOW, "c")
    with pytest.raises(ContactError, match="no agency 'Nowhere'"):
        change_lead(session, milestone.id, "Nowhere", NOW, "c")
    with pytest.raises(LeadError, match="MBIE already leads milestone"):
        change_lead(session, milestone.id, "mbie", NOW, "c")
    assert session.exec(select(AuditEvent).where(AuditEvent.action == LEAD_CHANGED)).all() == []


def test_the_milestone_commands(cli: CliRunner) -> None:  # noqa: F811
    run(cli, "import", str(REPORT))
    listed = run(cli, "milestone", "list", "--agency", "INZ")
    assert "Irregular Migration Liaison Officers" in listed and "milestone(s)" in listed
    triage = run(cli, "milestone", "list", "--search", "triage and reporting model")
    (line,) = [line for line in triage.splitlines() if "triage" in line]
    number, due = line.split()[0], line.split()[1:4]
    assert due == ["Quarter", "1", "2022"] and " INZ " in line
    changed = run(cli, "milestone", "lead", number, "ENZ", "--reason", "ENZ runs the triage")
    assert f"milestone {number}: ENZ leads it now (was INZ)" in changed
    assert " ENZ " in run(cli, "milestone", "list", "--search", "triage and reporting model")
    added = run(cli, "agency", "add", "NZCS", "New Zealand Customs Service", "--alias", "Customs")
    assert "added NZCS (New Zealand Customs Service)" in added
    moved = run(cli, "milestone", "lead", number, "customs")
    assert f"milestone {number}: NZCS leads it now (was ENZ)" in moved
    assert "NZCS" in run(cli, "agency", "list")
    unit = run(cli, "agency", "add", "HSU", "Health and Safety Unit", "--parent", "mbie")
    assert "added HSU (Health and Safety Unit, part of MBIE)" in unit
    assert "'Customs' already names NZCS" in run(cli, "agency", "add", "CUS", "Customs", code=1)
    assert "no milestone 999999" in run(cli, "milestone", "lead", "999999", "NZP", code=1)
    planned = run(cli, "milestone", "list", "--status", "planned")
    assert " planned " in planned and " completed " not in planned
    assert "no milestones match" in run(cli, "milestone", "list", "--status", "completed")
    assert "status 'late': one of" in run(cli, "milestone", "list", "--status", "late", code=1)
    assert "no agency 'XYZ'" in run(cli, "milestone", "list", "--agency", "XYZ", code=1)


def test_listing_by_status_finds_what_slipped(session: Session, report_2021_text: str) -> None:
    import_report(session, report_2021_text, NOW)
    plan = find_plan(session)
    add_contact(session, find_agency(session, "MBIE"), "alice@mbie.govt.nz", NOW)
    open_cycle(session, plan, 2022, date(2022, 6, 30), nz("2022-02-01"), "test")
    assert list_milestones(session, plan, status="slipped") == []
    swept = sweep(session, nz("2022-03-01"), settings())
    slipped = list_milestones(session, plan, status="slipped")
    assert sorted(row.id for row in slipped) == sorted(swept.slipped_milestone_ids)
    assert slipped and {row.label for row in slipped} == {"slipped"}
    assert {row.due for row in slipped} == {"December 2021"}
    planned = list_milestones(session, plan, status="planned")
    assert planned and all(row.status.value == "planned" for row in planned)
    assert {row.id for row in slipped} <= {row.id for row in planned}
    assert list_milestones(session, plan, status="completed") == []
    with pytest.raises(LeadError, match="status 'late': one of planned, on_track"):
        list_milestones(session, plan, status="late")
