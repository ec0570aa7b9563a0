"""Opening a cycle, its status, and re-issuing an agency's link, on the real databases."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlmodel import Session, col, select

from models.cycles import CycleError, cycle_status, find_cycle, open_cycle, resend_link
from models.messages import after_sent, render_message
from models.tables import (
    AccessToken,
    AuditEvent,
    DeliveryState,
    Notification,
    RequestState,
    UpdateRequest,
)
from models.tokens import hash_token, resolve_token
from tests.cycle_support import build_plan, notifications, nz

BASE = "https://reports.example.govt.nz"
LINK = re.compile(re.escape(BASE) + r"/r/([A-Za-z0-9_-]+)")


def _render(session: Session, notification: Notification, when: str = "2022-02-01") -> str:
    message = render_message(
        session, notification, nz(when), base_url=BASE, timezone="Pacific/Auckland"
    )
    return message.text


def test_opening_a_cycle_makes_one_request_per_lead_agency_and_a_row_per_recipient(
    session: Session,
) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")

    by_agency = {item.agency.acronym: item for item in opened.requests}
    # MBIE, NZP and DIA lead milestones; OT is active on an objective; INZ does neither.
    assert sorted(by_agency) == ["DIA", "MBIE", "NZP", "OT"]
    assert all(item.request.state == RequestState.PENDING for item in opened.requests)
    assert [a.acronym for a in opened.no_contacts] == ["DIA"]

    rows = notifications(session, opened.notification_ids)
    assert {(n.recipient, n.channel) for n in rows} == {
        ("alice@mbie.govt.nz", "email"),
        (f"notify-url of contact {built.contacts['alice'].id}", "notify_url"),
        ("bob@police.govt.nz", "email"),
        ("olive@ot.govt.nz", "email"),
    }
    # The coordinator is no agency recipient; the notify URL is never copied into a row.
    assert all(n.kind == "update_request" and n.state == DeliveryState.PENDING for n in rows)
    assert all("hooks.example.org" not in str(n.context) + n.recipient for n in rows)
    assert all(n.context["update_request_id"] == by_agency_id(opened, n.agency_id) for n in rows)

    event = session.exec(select(AuditEvent).where(AuditEvent.action == "cycle.opened")).one()
    assert event.cycle_id == opened.cycle.id
    assert event.detail["no_contacts"] == ["DIA"]
    assert event.detail["requests"] == 4


def by_agency_id(opened: object, agency_id: int | None) -> int | None:
    for item in opened.requests:  # type: ignore[attr-defined]
        if item.agency.id == agency_id:
            return int(item.request.id)
    return None


def test_opening_the_same_year_twice_is_refused_and_says_so(session: Session) -> None:
    built = build_plan(session)
    open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "alice")
    with pytest.raises(CycleError, match=r"2022 cycle of test-plan was already opened on "):
        open_cycle(session, built.plan, 2022, date(2022, 12, 9), nz("2022-02-02"), "bob")
    assert len(session.exec(select(UpdateRequest)).all()) == 4


def test_a_deadline_in_the_past_is_refused(session: Session) -> None:
    built = build_plan(session)
    with pytest.raises(CycleError, match="before today"):
        open_cycle(session, built.plan, 2022, date(2022, 1, 31), nz("2022-02-01"), "test")


def test_a_deadline_more_than_a_year_away_is_refused_as_a_likely_typo(session: Session) -> None:
    built = build_plan(session)
    # A year to the day is still allowed; a day more, or the wrong decade, is not.
    with pytest.raises(CycleError, match=r"2032-12-02 is more than a year away \(the latest is "):
        open_cycle(session, built.plan, 2022, date(2032, 12, 2), nz("2022-02-01"), "test")
    with pytest.raises(CycleError, match="the latest is 2023-02-02"):
        open_cycle(session, built.plan, 2022, date(2023, 2, 3), nz("2022-02-01"), "test")
    assert session.exec(select(UpdateRequest)).all() == []
    opened = open_cycle(session, built.plan, 2022, date(2023, 2, 2), nz("2022-02-01"), "test")
    assert opened.cycle.deadline == date(2023, 2, 2)


def test_the_update_request_names_the_agency_milestones_deadline_and_a_hashed_link(
    session: Session,
) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    mbie = next(
        n
        for n in notifications(session, opened.notification_ids)
        if n.channel == "email" and n.recipient == "alice@mbie.govt.nz"
    )
    message = render_message(session, mbie, nz("2022-02-01"), base_url=BASE)

    assert message.subject == "Please send MBIE's 2022 progress update by Friday 2 December 2022"
    assert "Kia ora Alice," in message.text
    assert "Ministry of Business, Innovation and Employment (MBIE)" in message.text
    # Grouped by objective, in plan order, with due periods; completed ones left out.
    awareness = message.text.index("Undertake awareness raising and training")
    supply = message.text.index("Address risks of exploitation in supply chains")
    assert awareness < supply
    assert "Quarter 1 2022: Complete research programme" in message.text
    assert "December 2022: Run a training campaign." in message.text
    assert "Publish guidance for employers" not in message.text
    assert "Review of passport processes" not in message.text  # DIA's, not MBIE's

    token = LINK.search(message.text)
    assert token is not None
    assert token.group(0) in message.html
    stored = session.exec(select(AccessToken)).all()
    assert [t.token_hash for t in stored] == [hash_token(token.group(1))]
    assert token.group(1) not in str([t.model_dump() for t in stored])
    found = resolve_token(session, token.group(1), nz("2022-02-02"), grace=_days(14))
    assert found is not None and found[1].agency_id == built.agencies["MBIE"].id

    # A retried send revokes the link of the failed attempt: one live link per message.
    again = render_message(session, mbie, nz("2022-02-01"), base_url=BASE)
    second = LINK.search(again.text)
    assert second is not None and second.group(1) != token.group(1)
    assert resolve_token(session, token.group(1), nz("2022-02-02"), grace=_days(14)) is None
    assert resolve_token(session, second.group(1), nz("2022-02-02"), grace=_days(14))


def test_html_bodies_escape_what_comes_from_the_database(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    nzp = next(
        n
        for n in notifications(session, opened.notification_ids)
        if n.recipient == "bob@police.govt.nz"
    )
    message = render_message(session, nzp, nz("2022-02-01"), base_url=BASE)
    assert "trafficking &lt;landscape&gt;" in message.html
    assert "support &amp; protection for &lt;victims&gt;" in message.html
    assert "<landscape>" not in message.html
    assert "trafficking <landscape>" in message.text  # plain text is not HTML-escaped


def test_after_sent_marks_the_request_sent_once(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    first, second = (
        n
        for n in notifications(session, opened.notification_ids)
        if n.agency_id == built.agencies["MBIE"].id
    )
    after_sent(session, first, nz("2022-02-01", 10))
    after_sent(session, second, nz("2022-02-01", 11))
    request = session.get(UpdateRequest, first.context["update_request_id"])
    assert request is not None
    assert request.state == RequestState.SENT
    assert request.sent_at == nz("2022-02-01", 10)
    sent_events = session.exec(select(AuditEvent).where(AuditEvent.action == "request.sent")).all()
    assert len(sent_events) == 1


def test_status_shows_state_reminders_due_and_slipped(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    built.milestones["old"].slipped_on = date(2022, 1, 4)
    session.add(built.milestones["old"])
    session.flush()
    rows = {row.agency.acronym: row for row in cycle_status(session, opened.cycle)}
    assert rows["DIA"].state_label == "not sent (no contacts)"
    assert rows["MBIE"].state_label == "not sent yet"
    # MBIE: research, triage, done (completed still counts as due in 2022), december.
    assert rows["MBIE"].milestones_due == 4
    assert rows["NZP"].milestones_due == 1
    assert rows["DIA"].slipped == 1
    assert rows["MBIE"].reminders_sent == 0
    assert find_cycle(session, built.plan, 2022).id == opened.cycle.id
    with pytest.raises(CycleError, match="has not been opened"):
        find_cycle(session, built.plan, 2023)


def test_resend_revokes_every_earlier_link_and_sends_a_fresh_one(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    mbie = [
        n
        for n in notifications(session, opened.notification_ids)
        if n.agency_id == built.agencies["MBIE"].id
    ]
    old = [_token(_render(session, n)) for n in mbie]
    assert len(old) == 2  # the email and the notify URL each carry their own link

    resent = resend_link(session, opened.cycle, "mbie", nz("2022-03-01"), "coordinator")
    assert resent.revoked == 2
    fresh = notifications(session, resent.notification_ids)
    assert [n.kind for n in fresh] == ["link_reissued", "link_reissued"]
    message = render_message(session, fresh[0], nz("2022-03-01"), base_url=BASE)
    assert message.subject == "Your new link for MBIE's 2022 progress update"
    assert "Any earlier links no longer work" in message.text
    new = _token(message.text)
    grace = _days(14)
    assert all(resolve_token(session, t, nz("2022-03-02"), grace) is None for t in old)
    assert resolve_token(session, new, nz("2022-03-02"), grace) is not None

    event = session.exec(select(AuditEvent).where(AuditEvent.action == "token.reissued")).one()
    assert event.detail == {"revoked": 2, "messages": 2}
    assert event.agency_id == built.agencies["MBIE"].id
    # A second resend is a new round, not a duplicate.
    again = resend_link(session, opened.cycle, "MBIE", nz("2022-03-01"), "coordinator")
    # Only the link rendered since (the first fresh message) was still live.
    assert len(again.notification_ids) == 2 and again.revoked == 1

    with pytest.raises(CycleError, match="DIA has no contacts"):
        resend_link(session, opened.cycle, "DIA", nz("2022-03-01"), "coordinator")
    with pytest.raises(CycleError, match="no agency 'XYZ'"):
        resend_link(session, opened.cycle, "XYZ", nz("2022-03-01"), "coordinator")
    # Nothing was rendered since the second resend: no link works until its mail goes out.
    live = select(AccessToken).where(col(AccessToken.revoked_at).is_(None))
    assert session.exec(live).all() == []


def _token(text: str) -> str:
    found = LINK.search(text)
    assert found is not None, text
    return found.group(1)


def _days(days: int) -> timedelta:
    return timedelta(days=days)
