"""A year's report of the plan: per objective, the active agencies and the entries."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables._types import enum_type, utcnow


class AnnualReport(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    year: int
    last_updated: date | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ObjectiveReport(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("annual_report_id", "objective_id"),)
    id: int | None = Field(default=None, primary_key=True)
    annual_report_id: int = Field(foreign_key="annualreport.id", index=True)
    objective_id: int = Field(foreign_key="objective.id", index=True)
    intro: str | None = None
    # SHA-256 of what the report's rows hold, as a working draft compares them
    # (``ObjectiveDraft.digest``), written with them by the compile: a recompile tells an
    # unchanged objective from its digest instead of reading all its rows back. None where
    # something else wrote the rows (an import): the compile then compares the rows.
    draft_digest: str | None = Field(default=None, max_length=64)


class ObjectiveReportAgency(SQLModel, table=True):
    """An agency named in an objective report's "Active agencies" line, as written there."""

    __table_args__ = (sa.UniqueConstraint("objective_report_id", "agency_id"),)
    id: int | None = Field(default=None, primary_key=True)
    objective_report_id: int = Field(foreign_key="objectivereport.id", index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    position: int
    name_as_written: str


class Section(StrEnum):
    ACHIEVEMENT = "achievement"
    FURTHER_WORK = "further_work"
    MILESTONE = "milestone"


class EntryStyle(StrEnum):
    BULLET = "bullet"
    PARAGRAPH = "paragraph"


class EntryOrigin(StrEnum):
    IMPORTED = "imported"
    SUBMITTED = "submitted"
    COORDINATOR = "coordinator"
    CARRIED_FORWARD = "carried_forward"


class ReportEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    objective_report_id: int = Field(foreign_key="objectivereport.id", index=True)
    section: Section = Field(sa_type=enum_type(Section))
    position: int
    style: EntryStyle = Field(default=EntryStyle.BULLET, sa_type=enum_type(EntryStyle))
    # Milestone entries take their text and period from the milestone.
    text: str | None = None
    milestone_id: int | None = Field(default=None, foreign_key="milestone.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")
    origin: EntryOrigin = Field(default=EntryOrigin.IMPORTED, sa_type=enum_type(EntryOrigin))
    not_updated: bool = False
    updated_by: str | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class EntryLink(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="reportentry.id", index=True)
    position: int
    title: str
    url: str | None = None
    site: str | None = None
