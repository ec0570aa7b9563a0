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


# The follow-up fields of a milestone's answer, and which of them each choice uses.
FOLLOW_UP_FIELDS = ("completed_on", "achievement", "new_period", "reason")
CHOICE_FIELDS: dict[MilestoneProgress, frozenset[str]] = {
    MilestoneProgress.COMPLETED: frozenset({"completed_on", "achievement"}),
    MilestoneProgress.ON_TRACK: frozenset(),
    MilestoneProgress.DELAYED: frozenset({"new_period", "reason"}),
    MilestoneProgress.DROPPED: frozenset({"reason"}),
}


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

    def chosen_only(self) -> MilestoneAnswer:
        """This answer with only the follow-up fields of the progress chosen: text typed under
        another choice first (a new period and a reason, then "completed") is dropped, so it
        never reaches a saved revision, the reviewers or the compiled draft. Nothing is chosen
        yet: everything typed is kept (a draft may be typed before the choice is made)."""
        if self.progress is None:
            return self
        kept = CHOICE_FIELDS[self.progress]
        dropped = {name: None for name in FOLLOW_UP_FIELDS if name not in kept}
        return self.model_copy(update=dropped)


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

    def chosen_only(self) -> Answer:
        """A copy whose milestones keep only the fields of their chosen progress (what a save
        stores); the answer itself is left as typed."""
        return self.model_copy(update={"milestones": [m.chosen_only() for m in self.milestones]})
