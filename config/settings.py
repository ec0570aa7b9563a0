"""The one settings object.

Everything configurable comes from the environment (prefix ``REPORTCYCLE_``) and is validated
when the object is built, so a bad value fails at start with a message naming the variable,
not halfway through a reporting cycle.
"""

from __future__ import annotations

import functools
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import platformdirs
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "REPORTCYCLE_"


class Mode(StrEnum):
    """Embedded: one machine, SQLite, no services. Server: PostgreSQL, Redis, compose."""

    EMBEDDED = "embedded"
    SERVER = "server"


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("reportcycle", appauthor=False))


def _int_list(value: object) -> object:
    # "30,7" in the environment reads as [30, 7]; JSON lists are accepted too.
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [int(part) for part in text.split(",") if part.strip()]
    return value


# Settings that may hold a credential can come from a file instead (Docker and Kubernetes
# secrets): REPORTCYCLE_SECRET_KEY_FILE=/run/secrets/secret_key, and so on.
FILE_VARIABLE_FIELDS = ("secret_key", "mail_url", "database_url")
# The databases reportcycle runs on, as SQLAlchemy URL schemes (dialect+driver).
SUPPORTED_DATABASE_DRIVERS = ("postgresql+psycopg", "sqlite", "sqlite+pysqlite")
# What server mode (compose: PostgreSQL, Redis, many processes) cannot run without.
SERVER_REQUIRED_FIELDS = ("secret_key", "database_url", "broker_url")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _value_or_file(field: str, value: object) -> object:
    """The field's value, or the content of the file its ``*_FILE`` variable names."""
    if isinstance(value, str) and not value.strip():
        value = None  # compose passes an unset ``${VAR:-}`` as an empty string
    file_variable = env_name(field) + "_FILE"
    path = os.environ.get(file_variable, "").strip()
    if not path:
        return value
    names = {"variable": env_name(field), "file_variable": file_variable, "path": path}
    if value is not None:
        raise PydanticCustomError(
            "setting_conflict", "set {variable} or {file_variable}, not both", names
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PydanticCustomError(
            "setting_file",
            "{file_variable} names {path}, which cannot be read: {reason}",
            {**names, "reason": exc.strerror or type(exc).__name__},
        ) from exc
    text = text.rstrip("\r\n")
    if not text.strip():
        raise PydanticCustomError(
            "setting_file", "{file_variable} names {path}, which is empty", names
        )
    return text


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        validate_default=True,
        frozen=True,
        # A rejected value may be a password: errors name the variable, never echo it.
        hide_input_in_errors=True,
    )

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL (redis://…); default: a filesystem broker under the "
        "data directory, which needs no server",
    )
    base_url: str = Field(
        default="http://127.0.0.1:8000", description="Public address of the web app"
    )
    mail_url: SecretStr | None = Field(
        default=None,
        description="Apprise mailto:// or mailtos:// URL without recipients; unset: .eml outbox",
    )
    mail_from: str = "reportcycle@localhost"
    mail_reply_to: str | None = Field(
        default=None,
        description="Reply-To of every message (e.g. the coordinators' shared mailbox): the "
        "messages invite a reply, and the From address may be one nobody reads",
    )
    outbox_dir: Path | None = Field(default=None, description="default: outbox/ in data dir")
    notify_private_hosts: bool = Field(
        default=False,
        description="let contacts' notify URLs reach private, loopback and link-local "
        "addresses (a chat server on the deployment's own network); off, they reach public "
        "addresses only (models/notify_targets.py)",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs web sessions; required in server mode"
    )
    timezone: str = "Pacific/Auckland"
    milestone_reminder_days: Annotated[list[int], NoDecode] = Field(default=[30, 7])
    deadline_reminder_days: Annotated[list[int], NoDecode] = Field(default=[14, 7, 1])
    escalation_interval_days: int = Field(default=7, ge=1)
    quiet_hours_start: int = Field(default=18, ge=0, le=23, description="local hour")
    quiet_hours_end: int = Field(default=8, ge=0, le=23, description="local hour")
    sweep_interval_seconds: int = Field(default=300, ge=10)
    token_grace_days: int = Field(default=14, ge=0)
    log_json: bool = False
    # Delivery and Celery (see config/celery.py). On Redis an unacked task is delivered again
    # after the visibility timeout, so time limits and retry delays must stay below it.
    broker_visibility_timeout_seconds: int = Field(default=3600, ge=10)
    task_time_limit_seconds: int = Field(
        default=300, ge=5, description="a send still running after this is killed"
    )
    delivery_max_attempts: int = Field(default=8, ge=1)
    retry_backoff_seconds: int = Field(default=30, ge=1, description="first retry delay")
    retry_backoff_max_seconds: int = Field(default=900, ge=1)
    # The broker queue and Redis key prefix: lets several deployments (or test runs) share
    # one Redis without stealing each other's tasks.
    task_queue: str = Field(default="reportcycle", min_length=1, max_length=100)
    broker_key_prefix: str = Field(default="", max_length=100)

    _check_days = field_validator(
        "milestone_reminder_days", "deadline_reminder_days", mode="before"
    )(_int_list)

    @field_validator("milestone_reminder_days", "deadline_reminder_days")
    @classmethod
    def _positive_days(cls, value: list[int]) -> list[int]:
        if any(day < 0 for day in value):
            raise ValueError("reminder offsets are days before, so they cannot be negative")
        return sorted(set(value), reverse=True)

    @field_validator(*FILE_VARIABLE_FIELDS, mode="before")
    @classmethod
    def _from_file_variable(cls, value: object, info: ValidationInfo) -> object:
        assert info.field_name is not None
        return _value_or_file(info.field_name, value)

    @field_validator("database_url")
    @classmethod
    def _readable_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            # The message must not echo the URL: it may hold a password.
            raise PydanticCustomError(
                "database_url", "not a database URL (e.g. postgresql+psycopg://user:pass@host/db)"
            ) from None
        if url.drivername not in SUPPORTED_DATABASE_DRIVERS:
            # Any other would fail later with a traceback, when its driver is imported (plain
            # postgresql:// means psycopg2, which is not installed).
            raise PydanticCustomError(
                "database_url",
                "{driver}:// is not a supported database: use postgresql+psycopg://user:pass@"
                "host/db, or sqlite:///PATH",
                {"driver": url.drivername},
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url_has_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None and "://" not in value:
            raise PydanticCustomError("broker_url", "not a broker URL (e.g. redis://redis:6379/0)")
        return value

    @model_validator(mode="after")
    def _server_mode_complete(self) -> Self:
        missing = [name for name in SERVER_REQUIRED_FIELDS if getattr(self, name) is None]
        if self.mode is Mode.SERVER and missing:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "missing_setting",
                            # Named in the message too: Celery and uvicorn print the
                            # field's name, not the variable's.
                            "not set; server mode requires {variable}"
                            + (" (or {file_variable})" if name in FILE_VARIABLE_FIELDS else ""),
                            {"variable": env_name(name), "file_variable": env_name(name) + "_FILE"},
                        ),
                        loc=(name,),
                        input=None,
                    )
                    for name in missing
                ],
            )
        return self

    @model_validator(mode="after")
    def _limits_below_visibility_timeout(self) -> Self:
        visibility = self.broker_visibility_timeout_seconds
        limit = env_name("broker_visibility_timeout_seconds")
        for name in ("task_time_limit_seconds", "retry_backoff_max_seconds"):
            if getattr(self, name) >= visibility:
                raise ValueError(
                    f"{env_name(name)} must be below {limit} ({visibility}):"
                    " Redis would deliver the task again meanwhile"
                )
        return self

    @field_validator("mail_reply_to")
    @classmethod
    def _reply_address(cls, value: str | None) -> str | None:
        from email.utils import parseaddr

        value = (value or "").strip()
        if not value:
            return None
        if any(c in value for c in "\r\n"):
            raise ValueError("must be one address on one line")
        _name, address = parseaddr(value)
        local, at, domain = address.rpartition("@")
        if not (local and at and "." in domain):
            raise ValueError(
                f"{value!r} is not an email address (name@example.org, or Name <name@example.org>)"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'reportcycle.db'}"

    @property
    def outbox_path(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    def ensure_data_dir(self) -> Path:
        """Create the data directory on first use (owner-only, it may hold a secret key)."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.data_dir


@functools.cache
def get_settings() -> Settings:
    return Settings()


def settings_problems(exc: ValidationError) -> list[str]:
    """``REPORTCYCLE_NAME: what is wrong``, one per error (no value is ever echoed: the
    settings hide their input). A check across settings names its variables itself."""
    problems = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = "_".join(str(part) for part in error["loc"])
        problems.append(f"{env_name(loc)}: {message}" if loc else message)
    return problems


def settings_or_exit() -> Settings:
    """The settings, or the process ends at start with one line naming each bad variable
    (for ``celery -A worker.app`` and ``uvicorn web.app:app``, which would otherwise print a
    traceback naming the field, or start and fail on every request)."""
    try:
        return get_settings()
    except ValidationError as exc:
        raise SystemExit("invalid settings: " + "; ".join(settings_problems(exc))) from None
