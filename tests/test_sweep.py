"""The sweep on the real databases, with an injected clock: reminders, digests, catch-up,
working days, quiet hours, escalation, slip flags, idempotency and concurrency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

import models.sweep as sweep_module
from models.cycles import cycle_status, open_cycle
from models.db import make_engine, upgrade
from models.messages import render_message
from models.periods import parse_period
from models.policy import ReminderPolicy
from models.sweep import SweepResult, sweep
from models.tables import (
    AuditEvent,
    Contact,
    Cycle,
    Milestone,
    MilestoneStatus,
    Notification,
    NotificationItem,
    RequestState,
    UpdateRequest,
)
from tests.cycle_support import SmallPlan, build_plan, items, notifications, nz, settings, to

BASE = "https://reports.example.govt.nz"
DEADLINE = date(2022, 12, 2)  # a Friday


def _open(session: Session, built: SmallPlan, when: str = "2022-02-01") -> None:
    open_cycle(session, built.plan, 2022, DEADLINE, nz(when), "test")


def _steps(session: Session, result: SweepResult, email: str) -> list[str]:
    found = to(session, result.notification_ids, email)
    assert len(found) <= 1, "one digest per recipient per sweep"
    return sorted(item.step or "" for n in found for item in items(session, n.id or 0))


def _render(session: Session, notification: Notification, when: datetime) -> Any:
    return render_message(session, notification, when, base_url=BASE)


def test_milestone_reminders_go_30_and_7_days_before_the_period_ends_as_one_digest(
    session: Session,
) -> None:
    built = build_plan(session)
    _open(session, built)
    assert sweep(session, nz("2022-02-28"), settings()).milestone_reminders == 0

    march = sweep(session, nz("2022-03-01"), settings())
    # research and triage (MBIE) and police (NZP); "done" is completed, so not reminded.
    assert march.milestone_reminders == 3
    assert _steps(session, march, "alice@mbie.govt.nz") == [
        "milestone-30d-2022-03-31",
        "milestone-30d-2022-03-31",
    ]
    assert _steps(session, march, "bob@police.govt.nz") == ["milestone-30d-2022-03-31"]
    # Alice's notify URL gets the same digest as its own row; the coordinator gets nothing.
    assert len(to(session, march.notification_ids, "alice@mbie.govt.nz", "notify_url")) == 1
    assert to(session, march.notification_ids, "carol@coordination.govt.nz") == []
    assert march.messages == 3

    (digest,) = to(session, march.notification_ids, "alice@mbie.govt.nz")
    assert digest.kind == "reminder"
    message = _render(session, digest, nz("2022-03-01"))
    assert message.subject == (
        "Reminder: 2 MBIE milestones are due soon, the first by 31 March 2022 - how are they going?"
    )
    assert "Complete research programme on migrant workers." in message.text
    assert "Implement the joint INZ-ENZ triage model." in message.text
    assert "Publish guidance for employers" not in message.text
    assert "(the period ends in 30 days, on Thursday 31 March 2022)" in message.text
    assert "MBIE's 2022 update is due by Friday 2 December 2022 (in 276 days)." in message.text
    assert f"{BASE}/r/" in message.text

    # Run again, the same day or the next: nothing more is claimed.
    assert sweep(session, nz("2022-03-01", 9, 5), settings()).messages == 0
    assert sweep(session, nz("2022-03-02"), settings()).messages == 0

    seven = sweep(session, nz("2022-03-24"), settings())
    assert _steps(session, seven, "alice@mbie.govt.nz") == [
        "milestone-7d-2022-03-31",
        "milestone-7d-2022-03-31",
    ]
    assert _steps(session, seven, "bob@police.govt.nz") == ["milestone-7d-2022-03-31"]


def test_a_missed_reminder_day_is_caught_up_with_the_most_specific_reminder_only(
    session: Session,
) -> None:
    built = build_plan(session)
    _open(session, built)
    late = sweep(session, nz("2022-03-25"), settings())  # nothing ran since February
    assert _steps(session, late, "alice@mbie.govt.nz") == [
        "milestone-7d-2022-03-31",
        "milestone-7d-2022-03-31",
    ]
    assert sweep(session, nz("2022-03-28"), settings()).messages == 0

    # A reminder due before the cycle opened is covered by the update request itself.
    other = build_plan_second_cycle(session, built)
    assert other == []


def build_plan_second_cycle(session: Session, built: SmallPlan) -> list[int]:
    """Open 2023 on 2023-03-28 and sweep: the 30-day step of a March 2023 milestone fell due
    before the cycle opened, the 7-day one after."""
    period = parse_period("March 2023")
    milestone = Milestone(
        plan_id=built.plan.id or 0,
        objective_id=built.milestones["research"].objective_id,
        lead_agency_id=built.agencies["MBIE"].id,
        text="Evaluate the campaign.",
        due_text=period.text,
        due_start=period.start,
        due_end=period.end,
        first_reported_year=2022,
    )
    session.add(milestone)
    session.flush()
    open_cycle(session, built.plan, 2023, date(2023, 11, 30), nz("2023-03-20"), "test")
    opened_same_day = sweep(session, nz("2023-03-20", 10), settings())
    mbie = to(session, opened_same_day.notification_ids, "alice@mbie.govt.nz")
    reminded = [i.milestone_id for n in mbie for i in items(session, n.id or 0)]
    assert milestone.id not in reminded
    week_before = sweep(session, nz("2023-03-24"), settings())
    mbie = to(session, week_before.notification_ids, "alice@mbie.govt.nz")
    assert [i.step for n in mbie for i in items(session, n.id or 0)] == ["milestone-7d-2023-03-31"]
    return [m for m in reminded if m is not None and m == milestone.id]


def test_agencies_that_submitted_get_no_reminders(session: Session) -> None:
    built = build_plan(session)
    _open(session, built)
    request = session.exec(
        select(UpdateRequest).where(UpdateRequest.agency_id == built.agencies["MBIE"].id)
    ).one()
    request.state = RequestState.SUBMITTED
    request.submitted_at = nz("2022-02-20")
    session.add(request)
    session.flush()
    days = [date(2022, 2, 1) + timedelta(days=n) for n in range(0, 333)]  # to 31 December
    claimed = [sweep(session, nz(day), settings()) for day in days]
    to_alice = [
        n for result in claimed for n in to(session, result.notification_ids, "alice@mbie.govt.nz")
    ]
    # MBIE hears only that milestones slipped (research, triage on 1 April), nothing else.
    assert {n.kind for n in to_alice} == {"slipped"}
    assert [n.created_at.date() for n in to_alice] == [date(2022, 3, 31)]  # 1 April, NZ time
    to_bob = [
        n for result in claimed for n in to(session, result.notification_ids, "bob@police.govt.nz")
    ]
    assert {n.kind for n in to_bob} >= {"reminder", "escalation", "slipped"}


def test_deadline_reminders_14_7_and_1_days_before_then_weekly_escalation(
    session: Session,
) -> None:
    built = build_plan(session)
    _open(session, built)
    results = {}
    day = date(2022, 11, 1)
    while day <= date(2023, 1, 20):
        results[day] = sweep(session, nz(day), settings())
        day += timedelta(days=1)
    olive = {  # OT leads no milestone: only deadline steps and escalations
        d: _steps(session, r, "olive@ot.govt.nz")
        for d, r in results.items()
        if _steps(session, r, "olive@ot.govt.nz")
    }
    ot_request = session.exec(
        select(UpdateRequest).where(UpdateRequest.agency_id == built.agencies["OT"].id)
    ).one()
    w = f"escalation-r{ot_request.id}-w"
    assert olive == {
        date(2022, 11, 18): ["deadline-14d"],
        date(2022, 11, 25): ["deadline-7d"],
        date(2022, 12, 1): ["deadline-1d"],
        date(2022, 12, 5): [f"{w}0"],  # 3 December is a Saturday
        date(2022, 12, 12): [f"{w}1"],
        date(2022, 12, 19): [f"{w}2"],
        date(2022, 12, 28): [f"{w}3"],  # 24 Dec: weekend, Christmas and Boxing Day observed
        date(2023, 1, 4): [f"{w}4"],  # nominal 31 December; 1-3 January are holidays
        date(2023, 1, 9): [f"{w}5"],  # nominal 7 January, a Saturday
        date(2023, 1, 16): [f"{w}6"],
    }
    # The coordinator gets one digest per round listing every late agency (DIA too, which
    # has no contacts of its own).
    carol = [
        n
        for d, result in results.items()
        for n in to(session, result.notification_ids, "carol@coordination.govt.nz")
        if n.kind == "escalation"
    ]
    assert len(carol) == 7
    message = _render(session, carol[0], nz("2022-12-05"))
    assert message.subject == "Overdue: 4 agencies have not sent their update"
    for acronym in ("DIA", "MBIE", "NZP", "OT"):
        assert f"  - {acronym} (" in message.text
    assert "3 days late (due Friday 2 December 2022)" in message.text
    assert (
        "DIA (Department of Internal Affairs): 3 days late (due Friday 2 December 2022); "
        'not sent yet; no contacts: add one with "reportcycle agency contact add DIA EMAIL"'
    ) in message.text
    assert "OT (Oranga Tamariki): 3 days late (due Friday 2 December 2022); not sent yet\n" in (
        message.text
    )

    (to_olive,) = to(session, results[date(2022, 12, 5)].notification_ids, "olive@ot.govt.nz")
    message = _render(session, to_olive, nz("2022-12-05"))
    assert message.subject == "Overdue: OT's 2022 update was due on Friday 2 December 2022"
    assert "Oranga Tamariki's update for the 2022 report was due on" in message.text
    assert f"{BASE}/r/" in message.text


def test_a_reminder_falling_on_a_public_holiday_moves_to_the_next_working_day(
    session: Session,
) -> None:
    built = build_plan(session)
    policy = ReminderPolicy(milestone_days=(7,), deadline_days=())
    for text, due in (("Waitangi", "13 February 2023"), ("Anzac", "2 May 2023")):
        period = parse_period(due)
        session.add(
            Milestone(
                plan_id=built.plan.id or 0,
                objective_id=built.milestones["research"].objective_id,
                lead_agency_id=built.agencies["NZP"].id,
                text=f"{text} milestone.",
                due_text=period.text,
                due_start=period.start,
                due_end=period.end,
                first_reported_year=2022,
            )
        )
    session.flush()
    open_cycle(session, built.plan, 2023, date(2023, 11, 30), nz("2023-01-10"), "test")
    # Waitangi Day, Monday 6 February 2023: nothing goes out at all that day.
    holiday = sweep(session, nz("2023-02-06"), settings(), policy=policy)
    assert holiday.deferred == "2023-02-06 is a public holiday (Waitangi Day)"
    assert holiday.messages == 0
    tuesday = sweep(session, nz("2023-02-07"), settings(), policy=policy)
    assert _texts(session, tuesday, "bob@police.govt.nz") == ["Waitangi milestone."]
    # Anzac Day, Tuesday 25 April 2023.
    assert sweep(session, nz("2023-04-25"), settings(), policy=policy).deferred
    anzac = sweep(session, nz("2023-04-26"), settings(), policy=policy)
    assert _texts(session, anzac, "bob@police.govt.nz") == ["Anzac milestone."]


def _texts(session: Session, result: SweepResult, email: str) -> list[str]:
    texts = []
    for n in to(session, result.notification_ids, email):
        for item in items(session, n.id or 0):
            if not (item.step or "").startswith("milestone-"):
                continue  # the 2022 milestones slip in the same digest
            milestone = session.get(Milestone, item.milestone_id)
            assert milestone is not None
            texts.append(milestone.text)
    return sorted(texts)


def test_an_agency_given_a_contact_after_the_cycle_opened_gets_its_request_from_the_sweep(
    session: Session,
) -> None:
    built = build_plan(session)
    _open(session, built)
    assert sweep(session, nz("2022-02-02"), settings()).update_requests == 0
    dia = Contact(agency_id=built.agencies["DIA"].id or 0, email="dee@dia.govt.nz", name="Dee")
    session.add(dia)
    session.flush()
    later = sweep(session, nz("2022-02-03"), settings())
    assert later.update_requests == 1
    (request,) = to(session, later.notification_ids, "dee@dia.govt.nz")
    assert request.kind == "update_request"
    message = _render(session, request, nz("2022-02-03"))
    assert message.subject == "Please send DIA's 2022 progress update by Friday 2 December 2022"
    assert "Kia ora Dee," in message.text and f"{BASE}/r/" in message.text
    # Nobody else gets a second request, and Dee not a second one either.
    assert sweep(session, nz("2022-02-04"), settings()).messages == 0


def test_weekends_and_quiet_hours_defer_to_the_next_working_morning(session: Session) -> None:
    built = build_plan(session)
    _open(session, built)
    # The 30-day reminders fall due on Tuesday 1 March 2022; the first sweep that day runs
    # after 18:00, in the quiet hours.
    evening = sweep(session, nz("2022-03-01", 18, 30), settings())
    assert evening.deferred is not None and "quiet hours" in evening.deferred
    assert sweep(session, nz("2022-03-02", 7, 59), settings()).messages == 0
    morning = sweep(session, nz("2022-03-02", 8, 0), settings())
    assert morning.milestone_reminders == 3
    weekend = sweep(session, nz("2022-03-05", 10), settings())
    assert weekend.deferred == "Saturday 2022-03-05 is a weekend day"
    # The policy from settings is used: with quiet hours 20:00-06:00, 18:30 is fine.
    late = settings(quiet_hours_start=20, quiet_hours_end=6)
    assert sweep(session, nz("2022-03-24", 18, 30), late).milestone_reminders == 3


def test_slipped_milestones_are_flagged_once_and_the_lead_and_coordinators_told(
    session: Session,
) -> None:
    built = build_plan(session)
    _open(session, built)
    first = sweep(session, nz("2022-02-01", 10), settings())
    # December 2021, DIA's: flagged; DIA has no contacts, so only the coordinator hears.
    assert first.slipped_milestone_ids == [built.milestones["old"].id]
    assert [n.recipient for n in notifications(session, first.notification_ids)] == [
        "carol@coordination.govt.nz"
    ]
    session.refresh(built.milestones["old"])
    assert built.milestones["old"].slipped_on == date(2022, 2, 1)

    april = sweep(session, nz("2022-04-01"), settings())
    expected = {built.milestones[k].id for k in ("research", "triage", "police")}
    assert set(april.slipped_milestone_ids) == expected
    assert _steps(session, april, "alice@mbie.govt.nz") == ["slipped", "slipped"]
    assert _steps(session, april, "bob@police.govt.nz") == ["slipped"]
    (carol,) = to(session, april.notification_ids, "carol@coordination.govt.nz")
    assert len(items(session, carol.id or 0)) == 3
    message = _render(session, carol, nz("2022-04-01"))
    assert message.subject == "3 milestones have slipped"
    assert "Quarter 1 2022 (NZP): Intelligence assessment" in message.text
    assert "Their lead agencies have been told as well." in message.text
    done = built.milestones["done"]
    session.refresh(done)
    assert done.slipped_on is None  # completed milestones never slip
    assert sweep(session, nz("2022-04-04"), settings()).messages == 0
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "milestone.slipped")).all()
    assert len(events) == 4
    # Each flag is audited: by the sweep, at its time, naming the milestone and its lead agency.
    for event in events:
        if event.subject in {f"milestone:{m}" for m in expected}:
            milestone = session.get(Milestone, int((event.subject or "").split(":")[1]))
            assert milestone is not None and milestone.due_end is not None
            assert event.actor == "sweep"
            assert _aware(event.at) == nz("2022-04-01")
            assert event.agency_id == milestone.lead_agency_id
            assert event.detail == {
                "due_end": milestone.due_end.isoformat(),
                "slipped_on": "2022-04-01",
            }
    assert len({e.subject for e in events} & {f"milestone:{m}" for m in expected}) == 3


def test_a_sweep_runs_a_constant_number_of_queries_whatever_the_plan_size(
    session: Session, engine: sa.Engine
) -> None:
    built = build_plan(session)
    _open(session, built)
    sweep(session, nz("2022-02-01", 10), settings())  # flags the December 2021 milestone
    small = _count_queries(engine, lambda: sweep(session, nz("2022-03-01"), settings()))
    for n in range(300):
        period = parse_period(f"{['March', 'April', 'May'][n % 3]} 2022")
        session.add(
            Milestone(
                plan_id=built.plan.id or 0,
                objective_id=built.milestones["research"].objective_id,
                lead_agency_id=built.agencies["MBIE" if n % 2 else "NZP"].id,
                text=f"Generated milestone {n}.",
                due_text=period.text,
                due_start=period.start,
                due_end=period.end,
                first_reported_year=2022,
                status=MilestoneStatus.ON_TRACK,
            )
        )
    session.flush()
    large = _count_queries(engine, lambda: sweep(session, nz("2022-03-02"), settings()))
    slipped = _count_queries(engine, lambda: sweep(session, nz("2022-04-01"), settings()))
    assert small[1].messages == 3 and large[1].messages == 3
    assert large[1].milestone_reminders == 100  # the March ones, 30 days ahead
    assert len(slipped[1].slipped_milestone_ids) == 103
    assert small[0] == large[0]
    assert slipped[0] <= small[0] + 1  # plus the one bulk insert of the audit events


def test_a_sweep_with_nothing_due_does_not_read_the_contacts(
    session: Session, engine: sa.Engine
) -> None:
    built = build_plan(session)
    _open(session, built)
    # The update requests went out (a pending one is looked at each sweep, for contacts
    # added since the cycle opened).
    session.execute(sa.update(UpdateRequest).values(state=RequestState.SENT))
    reads: list[str] = []

    def contact_reads(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM contact" in statement or "FROM agency" in statement:
            reads.append(statement)

    sa.event.listen(engine, "before_cursor_execute", contact_reads)
    try:
        busy = sweep(session, nz("2022-03-01"), settings())
        assert busy.messages > 0 and reads, "a sweep with messages reads whom to send them to"
        reads.clear()
        quiet = sweep(session, nz("2022-03-02"), settings())  # the 1 March ones are claimed
    finally:
        sa.event.remove(engine, "before_cursor_execute", contact_reads)
    assert quiet.messages == 0
    assert reads == []


def _count_queries(engine: sa.Engine, run: Any) -> tuple[int, SweepResult]:
    count = 0

    def before(*_args: Any) -> None:
        nonlocal count
        count += 1

    sa.event.listen(engine, "before_cursor_execute", before)
    try:
        result = run()
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
    return count, result


# --- concurrency: two sweeps at once, each in its own connection and transaction ----------


@pytest.fixture
def committed_engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _racing_sweeps(
    engine: sa.Engine, when: datetime, monkeypatch: pytest.MonkeyPatch, runners: int = 2
) -> list[SweepResult]:
    """Run ``runners`` sweeps at once: each reads what is due, then all meet at a barrier
    before writing anything, so each one decided on the same (unclaimed) state."""
    barrier = threading.Barrier(runners, timeout=60)
    real = sweep_module._flag_slipped

    def at_the_barrier(*args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "_flag_slipped", at_the_barrier)
    results: list[SweepResult | BaseException] = [RuntimeError("did not run")] * runners

    def run(index: int) -> None:
        try:
            with Session(engine, expire_on_commit=False) as session:
                results[index] = sweep(session, when, settings())
                session.commit()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    monkeypatch.setattr(sweep_module, "_flag_slipped", real)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, SweepResult)]


def test_two_sweeps_at_once_claim_each_reminder_and_slip_once(
    committed_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(committed_engine, expire_on_commit=False) as session:
        built = build_plan(session)
        _open(session, built)
        session.commit()

    march = _racing_sweeps(committed_engine, nz("2022-03-01"), monkeypatch)
    april = _racing_sweeps(committed_engine, nz("2022-04-01"), monkeypatch, runners=3)

    with Session(committed_engine) as session:
        rows = notifications(session)
        # March: reminders to alice's email and notify URL and to bob, and the December 2021
        # slip to carol (nothing swept before); April: slip notices to all four.
        by_day: dict[date, list[Notification]] = {}
        for n in rows:
            if n.kind != "update_request":
                by_day.setdefault(_aware(n.created_at).date(), []).append(n)
        march_rows = by_day[date(2022, 2, 28)]  # 09:00 NZDT is 20:00 UTC the day before
        april_rows = by_day[date(2022, 3, 31)]
        assert sorted(n.recipient for n in march_rows) == sorted(
            [
                "alice@mbie.govt.nz",
                _notify(session),
                "bob@police.govt.nz",
                "carol@coordination.govt.nz",
            ]
        )
        assert sorted(n.recipient for n in april_rows) == sorted(
            [
                "alice@mbie.govt.nz",
                _notify(session),
                "bob@police.govt.nz",
                "carol@coordination.govt.nz",
            ]
        )
        item_count = session.exec(select(sa.func.count()).select_from(NotificationItem)).one()
        assert item_count == 6 + 8  # March 2+2+1+1; April 2+2+1+3
        flags = session.exec(
            select(AuditEvent).where(AuditEvent.action == "milestone.slipped")
        ).all()
        assert len(flags) == 4  # each milestone flagged by one sweep only
    # Between them the sweeps claimed everything once: no id twice, none lost.
    march_ids = [i for r in march for i in r.notification_ids]
    april_ids = [i for r in april for i in r.notification_ids]
    assert sorted(march_ids) == sorted(n.id or 0 for n in march_rows)
    assert sorted(april_ids) == sorted(n.id or 0 for n in april_rows)
    assert len(set(march_ids)) == len(march_ids)
    # Both decided on the same unclaimed state; the first writer won, the others got nothing.
    assert sorted(bool(r.notification_ids) for r in march) == [False, True]
    assert sorted(bool(r.notification_ids) for r in april) == [False, False, True]


def _notify(session: Session) -> str:
    row = session.exec(
        select(Notification.recipient).where(Notification.channel == "notify_url")
    ).first()
    assert row is not None
    return row


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_a_business_unit_without_contacts_is_reached_through_its_parent(
    session: Session,
) -> None:
    """INZ (part of MBIE) leads a milestone and has no contacts: MBIE's contact gets INZ's
    update request and reminders as INZ's own messages, apart from MBIE's; once INZ has a
    contact of its own, that contact gets them instead."""
    built = build_plan(session)
    inz = built.agencies["INZ"]
    triage = built.milestones["triage"]
    triage.lead_agency_id = inz.id
    session.add(triage)
    session.flush()
    _open(session, built)
    requests = {r.agency_id: r for r in session.exec(select(UpdateRequest)).all()}
    assert inz.id in requests
    cycle = session.exec(select(Cycle)).one()
    status = {row.agency.acronym: row for row in cycle_status(session, cycle)}
    assert status["INZ"].contacts == 1 and status["INZ"].state_label == "not sent yet"
    assert status["DIA"].state_label == "not sent (no contacts)"
    first = notifications(session)
    for_inz = [n for n in first if n.agency_id == inz.id]
    assert [n.recipient for n in for_inz if n.channel == "email"] == ["alice@mbie.govt.nz"]
    message = _render(session, for_inz[0], nz("2022-02-01"))
    assert "Please send INZ's 2022 progress update" in message.subject
    assert "because Immigration New Zealand (INZ) is part of MBIE" in message.text
    assert "because Immigration New Zealand (INZ) is part of MBIE" in (message.html or "")

    march = sweep(session, nz("2022-03-01"), settings())
    alice = to(session, march.notification_ids, "alice@mbie.govt.nz")
    assert sorted(n.agency_id or 0 for n in alice) == sorted(
        [built.agencies["MBIE"].id or 0, inz.id or 0]
    )
    by_agency = {n.agency_id: n for n in alice}
    assert by_agency[inz.id].context["milestone_ids"] == [triage.id]
    assert triage.id not in by_agency[built.agencies["MBIE"].id].context["milestone_ids"]
    inz_reminder = _render(session, by_agency[inz.id], nz("2022-03-01"))
    assert "Implement the joint INZ-ENZ triage model." in inz_reminder.text
    assert "is part of MBIE" in inz_reminder.text
    mbie_reminder = _render(session, by_agency[built.agencies["MBIE"].id], nz("2022-03-01"))
    assert "is part of" not in mbie_reminder.text

    # INZ gets a contact of its own: the 7-day reminder goes to it, not to MBIE's.
    session.add(
        Contact(
            agency_id=inz.id or 0,
            email="ina@inz.govt.nz",
            created_at=nz("2022-03-02"),
        )
    )
    session.flush()
    seven = sweep(session, nz("2022-03-24"), settings())
    # (Nothing was delivered in this test, so INZ's request is still pending and Ina gets
    # it too, as any new contact of an agency whose request has not gone out yet.)
    (ina,) = [
        n for n in to(session, seven.notification_ids, "ina@inz.govt.nz") if n.kind == "reminder"
    ]
    assert ina.context["milestone_ids"] == [triage.id]
    assert "is part of" not in _render(session, ina, nz("2022-03-24")).text
    assert all(
        n.agency_id != inz.id for n in to(session, seven.notification_ids, "alice@mbie.govt.nz")
    )


def test_the_coordinators_escalation_does_not_call_a_unit_reached_through_its_parent_unreachable(
    session: Session,
) -> None:
    built = build_plan(session)
    triage = built.milestones["triage"]
    triage.lead_agency_id = built.agencies["INZ"].id
    session.add(triage)
    session.flush()
    _open(session, built)
    late = sweep(session, nz("2022-12-05"), settings())
    (carol,) = [
        n
        for n in to(session, late.notification_ids, "carol@coordination.govt.nz")
        if n.kind == "escalation"
    ]
    text = _render(session, carol, nz("2022-12-05")).text
    assert "  - INZ (Immigration New Zealand): 3 days late" in text
    assert "contact add INZ" not in text  # MBIE's contact reads for INZ
    assert 'no contacts: add one with "reportcycle agency contact add DIA EMAIL"' in text
