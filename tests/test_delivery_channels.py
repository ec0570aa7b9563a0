"""A contact's extra notify URL through Apprise (to a real local HTTP endpoint), and how SMTP
errors are classified."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from models.delivery import DeliveryPolicy, deliver
from models.tables import Agency, Contact, DeliveryState, Notification
from tests.services import free_port
from worker.notify import AppriseTransport, classify_smtp_error

NOW = datetime(2022, 3, 1, 20, 0, tzinfo=UTC)
POLICY = DeliveryPolicy(stale_after=timedelta(minutes=5), max_attempts=3)


@dataclass(frozen=True)
class StubMessage:
    subject: str
    text: str
    html: str


def render(session: Session, notification: Notification, now: datetime) -> StubMessage:
    return StubMessage(
        subject="Reminder: 2 MBIE milestones are due soon",
        text="Kia ora,\nQuarter 1 2022 – Publish the guidance.\nhttps://rc.example/r/abc",
        html="<p>Kia ora,</p>",
    )


def no_after_sent(session: Session, notification: Notification, now: datetime) -> None:
    return None


class Hook:
    """A local HTTP endpoint (what Teams or Slack would be) that records what it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"


@pytest.fixture
def hook() -> Iterator[Hook]:
    endpoint = Hook()
    endpoint.thread.start()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def notify_url_notification(session: Session, notify_url: str) -> int:
    agency = session.exec(select(Agency).where(Agency.acronym == "MBIE")).first() or Agency(
        acronym="MBIE", full_name="Ministry of Business, Innovation and Employment"
    )
    session.add(agency)
    session.flush()
    assert agency.id is not None
    # A test may make several: each its own contact.
    others = len(session.exec(select(Contact)).all())
    contact = Contact(
        agency_id=agency.id, email=f"plan{others or ''}@mbie.example.org", notify_url=notify_url
    )
    session.add(contact)
    session.flush()
    notification = Notification(
        idempotency_key=f"reminder:c{contact.id}:notify_url",
        kind="reminder",
        agency_id=agency.id,
        contact_id=contact.id,
        channel="notify_url",
        recipient=f"notify-url of contact {contact.id}",
        context={"agency_id": agency.id},
    )
    session.add(notification)
    session.commit()
    assert notification.id is not None
    return notification.id


def transport(tmp_path: Path, *, allow_private_hosts: bool = True) -> AppriseTransport:
    # No mail URL: the email channel would go to the outbox; notify URLs go out regardless.
    # The test hooks listen on 127.0.0.1, so private hosts are allowed unless a test says.
    return AppriseTransport(
        mail_url=None,
        mail_from="rc@example.org",
        outbox_dir=tmp_path,
        domain="rc.example.org",
        allow_private_hosts=allow_private_hosts,
    )


def send(
    session: Session, notification_id: int, tmp_path: Path, *, allow_private_hosts: bool = True
) -> DeliveryState:
    return deliver(
        session,
        notification_id,
        NOW,
        transport(tmp_path, allow_private_hosts=allow_private_hosts),
        policy=POLICY,
        render=render,
        after_sent=no_after_sent,
    )


def last_error(session: Session, notification_id: int) -> str:
    row = session.get(Notification, notification_id, populate_existing=True)
    assert row is not None
    return row.last_error or ""


def test_a_contacts_notify_url_gets_the_subject_and_text(
    session: Session, hook: Hook, tmp_path: Path
) -> None:
    notification_id = notify_url_notification(session, hook.url)

    assert send(session, notification_id, tmp_path) is DeliveryState.SENT
    assert send(session, notification_id, tmp_path) is DeliveryState.SENT

    [posted] = hook.received
    assert posted["title"] == "Reminder: 2 MBIE milestones are due soon"
    assert "Quarter 1 2022 – Publish the guidance." in posted["message"]
    assert "https://rc.example/r/abc" in posted["message"]
    assert list(tmp_path.iterdir()) == []


def test_a_notify_url_to_a_private_or_local_address_is_refused_unless_allowed(
    session: Session, hook: Hook, tmp_path: Path
) -> None:
    # A URL stored before the check existed (or written to the database by hand) meets it
    # again at send time; the hook on 127.0.0.1 gets nothing.
    url = hook.url.replace("json://", "json://hookuser:hunter2-secret@")
    notification_id = notify_url_notification(session, url)

    assert send(session, notification_id, tmp_path, allow_private_hosts=False) is (
        DeliveryState.FAILED
    )
    error = last_error(session, notification_id)
    assert "points at 127.0.0.1, a private or local address" in error
    assert "REPORTCYCLE_NOTIFY_PRIVATE_HOSTS=true" in error
    assert "hunter2-secret" not in error
    assert hook.received == []

    # The same message to the same hook, where the installation allows private hosts.
    allowed = notify_url_notification(session, hook.url)
    assert send(session, allowed, tmp_path) is DeliveryState.SENT
    assert len(hook.received) == 1


def test_a_webhook_name_is_resolved_at_send_time_and_each_address_checked(
    session: Session, hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS is not ours to run in a test: the resolver answers as a rebinding name would, a
    # public address first and a private one after it.
    answers = {
        "hooks.example.org": ["93.184.215.14", "10.1.2.3"],
    }
    real = socket.getaddrinfo

    def resolver(host: str, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0)) for a in answers[host]]
        if host == "gone.example.org":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    rebinding = notify_url_notification(session, "jsons://hooks.example.org/hook")
    assert send(session, rebinding, tmp_path, allow_private_hosts=False) is DeliveryState.FAILED
    assert "points at hooks.example.org (10.1.2.3)" in last_error(session, rebinding)

    # A name with no address (yet) is retried, not failed for good.
    gone = notify_url_notification(session, "json://gone.example.org/hook")
    assert send(session, gone, tmp_path, allow_private_hosts=False) is DeliveryState.RETRYING
    assert "gone.example.org has no address" in last_error(session, gone)
    assert hook.received == []


def test_a_failing_notify_url_is_retried(session: Session, hook: Hook, tmp_path: Path) -> None:
    hook.status = 503
    notification_id = notify_url_notification(session, hook.url)

    assert send(session, notification_id, tmp_path) is DeliveryState.RETRYING
    assert "did not take the message" in last_error(session, notification_id)

    hook.status = 200
    assert send(session, notification_id, tmp_path) is DeliveryState.SENT
    assert len(hook.received) == 2


def test_a_notify_url_apprise_cannot_load_fails_permanently(
    session: Session, tmp_path: Path
) -> None:
    notification_id = notify_url_notification(session, "nosuchservice://token@nowhere")

    assert send(session, notification_id, tmp_path) is DeliveryState.FAILED
    assert "not a URL Apprise can load" in last_error(session, notification_id)


def test_a_notify_url_cannot_write_into_the_outbox(session: Session, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    notification_id = notify_url_notification(session, f"outbox://?dir={target}&name=x.eml")

    assert send(session, notification_id, tmp_path) is DeliveryState.FAILED
    assert not target.exists()


def test_the_credentials_of_a_notify_url_stay_out_of_the_error_and_the_log(
    session: Session, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Nothing listens on this port: the service fails, and its URL is shown privately.
    port = free_port()
    notification_id = notify_url_notification(
        session, f"json://hookuser:hunter2-secret@127.0.0.1:{port}/hook"
    )

    assert send(session, notification_id, tmp_path) is DeliveryState.RETRYING
    error = last_error(session, notification_id)
    assert "did not take the message" in error
    assert "hunter2-secret" not in error
    assert "hunter2-secret" not in caplog.text


@pytest.mark.parametrize(
    ("exc", "permanent", "says"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@b.example": (550, b"5.1.1 No such user")}),
            True,
            "550 5.1.1 No such user",
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@b.example": (450, b"4.2.0 Mailbox busy")}),
            False,
            "450",
        ),
        (smtplib.SMTPDataError(451, b"4.3.0 Try again later"), False, "451"),
        (smtplib.SMTPDataError(554, b"5.7.1 Message rejected"), True, "554"),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 Bad credentials"), False, "login"),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 Sender denied", "rc@x"), False, "sender"),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False, "disconnected"),
        (ConnectionRefusedError(111, "Connection refused"), False, "refused the connection"),
        (TimeoutError("timed out"), False, "timed out"),
        (TimeoutError(), False, "timed out"),
    ],
)
def test_smtp_errors_are_retryable_or_permanent(
    exc: BaseException, permanent: bool, says: str
) -> None:
    error = classify_smtp_error(exc, "smtp.example.org:587")

    assert error.permanent is permanent
    assert says in str(error)
