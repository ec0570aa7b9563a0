"""The working draft's numbered versions: listing and finding them, reading a version's
document (with a small per-process cache), snapshotting the draft as a new version, and
the per-cycle lock every review step takes.

Separate because versions are what the rest of the application reads (pages, downloads,
publishing); the draft rows are only how a version gets made.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import defer
from sqlmodel import Session, col, select

from models.compiler import EntryRow, ReportRows, build_document
from models.document import Link, ReportDocument
from models.drafts.building import Plan
from models.drafts.storage import table
from models.drafts.working import DraftError, ObjectiveDraft
from models.tables import (
    AnnualReport,
    Cycle,
    ReportVersion,
    Section,
    VersionState,
)

# --- versions ---------------------------------------------------------------------------------


def versions(session: Session, cycle: Cycle) -> list[ReportVersion]:
    """The cycle year's report versions, oldest first."""
    # The content (the whole report as JSON) loads only when a version is opened.
    return list(
        session.exec(
            select(ReportVersion)
            .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
            .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
            .order_by(col(ReportVersion.number))
            .options(defer(ReportVersion.content))  # type: ignore[arg-type]
        )
    )


def latest_version(session: Session, cycle: Cycle) -> ReportVersion | None:
    return session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(AnnualReport.plan_id == cycle.plan_id, AnnualReport.year == cycle.year)
        .order_by(col(ReportVersion.number).desc())
        .limit(1)
        .options(defer(ReportVersion.content))  # type: ignore[arg-type]
    ).first()


def find_version(session: Session, cycle: Cycle, number: int) -> ReportVersion:
    version = session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(
            AnnualReport.plan_id == cycle.plan_id,
            AnnualReport.year == cycle.year,
            ReportVersion.number == number,
        )
    ).first()
    if version is None:
        raise DraftError(f"the {cycle.year} report has no version {number}")
    return version


def version_document(version: ReportVersion) -> ReportDocument:
    """The document a version holds. Read it, never change it: the one of a stored version
    is shared (see ``_DocumentCache``)."""
    state = sa.inspect(version)
    if "content" in state.unloaded and state.session is not None and version.id is not None:
        session = state.session
        key = (str(session.get_bind().engine.url), version.id, version.checksum)
        cached = _documents.get(key)
        if cached is not None:
            return cached
        # Not loaded yet (``versions`` defers it): the stored JSON text validated as it is,
        # rather than decoded into Python objects first and those validated (a large
        # report's content is several megabytes).
        text = session.execute(
            sa.select(sa.cast(col(ReportVersion.content), sa.Text())).where(
                col(ReportVersion.id) == version.id
            )
        ).scalar_one()
        document = ReportDocument.model_validate_json(text)
        _documents.put(key, document)
        return document
    return ReportDocument.model_validate(version.content)


class _DocumentCache:
    """The last few versions' documents, per process. A stored version never changes (its
    content and checksum are frozen), while a coordinator opens the same one again and again
    (the draft page, its downloads, the redlines); validating a large report's JSON is a good
    share of each of those pages. The key holds the database, the version and its checksum,
    so another database, or a row whose checksum differs, is never served this entry."""

    SIZE = 3

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, str], ReportDocument] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, str]) -> ReportDocument | None:
        with self._lock:
            document = self._entries.pop(key, None)
            if document is not None:
                self._entries[key] = document  # the most recently used last
            return document

    def put(self, key: tuple[str, int, str], document: ReportDocument) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._entries[key] = document
            while len(self._entries) > self.SIZE:
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_documents = _DocumentCache()


def snapshot(
    session: Session,
    cycle: Cycle,
    annual: AnnualReport,
    now: datetime,
    actor: str,
    *,
    rows: ReportRows | None = None,
) -> tuple[ReportVersion, bool]:
    """The working draft as a new numbered draft version; the latest version instead when
    the draft has not changed since it (returned with False). ``rows``: the report's rows as
    just written (see ``build_document``)."""
    assert annual.id is not None
    doc = build_document(session, cycle.plan_id, cycle.year, rows=rows)
    canonical = doc.canonical_json()
    checksum = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    latest = latest_version(session, cycle)
    if latest is not None and latest.checksum == checksum:
        return latest, False
    # The content is stored as the canonical JSON already made for the checksum (the same
    # document as ``model_dump``, without converting and serialising it a second time).
    content: sa.ColumnElement[Any] = sa.literal(canonical, sa.Text())
    if session.get_bind().dialect.name != "sqlite":
        content = sa.cast(content, table(ReportVersion).c.content.type)
    version_id = session.execute(
        sa.insert(table(ReportVersion))
        .values(
            annual_report_id=annual.id,
            number=(latest.number + 1) if latest else 1,
            state=VersionState.DRAFT,
            content=content,
            checksum=checksum,
            created_at=now,
            created_by=actor,
        )
        .returning(table(ReportVersion).c.id)
    ).scalar_one()
    version = session.exec(
        select(ReportVersion)
        .where(ReportVersion.id == version_id)
        .options(defer(ReportVersion.content))  # type: ignore[arg-type]
    ).one()
    return version, True


def report_rows(
    drafts: Mapping[int, ObjectiveDraft], report_ids: Mapping[int, int], plan: Plan
) -> ReportRows | None:
    """The drafts as the report rows they were just written as (entry ids set by
    ``write_drafts``), milestone lines with their milestone's columns; None when an entry is
    not one the plan explains (the document is then read back from the database)."""
    reports: dict[int, tuple[int, str | None]] = {}
    active: dict[int, list[tuple[int, str]]] = {}
    entries: list[EntryRow] = []
    links: dict[int, list[Link]] = {}
    milestones = plan.milestones
    milestone_section = Section.MILESTONE
    for objective_id, draft in drafts.items():
        report_id = report_ids.get(objective_id)
        if report_id is None:
            return None
        reports[objective_id] = (report_id, draft.intro)
        active[report_id] = list(draft.active)
        for section, section_entries in draft.entries.items():
            section_value = section.value
            for entry in section_entries:
                entry_id = entry.id
                if entry_id is None:
                    return None
                if entry.links:
                    links[entry_id] = entry.links
                if section is not milestone_section:
                    entries.append(
                        (
                            entry_id,
                            report_id,
                            section_value,
                            entry.style.value,
                            entry.text,
                            entry.agency_id,
                            entry.not_updated,
                            entry.milestone_id,
                            None,
                            None,
                            None,
                            None,
                            None,
                            None,
                        )
                    )
                    continue
                milestone = milestones.get(entry.milestone_id or 0)
                if milestone is None:
                    return None
                entries.append(
                    (
                        entry_id,
                        report_id,
                        section_value,
                        entry.style.value,
                        entry.text,
                        entry.agency_id,
                        entry.not_updated,
                        milestone.id,
                        milestone.text,
                        milestone.due_text,
                        milestone.due_start,
                        milestone.due_end,
                        milestone.status.value,
                        milestone.lead_agency_id,
                    )
                )
    return ReportRows(reports, active, entries, links)


def lock_cycle(session: Session, cycle: Cycle) -> None:
    """Serialise the review steps of one cycle (compile, edit, approve, publish) until the
    transaction ends, so two compiles at once run one after the other and the second sees
    the first's version. PostgreSQL: the cycle's row is locked. SQLite: a write takes the
    database's write lock now, before anything is read (a read first would decide on data
    another writer is about to change)."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            sa.update(table(Cycle)).where(table(Cycle).c.id == cycle.id).values(id=cycle.id)
        )
    else:
        session.execute(
            sa.select(col(Cycle.id)).where(col(Cycle.id) == cycle.id).with_for_update()
        ).all()
    session.refresh(cycle)
