"""``reportcycle serve`` (web + worker + beat in one command) and the ``worker``/``beat``
wrappers, run as real processes: they start, answer, process a task through the broker and
stop cleanly on a signal, leaving no process behind."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cli import ops_commands
from config import settings as settings_module
from config.settings import Settings
from tests.services import free_port, require_redis, scratch_postgres_database

ROOT = Path(__file__).resolve().parent.parent
# Generous bounds for a busy 2-core machine; they bound waiting, they assert no speed.
START_WAIT = 120.0
STOP_WAIT = 60.0
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcde"


class Running:
    """A command in its own process, its output collected line by line."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ),
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = START_WAIT) -> re.Match[str]:
        """The first output line matching ``pattern``; fails if the process ends first."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while time.monotonic() < deadline:
                for line in self.lines[seen:]:
                    match = compiled.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.process.poll() is not None and not self._reader.is_alive():
                    break
                self._changed.wait(0.5)
        raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")

    def descendants(self) -> set[int]:
        """Every process below this one (children, the worker's pool, the beat)."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                # pid (comm) state ppid …; comm may hold spaces and parentheses
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        found: set[int] = set()
        frontier = {self.process.pid}
        while frontier:
            frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
            found |= frontier
        return found

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_WAIT)
        finally:
            self._reader.join(10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


@contextmanager
def running(*args: str) -> Iterator[Running]:
    """``reportcycle ARGS…``"""
    process = Running([sys.executable, "-m", "cli.main", *args])
    try:
        yield process
    finally:
        process.kill()


def enqueue_sweep() -> str:
    """Send a sweep through the broker of the settings in the environment; its task id."""
    from worker.app import create_celery_app

    settings_module.get_settings.cache_clear()
    app = create_celery_app(Settings())
    try:
        return str(app.send_task("reportcycle.sweep").id)
    finally:
        app.close()


def wait_healthy(server: Running, port: int) -> None:
    url = f"http://127.0.0.1:{port}/healthz"
    server.wait_for(r"reportcycle is running: dashboard at ")
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text


def serve_and_stop(port: int, base_url: str) -> str:
    with running("serve", "--port", str(port), "--concurrency", "1") as server:
        wait_healthy(server, port)
        assert f"dashboard at {base_url}/dashboard" in server.output
        assert httpx.get(f"http://127.0.0.1:{port}/dashboard", timeout=10).status_code < 500
        assert "reportcycle coordinator add EMAIL" in server.output

        # A task through the broker this command runs on, processed by its worker.
        task_id = enqueue_sweep()
        server.wait_for(rf"Task reportcycle\.sweep\[{task_id}\] succeeded")

        # The access log of a link with a token shows no token.
        httpx.get(f"http://127.0.0.1:{port}/r/{TOKEN}", timeout=10)
        server.wait_for(r'"GET /r/\S* HTTP/1\.1"')

        family = server.descendants()
        assert len(family) >= 3, "web, worker and its pool/beat processes"
        code = server.stop(signal.SIGINT)
        assert code == 0, server.output
        assert not alive(family), f"left behind: {alive(family)}"
        assert TOKEN not in server.output
        # (the web app's own filter or config.logging's, whichever sees it first)
        assert re.search(r'"GET /r/(\*\*\*|\[redacted\]) HTTP/1\.1"', server.output)
        return server.output


# The embedded mode is SQLite and a filesystem broker by definition; PostgreSQL and Redis are
# the server mode's (test_serve_uses_redis_and_postgresql_when_configured).
@pytest.mark.parametrize("backend", ["sqlite"])
def test_serve_embedded_runs_web_worker_and_beat_and_stops_on_ctrl_c(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REPORTCYCLE_BROKER_URL", "REPORTCYCLE_BASE_URL", "REPORTCYCLE_MAIL_URL"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    output = serve_and_stop(port, f"http://127.0.0.1:{port}")
    assert f"a filesystem broker in {env['REPORTCYCLE_DATA_DIR']}" in output
    assert Path(env["REPORTCYCLE_DATA_DIR"], "broker").is_dir()
    assert "stopped" in output.splitlines()[-1]


def test_serve_uses_redis_and_postgresql_when_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_url = require_redis()
    run = uuid.uuid4().hex[:10]
    with scratch_postgres_database() as db_url:
        monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", db_url)
        monkeypatch.setenv("REPORTCYCLE_BROKER_URL", redis_url)
        # Parallel test runs share this Redis: a queue and key prefix of our own.
        monkeypatch.setenv("REPORTCYCLE_TASK_QUEUE", f"serve-test-{run}")
        monkeypatch.setenv("REPORTCYCLE_BROKER_KEY_PREFIX", f"serve-test-{run}:")
        monkeypatch.setenv("REPORTCYCLE_BASE_URL", "https://reports.example.org")
        monkeypatch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
        output = serve_and_stop(free_port(), "https://reports.example.org")
    assert "broker: Redis" in output
    assert not (tmp_path / "data" / "broker").exists()
    assert not (tmp_path / "data" / "reportcycle.db").exists(), "PostgreSQL, not SQLite"


def test_worker_and_beat_wrappers_run_the_sweep_on_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    monkeypatch.setenv("REPORTCYCLE_SWEEP_INTERVAL_SECONDS", "10")
    monkeypatch.delenv("REPORTCYCLE_BROKER_URL", raising=False)
    subprocess.run(
        [sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=ROOT, check=True, timeout=120
    )
    with running("worker", "--concurrency", "1") as worker, running("beat") as beat:
        worker.wait_for(r"celery@\S+ ready")
        beat.wait_for(r"beat: Starting")
        sent = beat.wait_for(r"Scheduler: Sending due task sweep \(reportcycle\.sweep\)")
        assert sent
        worker.wait_for(r"Task reportcycle\.sweep\[[0-9a-f-]+\] succeeded")
        assert beat.stop(signal.SIGTERM) == 0, beat.output
        assert worker.stop(signal.SIGTERM) == 0, worker.output
    assert (tmp_path / "data" / "celerybeat-schedule").exists() or list(
        (tmp_path / "data").glob("celerybeat-schedule*")
    )


def test_serve_stops_everything_when_a_part_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    monkeypatch.delenv("REPORTCYCLE_BROKER_URL", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with running("serve", "--port", str(port), "--concurrency", "1") as server:
            server.wait_for(r"error: web exited with code \d+; stopping")
            family = server.descendants()
            assert server.process.wait(STOP_WAIT) == 1, server.output
            assert not alive(family), f"left behind: {alive(family)}"
    assert "address already in use" in server.output.lower()


def test_the_compose_commands_log_json_lines_without_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    monkeypatch.setenv("REPORTCYCLE_LOG_JSON", "1")
    monkeypatch.delenv("REPORTCYCLE_BROKER_URL", raising=False)
    port = free_port()
    bin_dir = Path(sys.executable).parent
    web = Running([str(bin_dir / "uvicorn"), "web.app:app", "--port", str(port)])
    worker = Running(
        [str(bin_dir / "celery"), "-A", "worker.app", "worker", "--loglevel=INFO", "-c", "1"]
    )
    try:
        web.wait_for(r"Application startup complete")
        httpx.get(f"http://127.0.0.1:{port}/r/{TOKEN}?token={TOKEN}", timeout=10)
        access = web.wait_for(r'"logger": "uvicorn\.access"')
        worker.wait_for(r"celery@\S+ ready")
    finally:
        for process in (web, worker):
            try:
                process.stop(signal.SIGTERM)
            finally:
                process.kill()
    entry = json.loads(access.string)
    assert "GET /r/" in entry["message"]
    assert TOKEN not in web.output
    ready = next(line for line in worker.lines if " ready." in line)
    assert json.loads(ready)["logger"].startswith("celery")


def embedded_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The environment of a process on its own SQLite file and filesystem broker."""
    monkeypatch.setenv("REPORTCYCLE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{tmp_path / 'rc.db'}")
    monkeypatch.delenv("REPORTCYCLE_BROKER_URL", raising=False)


def exit_code(process: Running) -> int:
    """How a process that should end at start ended (killed if it did not, all its output
    read)."""
    try:
        return process.process.wait(START_WAIT)
    finally:
        process.process.kill()
        process._reader.join(10)


def test_the_compose_commands_stop_at_start_on_a_bad_setting_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: uvicorn took the failed build for an app without lifespan, started and answered
    # every request with an error; celery printed a traceback naming the field.
    embedded_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("REPORTCYCLE_SWEEP_INTERVAL_SECONDS", "five minutes")
    monkeypatch.setenv("REPORTCYCLE_TIMEZONE", "Pacific/Atlantis")
    bin_dir = Path(sys.executable).parent
    web = Running([str(bin_dir / "uvicorn"), "web.app:app", "--port", str(free_port())])
    worker = Running([str(bin_dir / "celery"), "-A", "worker.app", "worker", "-c", "1"])
    codes = {"web": exit_code(web), "worker": exit_code(worker)}
    assert codes == {"web": 3, "worker": 1}, (web.output, worker.output)
    for process in (web, worker):
        assert "Traceback" not in process.output
        assert "Application startup complete" not in process.output
        problem = next(line for line in process.lines if "invalid settings: " in line)
        assert "REPORTCYCLE_SWEEP_INTERVAL_SECONDS: Input should be a valid integer" in problem
        assert "REPORTCYCLE_TIMEZONE: unknown time zone 'Pacific/Atlantis'" in problem


def test_a_worker_stops_at_start_on_a_mail_url_it_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: it started, and every message failed at send time.
    embedded_settings(monkeypatch, tmp_path)
    monkeypatch.setenv("REPORTCYCLE_MAIL_URL", "smtp://ops:S3cret-pw@mail.example.org:587")
    bin_dir = Path(sys.executable).parent
    worker = Running([str(bin_dir / "celery"), "-A", "worker.app", "worker", "-c", "1"])
    assert exit_code(worker) == 1, worker.output
    assert "Traceback" not in worker.output and "S3cret-pw" not in worker.output
    assert (
        "invalid settings: REPORTCYCLE_MAIL_URL must be an Apprise mailto:// or mailtos:// URL "
        "(got a smtp URL)" in worker.lines
    )


# --- stopping: a warm stop that waits for the worker's task, a second Ctrl-C that does not ----

STUBBORN = (
    "import pathlib, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "pathlib.Path(sys.argv[1]).touch()\n"
    "time.sleep(300)\n"
)


def stubborn_child(tmp_path: Path, name: str) -> ops_commands.Child:
    """A real process that ignores SIGTERM, as a worker busy with a long task does."""
    ready = tmp_path / f"{name}.ready"
    child = ops_commands.Child(name, [sys.executable, "-c", STUBBORN, str(ready)], dict(os.environ))
    deadline = time.monotonic() + START_WAIT
    while not ready.exists():
        assert child.running(), f"{name} exited early"
        assert time.monotonic() < deadline, f"{name} never became ready"
        time.sleep(0.05)
    return child


def test_stopping_waits_for_a_busy_child_until_a_second_ctrl_c(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = stubborn_child(tmp_path, "worker")
    force = threading.Event()
    # The second Ctrl-C comes after the notice (shown once the stop has taken a while).
    timer = threading.Timer(ops_commands.STOP_NOTICE_SECONDS + 1.0, force.set)
    timer.start()
    try:
        ops_commands._stop_all([child], grace=STOP_WAIT * 10, force=force)
    finally:
        timer.cancel()
    assert child.process.poll() is not None, "the child is still running"
    assert force.is_set(), "it stopped before the second Ctrl-C"
    out, err = capsys.readouterr()
    assert "waiting for worker to finish" in out
    assert "press Ctrl-C again to stop at once" in out
    assert "stopping at once" in err
    assert "did not stop in time" not in err


def test_stopping_kills_a_child_that_outlives_the_grace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    child = stubborn_child(tmp_path, "worker")
    ops_commands._stop_all([child], grace=0.5)
    assert child.process.poll() is not None, "the child is still running"
    assert "worker did not stop in time; killing it" in capsys.readouterr().err


def test_stopping_children_that_exit_on_sigterm_says_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    children = [
        ops_commands.Child(name, [sys.executable, "-c", "import time; time.sleep(300)"], {})
        for name in ("web", "worker")
    ]
    ops_commands._stop_all(children, grace=STOP_WAIT)
    assert all(child.process.returncode == -signal.SIGTERM for child in children)
    out, err = capsys.readouterr()
    assert "waiting for" not in out
    assert err == ""
