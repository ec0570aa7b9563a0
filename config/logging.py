"""Logging: one line per event, JSON on request, and never a token or a credential.

``configure_logging(settings)`` is called once per process (the CLI's long-running commands,
the web app, the Celery worker's ``setup_logging`` signal). Every record passes through
:class:`RedactingFilter` on the way out, whichever logger it came from: uvicorn's access log
prints request paths (which carry agency tokens) and libraries print URLs (which carry SMTP
and Apprise credentials).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from config.settings import Settings

REDACTED = "***"
LINK_PATH_PLACEHOLDER = "/r/[redacted]"

# Loggers that configure their own handlers (uvicorn) or are noisy about URLs (celery, kombu,
# apprise): their handlers are removed so that every record reaches the one root handler.
OWN_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "celery",
    "celery.app.trace",
    "celery.beat",
    "celery.worker",
    "celery.redirected",
    "kombu",
    "apprise",
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host and scheme://token@host -> scheme://***@host
    (
        re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@'\"<>]+@"),
        rf"\g<scheme>{REDACTED}@",
    ),
    # the agency form's link: /r/<token> (web.security puts this filter on uvicorn's access
    # log even where our logging is not configured).
    (re.compile(r"/r/[^/\s?#'\"<>]+"), LINK_PATH_PLACEHOLDER),
    # query values that are secrets: ?token=…, &pass=… (Apprise), password, secret, key …
    (
        re.compile(
            r"(?P<name>[?&;](?:token|access_token|pass|password|passwd|secret|key|apikey|"
            r"api_key|auth|signature|sig)=)[^&#\s'\"<>]+",
            re.IGNORECASE,
        ),
        rf"\g<name>{REDACTED}",
    ),
)


def redact(text: str) -> str:
    """``text`` with link tokens and credentials replaced (``/r/[redacted]``, ``***``)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    # An object whose text holds a secret (an exception, a URL object) becomes its redacted
    # text; others stay as they are so that %d and friends keep working.
    text = str(value)
    cleaned = redact(text)
    return cleaned if cleaned != text else value


class RedactingFilter(logging.Filter):
    """Rewrites every record so no token or credential survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_reportcycle_redacted", False):
            return True
        if isinstance(record.args, Mapping):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            # Argument by argument first: uvicorn's access formatter unpacks the tuple.
            record.args = tuple(_redact_value(value) for value in record.args)
        if not isinstance(record.msg, str):
            record.msg = _redact_value(record.msg)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call; logging reports it itself
            message = None
        if message is not None:
            cleaned = redact(message)
            if cleaned != message:
                # The secret spans the format and an argument ("/r/%s", token): keep the
                # redacted text only.
                record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in _extras(record).items():
            setattr(record, name, _redact_value(value))
        record._reportcycle_redacted = True
        return True


_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
    "_reportcycle_redacted",
}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed with ``extra=`` (cycle_id, agency_id, notification_id …)."""
    celery = record.name.startswith("celery")
    return {
        name: value
        for name, value in record.__dict__.items()
        if name not in _STANDARD_ATTRIBUTES
        and not name.startswith("_")
        # Celery repeats its message's arguments as ``data``; the message says it already.
        and not (celery and name == "data")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the extras, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in _extras(record).items():
            entry.setdefault(name, _jsonable(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


class LineFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value …`` on one line (newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, f"{record.name}:", record.getMessage()]
        parts += [f"{name}={value}" for name, value in sorted(_extras(record).items())]
        line = " ".join(str(part) for part in parts)
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line += " | " + record.exc_text
        if record.stack_info:
            line += " | " + record.stack_info
        return line.replace("\r", "").replace("\n", "\\n")


def _is_ours(handler: logging.Handler) -> bool:
    return getattr(handler, "_reportcycle", False) is True


def configure_logging(
    settings: Settings, *, level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record, redacted, as one line to ``stream`` (default: stderr).

    Idempotent: calling it again replaces the handler it installed before.
    """
    # The stream of the moment, kept: a command line run inside this process that swaps
    # sys.stderr (a CLI test runner, say) must not receive the service's log lines.
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_json else LineFormatter())
    redactor = RedactingFilter()
    handler.addFilter(redactor)
    handler._reportcycle = True  # type: ignore[attr-defined]

    root = logging.getLogger()
    for old in [h for h in root.handlers if _is_ours(h)]:
        root.removeHandler(old)
    # Handlers someone else installed on the root still get redacted records.
    for other in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(level)
    _install_on(root, redactor)

    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        _install_on(logger, redactor)
    # Library chatter that is not an event of ours.
    logging.getLogger("apprise").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler


def _install_on(logger: logging.Logger, redactor: RedactingFilter) -> None:
    for old in [f for f in logger.filters if isinstance(f, RedactingFilter)]:
        logger.removeFilter(old)
    logger.addFilter(redactor)


def connect_celery_logging(settings_factory: Callable[[], Settings] | None = None) -> None:
    """Make every Celery process (``celery -A worker.app worker|beat`` included) log through
    :func:`configure_logging` instead of Celery's own handlers. Call it where the Celery app
    is defined; connecting twice is harmless."""
    from celery import signals

    def setup(**_: object) -> None:
        from config.settings import get_settings

        configure_logging((settings_factory or get_settings)())

    signals.setup_logging.connect(setup, weak=False, dispatch_uid="reportcycle.logging")


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """A ``log_config`` for ``uvicorn.run`` that leaves logging to :func:`configure_logging`
    (uvicorn applies its own config before loading the app; this keeps it from installing
    handlers that would print unredacted paths)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": "INFO"},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": "INFO"},
            "uvicorn.access": {"handlers": [], "propagate": True, "level": "INFO"},
        },
    }
