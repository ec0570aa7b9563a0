"""The web app's shared safety parts: secret key, log redaction, rate limiter, health."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from config import settings as settings_module
from config.secret_key import KEY_FILE_NAME, SecretKeyError, secret_key
from config.settings import Mode, Settings
from models.db import make_engine
from tests.services import free_port
from web.app import create_app
from web.health import broker_problem
from web.security import RateLimiter, install_log_redaction, redact_tokens

# --- the secret key ------------------------------------------------------------------------


def test_embedded_mode_makes_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path / "data", secret_key=None)
    first = secret_key(settings)
    path = tmp_path / "data" / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert secret_key(settings) == first
    assert [p.name for p in path.parent.iterdir()] == [KEY_FILE_NAME]


def test_two_processes_starting_together_agree_on_the_key(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, secret_key=None)
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(secret_key(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys) == 8


def test_a_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, secret_key=None)
    secret_key(settings)
    (tmp_path / KEY_FILE_NAME).chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        secret_key(settings)


def server_settings(tmp_path: Path, key: str | None) -> Settings:
    # Built without validation: Settings itself already refuses server mode without a key;
    # secret_key() must refuse too, whatever built the object.
    return Settings.model_construct(
        mode=Mode.SERVER,
        data_dir=tmp_path,
        secret_key=SecretStr(key) if key is not None else None,
        database_url="postgresql+psycopg://db/x",
        broker_url="redis://redis:6379/0",
        base_url="http://127.0.0.1:8000",
        token_grace_days=14,
    )


def test_server_mode_requires_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="secret_key"):
        Settings(mode=Mode.SERVER, data_dir=tmp_path, secret_key=None)
    with pytest.raises(SecretKeyError, match="REPORTCYCLE_SECRET_KEY"):
        secret_key(server_settings(tmp_path, None))
    assert not (tmp_path / KEY_FILE_NAME).exists()
    with pytest.raises(SecretKeyError, match="too short"):
        secret_key(server_settings(tmp_path, "short"))
    assert secret_key(server_settings(tmp_path, "k" * 40)) == "k" * 40


def test_the_app_refuses_to_start_in_server_mode_without_a_key(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SecretKeyError, match="REPORTCYCLE_SECRET_KEY"):
        create_app(server_settings(tmp_path, None), engine)


# --- logs ----------------------------------------------------------------------------------


def test_tokens_are_redacted_from_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    access = logging.getLogger("uvicorn.access")
    assert redact_tokens in access.filters
    token = "Zr0P4q-_abcDEF1234567890abcdefghijklmnopqrs"
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # uvicorn's own access-log call: the path is an argument.
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:5000",
            "GET",
            f"/r/{token}?utm=x",
            "1.1",
            200,
        )
        access.info(f"POST /r/{token} done")
    text = caplog.text
    assert token not in text
    assert text.count("/r/[redacted]") == 2
    assert "?utm=x" in text


# --- rate limiter --------------------------------------------------------------------------


def test_the_rate_limiter_counts_a_sliding_window_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=10, clock=lambda: now[0])
    assert [limiter.hit("a"), limiter.hit("a"), limiter.hit("a")] == [True, True, False]
    assert limiter.hit("b")
    assert limiter.retry_after("a") == 11
    now[0] = 10.5
    assert limiter.hit("a")


# --- health --------------------------------------------------------------------------------


@pytest.fixture
def tmp_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # worker.app builds its Celery app from the environment's settings at import.
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("REPORTCYCLE_BROKER_URL", raising=False)
    settings_module.get_settings.cache_clear()
    yield tmp_path
    settings_module.get_settings.cache_clear()


def test_healthz_and_readyz(engine: sa.Engine, tmp_settings: Path) -> None:
    settings = Settings(secret_key="s" * 48, data_dir=tmp_settings / "data")
    with TestClient(create_app(settings, engine)) as client:
        assert client.get("/healthz").text == "ok\n"
        ready = client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready\n")
        # A load balancer's HEAD: the status, no body; nothing else is answered.
        for path in ("/healthz", "/readyz"):
            head = client.head(path)
            assert (head.status_code, head.content) == (200, b"")
            assert client.post(path).status_code == 405


def test_readyz_is_not_ready_until_the_schema_is_at_the_code_s_revision(
    tmp_settings: Path,
) -> None:
    """A deploy whose migration has not run (or an empty database): every page would fail,
    so a load balancer must not send it traffic."""
    from models.db import head_revision, upgrade

    engine = make_engine(f"sqlite:///{tmp_settings / 'fresh.db'}")
    settings = Settings(secret_key="s" * 48, data_dir=tmp_settings / "data")
    with TestClient(create_app(settings, engine)) as client:
        empty = client.get("/readyz")
        assert empty.status_code == 503
        assert empty.text == (
            f"not ready: database schema at revision none, this version needs {head_revision()}"
            " (reportcycle db upgrade)\n"
        )
        assert client.get("/healthz").status_code == 200  # alive all the same
        upgrade(engine, "0001")
        behind = client.get("/readyz")
        assert behind.status_code == 503 and "at revision 0001," in behind.text
        upgrade(engine)
        ready = client.get("/readyz")
        assert (ready.status_code, ready.text) == (200, "ready\n")
    engine.dispose()


def test_readyz_says_why_when_the_database_is_down(tmp_settings: Path) -> None:
    port = free_port()  # nothing listens there
    dead = make_engine(f"postgresql+psycopg://nobody:secret@127.0.0.1:{port}/none")
    settings = Settings(secret_key="s" * 48, data_dir=tmp_settings / "data")
    with TestClient(create_app(settings, dead)) as client:
        response = client.get("/readyz")
        assert client.head("/readyz").status_code == 503
    assert response.status_code == 503
    assert response.text.startswith("not ready: database unreachable")
    assert "secret" not in response.text and str(port) not in response.text


def test_an_unreachable_broker_url_is_reported(tmp_path: Path) -> None:
    port = free_port()
    problem = broker_problem(
        Settings(broker_url=f"redis://:pw@127.0.0.1:{port}/0", data_dir=tmp_path),
        use_celery=False,
    )
    assert problem is not None and problem.startswith("broker unreachable")
    assert "pw" not in problem
