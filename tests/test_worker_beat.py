"""Beat: a real ``celery -A worker.app beat`` publishes ``reportcycle.sweep`` to our queue at
the configured interval (and nothing else)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

from config.celery import SWEEP_TASK, celery_config
from config.settings import Settings
from tests.services import require_redis
from tests.worker_process import ROOT

pytestmark = pytest.mark.redis


def test_beat_publishes_the_sweep(tmp_path: Path) -> None:
    url = require_redis()
    run = uuid.uuid4().hex[:8]
    queue, prefix = f"rc-beat-{run}", f"rc-beat-{run}:"
    env = {
        **os.environ,
        "REPORTCYCLE_DATA_DIR": str(tmp_path / "data"),
        "REPORTCYCLE_BROKER_URL": url,
        "REPORTCYCLE_TASK_QUEUE": queue,
        "REPORTCYCLE_BROKER_KEY_PREFIX": prefix,
        "REPORTCYCLE_SWEEP_INTERVAL_SECONDS": "10",
    }
    log = (tmp_path / "beat.log").open("wb")
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.app", "beat", "--loglevel=INFO",
         f"--schedule={tmp_path / 'celerybeat-schedule'}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 60
        messages: list[dict[str, Any]] = []
        while len(sweeps(messages)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            messages = [json.loads(raw) for raw in client.lrange(prefix + queue, 0, -1)]
    finally:
        os.killpg(beat.pid, signal.SIGTERM)
        beat.wait(timeout=30)
        log.close()
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
        client.close()

    beat_log = (tmp_path / "beat.log").read_text(errors="replace")
    assert len(sweeps(messages)) >= 2, beat_log
    schedule = celery_config(Settings(data_dir=tmp_path))["beat_schedule"]
    scheduled = {entry["task"] for entry in schedule.values()}
    assert {message["headers"]["task"] for message in messages} <= scheduled
    # Beat sends no arguments: the sweep runs at the real time; and a sweep that waited past
    # the next one expires.
    assert all(message["headers"]["argsrepr"] == "()" for message in sweeps(messages))
    assert all(message["headers"]["expires"] is not None for message in sweeps(messages))


def sweeps(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message for message in messages if message["headers"]["task"] == SWEEP_TASK]
