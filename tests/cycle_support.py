"""A small plan built by hand for the cycle tests, and helpers to look at what was claimed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from config.settings import Settings
from models.periods import parse_period
from models.tables import (
    Agency,
    AnnualReport,
    Contact,
    Milestone,
    MilestoneStatus,
    Notification,
    NotificationItem,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    Pillar,
    Plan,
)

NZ = ZoneInfo("Pacific/Auckland")
PLAN_TITLE = "Plan of Action against Forced Labour, People Trafficking and Slavery"


def nz(day: date | str, hour: int = 9, minute: int = 0) -> datetime:
    """An instant at local New Zealand time, in UTC."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return datetime.combine(day, time(hour, minute), NZ).astimezone(UTC)


def settings(**overrides: object) -> Settings:
    return Settings(base_url="https://reports.example.govt.nz", **overrides)  # type: ignore[arg-type]


@dataclass
class SmallPlan:
    plan: Plan
    agencies: dict[str, Agency]
    milestones: dict[str, Milestone]
    contacts: dict[str, Contact] = field(default_factory=dict)


def build_plan(session: Session, *, contacts: bool = True) -> SmallPlan:
    """Two pillars, three objectives, four agencies (DIA has no contacts; OT is only active on
    an objective), milestones due in 2021, 2022 and 2023."""
    created = datetime(2022, 1, 19, tzinfo=UTC)
    plan = Plan(slug="test-plan", title=PLAN_TITLE, created_at=created)
    session.add(plan)
    session.flush()
    assert plan.id is not None
    prevention = Pillar(plan_id=plan.id, position=1, name="Prevention")
    protection = Pillar(plan_id=plan.id, position=2, name="Protection")
    session.add_all([prevention, protection])
    session.flush()
    objectives = {
        "awareness": Objective(
            plan_id=plan.id,
            pillar_id=prevention.id or 0,
            position=1,
            title="Undertake awareness raising and training",
        ),
        "supply": Objective(
            plan_id=plan.id,
            pillar_id=prevention.id or 0,
            position=2,
            title="Address risks of exploitation in supply chains",
        ),
        "victims": Objective(
            plan_id=plan.id,
            pillar_id=protection.id or 0,
            position=1,
            title="Provide support & protection for <victims>",
        ),
    }
    session.add_all(objectives.values())
    agencies = {
        "MBIE": Agency(acronym="MBIE", full_name="Ministry of Business, Innovation and Employment"),
        "NZP": Agency(acronym="NZP", full_name="New Zealand Police", aliases=["Police"]),
        "DIA": Agency(acronym="DIA", full_name="Department of Internal Affairs"),
        "OT": Agency(acronym="OT", full_name="Oranga Tamariki"),
    }
    session.add_all(agencies.values())
    session.flush()
    agencies["INZ"] = Agency(
        acronym="INZ", full_name="Immigration New Zealand", parent_id=agencies["MBIE"].id
    )
    session.add(agencies["INZ"])
    session.flush()

    def milestone(
        objective: str, lead: str | None, due: str, text: str, **values: Any
    ) -> Milestone:
        period = parse_period(due)
        row = Milestone(
            plan_id=plan.id or 0,
            objective_id=objectives[objective].id or 0,
            lead_agency_id=agencies[lead].id if lead else None,
            text=text,
            due_text=period.canonical_text(),
            due_start=period.start,
            due_end=period.end,
            first_reported_year=2021,
            created_at=created,
            updated_at=created,
            **values,
        )
        session.add(row)
        return row

    milestones = {
        "research": milestone(
            "awareness", "MBIE", "Quarter 1 2022", "Complete research programme on migrant workers."
        ),
        "triage": milestone(
            "supply", "MBIE", "Quarter 1 2022", "Implement the joint INZ-ENZ triage model."
        ),
        "police": milestone(
            "victims",
            "NZP",
            "Quarter 1 2022",
            "Intelligence assessment of the trafficking <landscape>.",
        ),
        "done": milestone(
            "awareness",
            "MBIE",
            "Quarter 1 2022",
            "Publish guidance for employers.",
            status=MilestoneStatus.COMPLETED,
        ),
        "old": milestone("supply", "DIA", "December 2021", "Review of passport processes."),
        "december": milestone("awareness", "MBIE", "December 2022", "Run a training campaign."),
        "later": milestone("victims", "NZP", "2023", "Refresh the victim support model."),
    }
    report = AnnualReport(plan_id=plan.id, year=2021, last_updated=date(2022, 1, 19))
    session.add(report)
    session.flush()
    objective_report = ObjectiveReport(
        annual_report_id=report.id or 0, objective_id=objectives["victims"].id or 0
    )
    session.add(objective_report)
    session.flush()
    session.add(
        ObjectiveReportAgency(
            objective_report_id=objective_report.id or 0,
            agency_id=agencies["OT"].id or 0,
            position=1,
            name_as_written="Oranga Tamariki (OT)",
        )
    )
    session.flush()
    built = SmallPlan(plan=plan, agencies=agencies, milestones=milestones)
    if contacts:
        add_contacts(session, built)
    return built


def add_contacts(session: Session, built: SmallPlan) -> None:
    created = datetime(2022, 1, 20, tzinfo=UTC)
    rows = {
        "alice": Contact(
            agency_id=built.agencies["MBIE"].id or 0,
            email="alice@mbie.govt.nz",
            name="Alice",
            notify_url="json://hooks.example.org/mbie",
            created_at=created,
        ),
        "bob": Contact(
            agency_id=built.agencies["NZP"].id or 0,
            email="bob@police.govt.nz",
            name="Bob",
            created_at=created,
        ),
        "olive": Contact(
            agency_id=built.agencies["OT"].id or 0, email="olive@ot.govt.nz", created_at=created
        ),
        "carol": Contact(
            agency_id=built.agencies["MBIE"].id or 0,
            email="carol@coordination.govt.nz",
            name="Carol",
            is_coordinator=True,
            created_at=created,
        ),
    }
    session.add_all(rows.values())
    session.flush()
    built.contacts = rows


def notifications(session: Session, ids: list[int] | None = None) -> list[Notification]:
    query = select(Notification).order_by(col(Notification.id))
    if ids is not None:
        query = query.where(col(Notification.id).in_(ids))
    return list(session.exec(query).all())


def items(session: Session, notification_id: int) -> list[NotificationItem]:
    return list(
        session.exec(
            select(NotificationItem)
            .where(NotificationItem.notification_id == notification_id)
            .order_by(col(NotificationItem.idempotency_key))
        ).all()
    )


def to(session: Session, ids: list[int], email: str, channel: str = "email") -> list[Notification]:
    """The notifications among ``ids`` sent to ``email`` on ``channel``."""
    return [
        n
        for n in notifications(session, ids)
        if n.channel == channel and _email(session, n) == email
    ]


def _email(session: Session, notification: Notification) -> str | None:
    contact = session.get(Contact, notification.contact_id)
    return contact.email if contact else None
