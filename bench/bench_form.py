"""The agency form under load: the form page (GET /form) and a draft save (POST /form), against
a bare FastAPI endpoint served with the same uvicorn settings, in the same run.

    .venv/bin/python -m bench.bench_form                 # 4 and 32 clients, 20 s each (~3 min)
    .venv/bin/python -m bench.bench_form --seconds 5     # a quick look
    .venv/bin/python -m bench.bench_form --database-url postgresql+psycopg://postgres@127.0.0.1/x

A third server, "stack", is the real app with /form answered by a constant page after its
middleware (body limit, security headers, signed session) and, on POST, the form's CSRF check:
what the framework and the required safety cost before any page work.

The servers are uvicorn subprocesses (one process each, no access log, the same event loop
and HTTP parser: uvloop and httptools when installed, as uvicorn picks them; `--loop asyncio
--http h11` for the pure-Python ones); the load comes from this process over loopback, from
keep-alive connections, one per client. Every client answers
for its own agency (its own link and session), so saves do not conflict; afterwards every
agency's revisions are checked (numbered 1..n without gaps, n = the saves that got 303, the last
one holding the last text sent), and 32 clients saving the same answer at once must give
exactly one saved revision and 31 conflicts.

Goals (issue 4): at 32 clients at least half the bare endpoint's rate with a p99 within 2x of
its p99; at 4 clients a GET p99 under 25 ms; no lost or corrupted save.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import http.client
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bench.common import print_table
from models.db import make_engine, upgrade
from models.tables import SubmissionRevision
from tests.services import free_port
from tests.web_helpers import Scenario, build_scenario

SECRET = "bench-secret-key-bench-secret-key-bench-secret"
BARE_PAGE = "<!doctype html><title>bare</title><p>ok</p>"


# --- the two apps (built in the server processes) ------------------------------------------


def form_app() -> FastAPI:
    """The real app from the environment's settings, with token attempts unthrottled so the
    benchmark can open its 32 links from one address."""
    from web.app import create_app
    from web.deps import WebOptions

    return create_app(options=WebOptions(token_attempts=100_000))


def bare_app() -> FastAPI:
    """A bare endpoint: same framework and server, no session, no database, no template."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/form", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(BARE_PAGE)

    @app.post("/form")
    async def save(request: Request) -> Response:
        await request.form()
        return RedirectResponse("/form", status_code=303)

    return app


def stack_app() -> FastAPI:
    """The real app's stack without its work: the same middleware (body limit, security
    headers, the signed session cookie) in front of a /form that reads the session and, on
    POST, the form and its CSRF token, but touches no database and renders no template. It
    splits the gap between the bare endpoint and the form: what the framework and the
    required safety cost, and what the page itself costs."""
    from starlette.routing import Route

    from web.security import require_csrf

    app = form_app()

    async def page(request: Request) -> Response:
        if not request.session:
            return HTMLResponse("no session", status_code=401)
        return HTMLResponse(BARE_PAGE)

    async def save(request: Request) -> Response:
        form = await request.form()
        require_csrf(request, form.get("csrf"))
        return RedirectResponse("/form", status_code=303)

    # Ahead of the app's own /form routes, which are matched in order.
    app.router.routes.insert(0, Route("/form", page, methods=["GET"]))
    app.router.routes.insert(1, Route("/form", save, methods=["POST"]))
    return app


# --- servers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    """uvicorn's event loop and HTTP implementation, the same for both servers."""

    loop: str = "auto"
    http: str = "auto"

    def resolved(self) -> tuple[str, str]:
        # What uvicorn's "auto" picks: the compiled ones when they are installed.
        loop = self.loop
        if loop == "auto":
            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
        protocol = self.http
        if protocol == "auto":
            protocol = "httptools" if importlib.util.find_spec("httptools") else "h11"
        return loop, protocol


@contextmanager
def server(factory: str, env: dict[str, str], settings: ServerSettings) -> Iterator[int]:
    port = free_port()
    loop, protocol = settings.resolved()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        factory,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        loop,
        "--http",
        protocol,
    ]
    process = subprocess.Popen(command, env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/healthz")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"{factory} did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- sessions ------------------------------------------------------------------------------


@dataclass
class Agent:
    """One agency's browser: its session cookie, CSRF token, the revision its form is on."""

    scenario: Scenario
    cookie: str
    csrf: str
    base: int
    saves: int = 0
    last_text: str = ""


def _cookie(response: http.client.HTTPResponse) -> str:
    header = response.getheader("set-cookie") or ""
    return header.split(";", 1)[0]


def open_session(port: int, scenario: Scenario) -> Agent:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", f"/r/{scenario.token}")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = _cookie(response)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, "no CSRF token on the landing page"
    body = urlencode({"csrf": csrf[1], "email": "bench@agency.test"})
    connection.request(
        "POST",
        f"/r/{scenario.token}",
        body=body,
        headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    response = connection.getresponse()
    response.read()
    assert response.status == 303, response.status
    cookie = _cookie(response)
    connection.request("GET", "/form", headers={"Cookie": cookie})
    response = connection.getresponse()
    page = response.read().decode()
    assert response.status == 200, response.status
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    base = re.search(r'name="base" value="([0-9]+)"', page)
    assert csrf and base
    connection.close()
    return Agent(scenario, cookie, csrf[1], int(base[1]))


def save_body(agent: Agent, text: str) -> bytes:
    scenario = agent.scenario
    fields = {
        "csrf": agent.csrf,
        "base": str(agent.base),
        "action": "save",
        f"m-{scenario.milestone_ids[0]}-progress": "on_track",
        f"m-{scenario.milestone_ids[1]}-progress": "delayed",
        # A period still to come at the server's (real) clock: one already over is refused.
        f"m-{scenario.milestone_ids[1]}-new_period": f"Quarter 4 {date.today().year + 1}",
        f"m-{scenario.milestone_ids[1]}-reason": "Waiting for the translation – te reo Māori.",
        f"a-{scenario.objective_id}-0-text": text,
        f"a-{scenario.objective_id}-0-link_title": "Hotline",
        f"a-{scenario.objective_id}-0-link_url": "https://example.govt.nz/hotline",
        f"f-{scenario.objective_id}-0-text": "Extend training to labour inspectors.",
    }
    return urlencode(fields).encode()


# --- load ----------------------------------------------------------------------------------


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> int:
    writer.write(raw)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


def get_request(cookie: str) -> bytes:
    return f"GET /form HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode()


def post_request(cookie: str, body: bytes) -> bytes:
    head = (
        "POST /form HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


async def run_load(
    port: int, agents: list[Agent], clients: int, seconds: float, method: str
) -> Result:
    result = Result()
    stop = time.perf_counter() + seconds
    expected = 200 if method == "GET" else 303

    async def client(index: int) -> None:
        agent = agents[index % len(agents)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop:
                if method == "GET":
                    raw = get_request(agent.cookie)
                else:
                    text = f"Saved by client {index}, save {agent.saves + 1} – Ōtautahi"
                    raw = post_request(agent.cookie, save_body(agent, text))
                started = time.perf_counter()
                status = await exchange(reader, writer, raw)
                elapsed = time.perf_counter() - started
                if status == expected:
                    result.latencies.append(elapsed)
                    if method == "POST":
                        agent.saves += 1
                        agent.base += 1
                        agent.last_text = text
                else:
                    result.errors[status] = result.errors.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    result.seconds = time.perf_counter() - began
    return result


async def simultaneous_saves(port: int, agent: Agent, clients: int) -> list[int]:
    """``clients`` connections send the same save, based on the same revision, at once."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(clients)]
    raw = post_request(agent.cookie, save_body(agent, "one of many at once"))
    try:
        return list(await asyncio.gather(*(exchange(r, w, raw) for r, w in connections)))
    finally:
        for _, writer in connections:
            writer.close()


# --- checks --------------------------------------------------------------------------------


def check_saves(database_url: str, agents: list[Agent]) -> list[str]:
    problems = []
    engine = make_engine(database_url)
    with Session(engine) as session:
        for agent in agents:
            revisions = session.exec(
                select(SubmissionRevision)
                .where(SubmissionRevision.update_request_id == agent.scenario.request_id)
                .order_by(col(SubmissionRevision.number))
            ).all()
            numbers = [r.number for r in revisions]
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"request {agent.scenario.request_id}: gaps in {numbers[:10]}…")
            if len(numbers) != agent.saves:
                problems.append(
                    f"request {agent.scenario.request_id}: {len(numbers)} revisions for "
                    f"{agent.saves} acknowledged saves"
                )
            if revisions and agent.last_text:
                text = revisions[-1].content["achievements"][0]["text"]
                if text != agent.last_text:
                    problems.append(f"request {agent.scenario.request_id}: last text {text!r}")
    engine.dispose()
    return problems


# --- main ----------------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per measurement")
    parser.add_argument("--clients", default="4,32", help="concurrent clients, comma-separated")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop for both servers")
    parser.add_argument("--http", default="auto", help="uvicorn --http for both servers")
    args = parser.parse_args()
    settings = ServerSettings(args.loop, args.http)
    client_counts = [int(c) for c in args.clients.split(",")]
    agencies = max(client_counts)

    with tempfile.TemporaryDirectory(prefix="bench-form-") as tmp:
        database_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(database_url)
        upgrade(engine)
        with Session(engine, expire_on_commit=False) as session:
            scenarios = [build_scenario(session) for _ in range(agencies + 1)]
        engine.dispose()
        env = {
            "REPORTCYCLE_DATABASE_URL": database_url,
            "REPORTCYCLE_DATA_DIR": str(Path(tmp) / "data"),
            "REPORTCYCLE_SECRET_KEY": SECRET,
            "REPORTCYCLE_MODE": "embedded",
        }
        rows = []
        results: dict[tuple[str, str, int], Result] = {}
        with (
            server("bench.bench_form:form_app", env, settings) as form_port,
            server("bench.bench_form:bare_app", env, settings) as bare_port,
            server("bench.bench_form:stack_app", env, settings) as stack_port,
        ):
            agents = [open_session(form_port, s) for s in scenarios[:agencies]]
            bare_agents = [Agent(s, "x=y", "csrf", 0) for s in scenarios[:agencies]]
            # Copies: the stack's saves store nothing, and must not move the agents' counts.
            stack_agents = [dataclasses.replace(agent) for agent in agents]
            for method in ("GET", "POST"):
                for clients in client_counts:
                    for name, port, who in (
                        ("bare", bare_port, bare_agents),
                        # The form's own sessions: the cookie is signed with the same key.
                        ("stack", stack_port, stack_agents),
                        ("form", form_port, agents),
                    ):
                        result = asyncio.run(run_load(port, who, clients, args.seconds, method))
                        results[(name, method, clients)] = result
                        rows.append(
                            [
                                f"{method} {'page' if method == 'GET' else 'draft save'}",
                                name,
                                clients,
                                f"{result.rate:.0f}",
                                ms(result.median),
                                ms(result.percentile(0.99)),
                                sum(result.errors.values()),
                            ]
                        )
            contested = open_session(form_port, scenarios[agencies])
            statuses = asyncio.run(simultaneous_saves(form_port, contested, 32))
        backend = database_url.split(":", 1)[0]
        print_table(
            ["request", "server", "clients", "req/s", "median ms", "p99 ms", "errors"],
            rows,
            title=(
                f"Agency form under load ({args.seconds:.0f} s each, {backend}, "
                f"uvicorn {' + '.join(settings.resolved())})"
            ),
        )
        problems = check_saves(database_url, agents)
        contested.saves = statuses.count(303)
        problems += check_saves(database_url, [contested])
        if sorted(set(statuses)) != [303, 409] or statuses.count(303) != 1:
            problems.append(f"32 simultaneous saves answered {sorted(statuses)}")

    print()
    goals = []
    top = max(client_counts)
    for method in ("GET", "POST"):
        bare, form = results[("bare", method, top)], results[("form", method, top)]
        goals.append(
            [
                f"{method} at {top} clients: rate >= 1/2 bare",
                f"{form.rate / bare.rate:.2f} of bare" if bare.rate else "n/a",
                "met" if form.rate >= bare.rate / 2 else "NOT met",
            ]
        )
        goals.append(
            [
                f"{method} at {top} clients: p99 <= 2x bare",
                f"{form.percentile(0.99) / bare.percentile(0.99):.1f}x bare",
                "met" if form.percentile(0.99) <= 2 * bare.percentile(0.99) else "NOT met",
            ]
        )
    for method in ("GET", "POST"):
        bare, stack = results[("bare", method, top)], results[("stack", method, top)]
        goals.append(
            [
                f"(for scale) {method} at {top} clients: the app's stack alone",
                f"{stack.rate / bare.rate:.2f} of bare" if bare.rate else "n/a",
                "no database, no template",
            ]
        )
    low = min(client_counts)
    get_low = results[("form", "GET", low)]
    goals.append(
        [
            f"GET at {low} clients: p99 < 25 ms",
            f"{ms(get_low.percentile(0.99))} ms",
            "met" if get_low.percentile(0.99) < 0.025 else "NOT met",
        ]
    )
    goals.append(
        [
            "no lost or corrupted save",
            f"{sum(a.saves for a in agents)} saves checked; 32 at once → "
            f"{statuses.count(303)} saved, {statuses.count(409)} conflicts",
            "met" if not problems else "NOT met: " + "; ".join(problems[:3]),
        ]
    )
    print_table(["goal", "measured", "result"], goals, title="Goals")


if __name__ == "__main__":
    main()
