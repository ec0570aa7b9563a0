"""Review and publication: report versions, coordinator accounts and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables._types import enum_type, utcnow


class VersionState(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"


class ReportVersion(SQLModel, table=True):
    """A frozen compile of a year's report. Never edited: a change is a new version."""

    __table_args__ = (sa.UniqueConstraint("annual_report_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    annual_report_id: int = Field(foreign_key="annualreport.id", index=True)
    number: int
    state: VersionState = Field(default=VersionState.DRAFT, sa_type=enum_type(VersionState))
    # The ReportDocument as JSON; checksum is the SHA-256 of its canonical form.
    content: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    checksum: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str
    approved_at: datetime | None = None
    approved_by: str | None = None
    published_at: datetime | None = None
    published_by: str | None = None


class Account(SQLModel, table=True):
    """A coordinator who signs in to the dashboard."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str
    action: str = Field(max_length=60, index=True)
    cycle_id: int | None = Field(default=None, foreign_key="cycle.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id")
    subject: str | None = Field(default=None, description="e.g. 'milestone:42'")
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
