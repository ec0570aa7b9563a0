"""The working draft in memory (``DraftEntry``, ``ObjectiveDraft``) and reading a stored
annual report back into it.

Every other part of the package works on these drafts (building, editing, writing), so
they live apart from all of them and import nothing else of the package.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.document import Link
from models.tables import (
    EntryLink,
    EntryOrigin,
    EntryStyle,
    ObjectiveReport,
    ObjectiveReportAgency,
    ReportEntry,
    Section,
)

TEXT_SECTIONS = (Section.ACHIEVEMENT, Section.FURTHER_WORK)


class DraftError(ValueError):
    """A draft operation that cannot be done; the message says why."""


# --- the working draft in memory ------------------------------------------------------------


@dataclass(slots=True)
class DraftEntry:
    section: Section
    text: str | None
    agency_id: int | None
    origin: EntryOrigin
    milestone_id: int | None = None
    not_updated: bool = False
    style: EntryStyle = EntryStyle.BULLET
    links: list[Link] = field(default_factory=list)
    updated_by: str | None = None
    updated_at: datetime | None = None
    id: int | None = None

    def identity(self) -> tuple[Any, ...]:
        return (self.section, self.agency_id, self.milestone_id, self.text)

    def comparable(self) -> tuple[Any, ...]:
        return (
            self.section,
            self.text,
            self.agency_id,
            self.origin,
            self.milestone_id,
            self.not_updated,
            self.style,
            tuple((link.title, link.url, link.site) for link in self.links),
        )


@dataclass
class ObjectiveDraft:
    objective_id: int
    intro: str | None = None
    # (agency id, name as written)
    active: list[tuple[int, str]] = field(default_factory=list)
    entries: dict[Section, list[DraftEntry]] = field(
        default_factory=lambda: {section: [] for section in Section}
    )

    def comparable(self) -> tuple[Any, ...]:
        return (
            self.intro,
            tuple(self.active),
            tuple(
                tuple(entry.comparable() for entry in self.entries[section]) for section in Section
            ),
        )

    def digest(self) -> str:
        """SHA-256 of ``comparable()``: equal drafts, equal digests, in any process. (JSON,
        not repr: the C encoder makes it a fifth of the cost; the enums are str values.)"""
        text = json.dumps(self.comparable(), ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def find(self, identity: Sequence[Any]) -> DraftEntry | None:
        section = Section(identity[0])
        for entry in self.entries[section]:
            if list(entry.identity()) == [section, *identity[1:]]:
                return entry
        return None


# --- reading a stored draft ------------------------------------------------------------------


_SECTIONS = {section.value: section for section in Section}
_ORIGINS = {origin.value: origin for origin in EntryOrigin}
_STYLES = {style.value: style for style in EntryStyle}


def raw(column: Any) -> sa.ColumnElement[str]:
    """An enum column as its stored value (a dictionary lookup turns it into the enum far
    faster than the column type does, row by row)."""
    return sa.type_coerce(column, sa.String())


def load_drafts(
    session: Session,
    annual_id: int,
    *,
    milestone_lines: bool = True,
    objectives: Collection[int] | None = None,
) -> dict[int, ObjectiveDraft]:
    """An annual report's objective reports as drafts, by objective id (four queries, plain
    rows: no ORM objects, which cost more than the query on a large plan).

    Without ``milestone_lines`` only the milestone entries that have links are read: what
    compile needs of last year's report (a plan's milestone lines are most of its rows).
    ``objectives``: only these objectives' reports (none when it is empty)."""
    if objectives is not None and not objectives:
        return {}
    report_ids = sa.select(col(ObjectiveReport.id)).where(
        col(ObjectiveReport.annual_report_id) == annual_id
    )
    reports = sa.select(
        col(ObjectiveReport.id), col(ObjectiveReport.objective_id), col(ObjectiveReport.intro)
    ).where(col(ObjectiveReport.annual_report_id) == annual_id)
    if objectives is not None:
        chosen = col(ObjectiveReport.objective_id).in_(list(objectives))
        report_ids, reports = report_ids.where(chosen), reports.where(chosen)
    drafts: dict[int, ObjectiveDraft] = {}
    by_report: dict[int, ObjectiveDraft] = {}
    for report_id, objective_id, intro in session.execute(reports).all():
        drafts[objective_id] = by_report[report_id] = ObjectiveDraft(objective_id, intro=intro)
    for report_id, agency_id, name in session.execute(
        sa.select(
            col(ObjectiveReportAgency.objective_report_id),
            col(ObjectiveReportAgency.agency_id),
            col(ObjectiveReportAgency.name_as_written),
        )
        .where(col(ObjectiveReportAgency.objective_report_id).in_(report_ids))
        .order_by(col(ObjectiveReportAgency.position))
    ).all():
        by_report[report_id].active.append((agency_id, name))
    entry_ids = select(ReportEntry.id).where(col(ReportEntry.objective_report_id).in_(report_ids))
    links: dict[int, list[Link]] = defaultdict(list)
    for entry_id, title, url, site in session.execute(
        sa.select(
            col(EntryLink.entry_id), col(EntryLink.title), col(EntryLink.url), col(EntryLink.site)
        )
        .where(col(EntryLink.entry_id).in_(entry_ids))
        .order_by(col(EntryLink.position))
    ).all():
        links[entry_id].append(Link.trusted({"title": title, "url": url, "site": site}))
    query = sa.select(
        col(ReportEntry.id),
        col(ReportEntry.objective_report_id),
        raw(col(ReportEntry.section)),
        col(ReportEntry.text),
        col(ReportEntry.agency_id),
        raw(col(ReportEntry.origin)),
        col(ReportEntry.milestone_id),
        col(ReportEntry.not_updated),
        raw(col(ReportEntry.style)),
        col(ReportEntry.updated_by),
        col(ReportEntry.updated_at),
    ).where(col(ReportEntry.objective_report_id).in_(report_ids))
    if not milestone_lines:
        query = query.where(
            sa.or_(
                col(ReportEntry.section) != Section.MILESTONE,
                col(ReportEntry.id).in_(select(EntryLink.entry_id)),
            )
        )
    sections, origins, styles = _SECTIONS, _ORIGINS, _STYLES
    rows: Sequence[Sequence[Any]] = (
        session.connection()
        .execute(query.order_by(col(ReportEntry.position), col(ReportEntry.id)))
        .all()
    )
    for row in rows:
        (entry_id, report_id, section_value, text, agency_id, origin, milestone_id) = row[:7]
        not_updated, style, updated_by, updated_at = row[7:]
        section = sections[section_value]
        by_report[report_id].entries[section].append(
            DraftEntry(
                section,
                text,
                agency_id,
                origins[origin],
                milestone_id,
                bool(not_updated),
                styles[style],
                links.get(entry_id, []),
                updated_by,
                updated_at,
                entry_id,
            )
        )
    return drafts


# --- what a recompile reads instead of a whole stored draft ----------------------------------


@dataclass(frozen=True, slots=True)
class StoredReport:
    report_id: int
    digest: str | None


def stored_digests(session: Session, annual_id: int) -> dict[int, StoredReport]:
    """Each objective report of the annual report, by objective id, with its draft digest."""
    return {
        objective_id: StoredReport(report_id, digest)
        for report_id, objective_id, digest in session.execute(
            sa.select(
                col(ObjectiveReport.id),
                col(ObjectiveReport.objective_id),
                col(ObjectiveReport.draft_digest),
            ).where(col(ObjectiveReport.annual_report_id) == annual_id)
        ).all()
    }


def stored_entry_ids(
    session: Session, report_ids: Collection[int]
) -> dict[int, dict[Section, list[int]]]:
    """The entry ids of these objective reports, by report and section, in the order the
    draft holds them: what an unchanged draft needs of its stored rows (the document names
    each entry), read in one light query instead of the rows themselves."""
    found: dict[int, dict[Section, list[int]]] = {}
    if not report_ids:
        return found
    sections = _SECTIONS
    rows: Sequence[Sequence[Any]] = (
        session.connection()
        .execute(
            sa.select(
                col(ReportEntry.id),
                col(ReportEntry.objective_report_id),
                raw(col(ReportEntry.section)),
            )
            .where(col(ReportEntry.objective_report_id).in_(list(report_ids)))
            .order_by(col(ReportEntry.position), col(ReportEntry.id))
        )
        .all()
    )
    for entry_id, report_id, section_value in rows:
        by_section = found.get(report_id)
        if by_section is None:
            by_section = found[report_id] = {section: [] for section in Section}
        by_section[sections[section_value]].append(entry_id)
    return found
