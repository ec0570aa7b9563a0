"""A real SMTP server (aiosmtpd) for tests, with the failures we need to rehearse.

``SmtpServer`` runs an aiosmtpd ``Controller`` in a thread on a free port and keeps every
message it accepted, parsed. It can:

- refuse a recipient with a permanent 550 (``refuse``),
- answer 451 to the DATA of the first N messages (``fail_next``),
- be stopped and started again on the same port (``stop`` / ``start``),
- delay its answer to DATA (``delay_data``), to simulate a slow server. A message whose client
  goes away during the delay is discarded: the server commits a message only when it can
  acknowledge it, as RFC 5321 servers do for a connection lost before the final reply.

Use it through the ``smtp_server`` fixture (``tests/conftest_smtp.py``) or directly::

    with SmtpServer() as server:
        ...
        server.wait_for(1)
        [mail] = server.messages
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services import free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted: the SMTP envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def part(self, subtype: str) -> str:
        """The decoded text of the ``text/{subtype}`` part ("plain" or "html"), with the
        wire's CRLF line ends read as "\\n"."""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None or body.get_content_subtype() != subtype:
            raise AssertionError(f"the message has no text/{subtype} part")
        text = str(body.get_content()).replace("\r\n", "\n")
        # As a mail client that knows format=flowed shows it: paragraphs joined again.
        return read_flowed(text) if body.get_param("format") == "flowed" else text

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")


@dataclass
class _Behaviour:
    refused: dict[str, str] = field(default_factory=dict)
    fail_next: int = 0
    fail_reply: str = "451 4.3.0 Try again later"
    data_delay: float = 0.0
    # The delay holds only the DATA after the first ``delay_after`` (a send mid-batch).
    delay_after: int = 0


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._server._lock:
            reply = self._server._behaviour.refused.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._server._lock:
            behaviour = self._server._behaviour
            self._server._data_started += 1
            if behaviour.fail_next > 0:
                behaviour.fail_next -= 1
                self._server._failed_data += 1
                return behaviour.fail_reply
            delayed = self._server._data_started > behaviour.delay_after
            delay = behaviour.data_delay if delayed else 0.0
        if delay > 0:
            # Cancelled by aiosmtpd when the client goes away: nothing is recorded then.
            await asyncio.sleep(delay)
            transport = getattr(server, "transport", None)
            if transport is None or transport.is_closing():
                return "421 4.4.2 Connection lost"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=tuple(envelope.rcpt_tos),
            message=parsed,
            raw=raw,
        )
        with self._server._lock:
            self._server._messages.append(mail)
        return "250 Message accepted for delivery"


class SmtpServer:
    """A real SMTP server on 127.0.0.1 and a free port; see the module docstring.

    ``tls``: (certificate, key) PEM files to offer STARTTLS with; ``credentials``: a login and
    password the server then requires (AUTH PLAIN/LOGIN, over TLS only)."""

    def __init__(
        self,
        port: int | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.tls = tls
        self.credentials = credentials
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._behaviour = _Behaviour()
        self._messages: list[ReceivedMail] = []
        self._data_started = 0
        self._failed_data = 0
        self._controller: Controller | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> SmtpServer:
        if self._controller is None:
            options: dict[str, Any] = {}
            if self.tls is not None:
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                context.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
                options["tls_context"] = context
            if self.credentials is not None:
                options["authenticator"] = self._authenticate
                options["auth_required"] = True
            controller = Controller(_Handler(self), hostname=self.host, port=self.port, **options)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else ""
        password = auth_data.password.decode() if isinstance(auth_data, LoginPassword) else ""
        ok = (login, password) == self.credentials
        if ok:
            with self._lock:
                self.logins.append(login)
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    # --- behaviour -------------------------------------------------------------------------

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        """Answer RCPT TO for ``address`` with ``reply`` (a permanent 550 by default)."""
        with self._lock:
            self._behaviour.refused[address.lower()] = reply

    def fail_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the DATA of the next ``count`` messages with ``reply`` (transient 451)."""
        with self._lock:
            self._behaviour.fail_next = count
            self._behaviour.fail_reply = reply

    def delay_data(self, seconds: float, *, after: int = 0) -> None:
        """Wait ``seconds`` before answering DATA (0 to stop delaying); with ``after``, only
        the DATA after the first ``after`` (counted from the start, as ``data_started``)."""
        with self._lock:
            self._behaviour.data_delay = seconds
            self._behaviour.delay_after = after

    def reset(self) -> None:
        with self._lock:
            self._behaviour = _Behaviour()
            self._messages.clear()
            self._data_started = 0
            self._failed_data = 0

    # --- what was received -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """An Apprise URL for this server: plain SMTP, no TLS, no login (add ``from=``)."""
        return f"mailto://{self.host}:{self.port}?mode=insecure"

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._messages)

    @property
    def data_started(self) -> int:
        """How many times a client reached DATA (accepted, failed or still in progress)."""
        with self._lock:
            return self._data_started

    def to(self, address: str) -> list[ReceivedMail]:
        """The messages whose envelope recipients include ``address``."""
        return [mail for mail in self.messages if address.lower() in _lower(mail.rcpt_tos)]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMail]:
        """Wait until at least ``count`` messages have arrived; they all, or AssertionError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} message(s) at the SMTP server, got {len(self.messages)}"
        )

    def wait_for_data(self, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until clients have reached DATA ``count`` times (e.g. a send in progress)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.data_started >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"no client reached DATA {count} time(s) within {timeout}s")


def _lower(addresses: tuple[str, ...]) -> set[str]:
    return {address.lower() for address in addresses}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for 127.0.0.1 (openssl), for ``SmtpServer(tls=…)``."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def read_flowed(text: str) -> str:
    """format=flowed text (RFC 3676, delsp=no) read back as its lines, as a client does:
    one leading space removed from each line (space-stuffing), and a line that ends with a
    space joined to the next (a soft break). Written from the RFC, not from our encoder."""
    lines: list[str] = []
    paragraph = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            paragraph += line
            continue
        lines.append(paragraph + line)
        paragraph = ""
    if paragraph:
        lines.append(paragraph)
    return "\n".join(lines)
