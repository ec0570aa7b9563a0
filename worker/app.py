"""The Celery app ``reportcycle``: ``celery -A worker.app worker`` / ``beat`` (one beat only).

Its configuration is ``config.celery.celery_config(settings)``; its tasks are in
``worker.tasks`` (shared tasks with explicit names, so any app instance sees them).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from config.celery import celery_config, filesystem_broker_folders
from config.logging import connect_celery_logging
from config.settings import Settings, get_settings, settings_or_exit


def create_celery_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("reportcycle")
    app.conf.update(celery_config(settings))
    if not settings.broker_url:
        for folder in filesystem_broker_folders(settings).values():
            folder.mkdir(parents=True, exist_ok=True)
    # Registers the tasks (shared_task) on import.
    import worker.tasks  # noqa: F401

    return app


@worker_process_init.connect
def _fresh_engines_after_fork(**_: Any) -> None:
    """A forked pool process must not use the parent's database connections: drop them
    (without closing the parent's sockets); the task opens its own engine for this pid."""
    from models import db

    for (pid, _url), engine in list(db._engines.items()):
        if pid != os.getpid():
            engine.dispose(close=False)
            del db._engines[(pid, _url)]


@worker_init.connect
def _mail_url_or_exit(**_: Any) -> None:
    """A worker sends the mail: a REPORTCYCLE_MAIL_URL it cannot use ends it at start, naming
    the variable (never the URL, which holds the password), rather than failing every message.
    (Here, not at import: the web app imports this module to enqueue and to check readiness.)"""
    settings = get_settings()
    if settings.mail_url is None:
        return
    from worker.notify import parse_mail_url

    try:
        parse_mail_url(settings.mail_url.get_secret_value())
    except ValueError as exc:
        raise SystemExit(f"invalid settings: {exc}") from None


# Every worker and beat (`celery -A worker.app …` included) logs one line per event, JSON on
# request, with tokens and credentials redacted.
connect_celery_logging()
# A bad setting ends `celery -A worker.app …` at start, naming the variable.
celery_app = create_celery_app(settings_or_exit())
app = celery_app
