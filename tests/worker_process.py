"""A real ``celery -A worker.app worker`` in a subprocess, for tests that kill it.

It gets its settings from the environment given (database, Redis queue and key prefix, SMTP),
runs in a session of its own so ``kill()`` takes its pool children down with it (SIGKILL:
nothing is acknowledged, nothing cleaned up), and writes its log to a file the test can show.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO

import redis
from celery import Celery

from config.celery import celery_config
from config.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, *, concurrency: int = 1) -> None:
        self.env = env
        self.concurrency = concurrency
        self.log_path = log_path
        self.queue = env["REPORTCYCLE_TASK_QUEUE"]
        self.prefix = env.get("REPORTCYCLE_BROKER_KEY_PREFIX", "")
        # None: the embedded filesystem broker under REPORTCYCLE_DATA_DIR.
        self.broker_url = env.get("REPORTCYCLE_BROKER_URL") or None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> WorkerProcess:
        self._log = self.log_path.open("ab")
        argv = [
            sys.executable, "-m", "celery", "-A", "worker.app", "worker",
            "--loglevel=INFO", "--pool=prefork", f"--concurrency={self.concurrency}",
            "--without-mingle", "--without-gossip", "--without-heartbeat",
            "-Q", self.queue, "-n", f"test-{uuid.uuid4().hex[:8]}@%h",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the worker did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def producer(self) -> Celery:
        """An app that publishes where this worker consumes (same broker, queue, prefix)."""
        settings = Settings(
            data_dir=Path(self.env["REPORTCYCLE_DATA_DIR"]),
            broker_url=self.broker_url,
            task_queue=self.queue,
            broker_key_prefix=self.prefix,
        )
        app = Celery("reportcycle-test-producer")
        app.conf.update(celery_config(settings))
        return app

    def enqueue(self, task: str, *args: object) -> None:
        app = self.producer()
        try:
            app.send_task(task, args=list(args))
        finally:
            app.close()

    def queue_is_empty(self) -> bool:
        assert self.broker_url, "only for Redis"
        client = redis.Redis.from_url(self.broker_url)
        try:
            waiting = client.llen(self.prefix + self.queue)
            unacked = client.zcard(self.prefix + "unacked_index")
        finally:
            client.close()
        return bool(waiting == 0 and unacked == 0)

    def kill(self) -> None:
        """SIGKILL the worker and its pool, as a machine dying would."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
