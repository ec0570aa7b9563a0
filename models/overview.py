"""The coordinator's overview of a cycle: each agency's request, its messages and their
delivery, milestone status per objective, who has not answered, the report's versions.

A fixed number of queries whatever the number of agencies or milestones (group-bys, never a
query per row), so the dashboard stays fast on a large plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import drafts
from models.cycles import MilestoneTally, cycle_status, tally_milestones
from models.tables import (
    Cycle,
    MilestoneStatus,
    Notification,
    Objective,
    Pillar,
    Plan,
    ReportVersion,
    RequestState,
)

ANSWERED_STATES = (RequestState.SUBMITTED, RequestState.APPROVED)
STATE_LABELS = {
    RequestState.PENDING: "not sent",
    RequestState.SENT: "sent, not opened",
    RequestState.OPENED: "opened",
    RequestState.DRAFT: "draft saved",
    RequestState.SUBMITTED: "submitted",
    RequestState.CHANGES_REQUESTED: "changes requested",
    RequestState.APPROVED: "approved",
}
STATUS_KEYS = ("completed", "on_track", "delayed", "slipped")
STATUS_LABELS = {
    "completed": "Completed",
    "on_track": "On track",
    "delayed": "Delayed",
    "slipped": "Slipped",
}


@dataclass(frozen=True)
class MessageCount:
    kind: str
    state: str
    count: int


@dataclass(frozen=True)
class AgencyRow:
    request_id: int
    acronym: str
    name: str
    state: RequestState
    state_label: str
    contacts: int
    last_activity: datetime | None
    submitted_at: datetime | None
    change_comment: str | None
    reminders_sent: int
    messages: list[MessageCount]
    milestones_due: int
    slipped: int
    # Its own deadline when it was given an extension, else None.
    extended_to: date | None
    # The milestones it leads: completed, on track, delayed, slipped (STATUS_KEYS).
    milestone_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_KEYS, 0))

    @property
    def answered(self) -> bool:
        return self.state in ANSWERED_STATES

    @property
    def failed_messages(self) -> int:
        return sum(m.count for m in self.messages if m.state == "failed")


@dataclass
class ObjectiveStats:
    objective_id: int
    pillar: str
    title: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_KEYS, 0))
    dropped: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Overview:
    cycle: Cycle
    plan: Plan
    agencies: list[AgencyRow]
    objectives: list[ObjectiveStats]
    versions: list[ReportVersion]

    @property
    def not_answered(self) -> list[AgencyRow]:
        return [row for row in self.agencies if not row.answered]

    @property
    def totals(self) -> dict[str, int]:
        return {key: sum(o.counts[key] for o in self.objectives) for key in STATUS_KEYS}

    @property
    def latest(self) -> ReportVersion | None:
        return self.versions[-1] if self.versions else None


def _status_key(status: MilestoneStatus, has_slipped: bool) -> str | None:
    """The overview's status of a milestone: None for one no longer planned."""
    if status is MilestoneStatus.COMPLETED:
        return "completed"
    if status is MilestoneStatus.DROPPED:
        return None
    if has_slipped:
        return "slipped"
    if status is MilestoneStatus.DELAYED:
        return "delayed"
    return "on_track"


def milestones_by_lead(tally: MilestoneTally) -> dict[int, dict[str, int]]:
    """Per lead agency: its milestones completed, on track, delayed and slipped."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUS_KEYS, 0))
    for row in tally.rows:
        key = _status_key(row.status, row.slipped)
        if key is not None and row.lead_agency_id is not None:
            counts[row.lead_agency_id][key] += row.count
    return counts


def milestone_stats(session: Session, plan_id: int, tally: MilestoneTally) -> list[ObjectiveStats]:
    """Per objective (in the plan's order): milestones completed, on track, delayed and
    slipped (open with its period ended), and how many were dropped."""
    objectives = session.exec(
        select(Objective, Pillar)
        .join(Pillar, col(Pillar.id) == Objective.pillar_id)
        .where(Objective.plan_id == plan_id)
        .order_by(col(Pillar.position), col(Objective.position))
    ).all()
    stats = {o.id: ObjectiveStats(o.id, p.name, o.title) for o, p in objectives if o.id is not None}
    for row in tally.rows:
        entry = stats.get(row.objective_id)
        if entry is None:
            continue
        key = _status_key(row.status, row.slipped)
        if key is None:
            entry.dropped += row.count
        else:
            entry.counts[key] += row.count
    return list(stats.values())


def overview(session: Session, cycle: Cycle) -> Overview:
    plan = session.get(Plan, cycle.plan_id)
    assert plan is not None and plan.id is not None
    messages: dict[int, list[MessageCount]] = defaultdict(list)
    for agency_id, kind, state, count in session.execute(
        sa.select(
            col(Notification.agency_id),
            col(Notification.kind),
            col(Notification.state),
            sa.func.count(),
        )
        .where(col(Notification.cycle_id) == cycle.id, col(Notification.agency_id).is_not(None))
        .group_by(col(Notification.agency_id), col(Notification.kind), col(Notification.state))
        .order_by(col(Notification.kind), col(Notification.state))
    ).all():
        messages[agency_id].append(MessageCount(kind, str(getattr(state, "value", state)), count))
    # One scan of the milestones for the status table, the per-agency counts and the chart.
    tally = tally_milestones(session, cycle)
    by_lead = milestones_by_lead(tally)
    agencies = [
        AgencyRow(
            request_id=row.request.id or 0,
            acronym=row.agency.acronym,
            name=row.agency.full_name,
            state=row.request.state,
            state_label=STATE_LABELS[row.request.state],
            contacts=row.contacts,
            last_activity=row.request.last_activity_at,
            submitted_at=row.request.submitted_at,
            change_comment=row.request.change_comment,
            reminders_sent=row.reminders_sent,
            messages=messages.get(row.agency.id or 0, []),
            milestones_due=row.milestones_due,
            slipped=row.slipped,
            extended_to=row.deadline if row.extended else None,
            milestone_counts=by_lead.get(row.agency.id or 0, dict.fromkeys(STATUS_KEYS, 0)),
        )
        for row in cycle_status(session, cycle, tally=tally)
    ]
    return Overview(
        cycle=cycle,
        plan=plan,
        agencies=agencies,
        objectives=milestone_stats(session, plan.id, tally),
        versions=drafts.versions(session, cycle),
    )


# --- the chart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    key: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class ChartRow:
    y: float
    label: str
    title: str
    total: int
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    label_width: int
    rows: list[ChartRow]


def status_chart(objectives: list[ObjectiveStats], *, width: int = 720) -> Chart:
    """Stacked horizontal bars, one per objective, scaled to the largest objective."""
    label_width, row_height, top = 260, 26, 4
    plot = width - label_width - 48
    largest = max((o.total for o in objectives), default=0) or 1
    rows = []
    for index, objective in enumerate(objectives):
        x = float(label_width)
        bars = []
        for key in STATUS_KEYS:
            count = objective.counts[key]
            if count:
                span = plot * count / largest
                bars.append(Bar(key, round(x, 2), round(span, 2), count))
                x += span
        label = objective.title if len(objective.title) <= 38 else objective.title[:37] + "…"
        rows.append(
            ChartRow(top + index * row_height, label, objective.title, objective.total, bars)
        )
    return Chart(width, top * 2 + row_height * len(objectives), label_width, rows)
