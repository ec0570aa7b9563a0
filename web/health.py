"""Health endpoints for the compose stack and load balancers.

``/healthz``: the process is up (no dependencies checked). ``/readyz``: the database answers,
at the schema revision this code needs, and the broker is reachable; otherwise 503 with a plain
reason (no URL, no credential).
"""

from __future__ import annotations

import functools
import importlib.util
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from config.settings import Settings
from web.deps import state_of

router = APIRouter()
TIMEOUT_SECONDS = 2.0


# GET and HEAD: some load balancers check with HEAD (the status, no body).
@router.api_route("/healthz", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@router.api_route("/readyz", methods=["GET", "HEAD"], response_class=PlainTextResponse)
async def readyz(request: Request) -> PlainTextResponse:
    app = state_of(request)
    problem = await run_in_threadpool(database_problem, app.engine)
    if problem is None:
        problem = await run_in_threadpool(broker_problem, app.settings)
    if problem is not None:
        return PlainTextResponse(f"not ready: {problem}\n", status_code=503)
    return PlainTextResponse("ready\n")


def database_problem(engine: sa.Engine) -> str | None:
    """Why the database cannot serve this version of the app, or None: unreachable, or its
    schema not at the revision the code needs (a deploy whose migration has not run yet, or
    an empty database: every page would fail)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_revision()
    except Exception as exc:  # any failure means not ready; say which kind, not the URL
        return f"database unreachable ({type(exc).__name__})"
    needed = _head_revision()
    if current != needed:
        return (
            f"database schema at revision {current or 'none'}, this version needs {needed}"
            " (reportcycle db upgrade)"
        )
    return None


@functools.cache
def _head_revision() -> str | None:
    # Read from the migration scripts once per process: they ship with the code.
    from models.db import head_revision

    return head_revision()


def broker_problem(settings: Settings, *, use_celery: bool | None = None) -> str | None:
    """Why the broker cannot be used, or None. Through the Celery app's own connection when
    the worker package is installed, else a TCP check of REPORTCYCLE_BROKER_URL."""
    if use_celery is None:
        use_celery = importlib.util.find_spec("worker.app") is not None
    if use_celery:
        return _celery_broker_problem(settings)
    return _url_broker_problem(settings.broker_url)


_celery_apps: dict[int, tuple[Settings, Any]] = {}
_celery_lock = threading.Lock()


def _celery_for(settings: Settings) -> Any:
    """The Celery app of these settings, made once (the worker's own factory, if it has one)."""
    with _celery_lock:
        cached = _celery_apps.get(id(settings))
        if cached is None or cached[0] is not settings:
            module = importlib.import_module("worker.app")
            factory = getattr(module, "create_celery_app", None)
            celery = factory(settings) if factory is not None else module.celery_app
            cached = (settings, celery)
            _celery_apps[id(settings)] = cached
        return cached[1]


def _celery_broker_problem(settings: Settings) -> str | None:
    try:
        with _celery_for(settings).connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=TIMEOUT_SECONDS)
    except Exception as exc:
        return f"broker unreachable ({type(exc).__name__})"
    return None


def _url_broker_problem(url: str | None) -> str | None:
    if not url:
        return None  # the filesystem broker under the data directory needs no server
    try:
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (6379 if parts.scheme.startswith("redis") else 5672)
    except ValueError:
        return "broker URL unreadable"
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
            return None
    except OSError as exc:
        return f"broker unreachable ({type(exc).__name__})"
