"""Rows for the agency form's tests: a small plan with a 2021 report and an open 2022 cycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlmodel import Session

from models.tables import (
    Action,
    Agency,
    AnnualReport,
    Contact,
    Cycle,
    EntryLink,
    Milestone,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    Pillar,
    Plan,
    ReportEntry,
    RequestState,
    Section,
    UpdateRequest,
)
from models.tokens import issue_token

NOW = datetime(2022, 2, 14, 21, 0, tzinfo=UTC)


@dataclass
class Scenario:
    plan_id: int
    cycle_id: int
    agency_id: int
    request_id: int
    objective_id: int
    second_objective_id: int
    milestone_ids: list[int]
    other_milestone_id: int
    token: str
    coordinator_email: str
    acronym: str


@dataclass
class PlanRows:
    plan: Plan
    agency_id: int
    objective_id: int
    second_objective_id: int
    milestone_ids: list[int]
    other_milestone_id: int
    coordinator_email: str
    contact_email: str
    acronym: str


def build_scenario(session: Session, now: datetime = NOW) -> Scenario:
    """A plan, its 2021 report, an agency leading two milestones, and an open 2022 cycle
    whose update request to that agency has a live link (the token is returned)."""
    rows = build_plan(session)
    assert rows.plan.id is not None
    cycle = Cycle(plan_id=rows.plan.id, year=2022, deadline=date(2022, 3, 31), opened_at=now)
    session.add(cycle)
    session.flush()
    assert cycle.id is not None
    request = UpdateRequest(
        cycle_id=cycle.id, agency_id=rows.agency_id, state=RequestState.SENT, created_at=now
    )
    session.add(request)
    session.flush()
    assert request.id is not None
    token = issue_token(session, request, now)
    session.commit()
    return scenario_of(rows, cycle.id, request.id, token)


def scenario_of(rows: PlanRows, cycle_id: int, request_id: int, token: str) -> Scenario:
    assert rows.plan.id is not None
    return Scenario(
        plan_id=rows.plan.id,
        cycle_id=cycle_id,
        agency_id=rows.agency_id,
        request_id=request_id,
        objective_id=rows.objective_id,
        second_objective_id=rows.second_objective_id,
        milestone_ids=rows.milestone_ids,
        other_milestone_id=rows.other_milestone_id,
        token=token,
        coordinator_email=rows.coordinator_email,
        acronym=rows.acronym,
    )


def build_plan(session: Session) -> PlanRows:
    """A plan and its 2021 report: MBIE (one contact) leads two milestones of the first
    objective; DIA leads one of the second and has the coordinator. Committed."""
    tag = uuid.uuid4().hex[:8]
    plan = Plan(slug=f"plan-{tag}", title="Plan of Action against Forced Labour")
    session.add(plan)
    session.flush()
    assert plan.id is not None
    pillar = Pillar(plan_id=plan.id, position=1, name="Prevention")
    session.add(pillar)
    session.flush()
    assert pillar.id is not None
    first = Objective(
        plan_id=plan.id,
        pillar_id=pillar.id,
        position=1,
        title=f"Undertake awareness raising and training {tag}",
    )
    second = Objective(
        plan_id=plan.id, pillar_id=pillar.id, position=2, title=f"Strengthen supply chains {tag}"
    )
    session.add_all([first, second])
    session.flush()
    assert first.id is not None and second.id is not None
    session.add_all(
        [
            Action(
                plan_id=plan.id,
                objective_id=first.id,
                position=1,
                number="1",
                text="Train frontline staff to identify trafficking.",
            ),
            Action(
                plan_id=plan.id,
                objective_id=second.id,
                position=2,
                number="2",
                text="Work with business on supply chain transparency.",
            ),
        ]
    )
    agency = Agency(acronym=f"MBIE{tag}", full_name="Hīkina Whakatutuki – Ministry of Business")
    other = Agency(acronym=f"DIA{tag}", full_name="Department of Internal Affairs")
    session.add_all([agency, other])
    session.flush()
    assert agency.id is not None and other.id is not None
    coordinator = Contact(
        agency_id=other.id,
        email=f"coordinator-{tag}@example.govt.nz",
        name="Aroha Coordinator",
        is_coordinator=True,
    )
    contact_email = f"lead-{tag}@mbie.test"
    session.add_all([coordinator, Contact(agency_id=agency.id, email=contact_email)])
    report = AnnualReport(plan_id=plan.id, year=2021)
    session.add(report)
    session.flush()
    assert report.id is not None
    first_report = ObjectiveReport(annual_report_id=report.id, objective_id=first.id)
    second_report = ObjectiveReport(annual_report_id=report.id, objective_id=second.id)
    session.add_all([first_report, second_report])
    session.flush()
    assert first_report.id is not None and second_report.id is not None
    session.add_all(
        [
            ObjectiveReportAgency(
                objective_report_id=first_report.id,
                agency_id=agency.id,
                position=1,
                name_as_written="MBIE",
            ),
            ObjectiveReportAgency(
                objective_report_id=second_report.id,
                agency_id=other.id,
                position=1,
                name_as_written="DIA",
            ),
        ]
    )
    achievement = ReportEntry(
        objective_report_id=first_report.id,
        section=Section.ACHIEVEMENT,
        position=1,
        text="Delivered training to 200 Immigration NZ staff.",
    )
    session.add_all(
        [
            achievement,
            ReportEntry(
                objective_report_id=first_report.id,
                section=Section.FURTHER_WORK,
                position=2,
                text="Extend training to labour inspectors.",
            ),
        ]
    )
    session.flush()
    assert achievement.id is not None
    session.add(
        EntryLink(
            entry_id=achievement.id,
            position=1,
            title="Training report",
            url="https://www.mbie.govt.nz/training",
        )
    )
    milestones = [
        Milestone(
            plan_id=plan.id,
            objective_id=first.id,
            lead_agency_id=agency.id,
            text="Publish guidance for employers on worker exploitation.",
            due_text="Quarter 1 2022",
            due_start=date(2022, 1, 1),
            due_end=date(2022, 3, 31),
            first_reported_year=2021,
        ),
        Milestone(
            plan_id=plan.id,
            objective_id=first.id,
            lead_agency_id=agency.id,
            text="Launch the awareness campaign in Te Reo Māori.",
            due_text="Quarter 2 2022",
            due_start=date(2022, 4, 1),
            due_end=date(2022, 6, 30),
            first_reported_year=2021,
        ),
    ]
    other_milestone = Milestone(
        plan_id=plan.id,
        objective_id=second.id,
        lead_agency_id=other.id,
        text="Review the supply chain legislation.",
        due_text="2022",
        due_start=date(2022, 1, 1),
        due_end=date(2022, 12, 31),
        first_reported_year=2021,
    )
    session.add_all([*milestones, other_milestone])
    session.commit()
    assert other_milestone.id is not None
    return PlanRows(
        plan=plan,
        agency_id=agency.id,
        objective_id=first.id,
        second_objective_id=second.id,
        milestone_ids=[m.id for m in milestones if m.id is not None],
        other_milestone_id=other_milestone.id,
        coordinator_email=coordinator.email,
        contact_email=contact_email,
        acronym=agency.acronym,
    )
