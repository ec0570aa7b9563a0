"""Compiling a cycle of a large generated plan into a draft version, and the dashboard pages,
against bare baselines in the same run.

    python -m bench.bench_review                  # 200 agencies, 2,000 actions, 20,000 milestones
    python -m bench.bench_review --small          # 20 / 200 / 2,000: a quick run
    python -m bench.bench_review --backend sqlite --runs 3

Setup (not timed): the generated plan is imported as the 2021 report into a fresh database,
the 2022 cycle opened (``models.cycles.open_cycle``), and every agency's answer stored as a
submitted revision (every milestone answered: one in ten completed with an achievement line,
one in seven delayed a year with a revision, the rest on track; an achievement and an area for
further work per objective it leads); a quarter of the agencies do not answer, so their entries
are carried forward.

What it measures (median of ``--runs`` runs; min and max shown):

- compile: ``models.drafts.compile_cycle`` + commit on a working draft emptied before each run
  (every entry written, a new version snapshotted), against the baseline: the bare
  ``build_document`` + JSON dump of the same year (reading and serialising what compile writes);
- recompile of unchanged answers (nothing written, the latest version returned);
- the overview page (``GET /dashboard/cycles/{id}`` through the ASGI app, signed in) against the
  bare Jinja2 render of the same context, and the draft page likewise;
- SQL statements of each, for the plan and for a ``--scale``-th of it: the counts must not grow
  with the number of agencies or milestones.

The goal (issue 5): within 1.5x of the bare render, with query counts that do not grow. It
prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, delete, select

from bench.bench_plan import PlanSize, ScratchDatabases
from bench.common import (
    QueryCounter,
    count_queries,
    print_table,
    replay_raw,
    seconds,
    time_runs,
)
from bench.generate_plan import generate_report_text
from config.settings import Settings
from models import drafts, publishing
from models.accounts import add_account
from models.answers import (
    AchievementAnswer,
    Answer,
    FurtherWorkAnswer,
    MilestoneAnswer,
    MilestoneProgress,
)
from models.compiler import build_document
from models.cycles import open_cycle
from models.importer import import_report
from models.overview import STATUS_KEYS, STATUS_LABELS, overview, status_chart
from models.tables import (
    AnnualReport,
    AuditEvent,
    Cycle,
    EntryLink,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    ObjectiveReport,
    ObjectiveReportAgency,
    Plan,
    ReportEntry,
    ReportVersion,
    RequestState,
    RevisionKind,
    SubmissionRevision,
)
from templates import render as render_template
from web.app import create_app

IMPORTED = datetime(2022, 1, 20, 9, 0, tzinfo=UTC)
OPENED = datetime(2022, 11, 1, 20, 0, tzinfo=UTC)
NOW = datetime(2023, 3, 1, 20, 0, tzinfo=UTC)
EMAIL = "bench@example.govt.nz"
PASSWORD = "a benchmark password"


@dataclass
class Prepared:
    engine: sa.Engine
    cycle_id: int
    requests: int
    answered: int


def prepare(engine: sa.Engine, text: str) -> Prepared:
    """Import, open the 2022 cycle and store the agencies' submitted answers."""
    with Session(engine, expire_on_commit=False) as session:
        summary = import_report(session, text, IMPORTED)
        plan = session.get(Plan, summary.plan_id)
        assert plan is not None
        opened = open_cycle(session, plan, 2022, date(2023, 2, 28), OPENED, "bench")
        cycle = opened.cycle
        milestones: dict[int, list[Milestone]] = {}
        for milestone in session.exec(select(Milestone).where(Milestone.plan_id == plan.id)):
            if milestone.lead_agency_id is not None:
                milestones.setdefault(milestone.lead_agency_id, []).append(milestone)
        answered = 0
        for index, item in enumerate(opened.requests):
            request = item.request
            if index % 4 == 3:
                continue  # a quarter do not answer
            answered += 1
            mine = milestones.get(request.agency_id, [])
            answer = Answer()
            objectives: list[int] = []
            for number, milestone in enumerate(mine):
                assert milestone.id is not None
                if milestone.objective_id not in objectives:
                    objectives.append(milestone.objective_id)
                if number % 10 == 0:
                    answer.milestones.append(
                        MilestoneAnswer(
                            milestone_id=milestone.id,
                            progress=MilestoneProgress.COMPLETED,
                            completed_on=date(2022, 6, 1),
                            achievement=f"Completed: {milestone.text}",
                        )
                    )
                    milestone.status = MilestoneStatus.COMPLETED
                    milestone.completed_on = date(2022, 6, 1)
                elif number % 7 == 0:
                    answer.milestones.append(
                        MilestoneAnswer(
                            milestone_id=milestone.id,
                            progress=MilestoneProgress.DELAYED,
                            new_period="2024",
                            reason="Funding moved a year.",
                        )
                    )
                    session.add(
                        MilestoneRevision(
                            milestone_id=milestone.id,
                            sequence=9,
                            year=2022,
                            previous_due_text=milestone.due_text,
                            previous_start=milestone.due_start,
                            previous_end=milestone.due_end,
                            new_due_text="2024",
                            new_start=date(2024, 1, 1),
                            new_end=date(2024, 12, 31),
                            changed_by="bench",
                            changed_at=OPENED,
                        )
                    )
                    milestone.status = MilestoneStatus.DELAYED
                    milestone.due_text = "2024"
                    milestone.due_start, milestone.due_end = date(2024, 1, 1), date(2024, 12, 31)
                else:
                    answer.milestones.append(
                        MilestoneAnswer(
                            milestone_id=milestone.id, progress=MilestoneProgress.ON_TRACK
                        )
                    )
                session.add(milestone)
            for objective_id in objectives:
                answer.achievements.append(
                    AchievementAnswer(
                        objective_id=objective_id,
                        text=f"Agency {item.agency.acronym} delivered its 2022 programme – ka pai.",
                        link_title="Programme",
                        link_url="https://example.govt.nz/programme",
                    )
                )
                answer.further_work.append(
                    FurtherWorkAnswer(objective_id=objective_id, text="Evaluate the programme.")
                )
            session.add(
                SubmissionRevision(
                    update_request_id=request.id or 0,
                    number=1,
                    kind=RevisionKind.SUBMITTED,
                    content=answer.model_dump(mode="json"),
                    author=f"contact@{item.agency.acronym.lower()}.govt.nz",
                    created_at=OPENED,
                )
            )
            request.state = RequestState.SUBMITTED
            request.revision_number = 1
            session.add(request)
        add_account(session, EMAIL, PASSWORD, OPENED)
        session.commit()
        assert cycle.id is not None
        return Prepared(engine, cycle.id, len(opened.requests), answered)


def empty_the_draft(engine: sa.Engine, cycle_id: int) -> None:
    """Back to before the first compile: no 2022 report rows, no versions, no edit events."""
    with Session(engine) as session:
        cycle = session.get(Cycle, cycle_id)
        assert cycle is not None
        annual_ids = select(AnnualReport.id).where(
            AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year
        )
        report_ids = select(ObjectiveReport.id).where(
            col(ObjectiveReport.annual_report_id).in_(annual_ids)
        )
        entry_ids = select(ReportEntry.id).where(
            col(ReportEntry.objective_report_id).in_(report_ids)
        )
        session.exec(delete(EntryLink).where(col(EntryLink.entry_id).in_(entry_ids)))
        session.exec(
            delete(ReportEntry).where(col(ReportEntry.objective_report_id).in_(report_ids))
        )
        session.exec(
            delete(ObjectiveReportAgency).where(
                col(ObjectiveReportAgency.objective_report_id).in_(report_ids)
            )
        )
        session.exec(delete(ObjectiveReport).where(col(ObjectiveReport.id).in_(report_ids)))
        session.exec(
            delete(ReportVersion).where(col(ReportVersion.annual_report_id).in_(annual_ids))
        )
        session.exec(
            delete(AuditEvent).where(
                col(AuditEvent.cycle_id) == cycle_id, col(AuditEvent.action) == drafts.COMPILED
            )
        )
        session.commit()


def compile_once(engine: sa.Engine, cycle_id: int) -> ReportVersion:
    with Session(engine, expire_on_commit=False) as session:
        cycle = session.get(Cycle, cycle_id)
        assert cycle is not None
        version = drafts.compile_cycle(session, cycle, NOW, "bench")
        session.commit()
        return version


def snapshot_baseline(engine: sa.Engine, cycle_id: int) -> str:
    with Session(engine) as session:
        cycle = session.get(Cycle, cycle_id)
        assert cycle is not None
        return build_document(session, cycle.plan_id, cycle.year).model_dump_json()


def signed_in_client(engine: sa.Engine, data_dir: Path) -> TestClient:
    settings = Settings(secret_key="b" * 48, data_dir=data_dir, broker_url=None)
    client = TestClient(create_app(settings, engine, clock=lambda: NOW), base_url="http://bench")
    page = client.get("/dashboard/signin").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = client.post(
        "/dashboard/signin",
        data={"csrf": csrf, "email": EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def overview_context(engine: sa.Engine, cycle_id: int) -> dict[str, Any]:
    with Session(engine, expire_on_commit=False) as session:
        cycle = session.get(Cycle, cycle_id)
        assert cycle is not None
        view = overview(session, cycle)
        return {
            "csrf": "x" * 43,
            "coordinator": EMAIL,
            "flash": None,
            "view": view,
            "notes": drafts.review_notes(session, cycle, entries=False),
            "signoffs": {
                s.request_id: s for s in publishing.section_signoffs(session, cycle).values()
            },
            "chart": status_chart(view.objectives),
            "stale": drafts.submitted_since_compile(session, cycle) if view.latest else None,
            "status_keys": STATUS_KEYS,
            "status_labels": STATUS_LABELS,
        }


def draft_context(engine: sa.Engine, cycle_id: int) -> dict[str, Any]:
    from web.dashboard_routes import _filters, _signoff_list

    _filters()
    with Session(engine, expire_on_commit=False) as session:
        cycle = session.get(Cycle, cycle_id)
        assert cycle is not None
        plan = session.get(Plan, cycle.plan_id)
        versions = drafts.versions(session, cycle)
        return {
            "csrf": "x" * 43,
            "coordinator": EMAIL,
            "flash": None,
            "cycle": cycle,
            "plan": plan,
            "versions": versions,
            "shown": versions[-1],
            "doc": drafts.version_document(versions[-1]),
            "editable": True,
            "stale": drafts.submitted_since_compile(session, cycle),
            "notes": drafts.review_notes(session, cycle),
            "signoffs": _signoff_list(session, cycle),
        }


def get(client: TestClient, path: str) -> int:
    response = client.get(path)
    assert response.status_code == 200, response.text[:500]
    return len(response.content)


@dataclass
class Measured:
    name: str
    median: float
    low: float
    high: float
    baseline: float | None
    queries: int
    small_queries: int
    # The step's statements replayed straight on the driver (bench.common.replay_raw).
    floor: float | None


def measure(
    engine: sa.Engine,
    name: str,
    runs: int,
    fn: Callable[[], object],
    baseline: Callable[[], object] | None,
    count: Callable[[], QueryCounter],
    small_count: Callable[[], QueryCounter],
    setup: Callable[[], object] | None = None,
) -> Measured:
    print(f"  {name} x{runs} ...", flush=True)
    timing, _ = time_runs(fn, runs, setup=setup)
    base = time_runs(baseline, runs)[0].median if baseline else None
    counted = count()
    if setup is not None:
        setup()  # the replay starts from the state the counted run started from
    replayed = replay_raw(engine, counted, runs, reset_sequences=setup is not None)
    floor = replayed.median if replayed else None
    return Measured(
        name,
        timing.median,
        timing.min,
        timing.max,
        base,
        counted.count,
        small_count().count,
        floor,
    )


def bench_backend(
    databases: ScratchDatabases, text: str, small_text: str, runs: int
) -> list[Measured]:
    backend = databases.backend
    print(f"[{backend}] preparing the plan and its answers ...", flush=True)
    big = prepare(databases.new(), text)
    small = prepare(databases.new(), small_text)
    print(
        f"[{backend}] {big.requests} requests, {big.answered} answered "
        f"(small plan: {small.requests}, {small.answered})",
        flush=True,
    )

    def counted(
        prepared: Prepared, fn: Callable[[], object], before: Callable[[], object] | None = None
    ) -> Callable[[], QueryCounter]:
        def run() -> QueryCounter:
            if before:
                before()
            with count_queries(prepared.engine) as counter:
                fn()
            return counter

        return run

    results: list[Measured] = []
    results.append(
        measure(
            big.engine,
            "compile_cycle (first: every entry written) + commit",
            runs,
            lambda: compile_once(big.engine, big.cycle_id),
            lambda: snapshot_baseline(big.engine, big.cycle_id),
            counted(
                big,
                lambda: compile_once(big.engine, big.cycle_id),
                lambda: empty_the_draft(big.engine, big.cycle_id),
            ),
            counted(
                small,
                lambda: compile_once(small.engine, small.cycle_id),
                lambda: empty_the_draft(small.engine, small.cycle_id),
            ),
            setup=lambda: empty_the_draft(big.engine, big.cycle_id),
        )
    )
    results.append(
        measure(
            big.engine,
            "compile_cycle (answers unchanged) + commit",
            runs,
            lambda: compile_once(big.engine, big.cycle_id),
            lambda: snapshot_baseline(big.engine, big.cycle_id),
            counted(big, lambda: compile_once(big.engine, big.cycle_id)),
            counted(small, lambda: compile_once(small.engine, small.cycle_id)),
        )
    )
    with tempfile.TemporaryDirectory(prefix="rc-bench-web-") as directory:
        client = signed_in_client(big.engine, Path(directory) / "big")
        small_client = signed_in_client(small.engine, Path(directory) / "small")
        for name, path, template, context in (
            ("overview page", "/dashboard/cycles/{}", "dashboard/overview.html", overview_context),
            ("draft page", "/dashboard/cycles/{}/draft", "dashboard/draft.html", draft_context),
        ):
            bare = context(big.engine, big.cycle_id)
            results.append(
                measure(
                    big.engine,
                    f"GET {name} (signed in)",
                    runs,
                    lambda p=path: get(client, p.format(big.cycle_id)),  # type: ignore[misc]
                    lambda t=template, c=bare: render_template(t, **c),  # type: ignore[misc]
                    counted(big, lambda p=path: get(client, p.format(big.cycle_id))),  # type: ignore[misc]
                    counted(small, lambda p=path: get(small_client, p.format(small.cycle_id))),  # type: ignore[misc]
                )
            )
        client.close()
        small_client.close()
    databases.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_review",
        description="Print compile and dashboard times of a cycle of a large generated plan.",
    )
    parser.add_argument("--agencies", type=int, default=200)
    parser.add_argument("--actions", type=int, default=2000)
    parser.add_argument("--milestones", type=int, default=20000)
    parser.add_argument("--small", action="store_true", help="a quick run: 20/200/2,000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument(
        "--backend", action="append", choices=["sqlite", "postgresql"], help="default both"
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
    with tempfile.TemporaryDirectory(prefix="rc-bench-") as directory:
        for backend in args.backend or ["sqlite", "postgresql"]:
            databases = ScratchDatabases(backend, Path(directory))
            reason = databases.unavailable_reason()
            if reason:
                print(f"[{backend}] skipped: not reachable ({reason})", flush=True)
                continue
            try:
                results = bench_backend(databases, text, small_text, args.runs)
            finally:
                databases.close()
            print_table(
                [
                    "step",
                    "median",
                    "min – max",
                    "baseline",
                    "ratio",
                    "SQL floor",
                    "floor ratio",
                    f"SQL {size.label()}",
                    f"SQL {small.label()}",
                ],
                [
                    [
                        r.name,
                        seconds(r.median),
                        f"{seconds(r.low)} – {seconds(r.high)}",
                        seconds(r.baseline) if r.baseline else "-",
                        f"{r.median / r.baseline:.2f}x" if r.baseline else "-",
                        seconds(r.floor) if r.floor is not None else "n/a",
                        f"{(r.baseline + r.floor) / r.baseline:.2f}x"
                        if r.baseline and r.floor is not None
                        else "-",
                        r.queries,
                        r.small_queries,
                    ]
                    for r in results
                ],
                title=(
                    f"Review on {backend}: baselines are build_document + JSON (compile) and the "
                    "bare Jinja2 render of the page's context (pages); goal ratio <= 1.5x, SQL "
                    "count constant"
                ),
            )
            print(
                "SQL floor: the step's own statements replayed straight on the driver, every "
                "row fetched, nothing built from them (writes rolled back); floor ratio = "
                "(baseline + SQL floor) / baseline, the least ratio any code issuing these "
                "statements through this driver can reach."
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
