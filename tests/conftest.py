"""Shared fixtures: the real databases (SQLite and PostgreSQL), settings in a temporary
data directory, the bundled 2021 report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from config import settings as settings_module
from models.db import make_engine, upgrade
from tests.services import scratch_postgres_database

# The SMTP server fixture (tests/conftest_smtp.py) and Celery's celery_app/celery_worker.
pytest_plugins = ["tests.conftest_smtp", "tests.browser", "celery.contrib.pytest"]

BACKENDS = ["sqlite", "postgresql"]
REPORT_2021 = (
    Path(__file__).resolve().parent.parent / "models" / "data" / ("nz-plan-of-action-2021.txt")
)


@pytest.fixture(scope="session")
def report_2021_text() -> str:
    return REPORT_2021.read_text(encoding="utf-8")


@contextmanager
def scratch_database(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new, empty database of the given backend."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'reportcycle.db'}"
    else:
        with scratch_postgres_database() as url:
            yield url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    """One migrated database per backend for the whole run."""
    with scratch_database(backend, tmp_path_factory.mktemp(f"db-{backend}")) as url:
        engine = make_engine(url)
        if backend == "sqlite":
            _sqlalchemy_begins_sqlite_transactions(engine)
        upgrade(engine)
        yield engine
        engine.dispose()


def _sqlalchemy_begins_sqlite_transactions(engine: sa.Engine) -> None:
    """pysqlite begins transactions itself, late, so a test's ``session.commit()`` (a
    SAVEPOINT release) escaped the fixture's rollback and leaked rows into the next test.
    SQLAlchemy's recipe: turn pysqlite's handling off and emit BEGIN ourselves."""

    @sa.event.listens_for(engine, "connect")
    def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, commits included."""
    connection = engine.connect()
    transaction = connection.begin()
    with Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    ) as session:
        yield session
    transaction.rollback()
    connection.close()


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for a test that runs commands in their own process."""
    with scratch_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> Iterator[dict[str, str]]:
    """Settings pointing at a temporary data directory and a fresh database."""
    values = {
        "REPORTCYCLE_DATA_DIR": str(tmp_path / "data"),
        "REPORTCYCLE_DATABASE_URL": db_url,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings_module.get_settings.cache_clear()
    yield values
    settings_module.get_settings.cache_clear()
