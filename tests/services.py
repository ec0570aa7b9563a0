"""Reaching the real services the tests use.

Outside CI a test whose server is unreachable skips and says why; with CI=true a missing
server fails the run, because a green CI that skipped its real tests proves nothing.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

IN_CI = os.environ.get("CI", "").lower() == "true"

POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTCYCLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("REPORTCYCLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


def tcp_reachable(host: str, port: int, timeout: float = 1.0) -> str | None:
    """None when something listens on host:port, else the reason it could not be reached."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc)


def free_port() -> int:
    # aiosmtpd cannot bind port 0, so pick a free port ourselves.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_redis() -> str:
    url = sa.make_url(REDIS_URL.replace("redis://", "redis+x://", 1))
    problem = tcp_reachable(url.host or "127.0.0.1", url.port or 6379)
    if problem:
        unavailable(f"Redis at {REDIS_URL}", problem)
    return REDIS_URL


@contextmanager
def scratch_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for the duration of the block; its URL."""
    admin_url = sa.make_url(POSTGRES_ADMIN_URL)
    problem = tcp_reachable(admin_url.host or "127.0.0.1", admin_url.port or 5432)
    if problem:
        unavailable(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)}", problem)
    name = f"rc_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
