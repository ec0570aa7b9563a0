"""How rows are stored: enums by value, aware UTC datetimes, JSON lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlmodel import Session

from models.tables import Agency, Milestone, MilestoneStatus, Objective, Pillar, Plan


def test_enums_are_stored_by_value_and_datetimes_come_back_aware(session: Session) -> None:
    plan = Plan(slug="p", title="Plan")
    session.add(plan)
    session.flush()
    pillar = Pillar(plan_id=plan.id or 0, position=0, name="Prevention")
    session.add(pillar)
    session.flush()
    objective = Objective(plan_id=plan.id or 0, pillar_id=pillar.id or 0, position=0, title="O")
    session.add(objective)
    session.flush()
    auckland = timezone(timedelta(hours=13))
    milestone = Milestone(
        plan_id=plan.id or 0,
        objective_id=objective.id or 0,
        text="Tāmaki hui held.",
        status=MilestoneStatus.ON_TRACK,
        first_reported_year=2021,
        updated_at=datetime(2022, 3, 1, 9, 0, tzinfo=auckland),
    )
    session.add(milestone)
    session.flush()
    raw = session.connection().execute(
        sa.text("SELECT status FROM milestone WHERE id = :id"), {"id": milestone.id}
    )
    assert raw.scalar_one() == "on_track"
    session.expire_all()
    stored = session.get(Milestone, milestone.id)
    assert stored is not None
    assert stored.status is MilestoneStatus.ON_TRACK
    assert stored.updated_at == datetime(2022, 2, 28, 20, 0, tzinfo=UTC)
    assert stored.updated_at.tzinfo is not None
    assert stored.text == "Tāmaki hui held."


def test_json_lists_round_trip_when_reassigned(session: Session) -> None:
    agency = Agency(acronym="NZP", full_name="New Zealand Police", aliases=["Police"])
    session.add(agency)
    session.flush()
    agency.aliases = [*agency.aliases, "NZ Police"]
    session.flush()
    session.expire_all()
    stored = session.get(Agency, agency.id)
    assert stored is not None
    assert stored.aliases == ["Police", "NZ Police"]
