"""The compose stack and the image, checked by parsing (no Docker engine on the build machines).

Every service's command is parsed by the real command line it names (uvicorn's, Celery's,
reportcycle's Typer app), so a misspelt module, attribute, subcommand or option fails here.
"""

from __future__ import annotations

import importlib
import logging
import re
import shlex
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import typer

from config import settings as settings_module
from config.settings import FILE_VARIABLE_FIELDS, Settings, env_name

yaml = pytest.importorskip("yaml", reason="PyYAML parses the compose file")

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = ("REPORTCYCLE_SECRET_KEY", "POSTGRES_PASSWORD", "REPORTCYCLE_MAIL_URL")
APP_SERVICES = ("migrate", "web", "worker", "beat")
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


# --- reading the files -----------------------------------------------------------------------


@cache
def compose_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


def interpolate(value: str, environment: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` and ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"]
        value = environment.get(name)
        if op in (":-", "-"):
            return value if value or (op == "-" and value is not None) else arg
        if op in (":?", "?"):
            if not value and not (op == "?" and value is not None):
                raise KeyError(f"{name}: {arg}")
            return value or ""
        return value or ""

    return VARIABLE.sub(substitute, value).replace("$$", "$")


def resolve(node: Any, environment: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, environment)
    if isinstance(node, list):
        return [resolve(item, environment) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, environment) for key, value in node.items()}
    return node


EXAMPLE_SECRETS = {
    "REPORTCYCLE_SECRET_KEY": "k" * 48,
    "POSTGRES_PASSWORD": "pw" * 12,
    "REPORTCYCLE_MAIL_URL": "mailtos://ops:pw@smtp.example.org:587?from=rc@example.org",
}


@cache
def compose() -> dict[str, Any]:
    """The compose file as docker compose sees it, with the secrets set and defaults applied."""
    loaded = yaml.safe_load(compose_text())  # merge keys (<<: *app) included
    assert isinstance(loaded, dict)
    return dict(resolve(loaded, EXAMPLE_SECRETS))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def command_of(service: str) -> list[str]:
    command = services()[service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def documented_variables() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match[1])
    return names


# --- the compose file ------------------------------------------------------------------------


def test_the_services() -> None:
    assert set(services()) == {"postgres", "redis", "migrate", "web", "worker", "beat", "mailpit"}
    assert services()["postgres"]["image"].startswith("postgres:16")
    assert services()["redis"]["image"].startswith("redis:7")


def test_every_variable_used_is_documented_in_env_example() -> None:
    used = {match["name"] for match in VARIABLE.finditer(compose_text())}
    assert used, "the compose file reads its settings from the environment"
    undocumented = used - documented_variables()
    assert not undocumented, f"document in .env.example: {sorted(undocumented)}"


def test_every_setting_is_documented_in_env_example() -> None:
    expected = {env_name(name) for name in Settings.model_fields}
    missing = expected - documented_variables()
    assert not missing, f"document in .env.example: {sorted(missing)}"
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for name in FILE_VARIABLE_FIELDS:
        assert f"{env_name(name)}_FILE" in text


def test_env_example_has_no_secret_values() -> None:
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        for secret in SECRETS:
            if line.startswith(f"{secret}="):
                assert line == f"{secret}=", "the example leaves secrets empty"


def test_secrets_have_no_default_and_compose_fails_fast_without_them() -> None:
    raw = compose_text()
    for secret in SECRETS:
        uses = [m for m in VARIABLE.finditer(raw) if m["name"] == secret]
        assert uses, secret
        assert all(m["op"] == ":?" for m in uses), f"{secret} must be ${{{secret}:?…}}"
        with pytest.raises(KeyError, match=secret):
            resolve(yaml.safe_load(raw), {k: v for k, v in EXAMPLE_SECRETS.items() if k != secret})
    for service in APP_SERVICES:
        environment = services()[service]["environment"]
        assert environment["REPORTCYCLE_SECRET_KEY"] == EXAMPLE_SECRETS["REPORTCYCLE_SECRET_KEY"]
        assert environment["REPORTCYCLE_MODE"] == "server"


def test_app_services_get_settings_that_validate_in_server_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = services()["web"]["environment"]
    for name in list(Settings.model_fields):
        monkeypatch.delenv(env_name(name), raising=False)
    for name, value in environment.items():
        if value is not None:  # None: passed through from .env when set there
            monkeypatch.setenv(name, str(value))
    settings = Settings()
    assert settings.mode.value == "server"
    assert settings.sqlalchemy_url.startswith("postgresql+psycopg://reportcycle:")
    assert settings.broker_url == "redis://redis:6379/0"
    assert settings.mail_url is not None
    assert settings.mail_url.get_secret_value() == EXAMPLE_SECRETS["REPORTCYCLE_MAIL_URL"]
    for service in APP_SERVICES:
        assert services()[service]["environment"] == environment


def test_health_checks_on_every_long_running_service() -> None:
    for name, service in services().items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no health check"
        assert check["test"][0] in ("CMD", "CMD-SHELL")
        assert service.get("restart") == "unless-stopped", name
    assert "pg_isready" in " ".join(services()["postgres"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services()["web"]["healthcheck"]["test"])
    worker_check = " ".join(services()["worker"]["healthcheck"]["test"])
    assert "celery -A worker.app inspect ping" in worker_check


def test_depends_on_waits_for_health_and_the_migration() -> None:
    for name in ("web", "worker", "beat"):
        depends = services()[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["redis"] == {"condition": "service_healthy"}, name
    assert services()["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("web", "worker"):
        assert services()[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_redis_never_evicts_queued_tasks_and_persists_them() -> None:
    command = " ".join(command_of("redis"))
    assert "--maxmemory-policy noeviction" in command
    assert "--appendonly yes" in command
    assert any(volume.endswith(":/data") for volume in services()["redis"]["volumes"])
    assert any(
        volume.endswith(":/var/lib/postgresql/data") for volume in services()["postgres"]["volumes"]
    )
    assert set(compose()["volumes"]) == {"postgres-data", "redis-data", "reportcycle-data"}


def image_data_dir() -> str:
    match = re.search(r"REPORTCYCLE_DATA_DIR=(\S+)", DOCKERFILE.read_text(encoding="utf-8"))
    assert match, "the image sets REPORTCYCLE_DATA_DIR"
    return match[1]


def test_the_data_directory_is_a_volume_shared_by_the_app_services() -> None:
    # The web app writes the published files (the reference copy, with SHA256SUMS) there and
    # the beat its schedule: inside the container they were lost at every upgrade.
    for name in APP_SERVICES:
        volumes = services()[name].get("volumes", [])
        assert f"reportcycle-data:{image_data_dir()}" in volumes, name


def test_settings_in_env_reach_the_containers() -> None:
    # compose reads .env only to fill in the compose file: a setting the file does not name
    # never reaches a container. The image fixes the data directory (a volume) and with it
    # the outbox; the stack fixes the mode, its database and its broker.
    container_paths = {"data_dir", "outbox_dir"}
    the_stacks = {"mode", "database_url", "broker_url"}
    environment = yaml.safe_load(compose_text())["x-app"]["environment"]
    for field in Settings.model_fields:
        name = env_name(field)
        if field in container_paths:
            assert name not in environment, name
            continue
        assert name in environment, f"{name} set in .env would not reach the containers"
        value = environment[name]
        if field in the_stacks or value is None:  # None: the value in .env, if any
            continue
        uses = {m["name"] for m in VARIABLE.finditer(str(value))}
        assert name in uses, f"{name} is fixed in the compose file, .env cannot set it"


def duration_seconds(text: str) -> float:
    """A compose duration: 90s, 5m30s, 1h."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(number) * scale[unit] for number, unit in parts)


def test_a_stopping_worker_may_finish_its_longest_task() -> None:
    # SIGTERM: Celery's warm shutdown finishes the running tasks, which the time limit bounds;
    # Docker kills the worker when the grace period ends, so it must be the longer.
    grace = duration_seconds(services()["worker"]["stop_grace_period"])
    limit = Settings.model_fields["task_time_limit_seconds"].default
    assert grace > limit, f"stop_grace_period {grace:g} s <= the task time limit {limit} s"
    raw = yaml.safe_load(compose_text())["services"]["worker"]["stop_grace_period"]
    assert "WORKER_STOP_GRACE_PERIOD" in raw, "raised with REPORTCYCLE_TASK_TIME_LIMIT_SECONDS"


def test_only_the_web_app_and_mailpit_publish_ports_on_loopback() -> None:
    for name, service in services().items():
        if name not in ("web", "mailpit"):
            assert not service.get("ports"), f"{name} must stay on the compose network"
    for name in ("web", "mailpit"):
        for port in services()[name]["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} to every host"
    assert services()["web"]["ports"] == ["127.0.0.1:8000:8000"]
    # A proxy on another machine: WEB_BIND_ADDRESS names the host's address to publish on.
    elsewhere = {**EXAMPLE_SECRETS, "WEB_BIND_ADDRESS": "10.0.0.5"}
    overridden = resolve(yaml.safe_load(compose_text()), elsewhere)
    assert overridden["services"]["web"]["ports"] == ["10.0.0.5:8000:8000"]


def test_exactly_one_beat_and_a_scalable_worker() -> None:
    beats = [
        name
        for name in services()
        if name in APP_SERVICES
        and ("beat" in command_of(name) or any(arg in ("-B", "--beat") for arg in command_of(name)))
    ]
    assert beats == ["beat"]
    assert services()["beat"].get("deploy", {}).get("replicas", 1) == 1
    worker = services()["worker"]
    assert "container_name" not in worker, "a fixed name would stop --scale worker=N"
    assert not any(":" in str(port) for port in worker.get("ports", []))


def test_mailpit_is_the_dev_profiles_mail_catcher() -> None:
    mailpit = services()["mailpit"]
    assert mailpit["profiles"] == ["dev"]
    assert any(str(port).endswith(":8025") for port in mailpit["ports"])
    for name, service in services().items():
        if name != "mailpit":
            assert "profiles" not in service, f"{name} must run without a profile"


def test_web_serves_behind_a_proxy_at_a_configurable_address() -> None:
    command = command_of("web")
    assert "--proxy-headers" in command
    assert "--forwarded-allow-ips=*" in command
    assert "REPORTCYCLE_BASE_URL" in {m["name"] for m in VARIABLE.finditer(compose_text())}


# --- the commands name real things -----------------------------------------------------------


def _import_or_skip(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            pytest.skip(f"{module} has not landed yet")
        raise


def test_web_command_is_uvicorn_serving_the_real_asgi_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn.main

    command = command_of("web")
    assert command[0] == "uvicorn"
    uvicorn_cli: click.Command = uvicorn.main.main.__self__  # type: ignore[attr-defined]
    context = uvicorn_cli.make_context("uvicorn", command[1:])  # options parse
    module_name, _, attribute = context.params["app"].partition(":")
    module = _import_or_skip(module_name)
    asgi = getattr(module, attribute)
    assert callable(asgi)
    from fastapi import FastAPI

    # web.app builds the app on first use, from the settings in the environment.
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    settings_module.get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    # The module's app is built once; leave it unbuilt for whoever serves it next.
    monkeypatch.setattr(asgi, "_app", getattr(asgi, "_app", None), raising=False)
    try:
        built = asgi if isinstance(asgi, FastAPI) else asgi.get()
    finally:
        settings_module.get_settings.cache_clear()
        root.handlers[:] = handlers  # serving configures this process's logging
        root.setLevel(level)
        logging.captureWarnings(False)
    assert isinstance(built, FastAPI)
    from fastapi.testclient import TestClient

    with TestClient(built) as client:
        assert client.get("/healthz").status_code == 200  # the health checks' URL
        assert client.get("/readyz").status_code in (200, 503)  # exists; 503 names a reason


def _celery_subcommand(argv: list[str], name: str) -> None:
    """Parse ``celery -A … NAME …`` with Celery's own command line, options included."""
    from celery import Celery
    from celery.app.utils import find_app
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as celery_cli

    assert argv[:3] == ["celery", "-A", "worker.app"]
    app = find_app("worker.app")  # Celery's own resolution of -A
    assert isinstance(app, Celery)
    with celery_cli.make_context("celery", argv[1:]) as context:
        context.obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
        rest = [*context.protected_args, *context.args]
        assert rest[0] == name
        assert isinstance(celery_cli, click.Group)
        subcommand = celery_cli.get_command(context, name)
        assert subcommand is not None, f"celery has no {name!r} command"
        subcommand.make_context(name, rest[1:], parent=context)


@pytest.mark.filterwarnings("ignore:'protected_args' is deprecated:DeprecationWarning")
@pytest.mark.parametrize("service", ["worker", "beat"])
def test_celery_commands_name_the_real_app_and_valid_options(service: str) -> None:
    _import_or_skip("worker.app")
    _celery_subcommand(command_of(service), service)


@pytest.mark.filterwarnings("ignore:'protected_args' is deprecated:DeprecationWarning")
def test_worker_healthcheck_is_a_valid_celery_command() -> None:
    _import_or_skip("worker.app")
    test = services()["worker"]["healthcheck"]["test"]
    _celery_subcommand(shlex.split(test[1].replace("$HOSTNAME", "host")), "inspect")


def test_migrate_runs_a_real_reportcycle_command() -> None:
    from cli.main import app

    command = command_of("migrate")
    assert command == ["reportcycle", "db", "upgrade"]
    group: Any = typer.main.get_command(app)
    context = group.make_context("reportcycle", command[1:])
    db = group.get_command(context, command[1])
    assert db is not None, "reportcycle has no db command"
    upgrade = db.get_command(context, command[2])
    assert upgrade is not None and upgrade.callback is not None


# --- the image -------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[str]]:
    """Instructions (continuation lines joined) per stage."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        assert stages, "the Dockerfile starts with FROM"
        stages[-1].append(line)
    return stages


def test_dockerfile_is_a_small_multi_stage_build() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build the wheel in one stage, run from another"
    for stage in stages:
        assert stage[0].split()[1] == "python:3.11-slim"
    build = " ".join(stages[0])
    assert "pip wheel" in build
    run = stages[-1]
    assert not any(line.startswith("COPY . ") for line in run), "only wheels reach the image"


def test_image_runs_as_a_non_root_user() -> None:
    final = dockerfile_stages()[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    # Nothing after USER switches back to root.
    after = final[final.index(next(line for line in final if line.startswith("USER "))) :]
    assert not any(line.startswith("USER root") or line.startswith("USER 0") for line in after)


def test_image_has_a_healthcheck_and_bakes_in_no_secret() -> None:
    final = dockerfile_stages()[-1]
    checks = [line for line in final if line.startswith("HEALTHCHECK ")]
    assert checks and "/healthz" in checks[0]
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith(("ENV ", "ARG ")) or line.startswith("    REPORTCYCLE_"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|MAIL_URL|DATABASE_URL", line), line
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored and ".git" in ignored


def test_image_build_copies_every_package_of_the_wheel() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    build = dockerfile_stages()[0]
    copied = {line.split()[1] for line in build if line.startswith("COPY ")}
    assert set(packages) <= copied, f"the build stage must COPY {sorted(set(packages) - copied)}"
    assert {"pyproject.toml", "README.md"} <= {
        part for line in build if line.startswith("COPY ") for part in line.split()[1:-1]
    }
