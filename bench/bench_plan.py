"""Import and compile times for a large generated plan, against a baseline in the same run.

    python -m bench.bench_plan                    # 200 agencies, 2,000 actions, 20,000 milestones
    python -m bench.bench_plan --small            # 20 / 200 / 2,000: a quick run
    python -m bench.bench_plan --runs 3 --backend sqlite --profile compile

What it measures (median of ``--runs`` runs; min and max shown):

- parse: ``models.report_text.parse_report`` of the generated text alone;
- import: ``models.importer.import_report`` + commit into a fresh, migrated SQLite file and a
  fresh PostgreSQL database (a scratch database created and dropped on the server of
  ``REPORTCYCLE_TEST_POSTGRES_URL``, default 127.0.0.1:5432/test; skipped with a message when
  unreachable);
- compile, per format: ``models.compiler.build_document`` (database → ReportDocument, in a new
  session) + ``models.render.render(doc, fmt)``, against the baseline: the bare Jinja2 render
  of the already-built document (``render_template``) for txt/md/html, the renderer alone on
  the built document for docx/csv. The goal (issue 2) is compile within 1.5x of the baseline;
- SQL statements during one compile, for the plan and for one ``--scale``-th of it, to show
  the count does not grow with the plan.

It prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from bench.common import (
    QueryCounter,
    Timing,
    count_queries,
    print_table,
    replay_raw,
    seconds,
    time_runs,
)
from bench.generate_plan import generate_report_text
from models.compiler import build_document
from models.db import make_engine, upgrade
from models.document import ReportDocument
from models.importer import ImportSummary, import_report
from models.render import Format, render, render_template
from models.report_text import parse_report

POSTGRES_ADMIN_URL = os.environ.get(
    "REPORTCYCLE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FORMATS = [Format.TXT, Format.MD, Format.HTML, Format.DOCX, Format.CSV]
NOW = datetime(2022, 1, 19, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PlanSize:
    agencies: int
    actions: int
    milestones: int

    def scaled(self, divisor: int) -> PlanSize:
        return PlanSize(
            max(1, self.agencies // divisor),
            max(1, self.actions // divisor),
            self.milestones // divisor,
        )

    def label(self) -> str:
        return f"{self.agencies}/{self.actions}/{self.milestones:,}"


class ScratchDatabases:
    """Fresh, empty databases of one backend; each dropped when the next is made or at close."""

    def __init__(self, backend: str, directory: Path) -> None:
        self.backend = backend
        self.directory = directory
        self._admin: sa.Engine | None = None
        self._made: list[tuple[str, sa.Engine]] = []

    def unavailable_reason(self) -> str | None:
        if self.backend == "sqlite":
            return None
        try:
            admin = self._admin_engine()
            with admin.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except Exception as exc:  # any failure to reach the server means: skip it
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            return f"{_safe_url(POSTGRES_ADMIN_URL)}: {first_line}"
        return None

    def _admin_engine(self) -> sa.Engine:
        if self._admin is None:
            self._admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        return self._admin

    def new(self) -> sa.Engine:
        """A new migrated database's engine."""
        name = f"rc_bench_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            url = f"sqlite:///{self.directory / (name + '.db')}"
        else:
            with self._admin_engine().connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
        engine = make_engine(url)
        upgrade(engine)
        self._made.append((name, engine))
        return engine

    def drop(self, engine: sa.Engine) -> None:
        for i, (name, made) in enumerate(self._made):
            if made is engine:
                del self._made[i]
                self._drop(name, made)
                return

    def _drop(self, name: str, engine: sa.Engine) -> None:
        engine.dispose()
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                (self.directory / f"{name}.db{suffix}").unlink(missing_ok=True)
            return
        with self._admin_engine().connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for name, engine in reversed(self._made):
            self._drop(name, engine)
        self._made.clear()
        if self._admin is not None:
            self._admin.dispose()


def _safe_url(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def import_into(engine: sa.Engine, text: str) -> ImportSummary:
    with Session(engine) as session:
        summary = import_report(session, text, NOW)
        session.commit()
    return summary


def compile_report(engine: sa.Engine, plan_id: int, year: int, fmt: Format) -> bytes:
    """What ``reportcycle compile`` does, minus writing the file: a new session, build, render."""
    with Session(engine) as session:
        doc = build_document(session, plan_id, year)
    return render(doc, fmt)


def load_document(engine: sa.Engine, plan_id: int, year: int) -> ReportDocument:
    with Session(engine) as session:
        return build_document(session, plan_id, year)


def baseline_render(doc: ReportDocument, fmt: Format) -> bytes | str:
    """The bare render of an already-loaded document: Jinja2 alone for the template formats,
    the renderer alone for docx and csv."""
    if fmt in (Format.DOCX, Format.CSV):
        return render(doc, fmt)
    return render_template(doc, fmt)


@contextmanager
def profiled(enabled: bool, what: str, top: int = 30) -> Iterator[None]:
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        print(f"\nProfile of {what} (top {top} by cumulative time):")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


@dataclass
class BackendResult:
    backend: str
    import_timing: Timing
    reimport_timing: Timing
    reimport_queries: QueryCounter
    import_queries: QueryCounter
    summary: ImportSummary
    compile_rows: list[list[object]]
    build_timing: Timing


def bench_backend(
    databases: ScratchDatabases,
    text: str,
    small_text: str,
    runs: int,
    formats: list[Format],
    profile: str | None,
    scale: int,
    pause_gc: bool = True,
) -> BackendResult:
    backend = databases.backend
    current: list[sa.Engine] = []

    def fresh_database() -> None:
        # The previous run's database goes; the last one stays for the compile benchmark.
        for engine in current:
            databases.drop(engine)
        current[:] = [databases.new()]

    print(f"[{backend}] import x{runs} ...", flush=True)
    import_timing, summary = time_runs(
        lambda: import_into(current[0], text), runs, setup=fresh_database, pause_gc=pause_gc
    )
    engine = current[0]

    # Importing the same document again changes nothing (idempotent), but reads and compares.
    print(f"[{backend}] import again (unchanged) x{runs} ...", flush=True)
    reimport_timing, again = time_runs(lambda: import_into(engine, text), runs, pause_gc=pause_gc)
    if again.objective_reports_written:
        print(f"[{backend}] note: re-import rewrote {again.objective_reports_written} reports")
    with count_queries(engine) as reimport_queries:
        import_into(engine, text)

    # One more import, counted (and profiled if asked), into its own database.
    counted = databases.new()
    with count_queries(counted) as import_queries, profiled(profile == "import", "import"):
        import_into(counted, text)
    databases.drop(counted)

    print(f"[{backend}] importing the 1/{scale} plan for the query count ...", flush=True)
    small_engine = databases.new()
    small_summary = import_into(small_engine, small_text)

    plan_id, year = summary.plan_id, summary.year
    doc = load_document(engine, plan_id, year)
    build_timing, _ = time_runs(
        lambda: load_document(engine, plan_id, year), runs, pause_gc=pause_gc
    )

    rows: list[list[object]] = []
    for fmt in formats:
        print(f"[{backend}] compile {fmt.value} x{runs} ...", flush=True)
        compile_timing, _ = time_runs(
            partial(compile_report, engine, plan_id, year, fmt), runs, pause_gc=pause_gc
        )
        baseline_timing, _ = time_runs(partial(baseline_render, doc, fmt), runs, pause_gc=pause_gc)
        with count_queries(engine) as full_queries:
            compile_report(engine, plan_id, year, fmt)
        with count_queries(small_engine) as small_queries:
            compile_report(small_engine, small_summary.plan_id, small_summary.year, fmt)
        replayed = replay_raw(engine, full_queries, runs)
        floor = replayed.median if replayed else None
        rows.append(
            [
                fmt.value,
                seconds(compile_timing.median),
                f"{seconds(compile_timing.min)} – {seconds(compile_timing.max)}",
                seconds(baseline_timing.median),
                f"{seconds(baseline_timing.min)} – {seconds(baseline_timing.max)}",
                f"{compile_timing.median / baseline_timing.median:.2f}x",
                seconds(floor) if floor is not None else "n/a",
                f"{(baseline_timing.median + floor) / baseline_timing.median:.2f}x"
                if floor is not None
                else "n/a",
                full_queries.count,
                small_queries.count,
            ]
        )
    if profile == "compile":
        with profiled(True, "compile txt (build_document + render)"):
            compile_report(engine, plan_id, year, Format.TXT)
    databases.drop(small_engine)
    return BackendResult(
        backend,
        import_timing,
        reimport_timing,
        reimport_queries,
        import_queries,
        summary,
        rows,
        build_timing,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_plan",
        description="Print import and compile times of a large generated plan (median of runs).",
    )
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--milestones", type=int, default=20000)
    parser.add_argument("--small", action="store_true", help="a quick run: 20/200/2,000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (default 5)")
    parser.add_argument(
        "--scale",
        type=int,
        default=10,
        help="the second plan for the SQL query count is this many times smaller (default 10)",
    )
    parser.add_argument(
        "--backend",
        action="append",
        choices=["sqlite", "postgresql"],
        help="repeatable; default both",
    )
    parser.add_argument(
        "--format", action="append", choices=[f.value for f in FORMATS], help="default all"
    )
    parser.add_argument(
        "--profile",
        choices=["import", "compile"],
        help="also print a cProfile of one import or one txt compile",
    )
    parser.add_argument(
        "--with-gc",
        action="store_true",
        help="leave the garbage collector running in timed calls (default: paused, as timeit)",
    )
    args = parser.parse_args(argv)

    size = (
        PlanSize(20, 200, 2000)
        if args.small
        else PlanSize(args.agencies, args.actions, args.milestones)
    )
    small = size.scaled(args.scale)
    formats = [Format(f) for f in args.format] if args.format else FORMATS
    backends = args.backend or ["sqlite", "postgresql"]

    text = generate_report_text(size.agencies, size.actions, size.milestones, args.seed, args.year)
    small_text = generate_report_text(
        small.agencies, small.actions, small.milestones, args.seed, args.year
    )
    print(
        f"Plan {size.label()} (agencies/actions/milestones), seed {args.seed}: "
        f"{len(text.encode('utf-8')):,} bytes, {text.count(chr(10)):,} lines; "
        f"query-count plan {small.label()}; {args.runs} runs each; Python "
        f"{sys.version.split()[0]}, SQLAlchemy {sa.__version__}; garbage collector "
        f"{'running' if args.with_gc else 'paused'} in timed calls",
        flush=True,
    )

    pause_gc = not args.with_gc
    parse_timing, doc = time_runs(lambda: parse_report(text), args.runs, pause_gc=pause_gc)
    milestones = sum(len(o.milestones) for o in doc.objectives())
    # A large live document would make every later garbage collection slower.
    del doc
    summary_rows: list[list[object]] = [
        [
            "parse_report",
            "-",
            seconds(parse_timing.median),
            seconds(parse_timing.min),
            seconds(parse_timing.max),
            "-",
        ]
    ]
    results: list[BackendResult] = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as directory:
        for backend in backends:
            databases = ScratchDatabases(backend, Path(directory))
            reason = databases.unavailable_reason()
            if reason:
                print(f"[{backend}] skipped: not reachable ({reason})", flush=True)
                continue
            try:
                result = bench_backend(
                    databases,
                    text,
                    small_text,
                    args.runs,
                    formats,
                    args.profile,
                    args.scale,
                    pause_gc,
                )
            finally:
                databases.close()
            results.append(result)
            timing = result.import_timing
            summary_rows.append(
                [
                    "import_report + commit",
                    backend,
                    seconds(timing.median),
                    seconds(timing.min),
                    seconds(timing.max),
                    f"{result.import_queries.count:,}",
                ]
            )
            again = result.reimport_timing
            summary_rows.append(
                [
                    "import again, unchanged",
                    backend,
                    seconds(again.median),
                    seconds(again.min),
                    seconds(again.max),
                    f"{result.reimport_queries.count:,}",
                ]
            )
            build = result.build_timing
            summary_rows.append(
                [
                    "build_document",
                    backend,
                    seconds(build.median),
                    seconds(build.min),
                    seconds(build.max),
                    "-",
                ]
            )

    print_table(
        ["step", "backend", "median", "min", "max", "SQL statements"],
        summary_rows,
        title=f"Parse and import ({size.label()})",
    )
    for result in results:
        counts = ", ".join(f"{k} {v:,}" for k, v in result.summary.counts().items())
        print(f"[{result.backend}] imported: {counts} ({milestones:,} milestones parsed)")
        print(f"[{result.backend}] most frequent statements during one import:")
        for statement, count in result.import_queries.by_table(5):
            print(f"  {count:>7,}  {statement}")
    for result in results:
        print_table(
            [
                "format",
                "compile median",
                "compile min – max",
                "baseline median",
                "baseline min – max",
                "ratio",
                "SQL floor",
                "floor ratio",
                f"SQL {size.label()}",
                f"SQL {small.label()}",
            ],
            result.compile_rows,
            title=(
                f"Compile on {result.backend}: build_document + render vs the bare render of "
                f"the loaded document (goal: ratio <= 1.5x, SQL count constant)"
            ),
        )
        print(
            "SQL floor: the compile's own statements replayed straight on the driver, every row "
            "fetched, nothing built from them; floor ratio = (baseline + SQL floor) / baseline, "
            "the least ratio any code that reads these rows through this driver can reach."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
