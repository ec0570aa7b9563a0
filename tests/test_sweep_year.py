"""A whole year of daily sweeps over the imported 2021 report, with a simulated clock."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, col, select

from models.clock import SimulatedClock
from models.cycles import open_cycle
from models.importer import import_report
from models.messages import render_message
from models.policy import is_working_day
from models.sweep import sweep
from models.tables import (
    Agency,
    Contact,
    Milestone,
    MilestoneStatus,
    Notification,
    NotificationItem,
    Plan,
    RequestState,
    UpdateRequest,
)
from tests.cycle_support import NZ, nz, settings


def test_a_year_of_sweeps_on_the_2021_report(session: Session, report_2021_text: str) -> None:
    summary = import_report(session, report_2021_text, datetime(2022, 1, 20, tzinfo=UTC))
    agencies = session.exec(select(Agency)).all()
    for agency in agencies:
        session.add(Contact(agency_id=agency.id or 0, email=f"{agency.acronym.lower()}@x.govt.nz"))
    session.add(
        Contact(agency_id=agencies[0].id or 0, email="coord@x.govt.nz", is_coordinator=True)
    )
    session.flush()
    plan = session.get(Plan, summary.plan_id)
    assert plan is not None
    opened = open_cycle(session, plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    requests = {r.agency.acronym: r.request for r in opened.requests}
    q1 = session.exec(
        select(Milestone).where(
            Milestone.due_start == date(2022, 1, 1),
            Milestone.due_end == date(2022, 3, 31),
            col(Milestone.status).not_in([MilestoneStatus.COMPLETED, MilestoneStatus.DROPPED]),
        )
    ).all()
    assert len(q1) >= 5, "the 2021 report has several Quarter 1 2022 milestones"
    # MoJ answers early (it leads a milestone due later in 2022): nothing more reaches it.
    submitter = "MoJ"
    submitted_on = date(2022, 6, 1)

    clock = SimulatedClock(nz("2022-02-01", 10))
    claimed: list[int] = []
    while clock() < nz("2023-02-01"):
        local_day = clock().astimezone(NZ).date()
        if local_day == submitted_on:
            request = requests[submitter]
            request.state = RequestState.SUBMITTED
            request.submitted_at = clock()
            session.add(request)
            session.flush()
        result = sweep(session, clock(), settings())
        claimed.extend(result.notification_ids)
        clock.set(nz(local_day + timedelta(days=1)))

    rows = session.exec(
        select(Notification, NotificationItem, Contact)
        .join(NotificationItem, col(NotificationItem.notification_id) == Notification.id)
        .join(Contact, col(Contact.id) == Notification.contact_id)
        .where(col(Notification.id).in_(claimed))
    ).all()
    by_milestone: dict[int, dict[str, set[date]]] = defaultdict(lambda: defaultdict(set))
    per_recipient_day: dict[tuple[str, date], set[int]] = defaultdict(set)
    for notification, item, contact in rows:
        day = _local_day(notification.created_at)
        assert is_working_day(day), f"{notification.kind} claimed on {day}, a day off"
        per_recipient_day[(contact.email, day)].add(notification.id or 0)
        if item.milestone_id is not None:
            by_milestone[item.milestone_id][f"{item.step}:{contact.email}"].add(day)
    assert all(len(ids) == 1 for ids in per_recipient_day.values()), "one digest a day"

    for milestone in q1:
        session.refresh(milestone)
        lead = session.get(Agency, milestone.lead_agency_id)
        assert lead is not None
        address = f"{lead.acronym.lower()}@x.govt.nz"
        steps = by_milestone[milestone.id or 0]
        # Reminded in March (30 and 7 days before 31 March), flagged in April.
        assert steps[f"milestone-30d-2022-03-31:{address}"] == {date(2022, 3, 1)}, milestone.text
        assert steps[f"milestone-7d-2022-03-31:{address}"] == {date(2022, 3, 24)}, milestone.text
        assert milestone.slipped_on == date(2022, 4, 1)
        assert steps[f"slipped:{address}"] == {date(2022, 4, 1)}
        assert steps["slipped:coord@x.govt.nz"] == {date(2022, 4, 1)}

    to_submitter = [
        (n.kind, _local_day(n.created_at))
        for n, _item, contact in rows
        if contact.email == f"{submitter.lower()}@x.govt.nz"
    ]
    assert to_submitter, "MoJ was reminded before it submitted"
    after = {kind for kind, day in to_submitter if day >= submitted_on}
    assert after <= {"slipped"}, f"MoJ got {after} after submitting"

    # Deadline steps for an agency that never answered, then weekly escalation.
    ot_days = sorted(
        {
            (_local_day(n.created_at), item.step or "")
            for n, item, contact in rows
            if contact.email == "ot@x.govt.nz"
        }
    )
    deadline_steps = [(d, s) for d, s in ot_days if s.startswith("deadline-")]
    assert deadline_steps == [
        (date(2022, 11, 18), "deadline-14d"),
        (date(2022, 11, 25), "deadline-7d"),
        (date(2022, 12, 1), "deadline-1d"),
    ]
    escalation_days = [d for d, s in ot_days if s.startswith("escalation-")]
    assert escalation_days[:4] == [
        date(2022, 12, 5),
        date(2022, 12, 12),
        date(2022, 12, 19),
        date(2022, 12, 28),
    ]
    pending = session.exec(
        select(UpdateRequest).where(UpdateRequest.id == requests[submitter].id)
    ).one()
    assert pending.state == RequestState.SUBMITTED

    # A March digest names the milestones with their periods, the deadline and the link.
    march = next(
        n
        for n, item, contact in rows
        if n.kind == "reminder"
        and item.step == "milestone-7d-2022-03-31"
        and contact.email == "mbie@x.govt.nz"
    )
    message = render_message(session, march, nz("2022-03-24"), base_url="https://r.example.nz")
    assert "Quarter 1 2022: " in message.text
    assert "Friday 2 December 2022" in message.text
    assert "https://r.example.nz/r/" in message.text


def _local_day(value: datetime) -> date:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(NZ).date()
