"""The ASGI app: ``uvicorn web.app:app``. Same settings as the command line.

``create_app(settings, engine, ...)`` builds it (tests inject a database, a clock, options);
``app`` builds the real one on first use, so importing this module reads no settings and
creates no key file.

Other route modules plug in by defining ``router`` (a FastAPI ``APIRouter``) in one of
``PLUGIN_MODULES`` (e.g. ``web/dashboard_routes.py``); they reuse ``web.security``
(``csrf_token``/``require_csrf``, ``RateLimiter``) and ``web.deps.state_of``. The session
cookie is shared: keep your keys apart (the form uses ``form_*``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from config.secret_key import secret_key
from config.settings import Settings, get_settings, settings_or_exit
from models.clock import Clock, system_clock
from models.db import get_engine
from templates import render
from web import form_routes, health
from web.deps import AppState, WebOptions
from web.security import (
    BodyLimitMiddleware,
    CsrfError,
    SecurityHeadersMiddleware,
    install_log_redaction,
    redact,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SESSION_COOKIE = "reportcycle_session"
PLUGIN_MODULES = (
    "web.dashboard_routes",
    "web.milestone_routes",
    "web.agency_routes",
    "web.deadline_routes",
)

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    engine: sa.Engine | None = None,
    *,
    clock: Clock | None = None,
    session_factory: Callable[[], Session] | None = None,
    options: WebOptions | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or get_engine(settings.sqlalchemy_url)
    options = options or WebOptions()
    bound_engine = engine

    def default_session() -> Session:
        return Session(bound_engine, expire_on_commit=False)

    install_log_redaction()
    app = FastAPI(
        title="reportcycle",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        middleware=[
            # Outermost first: refuse big bodies before anything reads them.
            Middleware(BodyLimitMiddleware, max_bytes=options.max_body_bytes),
            Middleware(SecurityHeadersMiddleware),
            Middleware(
                SessionMiddleware,
                secret_key=secret_key(settings),
                session_cookie=SESSION_COOKIE,
                max_age=options.session_max_age_seconds,
                same_site="lax",
                https_only=settings.base_url.startswith("https://"),
            ),
        ],
    )
    app.state.rc = AppState(
        settings=settings,
        engine=engine,
        clock=clock or system_clock,
        session_factory=session_factory or default_session,
        options=options,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(health.router)
    app.include_router(form_routes.router)
    for name in PLUGIN_MODULES:
        if importlib.util.find_spec(name) is not None:
            app.include_router(importlib.import_module(name).router)
    _install_error_pages(app)
    return app


def _message(heading: str, message: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        render("forms/message.html", heading=heading, message=message), status_code=status
    )


def _install_error_pages(app: FastAPI) -> None:
    @app.exception_handler(CsrfError)
    async def csrf_refused(request: Request, exc: CsrfError) -> Response:
        return _message(
            "The form could not be accepted",
            "The page had expired or did not come from this site, so nothing was saved. "
            "Go back, reload the page and try again.",
            403,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _message("Page not found", "There is no page at this address.", 404)
        if exc.status_code == 405:
            return _message("Not allowed", "This page cannot be used that way.", 405)
        return _message("Something went wrong", str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _message("Bad request", "The request could not be read.", 400)

    @app.exception_handler(sa.exc.OperationalError)
    async def database_down(request: Request, exc: sa.exc.OperationalError) -> Response:
        log.error("database error: %s", type(exc.orig).__name__)
        return _message(
            "Temporarily unavailable",
            "The service cannot reach its database just now. Nothing was lost; please try "
            "again in a few minutes.",
            503,
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", redact(request.url.path))
        return _message(
            "Something went wrong",
            "An unexpected error happened and has been logged. Please try again.",
            500,
        )


class _DeferredApp:
    """The ASGI app of the settings in the environment, built on first use."""

    def __init__(self, factory: Callable[[], FastAPI]) -> None:
        self._factory = factory
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    def get(self) -> FastAPI:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" and self._app is None:
            # Build at startup, so that a bad setting stops uvicorn there (exit code 3) with
            # a line naming the variable. Unreported, uvicorn would take the failure for an
            # app without lifespan support, start, and answer every request with an error.
            try:
                self.get()
            except (Exception, SystemExit) as exc:
                await receive()  # lifespan.startup
                await send({"type": "lifespan.startup.failed", "message": _startup_failure(exc)})
                return
        await self.get()(scope, receive, send)


def _startup_failure(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):  # settings_or_exit's message
        return str(exc.code)
    return redact(f"the web app cannot start: {type(exc).__name__}: {exc}")


def _served_app() -> FastAPI:
    # `uvicorn web.app:app`: one log line per event (JSON on request), tokens and credentials
    # redacted, uvicorn's own loggers included.
    from config.logging import configure_logging

    configure_logging(settings_or_exit())
    return create_app()


app = _DeferredApp(_served_app)
