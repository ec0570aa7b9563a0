"""Writing drafts as the year's ``AnnualReport`` rows (objective reports, agencies, entries,
links).

Separate because it is the bulk-SQL part (one executemany per table, driver-level inserts)
whose cost matters on a large plan; the rest of the package never writes these rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from models.drafts.working import ObjectiveDraft, load_drafts, raw
from models.tables import (
    AnnualReport,
    Cycle,
    EntryLink,
    ObjectiveReport,
    ObjectiveReportAgency,
    ReportEntry,
    Section,
)

REPORT_TIMEZONE = "Pacific/Auckland"


# --- writing the working draft ----------------------------------------------------------------


def annual_report(session: Session, cycle: Cycle, now: datetime) -> AnnualReport:
    annual = session.exec(
        select(AnnualReport).where(
            AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year
        )
    ).first()
    if annual is None:
        annual = AnnualReport(plan_id=cycle.plan_id, year=cycle.year, created_at=now)
        session.add(annual)
        session.flush()
    return annual


def table(model: type[Any]) -> sa.Table:
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def write_drafts(
    session: Session,
    annual: AnnualReport,
    drafts: Mapping[int, ObjectiveDraft],
    now: datetime,
    actor: str,
    *,
    stored: Mapping[int, ObjectiveDraft] | None = None,
) -> int:
    """Store the drafts as the annual report's rows; objectives whose draft is unchanged keep
    their rows (and entry ids). Returns how many objective reports were written; every
    entry of ``drafts`` gets the id of its row.

    Bulk statements (one executemany per table), so the number of queries does not grow with
    the plan."""
    return write_drafts_with_ids(session, annual, drafts, now, actor, stored=stored)[0]


_ENTRY_COLUMNS = (
    "objective_report_id",
    "section",
    "position",
    "style",
    "text",
    "milestone_id",
    "agency_id",
    "origin",
    "not_updated",
    "updated_by",
    "updated_at",
)


def write_drafts_with_ids(
    session: Session,
    annual: AnnualReport,
    drafts: Mapping[int, ObjectiveDraft],
    now: datetime,
    actor: str,
    *,
    stored: Mapping[int, ObjectiveDraft] | None = None,
    unchanged: set[int] | None = None,
    kept_ids: Mapping[int, Mapping[Section, list[int]]] | None = None,
    digests: Mapping[int, str | None] | None = None,
) -> tuple[int, dict[int, int]]:
    """``write_drafts``, with the objective report ids by objective id; ``unchanged``: the
    objectives whose draft equals the stored one, when the caller has compared them (by
    their rows in ``stored``, or by digest: then their entry ids are in ``kept_ids``).
    ``digests``: the stored digests by objective, when the caller has read them: an unchanged
    draft compared by its rows gets its digest recorded where it is missing or stale."""
    assert annual.id is not None
    if stored is None:
        stored = load_drafts(session, annual.id)
    session.flush()
    report_ids: dict[int, int] = {
        objective_id: report_id
        for report_id, objective_id in session.execute(
            sa.select(col(ObjectiveReport.id), col(ObjectiveReport.objective_id)).where(
                col(ObjectiveReport.annual_report_id) == annual.id
            )
        ).all()
    }
    gone = [oid for oid in report_ids if oid not in drafts]
    if unchanged is None:
        unchanged = {
            oid
            for oid, draft in drafts.items()
            if oid in stored and stored[oid].comparable() == draft.comparable()
        }
    changed = [oid for oid in drafts if oid not in unchanged]
    # Unchanged drafts keep their rows: their entries are the stored ones, in the same order.
    for objective_id in unchanged:
        known = stored.get(objective_id)
        for section in Section:
            kept = (
                [row.id for row in known.entries[section]]
                if known is not None
                else (kept_ids or {})[objective_id].get(section, [])
            )
            for entry, entry_id in zip(drafts[objective_id].entries[section], kept, strict=True):
                entry.id = entry_id
    # What each written (or newly compared) report's rows hold, for the next compile.
    recorded = {objective_id: drafts[objective_id].digest() for objective_id in changed}
    if digests is not None:
        for objective_id in unchanged:
            if objective_id in stored:
                digest = drafts[objective_id].digest()
                if digest != digests.get(objective_id):
                    recorded[objective_id] = digest
    _clear_ids(session, [report_ids[o] for o in [*gone, *changed] if o in report_ids])
    if gone:
        session.execute(
            sa.delete(table(ObjectiveReport)).where(
                table(ObjectiveReport).c.id.in_([report_ids[o] for o in gone])
            )
        )
        for objective_id in gone:
            del report_ids[objective_id]
    # The kept reports' intro and digest, in one statement whatever their number.
    kept_reports = [
        {"b_id": report_ids[o], "b_intro": drafts[o].intro, "b_digest": digest}
        for o, digest in recorded.items()
        if o in report_ids
    ]
    if kept_reports:
        reports = table(ObjectiveReport)
        session.connection().execute(
            reports.update()
            .where(reports.c.id == sa.bindparam("b_id"))
            .values(intro=sa.bindparam("b_intro"), draft_digest=sa.bindparam("b_digest")),
            kept_reports,
        )
    new = [o for o in changed if o not in report_ids]
    if new:
        session.execute(
            sa.insert(table(ObjectiveReport)),
            [
                {
                    "annual_report_id": annual.id,
                    "objective_id": o,
                    "intro": drafts[o].intro,
                    "draft_digest": recorded[o],
                }
                for o in new
            ],
        )
        for report_id, objective_id in session.execute(
            sa.select(col(ObjectiveReport.id), col(ObjectiveReport.objective_id)).where(
                col(ObjectiveReport.annual_report_id) == annual.id,
                col(ObjectiveReport.objective_id).in_(new),
            )
        ).all():
            report_ids[objective_id] = report_id
    agency_rows: list[dict[str, Any]] = []
    entry_rows: list[tuple[Any, ...]] = []
    for objective_id in changed:
        report_id = report_ids[objective_id]
        draft = drafts[objective_id]
        agency_rows.extend(
            {
                "objective_report_id": report_id,
                "agency_id": agency_id,
                "position": position,
                "name_as_written": name,
            }
            for position, (agency_id, name) in enumerate(draft.active)
        )
        for section in Section:
            section_value = section.value
            for position, entry in enumerate(draft.entries[section]):
                entry_rows.append(
                    (
                        report_id,
                        section_value,
                        position,
                        entry.style.value,
                        entry.text,
                        entry.milestone_id,
                        entry.agency_id,
                        entry.origin.value,
                        entry.not_updated,
                        entry.updated_by or actor,
                        entry.updated_at or now,
                    )
                )
    if agency_rows:
        session.execute(sa.insert(table(ObjectiveReportAgency)), agency_rows)
    if entry_rows:
        _insert_many(session, table(ReportEntry), _ENTRY_COLUMNS, entry_rows)
        # The new rows' ids, for the entries (the document names them) and their links.
        written = [report_ids[o] for o in changed]
        ids = {
            (report_id, section, position): entry_id
            for entry_id, report_id, section, position in session.connection()
            .execute(
                sa.select(
                    col(ReportEntry.id),
                    col(ReportEntry.objective_report_id),
                    raw(col(ReportEntry.section)),
                    col(ReportEntry.position),
                ).where(col(ReportEntry.objective_report_id).in_(written))
            )
            .all()  # one fetch (iterating the result fetches row by row on PostgreSQL)
        }
        link_rows: list[dict[str, Any]] = []
        for objective_id in changed:
            report_id = report_ids[objective_id]
            for section, entries in drafts[objective_id].entries.items():
                for position, entry in enumerate(entries):
                    entry.id = entry_id = ids[(report_id, section.value, position)]
                    link_rows.extend(
                        {
                            "entry_id": entry_id,
                            "position": index,
                            "title": link.title,
                            "url": link.url,
                            "site": link.site,
                        }
                        for index, link in enumerate(entry.links)
                    )
        if link_rows:
            session.execute(sa.insert(table(EntryLink)), link_rows)
    if changed or gone or annual.last_updated is None:
        annual.last_updated = now.astimezone(ZoneInfo(REPORT_TIMEZONE)).date()
        session.add(annual)
    session.flush()
    session.expire_all()
    return len(changed) + len(gone), report_ids


def _insert_many(
    session: Session, table: sa.Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """One executemany of plain tuples: what ``session.execute(insert, dicts)`` sends, without
    its per-row parameter handling (most of the cost of writing 20,000 entries). Values are
    given as stored (enum values, not members); columns whose type converts a value on the
    way in (timestamps on SQLite) still do."""
    connection = session.connection()
    dialect = connection.dialect
    processors = [
        (index, _memoized(processor))
        for index, name in enumerate(names)
        if not isinstance(table.c[name].type, sa.Enum)
        and (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if processors:
        rows = [_processed(row, processors) for row in rows]
    quote = dialect.identifier_preparer.quote
    # Only the table's own column names go into the statement (quoted); values are parameters.
    columns = ", ".join(quote(name) for name in names)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":  # psycopg 3's COPY API
        _copy_rows(connection, f"COPY {quote(table.name)} ({columns}) FROM STDIN", rows)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join(mark for _ in names)
    statement = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})"  # noqa: S608
    connection.exec_driver_sql(
        statement,
        rows,
    )


def _copy_rows(connection: sa.Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: the rows through COPY, in the session's transaction. psycopg's executemany
    costs ~40 µs of Python a row (each row's parameters dumped, queued and answered in its
    pipeline): 0.95 s for a first compile's 20,945 entries, where COPY streams them in about a
    tenth of that. COPY does not pass through SQLAlchemy's statement events, so the statement is
    announced to them by hand: statement logs and counters still see every write."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    if connection.dispatch.before_cursor_execute:
        # As SQLAlchemy announces an executemany (there is no execution context here).
        connection.dispatch.before_cursor_execute(connection, cursor, statement, rows, None, True)
    try:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _memoized(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``processor`` remembering each value it converted, for this one write. A draft's
    20,000 entries share a few dozen timestamps (the compile's, each answer's), and turning
    one into SQLite's text costs 3–4 µs: most of the conversion time, for the same few
    values. (Bind processors are pure functions of the value.) The key holds the value's
    tzinfo too: equal instants in different zones are equal datetimes, but SQLite's
    processor writes their wall-clock times, which differ."""
    seen: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        key = (value, getattr(value, "tzinfo", None))
        try:
            return seen[key]
        except KeyError:
            converted = seen[key] = processor(value)
            return converted
        except TypeError:  # not hashable: nothing to remember it by
            return processor(value)

    return convert


def _processed(
    row: tuple[Any, ...], processors: Sequence[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    values = list(row)
    for index, processor in processors:
        if values[index] is not None:
            values[index] = processor(values[index])
    return tuple(values)


def _clear_ids(session: Session, ids: list[int]) -> None:
    if not ids:
        return
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(ids))
    session.exec(delete(EntryLink).where(col(EntryLink.entry_id).in_(entry_ids)))
    session.exec(delete(ReportEntry).where(col(ReportEntry.objective_report_id).in_(ids)))
    session.exec(
        delete(ObjectiveReportAgency).where(col(ObjectiveReportAgency.objective_report_id).in_(ids))
    )
