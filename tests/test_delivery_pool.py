"""The SMTP connection kept open between messages (worker.notify's pool), against a real SMTP
server: reused, retired after its quota (and the next one reused again), and replaced when
the server dropped it while idle. No database: the transport alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

import worker.notify as notify
from models.tables import Contact, Notification
from tests.smtp_server import SmtpServer
from worker.notify import AppriseTransport, PreparedEmail

NOW = datetime(2022, 3, 1, 20, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


def _send(transport: AppriseTransport, n: int) -> None:
    notification = Notification(
        id=n,
        idempotency_key=f"k{n}",
        kind="reminder",
        channel="email",
        recipient=f"person{n}@example.org",
        claimed_at=NOW,
    )
    contact = Contact(agency_id=1, email=f"person{n}@example.org")
    transport.send(notification, contact, Message(f"Subject {n}", f"text {n}", f"<p>{n}</p>"))


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many SMTP connections the transport opened."""
    opened: list[int] = []
    real = PreparedEmail._connect

    def counting(self: PreparedEmail) -> object:
        opened.append(1)
        return real(self)

    monkeypatch.setattr(PreparedEmail, "_connect", counting)
    return opened


def _transport(server: SmtpServer, tmp_path: Path) -> AppriseTransport:
    return AppriseTransport(
        mail_url=server.url, mail_from="rc@example.org", outbox_dir=tmp_path, domain="rc.example"
    )


def test_one_connection_carries_a_quota_of_messages_then_a_new_one_does(
    smtp_server: SmtpServer, connects: list[int], tmp_path: Path
) -> None:
    transport = _transport(smtp_server, tmp_path)
    total = notify._ConnectionPool.MAX_MESSAGES + 5
    for n in range(total):
        _send(transport, n)

    assert len(smtp_server.wait_for(total)) == total
    # The first connection until its quota, then one more (reused too, not one per message).
    assert len(connects) == 2


def test_a_connection_the_server_dropped_while_idle_is_replaced(
    smtp_server: SmtpServer,
    connects: list[int],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(notify._ConnectionPool, "CHECK_AFTER_IDLE", 0.0)
    transport = _transport(smtp_server, tmp_path)
    _send(transport, 1)
    smtp_server.stop()  # drops the open connection
    smtp_server.start()
    _send(transport, 2)

    assert [m.subject for m in smtp_server.wait_for(2)] == ["Subject 1", "Subject 2"]
    assert len(connects) == 2
