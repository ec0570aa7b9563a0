"""Logs are one line per event, JSON on request, and never carry a token or a credential."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from config.logging import configure_logging, redact, uvicorn_log_config
from config.settings import Settings
from tests.services import free_port

TOKEN = "Zq3xV9kPp0wLr7TtYb2NcE5sHu8JmA1dGf6Ki4OyXe0"
PASSWORD = "s3cr3t-Pa55"
APPRISE_URL = f"mailtos://ops:{PASSWORD}@smtp.example.org:587?from=reportcycle@example.org"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, filters, level = list(root.handlers), list(root.filters), root.level
    yield
    root.handlers[:] = handlers
    root.filters[:] = filters
    root.setLevel(level)
    logging.captureWarnings(False)


def configured(tmp_path: Path, *, json_logs: bool) -> io.StringIO:
    out = io.StringIO()
    configure_logging(Settings(data_dir=tmp_path, log_json=json_logs), stream=out)
    return out


@pytest.mark.parametrize("json_logs", [False, True], ids=["text", "json"])
def test_tokens_and_credentials_never_reach_the_output(
    tmp_path: Path, restore_logging: None, json_logs: bool
) -> None:
    out = configured(tmp_path, json_logs=json_logs)
    log = logging.getLogger("reportcycle.test")

    log.info("GET /r/%s from 10.0.0.1", TOKEN)
    log.info("link https://reports.example.org/r/" + TOKEN + "/form?x=1")
    log.info("continue https://reports.example.org/continue?token=%s&next=/form", TOKEN)
    log.warning("sending through %s", APPRISE_URL)
    log.warning("apprise query form mailto://smtp.example.org?user=ops&pass=%s", PASSWORD)
    log.info("notify %(url)s", {"url": f"slack://bot:{PASSWORD}@team/channel"})
    try:
        raise ConnectionError(f"could not connect to {APPRISE_URL}")
    except ConnectionError:
        log.exception("delivery failed")
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/r/{TOKEN}", "1.1", 200
    )
    logging.getLogger("celery.app.trace").error("task failed: %r", ValueError(APPRISE_URL))

    text = out.getvalue()
    assert TOKEN not in text
    assert PASSWORD not in text
    lines = text.splitlines()
    assert len(lines) == 9, "one line per event, the traceback included"
    assert "/r/[redacted]" in lines[0]
    assert "mailtos://***@smtp.example.org:587" in text
    assert "pass=***" in text
    assert "token=***&next=/form" in text
    if json_logs:
        entries = [json.loads(line) for line in lines]
        assert entries[6]["message"] == "delivery failed"
        assert "ConnectionError" in entries[6]["exception"]
        assert entries[7]["logger"] == "uvicorn.access"
        assert entries[7]["message"] == '127.0.0.1:5000 - "GET /r/[redacted] HTTP/1.1" 200'


def test_json_lines_carry_the_ids_passed_with_extra(tmp_path: Path, restore_logging: None) -> None:
    out = configured(tmp_path, json_logs=True)
    logging.getLogger("worker.tasks").info(
        "notification sent", extra={"cycle_id": 3, "agency_id": 7, "notification_id": 42}
    )
    (entry,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert entry["message"] == "notification sent"
    assert (entry["cycle_id"], entry["agency_id"], entry["notification_id"]) == (3, 7, 42)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "worker.tasks"
    assert entry["time"].endswith("Z")


def test_text_lines_carry_the_ids_too(tmp_path: Path, restore_logging: None) -> None:
    out = configured(tmp_path, json_logs=False)
    logging.getLogger("worker.tasks").info("sent", extra={"notification_id": 42, "cycle_id": 3})
    (line,) = out.getvalue().splitlines()
    assert line.endswith("INFO worker.tasks: sent cycle_id=3 notification_id=42")


def test_configuring_twice_keeps_one_handler(tmp_path: Path, restore_logging: None) -> None:
    configured(tmp_path, json_logs=False)
    out = configured(tmp_path, json_logs=True)
    logging.getLogger("x").info("once")
    assert len(out.getvalue().splitlines()) == 1


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "milestone 12 of https://www.mbie.govt.nz/plan?year=2022 is due; mail ops@example.org"
    assert redact(text) == text


def test_uvicorn_access_log_of_a_real_request_hides_the_token(
    tmp_path: Path, restore_logging: None
) -> None:
    app = FastAPI()

    @app.get("/r/{token}")
    def landing(token: str) -> dict[str, int]:
        return {"length": len(token)}

    settings = Settings(data_dir=tmp_path, log_json=True)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=uvicorn_log_config(settings)
    )
    out = io.StringIO()
    configure_logging(settings, stream=out)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        response = httpx.get(f"http://127.0.0.1:{port}/r/{TOKEN}?token={TOKEN}")
        assert response.json() == {"length": len(TOKEN)}
    finally:
        server.should_exit = True
        thread.join(10)
    text = out.getvalue()
    access = [json.loads(line) for line in text.splitlines() if '"uvicorn.access"' in line]
    assert access, text
    assert "GET /r/[redacted]?token=*** HTTP/1.1" in access[0]["message"]
    assert TOKEN not in text


def test_celery_processes_log_through_configure_logging(
    tmp_path: Path, restore_logging: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery import signals

    from config.logging import connect_celery_logging

    out = io.StringIO()
    settings = Settings(data_dir=tmp_path, log_json=True)
    monkeypatch.setattr("sys.stderr", out)
    # (importing worker.app connects the same receiver for get_settings(); replace it)
    signals.setup_logging.disconnect(dispatch_uid="reportcycle.logging")
    connect_celery_logging(lambda: settings)
    connect_celery_logging(lambda: settings)  # twice: still one receiver
    try:
        # What a Celery worker or beat does at start instead of installing its own handlers.
        signals.setup_logging.send(
            sender=None, loglevel=logging.INFO, logfile=None, format="", colorize=False
        )
        logging.getLogger("celery.app.trace").info(
            "Task %s[%s] raised: %r", "reportcycle.send_notification", "id-1", APPRISE_URL
        )
    finally:
        signals.setup_logging.disconnect(dispatch_uid="reportcycle.logging")
        connect_celery_logging()  # as worker.app leaves it
    (line,) = out.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "celery.app.trace"
    assert PASSWORD not in line
