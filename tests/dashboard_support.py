"""What the dashboard's route tests share: a 2022 cycle with MBIE's answer and a coordinator
account, a simulated clock, clients of the app on the test's rolled-back connection, and
signing in. Test modules import the fixtures by name (pytest finds them in the module)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from models.accounts import add_account
from models.clock import SimulatedClock
from tests.app_clients import ClientFactory, app_clients, csrf_of
from tests.review_helpers import (
    ANSWERED,
    Cycle2022,
    complete_answer,
    objective_ids,
    open_2022,
    submit,
)

EMAIL = "ana@mbie.govt.nz"
PASSWORD = "kia ora koutou 2023"
START = ANSWERED + timedelta(days=2)
ACHIEVEMENT = "Hotline launched <script>alert(1)</script> – ka pai."


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
    with app_clients(session, tmp_path / "data", clock, enqueue=enqueued.extend) as factory:
        yield factory


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
