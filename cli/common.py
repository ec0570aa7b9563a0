"""What every command shares: settings that fail with a readable message, the console."""

from __future__ import annotations

import getpass
import sys
from typing import NoReturn

import sqlalchemy as sa
from pydantic import ValidationError
from rich.console import Console

from config.settings import Settings, get_settings, settings_problems

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"error: {message}", markup=False)
    raise SystemExit(code)


def load_settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        fail("invalid settings:\n  " + "\n  ".join(settings_problems(exc)))


def ready_engine() -> sa.Engine:
    """The settings' database, migrated to the current schema."""
    from models.db import ensure_schema, get_engine

    settings = load_settings()
    settings.ensure_data_dir()
    engine = get_engine(settings.sqlalchemy_url)
    try:
        ensure_schema(engine)
    except sa.exc.OperationalError as exc:
        # One line: the driver's message spreads over several ("Is the server running…").
        fail(f"cannot reach the database: {' '.join(str(exc.orig).split())}")
    return engine


def is_tty() -> bool:
    return sys.stdout.isatty()


def actor_name() -> str:
    """Who acts, for the audit log: the user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
