"""The sweep over a large generated plan: time and SQL statements, against the bare select of
the due rows.

    .venv/bin/python -m bench.bench_sweep            # 200 / 2,000 / 20,000, 5 runs each
    .venv/bin/python -m bench.bench_sweep --small    # 20 / 200 / 2,000
    .venv/bin/python -m bench.bench_sweep --backend sqlite --runs 3

Setup per backend: import the generated 2021 plan, give every agency a contact (and one
coordinator), open the 2022 cycle on 1 February 2022 (deadline 2 December 2022), mark its
update requests sent, as a worker would have within seconds (``--pending-requests`` leaves
them pending: every sweep then also looks up their messages), and run the first sweep (it
flags what slipped in 2021). Then each scenario runs ``sweep`` in a new
session and rolls it back, so every run sees the same state:

- ``quiet day``: 2 March 2022, the day after the 30-day reminders of the March milestones
  were claimed (they are, before the scenario); nothing is due.
- ``reminder day``: 1 March 2022: 30-day reminders of the March milestones, one digest per
  agency, and the milestones of February flagged slipped.
- ``deadline day``: 18 November 2022 with no sweep since March: deadline reminders to every
  agency, catch-up reminders, thousands of milestones flagged slipped.

The baseline is the bare SQL select of the same scenario's due rows (the milestone reminder
candidates, the update requests not submitted, the milestones to flag), fetched without any
processing. The goal of issue 3 is the sweep within 3x of its select, and a statement count
that does not grow with the plan (compare the full and the 1/``--scale`` plan).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, select

from bench.bench_plan import PlanSize, ScratchDatabases
from bench.common import Timing, count_queries, print_table, seconds, time_runs
from bench.generate_plan import generate_report_text
from config.settings import Settings
from models.cycles import open_cycle
from models.importer import import_report
from models.sweep import SweepResult, sweep
from models.tables import (
    Agency,
    Contact,
    DeliveryState,
    Notification,
    Plan,
    RequestState,
    UpdateRequest,
)

NZ = ZoneInfo("Pacific/Auckland")
DEADLINE = date(2022, 12, 2)


def local(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, time(hour), NZ).astimezone(UTC)


OPENED = local(date(2022, 2, 1))


@dataclass(frozen=True)
class Scenario:
    name: str
    now: datetime


SCENARIOS = (
    Scenario("reminder day", local(date(2022, 3, 1))),
    Scenario("deadline day", local(date(2022, 11, 18))),
    # Measured last: 1 March's sweep is committed first, so nothing is due on 2 March.
    Scenario("quiet day", local(date(2022, 3, 2))),
)


@functools.cache
def settings() -> Settings:
    # Built once, as the service's cached settings are: reading the environment is not the
    # sweep's work.
    return Settings(base_url="https://reports.example.govt.nz")


def prepare(engine: sa.Engine, text: str, *, delivered: bool = True) -> None:
    """Import, contacts, the 2022 cycle (its update requests sent, unless not
    ``delivered``), and the first sweep."""
    with Session(engine, expire_on_commit=False) as session:
        summary = import_report(session, text, datetime(2022, 1, 20, tzinfo=UTC))
        agencies = session.exec(select(Agency)).all()
        for agency in agencies:
            session.add(
                Contact(agency_id=agency.id or 0, email=f"{agency.acronym.lower()}@x.govt.nz")
            )
        session.add(
            Contact(agency_id=agencies[0].id or 0, email="coord@x.govt.nz", is_coordinator=True)
        )
        session.flush()
        plan = session.get(Plan, summary.plan_id)
        assert plan is not None
        open_cycle(session, plan, 2022, DEADLINE, OPENED, "bench")
        if delivered:
            # The update requests went out when the cycle opened, as in service (a worker
            # sends them within seconds); left pending, every sweep would look for them.
            session.exec(sa.update(Notification).values(state=DeliveryState.SENT, sent_at=OPENED))
            session.exec(sa.update(UpdateRequest).values(state=RequestState.SENT, sent_at=OPENED))
        session.commit()
    with Session(engine) as session:
        sweep(session, local(date(2022, 2, 1), 10), settings())
        session.commit()
    if engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum would have them for a database in service.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


def run_sweep(engine: sa.Engine, now: datetime) -> SweepResult:
    with Session(engine) as session:
        result = sweep(session, now, settings())
        session.rollback()
    return result


def commit_march(engine: sa.Engine) -> None:
    with Session(engine) as session:
        sweep(session, local(date(2022, 3, 1)), settings())
        session.commit()


def bare_select(engine: sa.Engine, now: datetime) -> int:
    """The due rows of ``now`` as plain SQL, fetched and dropped: the baseline."""
    today = now.astimezone(NZ).date()
    with engine.connect() as connection:
        reminders = connection.execute(
            sa.text(
                "SELECT m.id, m.lead_agency_id, m.due_end FROM milestone m "
                "JOIN cycle c ON c.plan_id = m.plan_id AND c.state = 'open' "
                "JOIN updaterequest r ON r.cycle_id = c.id AND r.agency_id = m.lead_agency_id "
                "WHERE m.due_end BETWEEN :today AND :horizon "
                "AND m.status IN ('planned', 'on_track', 'delayed') "
                "AND r.state NOT IN ('submitted', 'approved')"
            ),
            {"today": today, "horizon": today + timedelta(days=30)},
        ).all()
        requests = connection.execute(
            sa.text(
                "SELECT r.id, r.agency_id, c.deadline FROM updaterequest r "
                "JOIN cycle c ON c.id = r.cycle_id AND c.state = 'open' "
                "WHERE r.state IN ('pending', 'sent', 'opened', 'draft')"
            )
        ).all()
        slipping = connection.execute(
            sa.text(
                "SELECT m.id, m.lead_agency_id, m.due_end FROM milestone m "
                "WHERE m.due_end < :today AND m.slipped_on IS NULL "
                "AND m.status IN ('planned', 'on_track', 'delayed')"
            ),
            {"today": today},
        ).all()
    return len(reminders) + len(requests) + len(slipping)


@dataclass(frozen=True)
class Measured:
    sweep: Timing
    result: SweepResult
    baseline: Timing
    due_rows: int
    statements: int


def measure(engine: sa.Engine, scenario: Scenario, runs: int) -> Measured:
    timing, result = time_runs(lambda: run_sweep(engine, scenario.now), runs)
    baseline, due_rows = time_runs(lambda: bare_select(engine, scenario.now), runs)
    with count_queries(engine) as counter:
        run_sweep(engine, scenario.now)
    return Measured(timing, result, baseline, due_rows, counter.count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_sweep",
        description="Print sweep times over a large generated plan against a bare select.",
    )
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--milestones", type=int, default=20000)
    parser.add_argument("--small", action="store_true", help="a quick run: 20/200/2,000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=10, help="the smaller plan: 1/scale")
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument(
        "--pending-requests",
        action="store_true",
        help="leave the update requests unsent (every sweep then looks their messages up)",
    )
    args = parser.parse_args(argv)

    size = (
        PlanSize(20, 200, 2000)
        if args.small
        else PlanSize(args.agencies, args.actions, args.milestones)
    )
    small = size.scaled(args.scale)
    text = generate_report_text(size.agencies, size.actions, size.milestones, args.seed, 2021)
    small_text = generate_report_text(
        small.agencies, small.actions, small.milestones, args.seed, 2021
    )
    print(
        f"Plan {size.label()} (agencies/actions/milestones), query-count plan {small.label()}; "
        f"{args.runs} runs each; Python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}",
        flush=True,
    )
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="rc-bench-sweep-") as directory:
        for backend in args.backend or ["sqlite", "postgresql"]:
            databases = ScratchDatabases(backend, Path(directory))
            reason = databases.unavailable_reason()
            if reason:
                print(f"[{backend}] skipped: not reachable ({reason})", flush=True)
                continue
            try:
                print(f"[{backend}] importing and opening the cycle ...", flush=True)
                engine = databases.new()
                prepare(engine, text, delivered=not args.pending_requests)
                small_engine = databases.new()
                prepare(small_engine, small_text, delivered=not args.pending_requests)
                for scenario in SCENARIOS:
                    if scenario.name == "quiet day":
                        commit_march(engine)
                        commit_march(small_engine)
                    print(f"[{backend}] {scenario.name} x{args.runs} ...", flush=True)
                    full = measure(engine, scenario, args.runs)
                    scaled = measure(small_engine, scenario, 1)
                    rows.append(
                        [
                            backend,
                            scenario.name,
                            seconds(full.sweep.median),
                            seconds(full.baseline.median),
                            f"{full.sweep.median / full.baseline.median:.1f}x",
                            full.due_rows,
                            full.result.messages,
                            len(full.result.slipped_milestone_ids),
                            full.statements,
                            scaled.statements,
                        ]
                    )
            finally:
                databases.close()
    print_table(
        [
            "backend",
            "scenario",
            "sweep",
            "bare select",
            "ratio",
            "due rows",
            "messages",
            "slipped",
            "SQL",
            f"SQL (1/{args.scale})",
        ],
        rows,
        title="Sweep (median) against the bare select of its due rows",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
