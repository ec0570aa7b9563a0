"""deliver(): claim, render, send through the real Apprise transport to a real SMTP server,
record. On both databases."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.delivery import (
    DELIVERY_FAILED,
    DeliveryPolicy,
    RenderedMessage,
    attempt_delivery,
    deliver,
    deliver_now,
    resumable_ids,
)
from models.tables import Agency, Contact, DeliveryState, Notification
from tests.smtp_server import SmtpServer, self_signed_certificate
from worker.notify import AppriseTransport

NOW = datetime(2022, 3, 1, 20, 0, tzinfo=UTC)
POLICY = DeliveryPolicy(stale_after=timedelta(minutes=5), max_attempts=3)
DOMAIN = "reportcycle.example.org"


# Long enough that a message is many SMTP lines (bare LF line ends would make it one).
MILESTONES_TEXT = "".join(
    f"- Quarter {q} 2022 – Te Manatū Hauora milestone {n} with a long description\n"
    for n in range(40)
    for q in (1, 2)
)
MILESTONES_HTML = (
    "<ul>"
    + "".join(f"<li>Quarter 2 2022 – milestone {n} &amp; its description</li>\n" for n in range(80))
    + "</ul>"
)


@dataclass(frozen=True)
class StubMessage:
    subject: str
    text: str
    html: str


def render(session: Session, notification: Notification, now: datetime) -> StubMessage:
    """A stand-in for models.messages.render_message: what the transport must carry."""
    return StubMessage(
        subject=f"Reminder {notification.id}: Ministry of Business, Innovation & Employment",
        text=f"Kia ora,\nplease report on milestone {notification.id}.\nhttps://rc.example/t/x\n"
        + MILESTONES_TEXT,
        html=f"<p>Kia ora,</p><p>please report on milestone {notification.id} &amp; more.</p>\n"
        + MILESTONES_HTML,
    )


class AfterSent:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, session: Session, notification: Notification, now: datetime) -> None:
        assert notification.state is DeliveryState.SENT
        assert notification.id is not None
        self.calls.append(notification.id)


@pytest.fixture
def agency(session: Session) -> Agency:
    agency = Agency(acronym="MBIE", full_name="Ministry of Business, Innovation and Employment")
    session.add(agency)
    session.flush()
    return agency


def add_contact(
    session: Session, agency: Agency, email: str, *, coordinator: bool = False
) -> Contact:
    assert agency.id is not None
    contact = Contact(
        agency_id=agency.id, email=email, name="Aroha Ngata", is_coordinator=coordinator
    )
    session.add(contact)
    session.flush()
    return contact


def add_notification(
    session: Session, contact: Contact, *, kind: str = "reminder", key: str | None = None
) -> int:
    assert contact.id is not None
    notification = Notification(
        idempotency_key=key or f"{kind}:{contact.id}:{contact.email}",
        kind=kind,
        agency_id=contact.agency_id,
        contact_id=contact.id,
        channel="email",
        recipient=contact.email,
        context={"agency_id": contact.agency_id},
        created_at=NOW - timedelta(minutes=1),
    )
    session.add(notification)
    session.commit()
    assert notification.id is not None
    return notification.id


def row(session: Session, notification_id: int) -> Notification:
    found = session.get(Notification, notification_id, populate_existing=True)
    assert found is not None
    return found


def transport_for(server: SmtpServer, tmp_path: Path) -> AppriseTransport:
    return AppriseTransport(
        mail_url=server.url + "&from=reportcycle@example.org",
        mail_from="ignored@example.org",
        outbox_dir=tmp_path / "outbox",
        domain=DOMAIN,
    )


def send(session: Session, notification_id: int, transport: AppriseTransport) -> DeliveryState:
    return deliver(
        session,
        notification_id,
        NOW,
        transport,
        policy=POLICY,
        render=render,
        after_sent=AfterSent(),
    )


def test_a_message_goes_out_once_with_text_html_and_a_stable_message_id(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    after_sent = AfterSent()
    transport = transport_for(smtp_server, tmp_path)

    state = deliver(
        session,
        notification_id,
        NOW,
        transport,
        policy=POLICY,
        render=render,
        after_sent=after_sent,
    )

    assert state is DeliveryState.SENT
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("aroha@mbie.example.org",)
    assert mail.mail_from == "reportcycle@example.org"
    assert mail.subject == (
        f"Reminder {notification_id}: Ministry of Business, Innovation & Employment"
    )
    assert mail.message_id == f"<notification-{notification_id}@{DOMAIN}>"
    assert str(mail.message["To"]) == "Aroha Ngata <aroha@mbie.example.org>"
    assert mail.message["Date"].datetime == NOW
    assert f"please report on milestone {notification_id}." in mail.text
    assert "https://rc.example/t/x" in mail.text
    assert f"milestone {notification_id} &amp; more" in mail.html
    assert MILESTONES_TEXT in mail.text
    assert MILESTONES_HTML in mail.html
    assert all(len(line) <= 998 for line in mail.raw.split(b"\r\n"))
    stored = row(session, notification_id)
    assert stored.state is DeliveryState.SENT
    assert stored.sent_at == NOW
    assert stored.attempts == 1
    assert stored.last_error is None
    assert after_sent.calls == [notification_id]

    # A redelivered task, a second enqueue: nothing is sent again.
    assert send(session, notification_id, transport) is DeliveryState.SENT
    assert len(smtp_server.messages) == 1
    assert row(session, notification_id).attempts == 1


def test_one_refused_recipient_fails_alone_and_the_coordinators_are_told(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    good = add_contact(session, agency, "good@mbie.example.org")
    bad = add_contact(session, agency, "gone@mbie.example.org")
    coordinator = add_contact(session, agency, "coord@mbie.example.org", coordinator=True)
    smtp_server.refuse("gone@mbie.example.org")
    transport = transport_for(smtp_server, tmp_path)
    good_id = add_notification(session, good)
    bad_id = add_notification(session, bad)

    outcome = attempt_delivery(
        session, bad_id, NOW, transport, policy=POLICY, render=render, after_sent=AfterSent()
    )
    assert send(session, good_id, transport) is DeliveryState.SENT

    assert outcome.state is DeliveryState.FAILED
    failed = row(session, bad_id)
    assert failed.state is DeliveryState.FAILED
    assert failed.last_error is not None and "550" in failed.last_error
    assert failed.sent_at is None
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("good@mbie.example.org",)
    # The coordinators' notice is a row, claimed once, ready to be sent.
    notices = session.exec(select(Notification).where(Notification.kind == DELIVERY_FAILED)).all()
    assert [notice.contact_id for notice in notices] == [coordinator.id]
    assert list(outcome.follow_up_ids) == [notices[0].id]
    assert notices[0].state is DeliveryState.PENDING
    assert notices[0].context["failed_notification_id"] == bad_id
    assert "550" in notices[0].context["error"]

    # Delivering the failed row again changes nothing and tells no one twice.
    assert send(session, bad_id, transport) is DeliveryState.FAILED
    assert (
        len(session.exec(select(Notification).where(Notification.kind == DELIVERY_FAILED)).all())
        == 1
    )


def test_a_message_that_cannot_be_rendered_fails_once_and_keeps_nothing_it_wrote(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    coordinator = add_contact(session, agency, "coord@mbie.example.org", coordinator=True)
    notification_id = add_notification(session, contact)

    def broken(session: Session, notification: Notification, now: datetime) -> StubMessage:
        # Rendering writes in the claim's transaction (a link token); then it fails.
        session.add(Agency(acronym="HALF", full_name="Written by a render that failed"))
        session.flush()
        raise RuntimeError("template missing")

    outcome = attempt_delivery(
        session,
        notification_id,
        NOW,
        transport_for(smtp_server, tmp_path),
        policy=POLICY,
        render=broken,
        after_sent=AfterSent(),
    )

    assert outcome.state is DeliveryState.FAILED
    failed = row(session, notification_id)
    assert failed.state is DeliveryState.FAILED
    assert failed.attempts == 1  # claimed once, though the claim was made again to record it
    assert failed.last_error == "could not render the message: RuntimeError: template missing"
    assert session.exec(select(Agency).where(Agency.acronym == "HALF")).first() is None
    assert smtp_server.messages == []
    notices = session.exec(select(Notification).where(Notification.kind == DELIVERY_FAILED)).all()
    assert [notice.contact_id for notice in notices] == [coordinator.id]


def test_a_451_is_retried_and_the_message_delivered_once(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    smtp_server.fail_next(1)
    transport = transport_for(smtp_server, tmp_path)

    assert send(session, notification_id, transport) is DeliveryState.RETRYING
    waiting = row(session, notification_id)
    assert waiting.attempts == 1
    assert waiting.last_error is not None and "451" in waiting.last_error
    assert smtp_server.messages == []

    assert send(session, notification_id, transport) is DeliveryState.SENT
    assert len(smtp_server.wait_for(1)) == 1
    assert row(session, notification_id).attempts == 2


def test_server_down_then_back_delivers_once(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    transport = transport_for(smtp_server, tmp_path)
    smtp_server.stop()

    assert send(session, notification_id, transport) is DeliveryState.RETRYING
    assert "refused the connection" in (row(session, notification_id).last_error or "")

    smtp_server.start()
    assert send(session, notification_id, transport) is DeliveryState.SENT
    assert send(session, notification_id, transport) is DeliveryState.SENT
    assert len(smtp_server.wait_for(1)) == 1


def test_transient_failures_give_up_after_the_last_attempt(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    add_contact(session, agency, "coord@mbie.example.org", coordinator=True)
    notification_id = add_notification(session, contact)
    smtp_server.fail_next(10)
    transport = transport_for(smtp_server, tmp_path)

    states = [send(session, notification_id, transport) for _ in range(POLICY.max_attempts)]

    assert states == [DeliveryState.RETRYING] * (POLICY.max_attempts - 1) + [DeliveryState.FAILED]
    failed = row(session, notification_id)
    assert failed.last_error is not None
    assert failed.last_error.startswith(f"gave up after {POLICY.max_attempts} attempts")
    assert (
        session.exec(select(Notification).where(Notification.kind == DELIVERY_FAILED)).first()
        is not None
    )


def test_a_fresh_claim_keeps_others_off_and_a_stale_one_is_taken_over(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    transport = transport_for(smtp_server, tmp_path)
    # A worker claimed the row a minute ago and is still sending (or died doing so).
    session.exec(
        sa.update(Notification)
        .where(col(Notification.id) == notification_id)
        .values(state=DeliveryState.SENDING, claimed_at=NOW - timedelta(minutes=1), attempts=1)
    )
    session.commit()

    assert send(session, notification_id, transport) is DeliveryState.SENDING
    assert smtp_server.messages == []
    assert resumable_ids(session, NOW, policy=POLICY, lost_after=timedelta(minutes=10)) == []

    later = NOW + POLICY.stale_after
    assert resumable_ids(session, later, policy=POLICY, lost_after=timedelta(minutes=10)) == [
        notification_id
    ]
    state = deliver(
        session,
        notification_id,
        later,
        transport,
        policy=POLICY,
        render=render,
        after_sent=AfterSent(),
    )
    assert state is DeliveryState.SENT
    assert len(smtp_server.wait_for(1)) == 1
    assert row(session, notification_id).attempts == 2


def test_the_outbox_writes_a_parseable_eml_through_apprise(
    session: Session, agency: Agency, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    outbox = tmp_path / "out box"
    transport = AppriseTransport(
        mail_url=None, mail_from="Report Cycle <rc@example.org>", outbox_dir=outbox, domain=DOMAIN
    )

    assert send(session, notification_id, transport) is DeliveryState.SENT
    assert send(session, notification_id, transport) is DeliveryState.SENT

    [path] = sorted(outbox.iterdir())
    assert path.name == f"20220301T200000-n{notification_id}-reminder.eml"
    import email
    import email.policy

    mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert mail["Message-ID"] == f"<notification-{notification_id}@{DOMAIN}>"
    assert mail["To"] == "Aroha Ngata <aroha@mbie.example.org>"
    assert mail["From"] == "Report Cycle <rc@example.org>"
    assert mail["Subject"].startswith(f"Reminder {notification_id}: ")
    assert mail["Date"].datetime == NOW
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Kia ora," in text.get_content()
    assert "&amp; more" in html.get_content()


def test_replies_go_to_the_reply_to_of_the_settings_over_smtp_and_in_the_outbox(
    session: Session,
    agency: Agency,
    smtp_server: SmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """REPORTCYCLE_MAIL_REPLY_TO reaches every message as its Reply-To (the messages invite a
    reply; the sender may be an address nobody reads); unset, there is none."""
    import email
    import email.policy

    from config.settings import Settings
    from worker.notify import default_transport

    team = "Plan of Action – Te Kāhui <plan-of-action@mbie.example.org>"
    over_smtp = default_transport(
        Settings(
            data_dir=tmp_path / "smtp",
            mail_url=smtp_server.url + "&from=reportcycle@example.org",
            mail_reply_to=team,
        )
    )
    to_outbox = default_transport(Settings(data_dir=tmp_path / "files", mail_reply_to=team))
    plain = default_transport(Settings(data_dir=tmp_path / "plain"))
    for n, transport in enumerate((over_smtp, to_outbox, plain)):
        contact = add_contact(session, agency, f"person{n}@mbie.example.org")
        assert send(session, add_notification(session, contact), transport) is DeliveryState.SENT

    [received] = smtp_server.wait_for(1)
    [written, unset] = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for folder in ("files", "plain")
        for path in sorted((tmp_path / folder / "outbox").iterdir())
    ]
    parsed = email.message_from_bytes(received.raw, policy=email.policy.default)
    for mail in (parsed, written):
        assert mail["Reply-To"] == team
        assert mail["Reply-To"].addresses[0].addr_spec == "plan-of-action@mbie.example.org"
    assert unset["Reply-To"] is None


@pytest.mark.parametrize(
    "value", ["nobody", "two@example.org\nBcc: x@example.org", "name <not-an-address>"]
)
def test_a_reply_to_that_is_not_one_address_is_refused_naming_the_variable(
    value: str, tmp_path: Path
) -> None:
    from pydantic import ValidationError

    from config.settings import Settings

    with pytest.raises(ValidationError) as raised:
        Settings(data_dir=tmp_path, mail_reply_to=value)
    assert "mail_reply_to" in str(raised.value)


def test_a_malformed_address_fails_permanently_without_a_connection(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    contact = add_contact(session, agency, "not an address")
    notification_id = add_notification(session, contact)

    assert send(session, notification_id, transport_for(smtp_server, tmp_path)) is (
        DeliveryState.FAILED
    )
    assert "not a valid email address" in (row(session, notification_id).last_error or "")
    assert smtp_server.messages == []


def test_credentials_in_the_mail_url_reach_no_log_and_no_error(
    session: Session,
    agency: Agency,
    smtp_server: SmtpServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    transport = AppriseTransport(
        mail_url=f"mailto://mailer:s3cr3t-pa55@{smtp_server.host}:{smtp_server.port}"
        "?mode=insecure&from=rc@example.org",
        mail_from="rc@example.org",
        outbox_dir=tmp_path,
        domain=DOMAIN,
    )
    caplog.set_level(logging.DEBUG)

    # The test server offers no AUTH: the login fails, retryably (a configuration problem).
    assert send(session, notification_id, transport) is DeliveryState.RETRYING

    error = row(session, notification_id).last_error or ""
    assert error
    assert "s3cr3t-pa55" not in error
    assert "s3cr3t-pa55" not in caplog.text


@pytest.fixture
def committed_agency(engine: sa.Engine) -> Iterator[Agency]:
    """An agency committed for real (deliver_now opens its own sessions), and everything
    under it removed afterwards, so no other test sees it."""
    with Session(engine, expire_on_commit=False) as session:
        agency = Agency(acronym=f"T{uuid.uuid4().hex[:8]}", full_name="Test agency")
        session.add(agency)
        session.commit()
    yield agency
    with Session(engine) as session:
        session.exec(sa.delete(Notification).where(col(Notification.agency_id) == agency.id))
        session.exec(sa.delete(Contact).where(col(Contact.agency_id) == agency.id))
        session.exec(sa.delete(Agency).where(col(Agency.id) == agency.id))
        session.commit()


def test_deliver_now_retries_a_transient_failure_in_process(
    engine: sa.Engine, committed_agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        contact = add_contact(session, committed_agency, "aroha@agency.example.org")
        notification_id = add_notification(session, contact)
    smtp_server.fail_next(2)

    states = deliver_now(
        engine,
        [notification_id],
        NOW,
        transport_for(smtp_server, tmp_path),
        policy=POLICY,
        backoff_seconds=0.05,
        render=render,
        after_sent=AfterSent(),
    )

    assert states == [DeliveryState.SENT]
    assert len(smtp_server.wait_for(1)) == 1


class TakenOverMidSend:
    """A transport so slow that its claim goes stale: while it sends, another worker takes the
    row over (``deliver`` at a later instant) and sends it too."""

    def __init__(self, inner: AppriseTransport, session: Session, after_sent: AfterSent) -> None:
        self.inner = inner
        self.session = session
        self.after_sent = after_sent
        self.takeover: DeliveryState | None = None

    def send(self, notification: Notification, contact: Contact, message: RenderedMessage) -> None:
        assert notification.id is not None
        if self.takeover is None:
            self.takeover = DeliveryState.PENDING  # the takeover itself sends normally
            self.takeover = deliver(
                self.session,
                notification.id,
                NOW + POLICY.stale_after + timedelta(seconds=1),
                self,
                policy=POLICY,
                render=render,
                after_sent=self.after_sent,
            )
        self.inner.send(notification, contact, message)


def test_a_send_outliving_its_claim_is_a_duplicate_with_the_same_message_id(
    session: Session, agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """The one window exactly-once cannot close (the server has the message, the worker has
    not recorded it): the two copies carry the same Message-ID, and the row's side effects
    happen once."""
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    after_sent = AfterSent()
    slow = TakenOverMidSend(transport_for(smtp_server, tmp_path), session, after_sent)

    state = deliver(
        session, notification_id, NOW, slow, policy=POLICY, render=render, after_sent=after_sent
    )

    assert slow.takeover is DeliveryState.SENT
    assert state is DeliveryState.SENT
    first, second = smtp_server.wait_for(2)
    assert first.message_id == second.message_id == f"<notification-{notification_id}@{DOMAIN}>"
    assert after_sent.calls == [notification_id]
    assert row(session, notification_id).attempts == 2


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_mailtos_with_starttls_and_a_login(
    session: Session,
    agency: Agency,
    tls_files: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    contact = add_contact(session, agency, "aroha@mbie.example.org")
    notification_id = add_notification(session, contact)
    caplog.set_level(logging.DEBUG)
    with SmtpServer(tls=tls_files, credentials=("mailer", "right-pa55")) as server:

        def transport(password: str) -> AppriseTransport:
            # mailtos:// is STARTTLS; the test certificate is self-signed (verify=no).
            return AppriseTransport(
                mail_url=f"mailtos://mailer:{password}@{server.host}:{server.port}"
                "?verify=no&from=rc@example.org",
                mail_from="rc@example.org",
                outbox_dir=tmp_path,
                domain=DOMAIN,
            )

        assert send(session, notification_id, transport("wrong-pa55")) is DeliveryState.RETRYING
        error = row(session, notification_id).last_error or ""
        assert "refused our login" in error
        assert "check REPORTCYCLE_MAIL_URL" in error

        assert send(session, notification_id, transport("right-pa55")) is DeliveryState.SENT
        [mail] = server.wait_for(1)

    assert server.logins == ["mailer"]
    assert mail.rcpt_tos == ("aroha@mbie.example.org",)
    for secret in ("wrong-pa55", "right-pa55"):
        assert secret not in error
        assert secret not in caplog.text


def test_deliver_now_also_delivers_the_coordinators_notice(
    engine: sa.Engine, committed_agency: Agency, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    with Session(engine, expire_on_commit=False) as session:
        bad = add_contact(session, committed_agency, "gone@agency.example.org")
        good = add_contact(session, committed_agency, "here@agency.example.org")
        coordinator = add_contact(
            session, committed_agency, "coord@agency.example.org", coordinator=True
        )
        ids = [add_notification(session, bad), add_notification(session, good)]
    smtp_server.refuse(bad.email)

    states = deliver_now(
        engine,
        ids,
        NOW,
        transport_for(smtp_server, tmp_path),
        policy=POLICY,
        backoff_seconds=0.05,
        render=render,
        after_sent=AfterSent(),
    )

    assert states == [DeliveryState.FAILED, DeliveryState.SENT]
    received = sorted(a for mail in smtp_server.wait_for(2) for a in mail.rcpt_tos)
    assert received == sorted([good.email, coordinator.email])
