"""Web safety shared by the agency form and the coordinator dashboard.

- Signed session cookies: Starlette's ``SessionMiddleware`` (itsdangerous, the key from
  ``config.secret_key``), HttpOnly, SameSite=Lax, Secure when the public address is https.
- CSRF: a synchronizer token kept in the session, sent as a hidden ``csrf`` form field and
  compared with ``hmac.compare_digest`` (``csrf_token`` in templates, ``require_csrf`` in
  handlers).
- ``SecurityHeadersMiddleware``: Referrer-Policy, Cache-Control, a same-origin-only CSP,
  X-Content-Type-Options, frame-ancestors.
- ``BodyLimitMiddleware``: request bodies over a limit get 413 before the app reads them.
- ``RateLimiter``: a per-key sliding window (token attempts per client address, sign-ins).
- ``redact_tokens``: a logging filter so link tokens never reach the access log.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging import LINK_PATH_PLACEHOLDER, RedactingFilter
from config.logging import redact as redact  # re-exported for the web tests and callers

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf"

# Only this origin: no CDN, no inline script or style, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


# --- CSRF ---------------------------------------------------------------------------------


class CsrfError(Exception):
    """A form POST without the session's CSRF token. Answered with 403, nothing saved."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use (it lives as long as the session)."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def csrf_matches(request: Request, submitted: object) -> bool:
    expected = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode("utf-8"), submitted.encode("utf-8"))


def require_csrf(request: Request, submitted: object) -> None:
    if not csrf_matches(request, submitted):
        raise CsrfError


# --- headers --------------------------------------------------------------------------------


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (the app may not override them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in names
                ]
                headers.extend(SECURITY_HEADERS)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- body size --------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes``: by Content-Length before reading, or while
    streaming when the length is not declared (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                too_large = True
            if too_large:
                await _send_too_large(send, self.max_bytes)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_too_large(send, self.max_bytes)


async def _send_too_large(send: Send, limit: int) -> None:
    body = f"Request too large: the limit is {limit // 1024} KiB.\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- rate limiting -----------------------------------------------------------------------------


class RateLimiter:
    """At most ``limit`` hits per key within ``window`` seconds (a sliding window, in memory).

    Per process: with several web processes each counts its own share, which still bounds
    guessing (tokens are 256-bit; this only stops hammering)."""

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and a positive window")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """Count one attempt; False when the key is over its limit (the attempt is refused)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            return True

    def retry_after(self, key: str) -> int:
        """Seconds until the key may try again (at least 1)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return 1
            return max(1, int(hits[0] + self.window - now) + 1)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn --proxy-headers behind a proxy)."""
    return request.client.host if request.client else "unknown"


# --- logs --------------------------------------------------------------------------------------

# One redaction for every log line (config.logging): link tokens and credentials. This
# instance goes on uvicorn's loggers even when the process did not configure our logging.
REDACTED_PATH = LINK_PATH_PLACEHOLDER
redact_tokens = RedactingFilter()

ACCESS_LOGGERS = ("uvicorn.access", "uvicorn.error")


def install_log_redaction(logger_names: tuple[str, ...] = ACCESS_LOGGERS) -> None:
    """Put ``redact_tokens`` on the access loggers (idempotent). uvicorn's dictConfig keeps
    filters on existing loggers, so installing at app creation is enough."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if redact_tokens not in logger.filters:
            logger.addFilter(redact_tokens)
