"""``reportcycle doctor`` says what is wrong in plain words; settings name the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import ValidationError
from typer.testing import CliRunner

from cli.main import app
from config import settings as settings_module
from config.settings import Settings
from models.db import make_engine, upgrade
from tests.services import free_port, require_redis

runner = CliRunner()
SERVICE_VARIABLES = (
    "REPORTCYCLE_MODE",
    "REPORTCYCLE_BROKER_URL",
    "REPORTCYCLE_MAIL_URL",
    "REPORTCYCLE_SECRET_KEY",
    "REPORTCYCLE_SECRET_KEY_FILE",
    "REPORTCYCLE_MAIL_URL_FILE",
    "REPORTCYCLE_DATABASE_URL_FILE",
)
SECRET = "k" * 48


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in SERVICE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    settings_module.get_settings.cache_clear()
    yield
    settings_module.get_settings.cache_clear()


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Embedded settings in a temporary data directory, its SQLite schema up to date."""
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'reportcycle.db'}"
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(data))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return data


def doctor() -> tuple[int, dict[str, str]]:
    """Exit code, and each check's line by check name."""
    result = runner.invoke(app, ["doctor", "--timeout", "2"])
    lines: dict[str, str] = {}
    for line in result.output.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "PROBLEM"):
            name, _, detail = rest.strip().partition(" ")
            lines[name] = f"{status} {detail.strip()}"
    return result.exit_code, lines


# --- the real services -----------------------------------------------------------------------


def test_all_ok_against_the_real_database_and_redis(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(env["REPORTCYCLE_DATABASE_URL"])
    upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("REPORTCYCLE_BROKER_URL", require_redis())
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY", SECRET)
    code, lines = doctor()
    assert code == 0, lines
    assert lines["database"].startswith("ok ")
    assert "schema at the latest revision" in lines["database"]
    assert lines["broker"].startswith("ok Redis at ")
    assert lines["mail"].startswith("ok no REPORTCYCLE_MAIL_URL")
    assert lines["secret"] == "ok set"


def test_a_database_without_schema_says_to_upgrade(env: dict[str, str]) -> None:
    code, lines = doctor()
    assert code == 1
    assert lines["database"].startswith("PROBLEM ")
    assert "reportcycle db upgrade" in lines["database"]


def test_unreachable_postgres_is_named_with_its_address(local: Path, monkeypatch: Any) -> None:
    port = free_port()
    monkeypatch.setenv(
        "REPORTCYCLE_DATABASE_URL", f"postgresql+psycopg://rc:hunter22@127.0.0.1:{port}/rc"
    )
    result = runner.invoke(app, ["doctor", "--timeout", "2"])
    assert result.exit_code == 1
    assert f"PostgreSQL at 127.0.0.1:{port}/rc is unreachable: connection refused" in result.output
    assert "hunter22" not in result.output


# --- broker ----------------------------------------------------------------------------------


def test_unreachable_redis_is_said_in_plain_words(local: Path, monkeypatch: Any) -> None:
    port = free_port()
    monkeypatch.setenv("REPORTCYCLE_BROKER_URL", f"redis://127.0.0.1:{port}/0")
    code, lines = doctor()
    assert code == 1
    assert (
        lines["broker"] == f"PROBLEM Redis at 127.0.0.1:{port} is unreachable: connection refused"
    )
    assert lines["database"].startswith("ok ")


def test_embedded_broker_folder_is_checked_writable(local: Path) -> None:
    code, lines = doctor()
    assert code == 0, lines
    assert lines["broker"].startswith("ok filesystem broker in ")
    assert str(local) in lines["broker"]


# --- the data directory ----------------------------------------------------------------------


def test_the_data_directory_is_checked(local: Path) -> None:
    code, lines = doctor()
    assert code == 0, lines
    assert lines["data"] == f"ok {local}: writable"


def test_a_data_directory_that_is_a_file_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # e.g. a volume mounted over a file, or a typo in REPORTCYCLE_DATA_DIR
    data = tmp_path / "data"
    data.write_text("")
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(data))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    code, lines = doctor()
    assert code == 1
    assert lines["data"].startswith(
        f"PROBLEM the data directory {data} (REPORTCYCLE_DATA_DIR) is not a folder"
    )


def test_a_data_directory_every_user_may_write_is_a_problem(local: Path) -> None:
    local.chmod(0o777)
    code, lines = doctor()
    assert code == 1
    assert "is writable by every user (mode 777)" in lines["data"]


def test_a_generated_key_readable_by_others_is_a_problem(local: Path) -> None:
    # The web app refuses such a key at start; doctor says so first.
    key = local / "secret_key"
    key.write_text("g" * 64 + "\n")
    key.chmod(0o644)
    code, lines = doctor()
    assert code == 1
    assert lines["secret"].startswith(
        f"PROBLEM the generated key {key} is readable by others (mode 644): chmod 600 it"
    )
    assert "g" * 64 not in str(lines)
    key.chmod(0o600)
    code, lines = doctor()
    assert code == 0, lines


def test_a_check_across_settings_names_its_variables_once(
    local: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTCYCLE_TASK_TIME_LIMIT_SECONDS", "4000")
    code, lines = doctor()
    assert code == 1
    # It read "REPORTCYCLE_: Value error, REPORTCYCLE_TASK_TIME_LIMIT_SECONDS must be …".
    assert lines["settings"] == (
        "PROBLEM REPORTCYCLE_TASK_TIME_LIMIT_SECONDS must be below "
        "REPORTCYCLE_BROKER_VISIBILITY_TIMEOUT_SECONDS (3600): Redis would deliver the task "
        "again meanwhile"
    )


# --- mail ------------------------------------------------------------------------------------


class _Accepting:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    good = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"ops",
        b"right-password",
    )
    return AuthResult(success=good, handled=False)


@pytest.fixture
def smtp_with_login() -> Iterator[int]:
    port = free_port()
    controller = Controller(
        _Accepting(),
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield port
    controller.stop()


def test_smtp_url_pointing_at_a_closed_port(local: Path, monkeypatch: Any) -> None:
    port = free_port()
    monkeypatch.setenv(
        "REPORTCYCLE_MAIL_URL",
        f"mailto://ops:secret-pw@localhost:{port}?from=rc@example.org",
    )
    code, lines = doctor()
    assert code == 1
    assert lines["mail"] == f"PROBLEM SMTP server at localhost:{port} is unreachable: " + (
        "connection refused"
    )
    assert "secret-pw" not in str(lines)


def test_smtp_login_refused_is_reported(
    local: Path, monkeypatch: Any, smtp_with_login: int
) -> None:
    monkeypatch.setenv(
        "REPORTCYCLE_MAIL_URL",
        f"mailto://ops:wrong-password@localhost:{smtp_with_login}?from=rc@example.org",
    )
    result = runner.invoke(app, ["doctor", "--timeout", "2"])
    assert result.exit_code == 1
    assert f"SMTP server at localhost:{smtp_with_login} refused the login of ops: 535" in (
        result.output
    )
    assert "wrong-password" not in result.output


def test_smtp_login_accepted(local: Path, monkeypatch: Any, smtp_with_login: int) -> None:
    monkeypatch.setenv(
        "REPORTCYCLE_MAIL_URL",
        f"mailto://ops:right-password@localhost:{smtp_with_login}?from=rc@example.org",
    )
    code, lines = doctor()
    assert code == 0, lines
    assert (
        lines["mail"] == f"ok SMTP server at localhost:{smtp_with_login}: answers, logged in as ops"
    )


def test_unreadable_mail_url(local: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_MAIL_URL", "smtp-server.example.org")
    code, lines = doctor()
    assert code == 1
    assert "REPORTCYCLE_MAIL_URL is not a mail URL" in lines["mail"]


# --- secrets and server mode -----------------------------------------------------------------


def test_missing_secret_in_server_mode(local: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_MODE", "server")
    monkeypatch.setenv("REPORTCYCLE_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    code, lines = doctor()
    assert code == 1
    assert lines["secret"] == (
        "PROBLEM REPORTCYCLE_SECRET_KEY is not set; server mode requires it "
        "(or REPORTCYCLE_SECRET_KEY_FILE)"
    )
    assert lines["settings"].startswith("PROBLEM REPORTCYCLE_SECRET_KEY: not set")
    # The other checks still ran.
    assert lines["database"].startswith("ok ")
    assert lines["broker"].startswith("PROBLEM Redis at")


def test_server_mode_names_every_missing_variable(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("REPORTCYCLE_DATABASE_URL", raising=False)
    monkeypatch.setenv("REPORTCYCLE_MODE", "server")
    with pytest.raises(ValidationError) as caught:
        Settings()
    missing = {error["loc"][0] for error in caught.value.errors()}
    assert missing == {"secret_key", "database_url", "broker_url"}
    # The command line says it with the variables' names.
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "info"],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 1
    for name in ("REPORTCYCLE_SECRET_KEY", "REPORTCYCLE_DATABASE_URL", "REPORTCYCLE_BROKER_URL"):
        assert f"{name}: not set; server mode requires {name}" in result.stderr


def test_short_secret_is_a_problem(local: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY", "short")
    code, lines = doctor()
    assert code == 1
    assert "REPORTCYCLE_SECRET_KEY is shorter than 32 characters" in lines["secret"]
    assert "short" not in lines["secret"].replace("shorter", "")


def test_secret_from_a_file_loses_its_trailing_newline(tmp_path: Path, monkeypatch: Any) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text(SECRET + "\n")
    mail_file = tmp_path / "mail_url"
    mail_file.write_text("mailto://ops:pw@smtp.example.org?from=rc@example.org\n")
    db_file = tmp_path / "database_url"
    db_file.write_text("postgresql+psycopg://rc:pw@db/rc\r\n")
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY_FILE", str(key_file))
    monkeypatch.setenv("REPORTCYCLE_MAIL_URL_FILE", str(mail_file))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL_FILE", str(db_file))
    settings = Settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == SECRET
    assert settings.mail_url is not None
    assert settings.mail_url.get_secret_value().endswith("from=rc@example.org")
    assert settings.database_url == "postgresql+psycopg://rc:pw@db/rc"


def test_a_missing_secret_file_names_the_variable(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(ValidationError) as caught:
        Settings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("secret_key",)
    assert error["msg"] == (
        f"REPORTCYCLE_SECRET_KEY_FILE names {tmp_path / 'nope'}, which cannot be read: "
        "No such file or directory"
    )


def test_a_value_and_its_file_together_is_an_error(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "k").write_text(SECRET)
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY_FILE", str(tmp_path / "k"))
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY", SECRET)
    with pytest.raises(ValidationError, match="set REPORTCYCLE_SECRET_KEY or REPORTCYCLE_SECRET"):
        Settings()


def test_an_empty_value_counts_as_unset(tmp_path: Path, monkeypatch: Any) -> None:
    # compose passes an unset ${VAR:-} as "", which must not become an empty password
    monkeypatch.setenv("REPORTCYCLE_MAIL_URL", "")
    monkeypatch.setenv("REPORTCYCLE_SECRET_KEY", " ")
    settings = Settings()
    assert settings.mail_url is None
    assert settings.secret_key is None


def test_a_bad_database_url_is_named_without_echoing_it(monkeypatch: Any) -> None:
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", "db-with-pass-hunter22")
    with pytest.raises(ValidationError) as caught:
        Settings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("database_url",)
    assert "hunter22" not in error["msg"]
    assert "hunter22" not in str(caught.value), "a validation error never echoes a setting"


@pytest.mark.parametrize("url", ["mysql://u:hunter22@db/rc", "postgresql://u:hunter22@db/rc"])
def test_an_unsupported_database_is_named_without_echoing_the_url(
    url: str, monkeypatch: Any
) -> None:
    # Either used to pass the settings and end in a traceback when its driver was imported.
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", url)
    with pytest.raises(ValidationError) as caught:
        Settings()
    (error,) = caught.value.errors()
    assert error["loc"] == ("database_url",)
    assert error["msg"].startswith(url.split("://")[0] + ":// is not a supported database")
    assert "hunter22" not in str(caught.value)
    assert Settings(database_url="postgresql+psycopg://u:pw@db/rc").database_url
