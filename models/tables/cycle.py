"""The yearly reporting cycle: update requests to agencies, their links and their answers."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables._types import enum_type, utcnow


class CycleState(StrEnum):
    OPEN = "open"
    APPROVED = "approved"
    PUBLISHED = "published"
    CLOSED = "closed"


class Cycle(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "year"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    year: int
    deadline: date
    state: CycleState = Field(default=CycleState.OPEN, sa_type=enum_type(CycleState))
    opened_at: datetime = Field(default_factory=utcnow)
    opened_by: str | None = None
    closed_at: datetime | None = None


class RequestState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    OPENED = "opened"
    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"


class UpdateRequest(SQLModel, table=True):
    """One per agency per cycle: the agency's answer for all its objectives and milestones."""

    __table_args__ = (sa.UniqueConstraint("cycle_id", "agency_id"),)
    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(foreign_key="cycle.id", index=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    state: RequestState = Field(default=RequestState.PENDING, sa_type=enum_type(RequestState))
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    opened_at: datetime | None = None
    submitted_at: datetime | None = None
    last_activity_at: datetime | None = None
    change_comment: str | None = None
    # The latest SubmissionRevision.number; a save based on an older one is a conflict.
    revision_number: int = 0
    # An extension granted to this agency alone; the later of this and the cycle's deadline
    # is the agency's deadline (``models.cycles.deadline_of``), so moving the cycle's
    # deadline past an extension never leaves that agency with the earlier date.
    extended_deadline: date | None = None


class AccessToken(SQLModel, table=True):
    """A tokenised link. Only the SHA-256 of the token is stored."""

    id: int | None = Field(default=None, primary_key=True)
    update_request_id: int = Field(foreign_key="updaterequest.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    # The message that carried this link, if any: each mail gets its own link, and a retried
    # send revokes the link of its failed attempt.
    notification_id: int | None = Field(default=None, foreign_key="notification.id")
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = Field(
        default=None, description="None: valid until the cycle closes plus the grace period"
    )
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class RevisionKind(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"


class SubmissionRevision(SQLModel, table=True):
    """Every save of an agency's answer, kept: who, when, and the whole answer."""

    __table_args__ = (sa.UniqueConstraint("update_request_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    update_request_id: int = Field(foreign_key="updaterequest.id", index=True)
    number: int
    kind: RevisionKind = Field(sa_type=enum_type(RevisionKind))
    content: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    author: str
    created_at: datetime = Field(default_factory=utcnow)
