"""Running and checking the service: ``doctor``, ``serve``, ``web``, ``worker``, ``beat``.

``serve`` is the embedded one-command mode: the web app and a Celery worker with the beat
inside it, as child processes of one command that Ctrl-C stops cleanly. ``web``, ``worker``
and ``beat`` are the same processes one by one (logging configured, redaction on), for a
machine that runs them under a process supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from cli import doctor
from cli.common import console, errors, load_settings, ready_engine
from config.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

# How long `serve` waits, after Ctrl-C, for the worker to finish its task before killing it:
# a task can run up to the task time limit, and a worker killed mid-batch may send a message
# again that it had sent but not yet marked sent. A second Ctrl-C stops everything at once,
# as a second Ctrl-C does for Celery itself.
STOP_MARGIN_SECONDS = 30.0
# After this long still waiting, say what it is waiting for and how to stop at once.
STOP_NOTICE_SECONDS = 2.0


def _beat_schedule_path(settings: Settings) -> Path:
    # Beat keeps the time of each entry's last run here; losing it costs at most one early
    # sweep, which is harmless because sweeps are idempotent.
    return settings.ensure_data_dir() / "celerybeat-schedule"


def _connect_celery_logging(settings: Settings) -> None:
    """Make Celery use our logging (one line per event, redacted) instead of its own."""
    from config.logging import connect_celery_logging

    connect_celery_logging(lambda: settings)


def _celery_app() -> Celery:
    try:
        from worker.app import celery_app
    except ImportError as exc:
        errors.print(f"error: the Celery app (worker.app) cannot be imported: {exc}", markup=False)
        raise typer.Exit(1) from exc
    return celery_app


def run_worker(*, beat: bool, concurrency: int | None, loglevel: str) -> None:
    settings = load_settings()
    _connect_celery_logging(settings)
    app = _celery_app()
    argv = ["worker", f"--loglevel={loglevel}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if beat:
        argv += ["--beat", f"--schedule={_beat_schedule_path(settings)}"]
    app.worker_main(argv)


def run_beat(*, loglevel: str) -> None:
    settings = load_settings()
    _connect_celery_logging(settings)
    app = _celery_app()
    app.start(["beat", f"--loglevel={loglevel}", f"--schedule={_beat_schedule_path(settings)}"])


def run_web(*, host: str, port: int) -> None:
    import uvicorn

    from config.logging import configure_logging, uvicorn_log_config

    settings = load_settings()
    configure_logging(settings)
    uvicorn.run(
        "web.app:app",
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_config=uvicorn_log_config(settings),
    )


# ---------------------------------------------------------------------------------------------
# serve: supervising the children


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # Linux: if `serve` itself is killed outright, its children get SIGTERM instead of
    # living on as orphans that hold the port.
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        # A session of its own: the terminal's Ctrl-C reaches `serve` only, which then stops
        # the children in order (a worker finishes its task before it exits).
        self.process = subprocess.Popen(
            argv, env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def terminate(self) -> None:
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def kill_group(self) -> None:
        # Whatever is left of the child and its own children (the worker's pool).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _wait_for_port(host: str, port: int, child: Child, stop: threading.Event) -> bool:
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    while not stop.is_set() and child.running():
        try:
            with socket.create_connection((probe_host, port), timeout=0.5):
                return True
        except OSError:
            stop.wait(0.2)
    return False


def _stop_all(children: list[Child], grace: float, force: threading.Event | None = None) -> None:
    """Ask each child to stop (SIGTERM: the web server closes, the worker finishes its task),
    wait up to ``grace`` seconds for all of them, or until ``force`` is set (a second
    Ctrl-C), then kill whatever is left, the children's own children included."""
    for child in reversed(children):
        child.terminate()
    force = force or threading.Event()
    deadline = time.monotonic() + grace
    notice_at = time.monotonic() + STOP_NOTICE_SECONDS
    noticed = False
    while any(child.running() for child in children):
        now = time.monotonic()
        if now >= deadline:
            for child in children:
                if child.running():
                    errors.print(f"{child.name} did not stop in time; killing it", markup=False)
            break
        if force.is_set():
            errors.print("stopping at once", markup=False)
            break
        if not noticed and now >= notice_at:
            noticed = True
            waiting = ", ".join(child.name for child in children if child.running())
            console.print(
                f"waiting for {waiting} to finish (up to {deadline - now:.0f} s); "
                "press Ctrl-C again to stop at once",
                markup=False,
            )
        force.wait(0.1)
    for child in children:
        child.kill_group()
        child.process.wait()


def serve(*, host: str, port: int, concurrency: int | None) -> int:
    from models.db import current_revision

    settings = load_settings()
    engine = ready_engine()  # migrated, or a plain error when the database is unreachable
    console.print(f"database ready (revision {current_revision(engine)})")
    # The children open their own connections.
    engine.dispose()

    env = dict(os.environ)
    base_url = settings.base_url
    if "REPORTCYCLE_BASE_URL" not in os.environ:
        # Links in mails must point at this server, wherever it listens.
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        base_url = f"http://{shown}:{port}"
        env["REPORTCYCLE_BASE_URL"] = base_url
    broker = "Redis" if settings.broker_url else f"a filesystem broker in {settings.data_dir}"
    console.print(f"broker: {broker}")

    stop = threading.Event()
    force = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        # The first signal stops gracefully; another one while stopping stops at once.
        (force if stop.is_set() else stop).set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    me = [sys.executable, "-m", "cli.main"]
    worker_argv = [*me, "worker", "--beat"]
    if concurrency:
        worker_argv.append(f"--concurrency={concurrency}")
    children: list[Child] = []
    code = 0
    try:
        children.append(Child("web", [*me, "web", "--host", host, "--port", str(port)], env))
        children.append(Child("worker", worker_argv, env))
        if _wait_for_port(host, port, children[0], stop):
            console.print(f"\nreportcycle is running: dashboard at {base_url}/dashboard")
            console.print(
                "add the first coordinator (in another terminal, same settings): "
                "reportcycle coordinator add EMAIL\n"
                "press Ctrl-C to stop\n",
                markup=False,
            )
        while not stop.is_set():
            dead = [child for child in children if not child.running()]
            if dead:
                for child in dead:
                    errors.print(
                        f"error: {child.name} exited with code {child.process.returncode}; "
                        "stopping",
                        markup=False,
                    )
                code = 1
                break
            stop.wait(0.25)
    finally:
        _stop_all(children, settings.task_time_limit_seconds + STOP_MARGIN_SECONDS, force)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        console.print("stopped")
    return code


# ---------------------------------------------------------------------------------------------
# the commands


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor_command(
        timeout: Annotated[
            float, typer.Option(help="Seconds to wait for each server to answer.")
        ] = 3.0,
    ) -> None:
        """Check the settings, database, broker, mail and secret key; exit 1 on a problem.

        Prints one line per check, saying what is wrong in plain words."""
        checks = doctor.run_checks(timeout=timeout)
        for check in checks:
            console.print(check.line(), markup=False)
        problems = sum(not check.ok for check in checks)
        if problems:
            console.print(f"{problems} problem{'s' if problems > 1 else ''} found", markup=False)
            raise typer.Exit(1)
        console.print("all checks passed", markup=False)

    @app.command("serve")
    def serve_command(
        host: Annotated[str, typer.Option(help="Address the web app listens on.")] = "127.0.0.1",
        port: Annotated[
            int, typer.Option(help="Port the web app listens on.", min=1, max=65535)
        ] = 8000,
        concurrency: Annotated[
            int | None, typer.Option(help="Worker processes (default: one per CPU).", min=1)
        ] = None,
    ) -> None:
        """Run the web app, a worker and the beat in one command on this machine.

        Embedded default: SQLite and a filesystem broker in the data directory (no servers);
        with REPORTCYCLE_DATABASE_URL and REPORTCYCLE_BROKER_URL set, PostgreSQL and Redis.
        Brings the database schema up to date first. Ctrl-C stops everything."""
        raise typer.Exit(serve(host=host, port=port, concurrency=concurrency))

    @app.command("web")
    def web_command(
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    ) -> None:
        """Run only the web app (uvicorn), with reportcycle's logging."""
        run_web(host=host, port=port)

    @app.command("worker")
    def worker_command(
        beat: Annotated[
            bool, typer.Option("--beat", help="Run the beat inside this worker (one only!).")
        ] = False,
        concurrency: Annotated[
            int | None, typer.Option(help="Worker processes (default: one per CPU).", min=1)
        ] = None,
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    ) -> None:
        """Run a Celery worker (same as `celery -A worker.app worker`, with our logging)."""
        run_worker(beat=beat, concurrency=concurrency, loglevel=loglevel)

    @app.command("beat")
    def beat_command(
        loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    ) -> None:
        """Run the Celery beat that schedules the sweeps (exactly one per installation).

        Two beats would enqueue every sweep twice."""
        run_beat(loglevel=loglevel)
