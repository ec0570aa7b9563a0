"""The plan itself: pillars, objectives, actions, agencies and their contacts, milestones."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables._types import enum_type, utcnow


class Plan(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=80, unique=True)
    title: str
    period_text: str | None = None
    # Introduction blocks, each {"style": "paragraph" | "bullet", "text": ...}.
    intro: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow)


class Pillar(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    position: int
    name: str


class Objective(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "title"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    pillar_id: int = Field(foreign_key="pillar.id", index=True)
    position: int
    title: str
    # A note under the actions, e.g. the footnote explaining new actions numbered N1*.
    actions_footnote: str | None = None


class Action(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("plan_id", "number"),)
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    objective_id: int = Field(foreign_key="objective.id", index=True)
    position: int
    number: str = Field(max_length=16, description="as written: '1', '28', 'N1'")
    text: str
    footnoted: bool = False
    incorporated_into: str | None = Field(default=None, max_length=16)


class Agency(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    acronym: str = Field(max_length=32, unique=True)
    full_name: str
    aliases: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    parent_id: int | None = Field(default=None, foreign_key="agency.id")


class Contact(SQLModel, table=True):
    """A person at an agency who receives update requests, or a coordinator."""

    __table_args__ = (sa.UniqueConstraint("agency_id", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="agency.id", index=True)
    email: str = Field(max_length=320)
    name: str | None = None
    # An extra Apprise URL (Teams, Slack …). It may hold credentials: never log it.
    notify_url: str | None = None
    is_coordinator: bool = False
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class MilestoneStatus(StrEnum):
    PLANNED = "planned"
    ON_TRACK = "on_track"
    DELAYED = "delayed"
    COMPLETED = "completed"
    DROPPED = "dropped"


class Milestone(SQLModel, table=True):
    # The plan's milestones are counted far more often than any one is read (the status table,
    # the dashboard overview): the tally index holds every column those counts group or test,
    # in their group-by order, so a count reads the index alone, in order, without touching the
    # table or sorting (a third of the time on 20,000 milestones). A plan's dropped milestones
    # since a date (the review notes) are a seek on the second, not a scan of the plan. Both
    # start with plan_id, so they serve every "milestones of this plan" query as well.
    __table_args__ = (
        sa.Index(
            "ix_milestone_tally",
            "plan_id",
            "objective_id",
            "lead_agency_id",
            "status",
            "slipped_on",
            "due_end",
        ),
        sa.Index("ix_milestone_plan_status", "plan_id", "status", "updated_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(foreign_key="plan.id")
    objective_id: int = Field(foreign_key="objective.id", index=True)
    lead_agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    text: str
    # The current due period; None when undated ("Ongoing", "TBC").
    due_text: str | None = None
    due_start: date | None = Field(default=None, index=True)
    due_end: date | None = Field(default=None, index=True)
    status: MilestoneStatus = Field(
        default=MilestoneStatus.PLANNED, sa_type=enum_type(MilestoneStatus)
    )
    status_note: str | None = None
    completed_on: date | None = None
    slipped_on: date | None = None
    first_reported_year: int
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MilestoneRevision(SQLModel, table=True):
    """One change of a milestone's due period. The first one's previous period is the
    baseline the report prints as "(Delayed from …)"."""

    id: int | None = Field(default=None, primary_key=True)
    milestone_id: int = Field(foreign_key="milestone.id", index=True)
    sequence: int
    year: int = Field(description="the reporting year in which the change was reported")
    previous_due_text: str | None
    previous_start: date | None
    previous_end: date | None
    new_due_text: str | None
    new_start: date | None
    new_end: date | None
    reason: str | None = None
    changed_by: str
    changed_at: datetime = Field(default_factory=utcnow)
