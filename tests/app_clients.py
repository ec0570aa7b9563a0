"""Clients of the web app whose sessions join a test's rolled-back connection, and a page's
CSRF field: what the agency form's and the dashboard's route tests share."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from config.settings import Settings
from models.clock import SimulatedClock
from web.app import create_app
from web.deps import WebOptions

ClientFactory = Callable[..., TestClient]


@contextmanager
def app_clients(
    session: Session,
    data_dir: Path,
    clock: SimulatedClock,
    *,
    enqueue: Callable[[list[int]], object] | None = None,
) -> Iterator[ClientFactory]:
    """A factory of clients (``WebOptions`` as keywords), each closed on leaving; ``enqueue``
    takes the dashboard's notification ids in place of the broker."""
    connection = session.connection()
    clients: list[TestClient] = []

    def factory(**options: Any) -> TestClient:
        settings = Settings(secret_key="s" * 48, data_dir=data_dir, broker_url=None)
        app = create_app(
            settings,
            engine=connection.engine,
            clock=clock,
            session_factory=lambda: Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            ),
            options=WebOptions(**options),
        )
        if enqueue is not None:
            app.state.dashboard_enqueue = enqueue
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        return client

    try:
        yield factory
    finally:
        for client in clients:
            client.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return str(match[1])
