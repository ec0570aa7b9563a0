"""Moving a cycle's deadline, and one agency's extension: who is told, what the reminders and
escalations do afterwards, the audit trail, the errors; on the real databases, and the CLI
end to end into the .eml outbox."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from models.cycles import CycleError, change_deadline, cycle_status, open_cycle
from models.messages import render_message
from models.submissions import load_request_view
from models.sweep import SweepResult, sweep
from models.tables import (
    AuditEvent,
    Cycle,
    CycleState,
    Notification,
    RequestState,
    UpdateRequest,
)
from tests.cycle_support import SmallPlan, build_plan, items, notifications, nz, settings, to
from tests.test_cycle_cli import _prepare, body, outbox, run

BASE = "https://reports.example.govt.nz"
DEADLINE = date(2022, 12, 2)  # a Friday


def _open(session: Session, built: SmallPlan) -> Cycle:
    return open_cycle(session, built.plan, 2022, DEADLINE, nz("2022-02-01"), "test").cycle


def _request(session: Session, built: SmallPlan, acronym: str) -> UpdateRequest:
    return session.exec(
        select(UpdateRequest).where(UpdateRequest.agency_id == built.agencies[acronym].id)
    ).one()


def _sweep_days(session: Session, first: date, last: date) -> dict[date, SweepResult]:
    results = {}
    day = first
    while day <= last:
        results[day] = sweep(session, nz(day), settings())
        day += timedelta(days=1)
    return results


def _deadline_steps(
    session: Session, results: dict[date, SweepResult], email: str
) -> dict[date, list[str]]:
    """Per sweep day, the deadline and escalation steps of the digest to ``email``."""
    found = {}
    for day, result in results.items():
        steps = sorted(
            item.step or ""
            for n in to(session, result.notification_ids, email)
            for item in items(session, n.id or 0)
            if (item.step or "").startswith(("deadline-", "escalation-"))
        )
        if steps:
            found[day] = steps
    return found


def test_moving_the_cycle_deadline_tells_who_still_owes_an_answer_and_reminders_follow(
    session: Session,
) -> None:
    built = build_plan(session)
    cycle = _open(session, built)
    nzp = _request(session, built, "NZP")
    nzp.state = RequestState.SUBMITTED  # NZP has answered: nothing to tell it
    session.add(nzp)
    session.flush()

    change = change_deadline(
        session,
        cycle,
        date(2022, 12, 16),
        nz("2022-11-10"),
        "carol@coordination.govt.nz",
        reason="  to allow for the\nmachinery-of-government change ",
    )

    assert cycle.deadline == date(2022, 12, 16)
    moved = {m.agency.acronym: m for m in change.moved}
    assert sorted(moved) == ["DIA", "MBIE", "OT"]  # not NZP, which submitted
    assert all(m.previous == DEADLINE and m.deadline == date(2022, 12, 16) for m in moved.values())
    assert moved["DIA"].notification_ids == []  # no contacts: nobody to tell
    to_mbie = notifications(session, moved["MBIE"].notification_ids)
    assert sorted(n.channel for n in to_mbie) == ["email", "notify_url"]
    assert {n.kind for n in to_mbie} == {"deadline_changed"}

    email = next(n for n in to_mbie if n.channel == "email")
    message = render_message(session, email, nz("2022-11-10", 10), base_url=BASE)
    assert message.subject == (
        "New deadline for MBIE's 2022 progress update: Friday 16 December 2022"
    )
    assert (
        "It is now Friday 16 December 2022 (in 36 days); it was Friday 2 December 2022."
        in message.text
    )
    assert "Why: to allow for the machinery-of-government change" in message.text
    assert f"{BASE}/r/" in message.text  # with the agency's link
    assert "<strong>Friday 16 December 2022</strong>" in message.html

    events = session.exec(
        select(AuditEvent).where(col(AuditEvent.action).like("%deadline_changed"))
    ).all()
    cycle_event = next(e for e in events if e.action == "cycle.deadline_changed")
    assert cycle_event.actor == "carol@coordination.govt.nz"
    assert cycle_event.detail == {
        "previous": "2022-12-02",
        "deadline": "2022-12-16",
        "reason": "to allow for the machinery-of-government change",
        "agencies_told": ["DIA", "MBIE", "OT"],
    }
    per_agency = {e.agency_id: e.detail for e in events if e.action == "request.deadline_changed"}
    assert per_agency[built.agencies["MBIE"].id]["messages"] == 2
    assert set(per_agency) == {built.agencies[a].id for a in ("DIA", "MBIE", "OT")}

    # The reminders follow the new date: 14, 7 and 1 days before 16 December, then the
    # weekly escalation from the Monday after (17 December is a Saturday).
    results = _sweep_days(session, date(2022, 11, 11), date(2022, 12, 28))
    ot = _request(session, built, "OT")
    assert _deadline_steps(session, results, "olive@ot.govt.nz") == {
        date(2022, 12, 2): ["deadline-14d"],
        date(2022, 12, 9): ["deadline-7d"],
        date(2022, 12, 15): ["deadline-1d"],
        date(2022, 12, 19): [f"escalation-r{ot.id}-w0"],
        # 24 December: a Saturday, then Christmas and Boxing Day (observed 26 and 27).
        date(2022, 12, 28): [f"escalation-r{ot.id}-w1"],
    }
    # The deadline reminder reads the new date.
    (reminder,) = to(session, results[date(2022, 12, 9)].notification_ids, "olive@ot.govt.nz")
    assert (
        "Friday 16 December 2022"
        in render_message(session, reminder, nz("2022-12-09", 10), base_url=BASE).text
    )


def test_an_extension_moves_one_agency_alone_and_the_cycle_deadline_never_undercuts_it(
    session: Session,
) -> None:
    built = build_plan(session)
    cycle = _open(session, built)
    results = _sweep_days(session, date(2022, 11, 18), date(2022, 11, 20))
    change = change_deadline(
        session,
        cycle,
        date(2022, 12, 16),
        nz("2022-11-21"),
        "carol",
        agency_name="Oranga Tamariki",  # any of the agency's names
        reason="new system go-live",
    )
    assert change.agency is not None and change.agency.acronym == "OT"
    assert [(m.agency.acronym, m.previous, m.deadline) for m in change.moved] == [
        ("OT", DEADLINE, date(2022, 12, 16))
    ]
    assert cycle.deadline == DEADLINE  # everyone else keeps theirs
    rows = {row.agency.acronym: row for row in cycle_status(session, cycle)}
    assert rows["OT"].deadline == date(2022, 12, 16) and rows["OT"].extended
    assert rows["MBIE"].deadline == DEADLINE and not rows["MBIE"].extended
    # The agency's form says its own deadline.
    ot_view = load_request_view(session, _request(session, built, "OT").id or 0)
    assert ot_view.deadline == date(2022, 12, 16)
    assert load_request_view(session, _request(session, built, "MBIE").id or 0).deadline == DEADLINE

    results |= _sweep_days(session, date(2022, 11, 21), date(2022, 12, 20))
    ot = _request(session, built, "OT")
    bob = _request(session, built, "NZP")
    # 14 days before the old date, then the steps of the new one.
    assert _deadline_steps(session, results, "olive@ot.govt.nz") == {
        date(2022, 11, 18): ["deadline-14d"],
        date(2022, 12, 2): ["deadline-14d"],
        date(2022, 12, 9): ["deadline-7d"],
        date(2022, 12, 15): ["deadline-1d"],
        date(2022, 12, 19): [f"escalation-r{ot.id}-w0"],
    }
    # NZP keeps the cycle's deadline: 14, 7 and 1 days before 2 December, escalated on the 5th.
    assert _deadline_steps(session, results, "bob@police.govt.nz") == {
        date(2022, 11, 18): ["deadline-14d"],
        date(2022, 11, 25): ["deadline-7d"],
        date(2022, 12, 1): ["deadline-1d"],
        date(2022, 12, 5): [f"escalation-r{bob.id}-w0"],
        date(2022, 12, 12): [f"escalation-r{bob.id}-w1"],
        date(2022, 12, 19): [f"escalation-r{bob.id}-w2"],
    }
    # The coordinators' overdue digest of 5 December leaves OT out: it is not late.
    on_the_5th = results[date(2022, 12, 5)].notification_ids
    (overdue,) = [
        n for n in to(session, on_the_5th, "carol@coordination.govt.nz") if n.kind == "escalation"
    ]
    text = render_message(session, overdue, nz("2022-12-05", 10), base_url=BASE).text
    assert "NZP (" in text and "OT (" not in text

    # Moving the cycle's deadline past the extension carries OT along (it is told again);
    # giving OT the cycle's deadline then ends its extension.
    later = change_deadline(session, cycle, date(2022, 12, 23), nz("2022-12-20"), "carol")
    assert {m.agency.acronym: m.previous for m in later.moved}["OT"] == date(2022, 12, 16)
    assert _request(session, built, "OT").extended_deadline == date(2022, 12, 16)
    assert {r.agency.acronym: r.deadline for r in cycle_status(session, cycle)}["OT"] == date(
        2022, 12, 23
    )
    with pytest.raises(CycleError, match="OT's deadline is already 2022-12-23"):
        change_deadline(session, cycle, date(2022, 12, 23), nz("2022-12-20"), "c", agency_name="OT")
    change_deadline(session, cycle, date(2022, 12, 30), nz("2022-12-20"), "c", agency_name="OT")
    change_deadline(session, cycle, date(2022, 12, 23), nz("2022-12-20"), "c", agency_name="OT")
    assert _request(session, built, "OT").extended_deadline is None


def test_a_deadline_change_that_cannot_be_done_says_why_and_writes_nothing(
    session: Session,
) -> None:
    built = build_plan(session)
    cycle = _open(session, built)
    nzp = _request(session, built, "NZP")
    nzp.state = RequestState.SUBMITTED
    session.add(nzp)
    session.flush()
    before = (
        len(session.exec(select(AuditEvent)).all()),
        len(session.exec(select(Notification)).all()),
    )

    def refused(new: date, pattern: str, **kwargs: str) -> None:
        with pytest.raises(CycleError, match=pattern):
            change_deadline(session, cycle, new, nz("2022-11-10"), "carol", **kwargs)

    refused(date(2022, 11, 9), r"the new deadline 2022-11-09 is before today \(2022-11-10\)")
    refused(date(2032, 12, 9), r"the new deadline 2032-12-09 is more than a year away")
    refused(DEADLINE, "the 2022 deadline is already 2022-12-02")
    earlier = r"MBIE's deadline cannot be earlier than the cycle's \(2022-12-02\)"
    refused(date(2022, 11, 30), earlier, agency_name="MBIE")
    answered = "NZP has submitted its answer: there is no deadline to extend"
    refused(date(2022, 12, 9), answered, agency_name="NZP")
    refused(date(2022, 12, 9), "no agency 'XYZ'", agency_name="XYZ")
    refused(date(2022, 12, 9), "INZ has no update request in the 2022 cycle", agency_name="INZ")
    cycle.state = CycleState.PUBLISHED
    session.add(cycle)
    refused(date(2022, 12, 9), "the 2022 cycle is published: its deadline can no longer change")

    assert cycle.deadline == DEADLINE
    assert all(r.extended_deadline is None for r in session.exec(select(UpdateRequest)))
    after = (
        len(session.exec(select(AuditEvent)).all()),
        len(session.exec(select(Notification)).all()),
    )
    assert after == before


@pytest.fixture
def cli(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REPORTCYCLE_BASE_URL", BASE)
    monkeypatch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
    monkeypatch.delenv("REPORTCYCLE_OUTBOX_DIR", raising=False)
    return CliRunner()


def test_cycle_deadline_command_extends_an_agency_and_sends_its_notice(
    cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    _prepare(cli, tmp_path)
    run(cli, "cycle", "open", "2022", "--deadline", "2022-12-02", "--now", "2022-02-01")
    sent_before = len(outbox(env))

    out = run(
        cli, "cycle", "deadline", "2022", "2022-12-16", "--agency", "MBIE",
        "--reason", "Budget night", "--now", "2022-11-20",
    )  # fmt: skip
    assert "MBIE: 2022-12-02 → 2022-12-16, told in 1 message(s)" in out
    assert "delivered: 1 sent, 0 to retry, 0 failed" in out
    (notice,) = outbox(env)[sent_before:]
    assert notice["To"] == "Alice <alice@mbie.govt.nz>"
    assert notice["Subject"] == (
        "New deadline for MBIE's 2022 progress update: Friday 16 December 2022"
    )
    assert "Why: Budget night" in body(notice)

    status = run(cli, "cycle", "status", "2022")
    assert "extended to" in status
    assert "2022-12-16" in status.split("MBIE", 1)[1].splitlines()[0]

    moved = run(cli, "cycle", "deadline", "2022", "2022-12-09", "--now", "2022-11-20")
    assert "The 2022 deadline is now 2022-12-09." in moved
    assert "NZP: 2022-12-02 → 2022-12-09, told in 1 message(s)" in moved
    assert "MBIE" not in moved  # its extension is later still: unchanged, not told

    error = run(cli, "cycle", "deadline", "2022", "soon", code=1)
    assert "DEADLINE: 'soon' is not a date (YYYY-MM-DD)" in error
    error = run(cli, "cycle", "deadline", "2022", "2022-11-01", "--now", "2022-11-20", code=1)
    assert "the new deadline 2022-11-01 is before today (2022-11-20)" in error
