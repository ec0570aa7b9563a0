"""The working draft in memory (``DraftEntry``, ``ObjectiveDraft``) and reading a stored
annual report back into it.

Every other part of the package works on these drafts (building, editing, writing), so
they live apart from all of them and import nothing else of the package.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
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
    session: Session, annual_id: int, *, milestone_lines: bool = True
) -> dict[int, ObjectiveDraft]:
    """An annual report's objective reports as drafts, by objective id (four queries, plain
    rows: no ORM objects, which cost more than the query on a large plan).

    Without ``milestone_lines`` only the milestone entries that have links are read: what
    compile needs of last year's report (a plan's milestone lines are most of its rows)."""
    report_ids = select(ObjectiveReport.id).where(ObjectiveReport.annual_report_id == annual_id)
    drafts: dict[int, ObjectiveDraft] = {}
    by_report: dict[int, ObjectiveDraft] = {}
    for report_id, objective_id, intro in session.execute(
        sa.select(
            col(ObjectiveReport.id), col(ObjectiveReport.objective_id), col(ObjectiveReport.intro)
        ).where(col(ObjectiveReport.annual_report_id) == annual_id)
    ).all():
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
