"""Shared helpers for the bench scripts: timing as min/median/max of several runs, counting the
SQL statements an engine executes, and printing a plain table.

Benchmarks print figures; they never assert them (speed is not a test)."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of several runs of the same thing."""

    runs: tuple[float, ...]

    @property
    def min(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def max(self) -> float:
        return max(self.runs)

    def summary(self) -> str:
        return f"{seconds(self.median)} (min {seconds(self.min)}, max {seconds(self.max)})"


def seconds(value: float) -> str:
    """A duration with a unit that keeps three significant figures readable."""
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def time_runs(
    fn: Callable[[], T],
    runs: int = 5,
    *,
    setup: Callable[[], object] | None = None,
    teardown: Callable[[], object] | None = None,
    pause_gc: bool = True,
) -> tuple[Timing, T]:
    """Run ``fn`` ``runs`` times; its timing and its last result.

    ``setup`` and ``teardown`` run around each call, outside the timed part (e.g. a fresh
    database per run). The garbage collector runs before each call and, with ``pause_gc``
    (as timeit does), is paused during it, so one run does not pay for the garbage of the
    one before; pass ``pause_gc=False`` to include the collector's pauses, as a real process
    would."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    durations: list[float] = []
    results: list[T] = []
    for _ in range(runs):
        if setup is not None:
            setup()
        gc.collect()
        if pause_gc:
            gc.disable()
        try:
            started = time.perf_counter()
            results.append(fn())
            durations.append(time.perf_counter() - started)
        finally:
            gc.enable()
            if teardown is not None:
                teardown()
        # Keep only the last result alive (a built document can be large).
        del results[:-1]
    return Timing(tuple(durations)), results[-1]


@dataclass
class QueryCounter:
    """The SQL statements an engine executed while counting (``executemany`` counts once)."""

    statements: list[str] = field(default_factory=list)
    # Each statement as the driver received it: (SQL, parameters, executemany), for replay_raw.
    calls: list[tuple[str, Any, bool]] = field(default_factory=list)
    # PostgreSQL: each sequence as it was when counting began (name, value, is_called), so a
    # replay of inserts is handed the same ids the later statements name.
    sequences: list[tuple[str, int, bool]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def by_table(self, top: int = 10) -> list[tuple[str, int]]:
        """The most frequent statements (first line, truncated), to spot a query per row."""
        counts: dict[str, int] = {}
        for statement in self.statements:
            key = " ".join(statement.split())[:120]
            counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items(), key=lambda item: -item[1])[:top]


@contextmanager
def count_queries(engine: sa.Engine) -> Iterator[QueryCounter]:
    """Count every statement sent to the database through ``engine`` inside the block."""
    counter = QueryCounter()
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            counter.sequences = [
                (f'"{schema}"."{name}"', last if last is not None else start, last is not None)
                for schema, name, last, start in connection.execute(
                    sa.text(
                        "SELECT schemaname, sequencename, last_value, start_value FROM pg_sequences"
                    )
                )
            ]

    def before_cursor_execute(
        _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, many: bool
    ) -> None:
        counter.statements.append(statement)
        counter.calls.append((statement, params, many))

    sa.event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield counter
    finally:
        sa.event.remove(engine, "before_cursor_execute", before_cursor_execute)


def replay_raw(
    engine: sa.Engine, counter: QueryCounter, runs: int = 5, *, reset_sequences: bool = False
) -> Timing | None:
    """The SQL floor of what ``counter`` counted: the same statements, with the same
    parameters, sent straight to the driver's cursor on one connection and every row fetched,
    inside a transaction rolled back after each run (so writes can be replayed too). No
    SQLAlchemy, no objects built from the rows: what the database and its driver alone cost.
    Any code that needs these rows pays at least this, so (baseline + floor) / baseline is the
    least ratio it can reach.

    Writes whose later statements name the ids the first run's inserts returned replay where
    the database hands out the same ids again: SQLite reuses the highest free rowid, and on
    PostgreSQL, with ``reset_sequences``, each sequence is set back (``setval``, which no
    rollback undoes) to where it was when counting began: only for a caller that has put the
    database back as it was then, or the replayed inserts would take the ids of the rows the
    counted run left. None when the replay fails all the same."""

    def reset(connection: Any) -> None:
        cursor = connection.cursor()
        try:
            for sequence, value, called in counter.sequences:
                cursor.execute("SELECT setval(%s::regclass, %s, %s)", (sequence, value, called))
        finally:
            cursor.close()

    def once(connection: Any) -> None:
        cursor = connection.cursor()
        try:
            for statement, params, many in counter.calls:
                if many and statement.startswith("COPY "):
                    with cursor.copy(statement) as copy:  # as the compile writes on PostgreSQL
                        for row in params:
                            copy.write_row(row)
                elif many:
                    cursor.executemany(statement, params)
                else:
                    cursor.execute(statement, params)
                if cursor.description is not None:
                    cursor.fetchall()
        finally:
            cursor.close()

    connection = engine.raw_connection()
    try:
        durations: list[float] = []
        for _ in range(runs):
            if reset_sequences:
                reset(connection)
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                once(connection)
                durations.append(time.perf_counter() - started)
            except engine.dialect.loaded_dbapi.Error as exc:
                print(f"  (SQL floor not measured: the replay failed: {str(exc).splitlines()[0]})")
                return None
            finally:
                gc.enable()
                connection.rollback()
    finally:
        connection.close()
    return Timing(tuple(durations))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> None:
    """A plain-text table: text left-aligned, numbers right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        all(_looks_numeric(row[i]) for row in cells) if cells else False
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(widths[i]) if numeric[i] else value.ljust(widths[i])
            for i, value in enumerate(values)
        ).rstrip()

    if title:
        print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print(line(row))


def _looks_numeric(text: str) -> bool:
    head = text.split(" ", 1)[0].rstrip("x%")
    try:
        float(head.replace(",", ""))
    except ValueError:
        return text in ("", "-", "n/a")
    return True
