"""``reportcycle doctor``: is everything this installation needs there and answering?

Each check returns one :class:`Check`, ok or a problem said in plain words ("Redis at
127.0.0.1:6390 is unreachable: connection refused"). Nothing here prints a password: URLs are
shown without their credentials.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import socket
import ssl
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from pydantic import ValidationError

from config.secret_key import MIN_LENGTH as SECRET_KEY_MIN_LENGTH
from config.settings import Mode, Settings, env_name, settings_problems


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok' if self.ok else 'PROBLEM':8} {self.name:9} {self.detail}"


def ok(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def problem(name: str, detail: str) -> Check:
    return Check(name, False, detail)


def reason(exc: BaseException, timeout: float) -> str:
    """Why a connection failed, in words."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, socket.gaierror):
        return f"the host name does not resolve ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


# --- settings --------------------------------------------------------------------------------


def load_settings_for_checks() -> tuple[Settings | None, Check]:
    """The settings, and the check line saying whether they load.

    When only server mode's requirements are missing, the other checks still run (on the
    settings read as if embedded) so one run of doctor names every problem.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        check = problem("settings", "; ".join(settings_problems(exc)))
        try:
            return Settings(mode=Mode.EMBEDDED), check
        except ValidationError:
            return None, check
    return settings, ok("settings", f"loaded ({settings.mode.value} mode)")


def intended_server_mode() -> bool:
    return os.environ.get(env_name("mode"), "").strip().lower() == Mode.SERVER.value


def check_secret_key(settings: Settings | None, *, server: bool) -> Check:
    if settings is None:
        return problem("secret", "not checked: the settings do not load")
    hint = f"(or {env_name('secret_key')}_FILE)"
    if settings.secret_key is None:
        if server:
            return problem(
                "secret", f"{env_name('secret_key')} is not set; server mode requires it {hint}"
            )
        from config.secret_key import KEY_FILE_NAME, exposed_key_file

        # The web app refuses to start with such a key: say so before it does.
        exposed = exposed_key_file(settings.data_dir / KEY_FILE_NAME)
        if exposed is not None:
            return problem("secret", f"the generated key {exposed}")
        return ok("secret", f"not set: the web app keeps a generated key in {settings.data_dir}")
    if len(settings.secret_key.get_secret_value()) < SECRET_KEY_MIN_LENGTH:
        return problem(
            "secret",
            f"{env_name('secret_key')} is shorter than {SECRET_KEY_MIN_LENGTH} characters; use a "
            "long random value (python -c 'import secrets; print(secrets.token_urlsafe(48))')",
        )
    return ok("secret", "set")


# --- data directory --------------------------------------------------------------------------


def check_data_dir(settings: Settings | None) -> Check:
    """The data directory (SQLite, the outbox, a generated key, the published files, the
    beat's schedule) must be writable by the user the service runs as, and by nobody else."""
    if settings is None:
        return problem("data", "not checked: the settings do not load")
    folder = settings.data_dir
    where = f"the data directory {folder} ({env_name('data_dir')})"
    trouble = _not_writable(folder)
    if trouble:
        return problem("data", f"{where} {trouble} (this process runs as user id {os.getuid()})")
    if not folder.exists():
        return ok("data", f"{folder}: created on first use")
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o002:
        return problem(
            "data",
            f"{where} is writable by every user (mode {mode:o}): chmod o-w it (it may hold "
            "the session key and the database)",
        )
    return ok("data", f"{folder}: writable")


# --- database --------------------------------------------------------------------------------


def check_database(settings: Settings | None, *, server: bool, timeout: float) -> Check:
    from models.db import head_revision, make_engine

    if settings is None:
        return problem("database", "not checked: the settings do not load")
    if server and settings.database_url is None:
        return problem("database", f"not checked: {env_name('database_url')} is not set")
    url = sa.make_url(settings.sqlalchemy_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:" and not Path(url.database).exists():
            return problem(
                "database",
                f"no database yet at {url.database}: `reportcycle db upgrade` creates it",
            )
        engine = make_engine(settings.sqlalchemy_url)
        where = f"SQLite database {url.database}"
    else:
        connect_args = (
            {"connect_timeout": max(1, round(timeout))} if backend == "postgresql" else {}
        )
        engine = make_engine(settings.sqlalchemy_url, connect_args=connect_args)
        where = f"{'PostgreSQL' if backend == 'postgresql' else backend} at {_host_port(url)}"
    try:
        with engine.connect() as connection:
            from alembic.runtime.migration import MigrationContext

            current = MigrationContext.configure(connection).get_current_revision()
    except sa.exc.OperationalError as exc:
        why = _db_reason(exc, url)
        if why in ("connection refused", "no answer in time") or why.startswith("the host"):
            return problem("database", f"{where} is unreachable: {why}")
        return problem("database", f"{where} refused the connection: {why}")
    except sa.exc.SQLAlchemyError as exc:
        return problem("database", f"{where} failed: {_db_reason(exc, url)}")
    finally:
        engine.dispose()
    head = head_revision()
    if current == head:
        return ok("database", f"{where}: reachable, schema at the latest revision ({head})")
    if current is None:
        return problem("database", f"{where} has no schema yet: run `reportcycle db upgrade`")
    return problem(
        "database",
        f"{where} is at revision {current}, this version needs {head}: "
        "run `reportcycle db upgrade` (compose: the migrate service)",
    )


def _host_port(url: sa.URL) -> str:
    port = f":{url.port}" if url.port else ""
    return f"{url.host or 'localhost'}{port}/{url.database or ''}"


def _db_reason(exc: sa.exc.SQLAlchemyError, url: sa.URL) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    if url.password:
        text = text.replace(str(url.password), "***")
    lowered = text.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "password authentication failed" in lowered:
        return f"the password for user {url.username} was refused"
    if "timeout" in lowered or "timed out" in lowered:
        return "no answer in time"
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"the host name {url.host} does not resolve"
    # psycopg: 'connection failed: connection to server at "…", port 5432 failed: FATAL: …'
    text = text.rsplit(" failed: ", 1)[-1]
    return text.removeprefix("FATAL:").strip()


# --- broker ----------------------------------------------------------------------------------


def check_broker(settings: Settings | None, *, server: bool, timeout: float) -> Check:
    if settings is None:
        return problem("broker", "not checked: the settings do not load")
    if settings.broker_url is None:
        if server:
            return problem("broker", f"not checked: {env_name('broker_url')} is not set")
        return _check_filesystem_broker(settings)
    url = sa.make_url(_as_sqlalchemy_like(settings.broker_url))
    scheme = settings.broker_url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss"):
        return _check_redis(settings.broker_url, url, timeout)
    if scheme == "filesystem":
        return _check_filesystem_broker(settings)
    return _check_kombu(settings.broker_url, url, timeout)


def _as_sqlalchemy_like(url: str) -> str:
    # sa.make_url parses any scheme://user:pass@host:port/db, which is all we need here.
    scheme, _, rest = url.partition("://")
    return f"{scheme.replace('+', '-')}x://{rest}"


def _check_redis(broker_url: str, url: sa.URL, timeout: float) -> Check:
    import redis

    host, port = url.host or "localhost", url.port or 6379
    where = f"Redis at {host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return problem("broker", f"{where} is unreachable: {reason(exc, timeout)}")
    client = redis.Redis.from_url(
        broker_url, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
        info = client.info("memory")
    except redis.AuthenticationError:
        return problem("broker", f"{where} refused the password in {env_name('broker_url')}")
    except redis.ResponseError as exc:
        return problem("broker", f"{where} answered with an error: {exc}")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return problem("broker", f"{where} is unreachable: {exc}")
    finally:
        client.close()
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        return problem(
            "broker",
            f"{where} answers, but its maxmemory-policy is {policy}: Redis could evict queued "
            "tasks; set --maxmemory-policy noeviction",
        )
    return ok("broker", f"{where}: answers")


def _check_kombu(broker_url: str, url: sa.URL, timeout: float) -> Check:
    from kombu import Connection

    where = f"the broker at {url.host or 'localhost'}{f':{url.port}' if url.port else ''}"
    try:
        with Connection(broker_url, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=max(1, round(timeout)))
    except Exception as exc:  # kombu raises transport-specific errors
        return problem("broker", f"{where} is unreachable: {reason(exc, timeout)}")
    return ok("broker", f"{where}: answers")


def filesystem_broker_dirs(settings: Settings) -> list[Path]:
    """The folders of the embedded (filesystem) broker, as the Celery app configures them."""
    from config.celery import filesystem_broker_folders

    return sorted(set(filesystem_broker_folders(settings).values()))


def _check_filesystem_broker(settings: Settings) -> Check:
    folders = filesystem_broker_dirs(settings)
    for folder in folders:
        trouble = _not_writable(folder)
        if trouble:
            return problem("broker", f"the filesystem broker folder {folder} {trouble}")
    common = os.path.commonpath([str(f) for f in folders])
    return ok("broker", f"filesystem broker in {common}: writable (no server needed)")


def _not_writable(folder: Path) -> str | None:
    """None when files can be written in ``folder`` (created if missing), else why not."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not folder.exists():
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"does not exist and {existing} is not writable"
        return None  # created on first use
    if not folder.is_dir():
        return "is not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return f"is not writable ({reason(exc, 0)})"
    return None


# --- mail ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def check_mail(settings: Settings | None, *, timeout: float) -> Check:
    if settings is None:
        return problem("mail", "not checked: the settings do not load")
    if settings.mail_url is None:
        trouble = _not_writable(settings.outbox_path)
        if trouble:
            return problem("mail", f"no {env_name('mail_url')} and the outbox {trouble}")
        return ok(
            "mail",
            f"no {env_name('mail_url')}: messages go to .eml files in {settings.outbox_path}",
        )
    import apprise

    with _quiet("apprise"):
        # Apprise reads every form of its mail URLs (mailto://user:pass@host?smtp=…, …).
        plugin = apprise.Apprise.instantiate(settings.mail_url.get_secret_value())
    if plugin is None or not hasattr(plugin, "smtp_host"):
        return problem(
            "mail",
            f"{env_name('mail_url')} is not a mail URL Apprise can read (mailto://user:pass@host"
            ":port?from=you@example.org, or mailtos:// for TLS)",
        )
    return _check_smtp(
        host=str(plugin.smtp_host),
        port=int(plugin.port or 25),
        mode=str(getattr(plugin, "secure_mode", "insecure")),
        user=plugin.user,
        password=plugin.password,
        timeout=timeout,
    )


def _check_smtp(
    *, host: str, port: int, mode: str, user: str | None, password: str | None, timeout: float
) -> Check:
    where = f"SMTP server at {host}:{port}"
    context = ssl.create_default_context()
    try:
        if mode == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        return problem("mail", f"{where} is unreachable: {_smtp_reason(exc, timeout)}")
    try:
        client.ehlo()
        if mode == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if user and password:
            client.login(user, password)
    except smtplib.SMTPAuthenticationError as exc:
        return problem("mail", f"{where} refused the login of {user}: {_smtp_reason(exc, timeout)}")
    except smtplib.SMTPNotSupportedError:
        return problem("mail", f"{where} does not offer a login (AUTH) for {user} here")
    except (OSError, smtplib.SMTPException) as exc:
        return problem("mail", f"{where} failed: {_smtp_reason(exc, timeout)}")
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            client.quit()
    logged_in = f", logged in as {user}" if user and password else ""
    return ok("mail", f"{where}: answers{logged_in}")


def _smtp_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"{exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    return reason(exc, timeout)


# --- all of it -------------------------------------------------------------------------------


def run_checks(*, timeout: float = 3.0) -> list[Check]:
    settings, settings_check = load_settings_for_checks()
    server = intended_server_mode()
    return [
        settings_check,
        check_secret_key(settings, server=server),
        check_data_dir(settings),
        check_database(settings, server=server, timeout=timeout),
        check_broker(settings, server=server, timeout=timeout),
        check_mail(settings, timeout=timeout),
    ]
