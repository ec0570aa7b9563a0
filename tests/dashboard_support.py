"""What the dashboard's route tests share: a 2022 cycle with MBIE's answer and a coordinator
account, a simulated clock, clients of the app on the test's rolled-back connection, and
signing in. Test modules import the fixtures by name (pytest finds them in the module)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from config.settings import Settings
from models.accounts import add_account
from models.clock import SimulatedClock
from tests.review_helpers import (
    ANSWERED,
    Cycle2022,
    complete_answer,
    objective_ids,
    open_2022,
    submit,
)
from web.app import create_app
from web.deps import WebOptions

EMAIL = "ana@mbie.govt.nz"
PASSWORD = "kia ora koutou 2023"
START = ANSWERED + timedelta(days=2)
ACHIEVEMENT = "Hotline launched <script>alert(1)</script> – ka pai."

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def c(session: Session, report_2021_text: str) -> Cycle2022:
    cycle = open_2022(session, report_2021_text)
    add_account(session, EMAIL, PASSWORD, START)
    first = objective_ids(session, cycle.requests["MBIE"])[0]
    submit(
        session,
        cycle.requests["MBIE"],
        complete_answer(session, cycle.requests["MBIE"], achievements=[(first, ACHIEVEMENT)]),
        author="kahu@mbie.govt.nz",
    )
    session.commit()
    return cycle


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def enqueued() -> list[int]:
    return []


@pytest.fixture
def make_client(
    session: Session, tmp_path: Path, clock: SimulatedClock, enqueued: list[int]
) -> Iterator[ClientFactory]:
    """Clients of an app whose sessions join the test's rolled-back connection."""
    connection = session.connection()
    clients: list[TestClient] = []

    def factory(**options: Any) -> TestClient:
        settings = Settings(secret_key="s" * 48, data_dir=tmp_path / "data", broker_url=None)
        app = create_app(
            settings,
            engine=connection.engine,
            clock=clock,
            session_factory=lambda: Session(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            ),
            options=WebOptions(**options),
        )
        app.state.dashboard_enqueue = enqueued.extend
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return str(match[1])


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> Any:
    page = client.get("/dashboard/signin")
    return client.post(
        "/dashboard/signin",
        data={"csrf": csrf_of(page.text), "email": email, "password": password},
        follow_redirects=False,
    )


def signed_in(make_client: ClientFactory) -> tuple[TestClient, str]:
    client = make_client()
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    page = client.get("/dashboard")
    assert page.status_code == 200
    return client, csrf_of(page.text)
