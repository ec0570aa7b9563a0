"""What every route reaches through the app: settings, the database, the clock, options.

``create_app`` puts one ``AppState`` on ``app.state.rc``; routes get it with ``state_of``.
Tests inject an engine, a session factory (e.g. bound to a rolled-back connection) and a clock.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlmodel import Session
from starlette.requests import HTTPConnection

from config.settings import Settings
from models.clock import Clock
from web.security import RateLimiter

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class WebOptions:
    max_body_bytes: int = 512 * 1024
    # Token attempts (opening or continuing from a link) per client address per window.
    token_attempts: int = 30
    token_window_seconds: float = 300.0
    session_max_age_seconds: int = 8 * 3600
    max_form_fields: int = 5000
    autosave_seconds: int = 30
    # Worker threads for the routes' database work and rendering (per process). That work
    # holds the GIL nearly throughout: two threads let one wait on the database while the
    # other runs, and many more only take turns at the GIL unfairly (long tail latencies,
    # fewer pages a second), so the rest queue in order on the event loop.
    db_threads: int = 2


@dataclass
class AppState:
    settings: Settings
    engine: sa.Engine
    clock: Clock
    session_factory: Callable[[], Session]
    options: WebOptions
    token_limiter: RateLimiter = field(init=False)
    db_limiter: anyio.CapacityLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.token_limiter = RateLimiter(
            self.options.token_attempts, self.options.token_window_seconds
        )
        self.db_limiter = anyio.CapacityLimiter(self.options.db_threads)

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func`` (blocking: database, templates) in one of the ``db_threads`` workers."""
        return await anyio.to_thread.run_sync(
            functools.partial(func, *args, **kwargs), limiter=self.db_limiter
        )

    def session(self) -> Session:
        return self.session_factory()

    def now(self) -> datetime:
        return self.clock()

    @property
    def grace(self) -> timedelta:
        return timedelta(days=self.settings.token_grace_days)


def state_of(connection: HTTPConnection) -> AppState:
    state = connection.app.state.rc
    assert isinstance(state, AppState)
    return state
