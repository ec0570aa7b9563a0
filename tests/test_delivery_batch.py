"""deliver_batch(): several notifications one after another on one session, each claimed,
committed with its token, sent and recorded on its own. Real database (both backends), the
real Apprise transport and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.delivery import DeliveryPolicy, deliver_batch
from models.tables import (
    AccessToken,
    Agency,
    AuditEvent,
    DeliveryState,
    Notification,
    RequestState,
    UpdateRequest,
)
from tests.smtp_server import SmtpServer
from tests.test_delivery import (
    NOW,
    POLICY,
    AfterSent,
    add_contact,
    add_notification,
    render,
    row,
    transport_for,
)
from tests.test_worker import World, build_world
from worker.notify import AppriseTransport

pytestmark = pytest.mark.smtp


@pytest.fixture
def agency(session: Session) -> Agency:
    agency = Agency(acronym="MBIE", full_name="Ministry of Business, Innovation and Employment")
    session.add(agency)
    session.flush()
    return agency


def notifications(session: Session, agency: Agency, count: int) -> list[int]:
    return [
        add_notification(session, add_contact(session, agency, f"person{n}@mbie.example.org"))
        for n in range(count)
    ]


def at_now() -> datetime:
    return NOW


def batch(
    session: Session,
    ids: list[int],
    transport: AppriseTransport,
    *,
    clock: Callable[[], datetime] = at_now,
    time_budget: float | None = None,
    after_sent: AfterSent | None = None,
) -> object:
    return deliver_batch(
        session,
        ids,
        clock,
        transport,
        policy=POLICY,
        time_budget=time_budget,
        render=render,
        after_sent=after_sent or AfterSent(),
    )


def test_a_batch_sends_each_message_once_and_again_sends_nothing(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = notifications(session, agency, 5)
    transport = transport_for(smtp_server, tmp_path)
    after_sent = AfterSent()

    result = deliver_batch(
        session, ids, at_now, transport, policy=POLICY, render=render, after_sent=after_sent
    )

    assert [o.notification_id for o in result.outcomes] == ids
    assert all(o.sent_now and o.state is DeliveryState.SENT for o in result.outcomes)
    assert (result.unknown, result.errored, result.not_started) == ((), (), ())
    assert after_sent.calls == ids
    mails = smtp_server.wait_for(5)
    assert sorted(m.rcpt_tos[0] for m in mails) == [f"person{n}@mbie.example.org" for n in range(5)]
    assert len({m.message_id for m in mails}) == 5
    assert all(row(session, i).attempts == 1 for i in ids)

    # The same batch delivered again (its worker died after the last message): nothing sent.
    again = deliver_batch(
        session, ids, at_now, transport, policy=POLICY, render=render, after_sent=after_sent
    )
    assert [o.state for o in again.outcomes] == [DeliveryState.SENT] * 5
    assert not any(o.sent_now for o in again.outcomes)
    assert len(smtp_server.messages) == 5
    assert after_sent.calls == ids


def test_a_transient_failure_is_that_message_alone(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = notifications(session, agency, 3)
    smtp_server.fail_next(1)

    result = batch(session, ids, transport_for(smtp_server, tmp_path))

    assert [o.state for o in result.outcomes] == [
        DeliveryState.RETRYING,
        DeliveryState.SENT,
        DeliveryState.SENT,
    ]
    assert result.outcomes[0].retryable
    assert "451" in (row(session, ids[0]).last_error or "")
    assert sorted(m.rcpt_tos[0] for m in smtp_server.wait_for(2)) == [
        "person1@mbie.example.org",
        "person2@mbie.example.org",
    ]


def test_a_message_for_a_row_someone_else_holds_is_left_to_them(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = notifications(session, agency, 2)
    # Another worker claimed the first a moment ago.
    session.exec(
        sa.update(Notification)
        .where(col(Notification.id) == ids[0])
        .values(state=DeliveryState.SENDING, claimed_at=NOW, attempts=1)
    )
    session.commit()

    result = batch(session, ids, transport_for(smtp_server, tmp_path))

    assert [(o.state, o.sent_now) for o in result.outcomes] == [
        (DeliveryState.SENDING, False),
        (DeliveryState.SENT, True),
    ]
    assert [m.rcpt_tos[0] for m in smtp_server.wait_for(1)] == ["person1@mbie.example.org"]


def test_past_its_time_budget_a_batch_starts_nothing_more_and_hands_the_rest_back(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = notifications(session, agency, 3)

    result = batch(session, ids, transport_for(smtp_server, tmp_path), time_budget=0)

    # The first message always goes: a batch makes progress whatever its budget.
    assert [o.notification_id for o in result.outcomes] == ids[:1]
    assert result.not_started == tuple(ids[1:])
    assert [row(session, i).state for i in ids[1:]] == [DeliveryState.PENDING] * 2
    assert row(session, ids[1]).attempts == 0
    assert len(smtp_server.wait_for(1)) == 1


def test_an_unknown_id_is_reported_and_the_others_go_out(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    ids = notifications(session, agency, 2)
    missing = max(ids) + 1000

    result = batch(session, [ids[0], missing, ids[1]], transport_for(smtp_server, tmp_path))

    assert result.unknown == (missing,)
    assert [o.notification_id for o in result.outcomes] == ids
    assert len(smtp_server.wait_for(2)) == 2


def test_an_attempt_that_raises_is_handed_back_with_the_rest(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """Whatever broke an attempt outside the send (the database, here a clock that fails)
    would break the next ones too: the batch stops, nothing half-written."""
    ids = notifications(session, agency, 3)
    calls = iter([NOW])

    def clock() -> datetime:
        return next(calls)  # StopIteration (an Exception) on the second message

    result = batch(session, ids, transport_for(smtp_server, tmp_path), clock=clock)

    assert [o.notification_id for o in result.outcomes] == ids[:1]
    assert result.errored == (ids[1],)
    assert result.not_started == (ids[2],)
    assert [row(session, i).state for i in ids[1:]] == [DeliveryState.PENDING] * 2
    assert len(smtp_server.wait_for(1)) == 1


# --- the real messages: links, tokens and requests ----------------------------------------


@pytest.fixture
def world(db_url: str, report_2021_text: str) -> Iterator[World]:
    built = build_world(db_url, report_2021_text)
    yield built
    built.engine.dispose()


def test_the_real_messages_of_a_batch_carry_one_live_link_each_and_mark_requests_sent_once(
    world: World, smtp_server: SmtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTCYCLE_BASE_URL", "https://reports.example.govt.nz")
    from config import settings as settings_module

    settings_module.get_settings.cache_clear()
    ids = world.update_request_ids
    transport = transport_for(smtp_server, tmp_path)
    policy = DeliveryPolicy(stale_after=POLICY.stale_after, max_attempts=3)
    smtp_server.fail_next(1)

    with world.engine.connect() as connection, Session(bind=connection) as session:
        first = deliver_batch(session, ids, at_now, transport, policy=policy)
        assert [o.state for o in first.outcomes] == [
            DeliveryState.RETRYING,
            *[DeliveryState.SENT] * (len(ids) - 1),
        ]
        # The failed one again (its retry): a new link, the failed attempt's revoked.
        again = deliver_batch(session, ids, at_now, transport, policy=policy)
        assert [o.sent_now for o in again.outcomes] == [True, *[False] * (len(ids) - 1)]
    settings_module.get_settings.cache_clear()

    mails = smtp_server.wait_for(len(ids))
    assert len(mails) == len(ids)
    assert all("https://reports.example.govt.nz/r/" in m.text for m in mails)
    with Session(world.engine) as session:
        tokens = session.exec(select(AccessToken)).all()
        live = [t for t in tokens if t.revoked_at is None]
        assert sorted(t.notification_id or 0 for t in live) == sorted(ids)
        revoked = [t for t in tokens if t.revoked_at is not None]
        assert [t.notification_id for t in revoked] == [ids[0]]
        # Every request whose link went out is sent, and said so once in the audit.
        requests = session.exec(select(UpdateRequest)).all()
        sent = {r.id for r in requests if r.state is RequestState.SENT}
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "request.sent")
        ).all()
        assert len(events) == len(sent) == len(ids)


def test_a_batch_reads_its_recipients_in_one_query_whatever_its_size(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    # The session keeps its objects across commits, as the worker's does.
    assert session.expire_on_commit is False
    transport = transport_for(smtp_server, tmp_path)
    engine = session.get_bind().engine
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM contact" in statement:
            reads.append(statement)

    every = notifications(session, agency, 8)
    session.commit()
    for ids in (every[:2], every[2:]):
        session.expunge_all()  # nothing of the setup left in the identity map
        reads.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            result = batch(session, ids, transport)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        assert all(o.sent_now for o in result.outcomes)
        assert len(reads) == 1, (len(ids), reads)


def test_a_request_another_process_moved_on_is_left_as_it_is(world: World) -> None:
    """The session's copy of a request says pending while, elsewhere, its link went out and
    was opened: the message sent now must not set it back to sent, nor say so in the audit."""
    from models.messages import after_sent

    with (
        world.engine.connect() as connection,
        Session(bind=connection, expire_on_commit=False) as session,
    ):
        notification = session.get(Notification, world.update_request_ids[0])
        assert notification is not None and notification.context is not None
        request_id = notification.context["update_request_id"]
        copy = session.get(UpdateRequest, request_id)
        assert copy is not None and copy.state is RequestState.PENDING
        session.commit()
        with world.engine.begin() as other:
            other.execute(
                sa.update(UpdateRequest)
                .where(col(UpdateRequest.id) == request_id)
                .values(state=RequestState.OPENED)
            )

        after_sent(session, notification, NOW)
        session.commit()

        assert copy.state is RequestState.OPENED, "the stale copy is read again"
    with Session(world.engine) as session:
        request = session.get(UpdateRequest, request_id)
        assert request is not None and request.state is RequestState.OPENED
        events = session.exec(
            select(AuditEvent).where(col(AuditEvent.action) == "request.sent")
        ).all()
        assert events == []


def test_messages_of_one_request_in_a_batch_read_its_rows_once(world: World) -> None:
    """A batch renders many messages for the same cycle and agency (each of its contacts):
    the request, cycle, plan and agency are read for the first and found in the session
    for the next."""
    from models.messages import render_message

    preloads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "LEFT OUTER JOIN updaterequest" in statement:
            preloads.append(statement)

    sa.event.listen(world.engine, "before_cursor_execute", count)
    try:
        with (
            world.engine.connect() as connection,
            Session(bind=connection, expire_on_commit=False) as session,
        ):
            notification = session.get(Notification, world.update_request_ids[0])
            assert notification is not None
            first = render_message(
                session, notification, NOW, base_url="https://r.example", timezone="UTC"
            )
            second = render_message(
                session, notification, NOW, base_url="https://r.example", timezone="UTC"
            )
            session.rollback()
    finally:
        sa.event.remove(world.engine, "before_cursor_execute", count)
    assert len(preloads) == 1
    assert first.subject == second.subject
    assert first.text.split("/r/")[0] == second.text.split("/r/")[0]
