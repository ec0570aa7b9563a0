"""Sending messages through Apprise: email, a contact's extra notify URL, and the outbox.

- Email: ``REPORTCYCLE_MAIL_URL`` is an Apprise ``mailto://``/``mailtos://`` URL without
  recipients. Each recipient gets its own Apprise email service (one refused address cannot fail
  or re-send the others). Apprise's stock email plugin builds its own MIME (the text part is
  converted from the HTML, the Message-ID is random) and turns every SMTP error into a logged
  ``False``; so ``PreparedEmail`` subclasses it to send the message we prepared (our own text
  and HTML parts, a Message-ID derived from the notification id) over the connection the URL
  describes (host, port, ``mode=ssl|starttls|insecure``, login), and to keep the SMTP error,
  which decides retry or not: 4xx, connection refused, timeout, disconnect: retryable;
  5xx and a malformed address: permanent. (A 5xx to our login or sender is a configuration
  problem, not the recipient's, so it is retryable: fixing the URL lets the messages go out.)
- A contact's notify URL (Teams, Slack …) is its own Apprise object and gets the subject and
  the plain text. Apprise does not say why such a service failed, so a failure is retryable
  and the attempts bound it; a URL Apprise cannot load is permanent.
- Outbox: with no mail URL, the same prepared message goes through an Apprise custom
  notification (``outbox://``) that writes it as an ``.eml`` file into
  ``REPORTCYCLE_OUTBOX_DIR``. Files are named ``{time:%Y%m%dT%H%M%S}-n{id}-{kind}.eml``
  (sortable, one per notification: a re-send replaces the file atomically).

URLs hold credentials: only ``url(privacy=True)`` forms reach a log or an error message.
"""

# Apprise ships partial type hints: its plugin base and decorators are untyped.
# mypy: disallow-untyped-calls=False, disallow-untyped-decorators=False
# mypy: disallow-subclassing-any=False

from __future__ import annotations

import atexit
import binascii
import contextlib
import copy
import email
import email.policy
import functools
import hashlib
import ipaddress
import logging
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

import apprise
from apprise.decorators import notify as apprise_notify
from apprise.plugins.email import NotifyEmail
from apprise.utils.parse import is_email

from models.contacts import url_scheme
from models.delivery import DeliveryError, RenderedMessage, Transport
from models.notify_targets import SETTING as PRIVATE_HOSTS_SETTING
from models.notify_targets import UnresolvableHost, private_target
from models.tables import Contact, Notification
from worker.flowed import flow

if TYPE_CHECKING:
    from config.settings import Settings

log = logging.getLogger(__name__)

OUTBOX_SCHEMA = "outbox"
EMAIL_SCHEMAS = ("mailto", "mailtos")


class _WirePolicy(email.policy.Compat32):
    """compat32 with CRLF line ends (smtplib sends bytes as they are: the lines must already
    end in CRLF). compat32 folds every header through a ``Header`` object, a good share of
    a message's cost; a short plain-ASCII header comes out of that as ``name: value``, so it
    is written so directly (the same bytes)."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + len(value) <= 76  # "name: value" within 78 characters
            and value == value.strip()
            and not any(c in value for c in "\r\n\t")
            and "  " not in value
        ):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


WIRE = _WirePolicy(linesep="\r\n")
_SAFE_FILE_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-n[0-9]+-[a-z0-9_-]+\.eml$")


# --- the message -----------------------------------------------------------------------------


def message_id(notification: Notification, domain: str) -> str:
    """Stable per notification: a re-send after a crash carries the same Message-ID."""
    cycle = f".c{notification.cycle_id}" if notification.cycle_id is not None else ""
    return f"<notification-{notification.id}{cycle}@{domain}>"


def build_email(
    notification: Notification,
    contact: Contact,
    message: RenderedMessage,
    *,
    from_header: str,
    domain: str,
    date: datetime,
    reply_to: str | None = None,
) -> Message:
    """The RFC 5322 message: headers, a text/plain part and a text/html alternative.
    ``reply_to``: where a reply goes (REPORTCYCLE_MAIL_REPLY_TO), when not to the sender.

    Built with the classic ``email.mime`` classes (as Apprise does): the header registry of
    ``EmailMessage`` parses every header it is given and costs more than the SMTP exchange."""
    # A boundary of our own: the generator would otherwise draw one and compile a regex to
    # check the parts for it, per message. "==" never occurs in quoted-printable parts (a
    # literal "=" is "=3D"), so it cannot collide with a body.
    mail = MIMEMultipart("alternative", boundary=f"==============={notification.id}==")
    mail["Subject"] = _header("Subject", " ".join(message.subject.split()))
    mail["From"] = formataddr(parseaddr(from_header), charset="utf-8")
    mail["To"] = formataddr((contact.name or "", contact.email), charset="utf-8")
    if reply_to:
        mail["Reply-To"] = formataddr(parseaddr(reply_to), charset="utf-8")
    mail["Date"] = format_datetime(date.astimezone(UTC))
    mail["Message-ID"] = message_id(notification, domain)
    # RFC 3834: out-of-office replies must not answer this.
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Reportcycle-Notification"] = str(notification.id)
    mail["X-Reportcycle-Kind"] = notification.kind
    # Paragraphs wrapped for any reader, joined again by a client that knows the format.
    mail.attach(_text_part(flow(message.text), "plain", format="flowed"))
    mail.attach(_text_part(message.html, "html"))
    return mail


def _header(name: str, value: str) -> str:
    # Encoded words only when needed, folded knowing the header's name.
    return value if value.isascii() else Header(value, "utf-8", header_name=name).encode()


def _text_part(text: str, subtype: str, **params: str) -> MIMENonMultipart:
    """A UTF-8 part in quoted-printable: 7-bit safe for any server, and still readable in an
    .eml file. Encoded by ``binascii`` (C) rather than by the email package's charset, whose
    encoder walks the body a character at a time in Python (a tenth of a message's cost);
    both write valid quoted-printable that decodes to the same text."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    for name, value in params.items():
        part.set_param(name, value)
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))
    return part


def outbox_file_name(notification: Notification, date: datetime) -> str:
    kind = re.sub(r"[^a-z0-9_-]", "-", notification.kind.lower()) or "message"
    return f"{date.astimezone(UTC):%Y%m%dT%H%M%S}-n{notification.id}-{kind}.eml"


# --- SMTP through Apprise --------------------------------------------------------------------


def classify_smtp_error(exc: BaseException, server: str) -> DeliveryError:
    """A short, credential-free description of an SMTP failure, and whether it is permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        codes = [code for code, _ in replies]
        text = "; ".join(f"{code} {_decode(reply)}" for code, reply in replies)
        return DeliveryError(
            f"recipient refused by {server}: {text}", permanent=all(c >= 500 for c in codes)
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused):
        return DeliveryError(
            f"{server} refused our login or sender ({exc.smtp_code} {_decode(exc.smtp_error)}):"
            " check REPORTCYCLE_MAIL_URL",
            permanent=False,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        return DeliveryError(
            f"{server} answered {code} {_decode(exc.smtp_error)}", permanent=code >= 500
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"{server} disconnected: {exc}", permanent=False)
    if isinstance(exc, TimeoutError | socket.timeout):
        return DeliveryError(f"{server} timed out", permanent=False)
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError(f"{server} refused the connection", permanent=False)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"TLS with {server} failed: {exc}", permanent=False)
    if isinstance(exc, OSError | smtplib.SMTPException):
        return DeliveryError(f"{server}: {type(exc).__name__}: {exc}", permanent=False)
    return DeliveryError(f"{server}: {type(exc).__name__}: {exc}", permanent=False)


def _decode(reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


class PreparedEmail(NotifyEmail):
    """Apprise's email service sending one prepared message, keeping the SMTP error."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prepared: Message | None = None
        self.error: DeliveryError | None = None

    @property
    def server(self) -> str:
        return f"{self.smtp_host}:{self.port}"

    def send(self, body: str, title: str = "", *args: Any, **kwargs: Any) -> bool:
        if self.prepared is None or not self.targets:
            self.error = DeliveryError("no prepared message or recipient", permanent=True)
            return False
        recipients = [address for _, address in self.targets]
        self.throttle()
        try:
            with self._connection() as smtp:
                smtp.sendmail(
                    str(self.from_addr[1]), recipients, self.prepared.as_bytes(policy=WIRE)
                )
        except Exception as exc:
            self.error = classify_smtp_error(exc, self.server)
            self.logger.warning("Email to %s failed: %s", ", ".join(recipients), self.error)
            return False
        self.logger.info("Sent Email to %s", ", ".join(recipients))
        return True

    @contextlib.contextmanager
    def _connection(self) -> Iterator[smtplib.SMTP]:
        """A connection as the URL describes it (Apprise's email plugin makes the same one),
        kept open for the next message to the same server from this thread. A connection
        that failed in any way is closed, never reused."""
        key = (
            self.smtp_host,
            self.port,
            self.secure_mode,
            self.user,
            hashlib.sha256(str(self.password or "").encode()).hexdigest(),
            bool(self.verify_certificate),
        )
        smtp = _POOL.take(key)
        if smtp is None:
            smtp = self._connect()
        try:
            yield smtp
        except BaseException:
            _POOL.forget(smtp)
            raise
        _POOL.give_back(key, smtp)

    def _connect(self) -> smtplib.SMTP:
        timeout = float(self.socket_connect_timeout)
        port = int(self.port or 25)
        smtp: smtplib.SMTP
        if self.secure_mode == "ssl":
            context = _tls_context(bool(self.verify_certificate))
            smtp = smtplib.SMTP_SSL(self.smtp_host, port, timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.smtp_host, port, timeout=timeout)
        try:
            if self.secure_mode == "starttls":
                smtp.starttls(context=_tls_context(bool(self.verify_certificate)))
            if self.user and self.password:
                smtp.login(self.user, self.password)
        except BaseException:
            _quit(smtp)
            raise
        return smtp


def _quit(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        smtp.quit()
    with contextlib.suppress(OSError):
        smtp.close()


class _ConnectionPool:
    """One open SMTP connection per server and thread, reused for a while: connecting, TLS and
    login cost more than sending a message. A connection is checked with NOOP before reuse
    (servers drop idle ones) once it has been idle ``CHECK_AFTER_IDLE`` seconds, retired after
    ``MAX_MESSAGES`` or ``MAX_IDLE`` seconds, and closed when the process exits."""

    MAX_MESSAGES = 100
    MAX_IDLE = 30.0
    CHECK_AFTER_IDLE = 1.0

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: set[smtplib.SMTP] = set()
        self._lock = threading.Lock()
        atexit.register(self.close_all)

    def _slots(self) -> dict[tuple[object, ...], tuple[smtplib.SMTP, int, float]]:
        slots = getattr(self._local, "slots", None)
        if slots is None or getattr(self._local, "pid", None) != os.getpid():
            # A forked child must not share its parent's sockets.
            slots = self._local.slots = {}
            self._local.pid = os.getpid()
        return cast(dict[tuple[object, ...], tuple[smtplib.SMTP, int, float]], slots)

    def take(self, key: tuple[object, ...]) -> smtplib.SMTP | None:
        # Messages sent on the connection handed out (0: a new one), counted by give_back.
        self._local.used = 0
        found = self._slots().pop(key, None)
        if found is None:
            return None
        smtp, used, since = found
        idle = time.monotonic() - since
        if used >= self.MAX_MESSAGES or idle > self.MAX_IDLE:
            self.forget(smtp)
            return None
        # A connection used a moment ago is alive; one idle longer may have been dropped.
        if idle > self.CHECK_AFTER_IDLE:
            try:
                code, _ = smtp.noop()
            except (OSError, smtplib.SMTPException):
                code = 0
            if code != 250:
                self.forget(smtp)
                return None
        self._local.used = used
        return smtp

    def give_back(self, key: tuple[object, ...], smtp: smtplib.SMTP) -> None:
        used = getattr(self._local, "used", 0) + 1
        self._local.used = 0
        slots = self._slots()
        if key in slots:  # only one kept per server and thread
            self.forget(smtp)
            return
        slots[key] = (smtp, used, time.monotonic())
        with self._lock:
            self._all.add(smtp)

    def forget(self, smtp: smtplib.SMTP) -> None:
        with self._lock:
            self._all.discard(smtp)
        _quit(smtp)

    def close_all(self) -> None:
        with self._lock:
            connections, self._all = list(self._all), set()
        for smtp in connections:
            _quit(smtp)


_POOL = _ConnectionPool()


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    # Loading the CA store takes tens of milliseconds: once per process, not per message.
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_mail_url(url: str) -> dict[str, Any]:
    """Apprise's reading of ``REPORTCYCLE_MAIL_URL``; ValueError (without the URL) if bad."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in EMAIL_SCHEMAS:
        raise ValueError(
            "REPORTCYCLE_MAIL_URL must be an Apprise mailto:// or mailtos:// URL"
            f" (got a {scheme or 'scheme-less'} URL)"
        )
    parsed = NotifyEmail.parse_url(url)
    if not parsed:
        raise ValueError("REPORTCYCLE_MAIL_URL is not a URL Apprise can read")
    return dict(parsed)


# --- the outbox: an Apprise custom notification ----------------------------------------------


@apprise_notify(on=OUTBOX_SCHEMA, name="reportcycle outbox (.eml files)")
def write_outbox(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """Write the RFC 5322 message in ``body`` to ``{dir}/{name}`` (atomically)."""
    qsd = meta.get("qsd", {})
    directory = Path(qsd["dir"])
    name = qsd["name"]
    if not _SAFE_FILE_NAME.match(name):
        raise ValueError(f"unsafe outbox file name {name!r}")
    if email.message_from_string(body)["Message-ID"] is None:
        raise ValueError("the outbox takes whole RFC 5322 messages")
    directory.mkdir(parents=True, exist_ok=True)
    # As it would cross the wire: CRLF line ends (Apprise strips the final one).
    data = (body.replace("\r\n", "\n").rstrip("\n").replace("\n", "\r\n") + "\r\n").encode()
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".eml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return True


# --- the transport ---------------------------------------------------------------------------

# One service per Apprise object, called on the caller's thread: Apprise's thread pool (and,
# with a service timeout, its hand-over to a shared executor thread) would only add two thread
# switches per message, and would spread the per-thread SMTP connections over its threads. The
# time a send may take is bounded by the SMTP socket timeout and the task's time limit.
_SEQUENTIAL = apprise.AppriseAsset(async_mode=False, service_timeout=0)


class AppriseTransport:
    """``Transport`` over Apprise: SMTP when a mail URL is set, else the .eml outbox."""

    def __init__(
        self,
        *,
        mail_url: str | None,
        mail_from: str,
        outbox_dir: Path,
        domain: str,
        reply_to: str | None = None,
        allow_private_hosts: bool = False,
    ) -> None:
        self._mail = parse_mail_url(mail_url) if mail_url else None
        self.allow_private_hosts = allow_private_hosts
        self._template: PreparedEmail | None = None
        self.mail_from = mail_from
        self.outbox_dir = outbox_dir
        self.domain = domain
        self.reply_to = reply_to

    @property
    def uses_outbox(self) -> bool:
        return self._mail is None

    def send(self, notification: Notification, contact: Contact, message: RenderedMessage) -> None:
        if notification.channel == "email":
            self._send_email(notification, contact, message)
        elif notification.channel == "notify_url":
            self._send_notify_url(notification, contact, message)
        else:
            raise DeliveryError(f"unknown channel {notification.channel!r}", permanent=True)

    def _date(self, notification: Notification) -> datetime:
        # The claim time is the delivery's "now" (an injected clock in the demo and tests).
        return notification.claimed_at or datetime.now(UTC)

    def _send_email(
        self, notification: Notification, contact: Contact, message: RenderedMessage
    ) -> None:
        address = contact.email.strip()
        parsed = is_email(address)
        if not parsed:
            raise DeliveryError(f"not a valid email address: {address!r}", permanent=True)
        date = self._date(notification)
        if self._mail is None:
            prepared = build_email(
                notification,
                contact,
                message,
                from_header=self.mail_from,
                domain=self.domain,
                date=date,
                reply_to=self.reply_to,
            )
            self._write_outbox(notification, prepared, date)
            return
        try:
            service = self._email_service(self._mail)
        except Exception as exc:
            raise DeliveryError(
                f"REPORTCYCLE_MAIL_URL could not be loaded: {type(exc).__name__}", permanent=False
            ) from None
        # The one recipient, as Apprise's email service reads a target.
        service.targets = [(parsed["name"] or False, parsed["full_email"])]
        service.prepared = build_email(
            notification,
            contact,
            message,
            from_header=formataddr((str(service.from_addr[0] or ""), str(service.from_addr[1]))),
            domain=self.domain,
            date=date,
            reply_to=self.reply_to,
        )
        # The service's own notify(), not an Apprise object around it: a dispatcher, its
        # retry runner and its result objects per message cost a tenth of a worker's time
        # per message, for a single service whose retries are ours (the row's backoff).
        if not service.notify(body=message.text, title=message.subject):
            raise service.error or DeliveryError(
                f"{service.url(privacy=True)} did not take the message", permanent=False
            )

    def _email_service(self, mail: dict[str, Any]) -> PreparedEmail:
        """A service of its own for one message: a shallow copy of one built from the mail
        URL once (building one reads and checks the URL again, a good share of a message's
        cost). The copies share the template's containers (cc, headers …), which sending only
        reads; what a send sets (the recipient, the prepared message, the error) is the
        copy's own. A URL that cannot be loaded is not kept: each message tries again."""
        template = self._template
        if template is None:
            options = {k: v.copy() if isinstance(v, dict | list) else v for k, v in mail.items()}
            if not options.get("from_addr"):
                options["from_addr"] = self.mail_from
            options["asset"] = _SEQUENTIAL
            template = self._template = PreparedEmail(**options)
        service = copy.copy(template)
        service.prepared = None
        service.error = None
        return service

    def _write_outbox(self, notification: Notification, prepared: Message, date: datetime) -> None:
        name = outbox_file_name(notification, date)
        url = f"{OUTBOX_SCHEMA}://?dir={quote(str(self.outbox_dir), safe='')}&name={name}"
        sender = apprise.Apprise(asset=_SEQUENTIAL)
        if not sender.add(url):
            raise DeliveryError("the outbox notification could not be loaded", permanent=False)
        result = sender.notify(body=prepared.as_string(), title="")
        if not result:
            raise DeliveryError(
                f"could not write {name} to the outbox {self.outbox_dir}", permanent=False
            )

    def _send_notify_url(
        self, notification: Notification, contact: Contact, message: RenderedMessage
    ) -> None:
        url = (contact.notify_url or "").strip()
        if not url:
            raise DeliveryError(f"contact {contact.id} has no notify URL", permanent=True)
        if urlsplit(url).scheme.lower() == OUTBOX_SCHEMA:
            # The outbox writes files where its URL says: not for contacts' URLs.
            raise DeliveryError(
                f"contact {contact.id}: outbox:// is not a notify URL", permanent=True
            )
        if not self.allow_private_hosts:
            # Checked again here, not only when the URL was entered: a webhook's name is
            # resolved now, and the address it points at may have changed since.
            try:
                private = private_target(url)
            except UnresolvableHost as exc:
                raise DeliveryError(
                    f"the notify URL of contact {contact.id} ({url_scheme(url)}): {exc}",
                    permanent=False,
                ) from None
            if private is not None:
                raise DeliveryError(
                    f"the notify URL of contact {contact.id} ({url_scheme(url)}) points at "
                    f"{private}, a private or local address; set {PRIVATE_HOSTS_SETTING}=true "
                    "to allow it",
                    permanent=True,
                )
        sender = apprise.Apprise()
        if not sender.add(url):
            raise DeliveryError(
                f"the notify URL of contact {contact.id} is not a URL Apprise can load",
                permanent=True,
            )
        service = sender[0]
        result = sender.notify(
            body=message.text, title=message.subject, body_format=apprise.NotifyFormat.TEXT
        )
        if not result:
            raise DeliveryError(
                f"{service.service_name} ({service.url(privacy=True)}) did not take the message"
                f" ({result.status.name})",
                permanent=False,
            )


def message_domain(settings: Settings) -> str:
    """The Message-ID domain: the web app's host name (stable for an installation)."""
    host = urlsplit(settings.base_url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host if "." in host else f"{host or 'reportcycle'}.reportcycle.invalid"
    return "reportcycle.invalid"  # an address is no domain for a Message-ID


def default_transport(settings: Settings) -> Transport:
    mail_url = settings.mail_url.get_secret_value() if settings.mail_url else None
    return _transport(
        mail_url,
        settings.mail_from,
        settings.outbox_path,
        message_domain(settings),
        settings.mail_reply_to,
        settings.notify_private_hosts,
    )


@functools.lru_cache(maxsize=8)
def _transport(
    mail_url: str | None,
    mail_from: str,
    outbox_dir: Path,
    domain: str,
    reply_to: str | None,
    allow_private_hosts: bool,
) -> AppriseTransport:
    # One per configuration and process, not per task: Apprise's parsing of the mail URL is a
    # good share of a message's cost. (The transport keeps nothing between messages.)
    return AppriseTransport(
        mail_url=mail_url,
        mail_from=mail_from,
        outbox_dir=outbox_dir,
        domain=domain,
        reply_to=reply_to,
        allow_private_hosts=allow_private_hosts,
    )
