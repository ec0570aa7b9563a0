"""An agency's answer to its update request: what the form saves (as a SubmissionRevision's
JSON content) and what compiling the cycle reads. Plain data, validated."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class MilestoneProgress(StrEnum):
    COMPLETED = "completed"
    ON_TRACK = "on_track"
    DELAYED = "delayed"
    DROPPED = "dropped"  # no longer planned


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilestoneAnswer(_Model):
    milestone_id: int
    # None: not answered yet (a draft may leave milestones open).
    progress: MilestoneProgress | None = None
    completed_on: date | None = None
    # A line for the report's key achievements when completed.
    achievement: str | None = None
    # When delayed: the new period as typed (must parse) and why.
    new_period: str | None = None
    reason: str | None = None


class AchievementAnswer(_Model):
    objective_id: int
    text: str
    link_title: str | None = None
    link_url: str | None = None  # http(s) only


class FurtherWorkAnswer(_Model):
    objective_id: int
    text: str


class NewMilestoneAnswer(_Model):
    objective_id: int
    period: str
    text: str


class Answer(_Model):
    milestones: list[MilestoneAnswer] = Field(default_factory=list)
    achievements: list[AchievementAnswer] = Field(default_factory=list)
    further_work: list[FurtherWorkAnswer] = Field(default_factory=list)
    new_milestones: list[NewMilestoneAnswer] = Field(default_factory=list)
