"""An agency's answer to its update request: what the form shows, validation, and every save.

- ``load_request_view``: the form's view of one update request (the agency's objectives with
  their actions and last year's entry, the milestones it leads, the latest saved answer);
  ``load_linked_view``: the same through one link, None when the link is no longer live.
- ``validate_answer``: field errors, each keyed by the form's field id (``field_id`` helpers).
- ``save_answer``: a draft or a submission, as a new ``SubmissionRevision`` (who, when), guarded
  by the revision number the form was based on: a save based on an older revision is a
  ``Conflict`` and nothing is written. The revision keeps only the fields of each milestone's
  chosen progress. A submission is applied to the milestones.
- ``reopen``: a submitted answer becomes editable again until the cycle is approved.
- ``mark_opened``: the contact continued from the link.

Applying a submission is idempotent per cycle: re-submitting after a reopen amends this year's
changes (the one revision of a milestone's period for the cycle year, the milestones this
request added) instead of adding them again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from models.answers import (
    AchievementAnswer,
    Answer,
    FurtherWorkAnswer,
    MilestoneAnswer,
    MilestoneProgress,
    NewMilestoneAnswer,
)
from models.audit import record
from models.clock import as_aware
from models.cycles import deadline_expression
from models.periods import Period, parse_period
from models.tables import (
    AccessToken,
    Action,
    Agency,
    AnnualReport,
    AuditEvent,
    Cycle,
    CycleState,
    EntryLink,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    Objective,
    ObjectiveReport,
    ObjectiveReportAgency,
    Pillar,
    Plan,
    ReportEntry,
    RequestState,
    RevisionKind,
    Section,
    SubmissionRevision,
    UpdateRequest,
)

MAX_TEXT = 5000
MAX_URL = 2000
ADDED_MILESTONE = "milestone.added"
WITHDRAWN_NOTE = "withdrawn by the agency before approval"
OPEN_STATUSES = (MilestoneStatus.PLANNED, MilestoneStatus.ON_TRACK, MilestoneStatus.DELAYED)
EDITABLE_STATES = (
    RequestState.PENDING,
    RequestState.SENT,
    RequestState.OPENED,
    RequestState.DRAFT,
    RequestState.CHANGES_REQUESTED,
)


# --- field ids (shared with the form templates) ---------------------------------------------


def milestone_field(milestone_id: int, name: str) -> str:
    return f"m-{milestone_id}-{name}"


ROW_PREFIX = {"achievements": "a", "further_work": "f", "new_milestones": "n"}


def row_field(section: str, objective_id: int, index: int, name: str) -> str:
    return f"{ROW_PREFIX[section]}-{objective_id}-{index}-{name}"


@dataclass(frozen=True)
class FieldError:
    field: str  # the form field's id ("form" for the page as a whole)
    message: str


# --- the view -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkView:
    title: str
    url: str | None


@dataclass(frozen=True)
class EntryView:
    text: str
    links: tuple[LinkView, ...] = ()


@dataclass(frozen=True)
class MilestoneView:
    id: int
    objective_id: int
    text: str
    due_text: str | None
    status: str
    delayed_from: str | None
    slipped_on: date | None


@dataclass(frozen=True)
class ObjectiveView:
    id: int
    title: str
    pillar: str
    actions: tuple[tuple[str, str], ...]
    last_year: int | None
    last_achievements: tuple[EntryView, ...]
    last_further_work: tuple[EntryView, ...]
    milestones: tuple[MilestoneView, ...]
    # Only this agency is active on the objective: last year's further work is its own.
    sole_agency: bool


@dataclass(frozen=True)
class RevisionView:
    number: int
    kind: RevisionKind
    author: str
    created_at: datetime
    answer: Answer


@dataclass(frozen=True)
class RequestView:
    request_id: int
    state: RequestState
    revision_number: int
    change_comment: str | None
    cycle_id: int
    cycle_year: int
    cycle_state: CycleState
    deadline: date
    agency_id: int
    agency_name: str
    agency_acronym: str
    objectives: tuple[ObjectiveView, ...]
    latest: RevisionView | None

    @property
    def milestones(self) -> dict[int, MilestoneView]:
        return {m.id: m for o in self.objectives for m in o.milestones}

    @property
    def editable(self) -> bool:
        return self.cycle_state is CycleState.OPEN and self.state in EDITABLE_STATES

    @property
    def can_reopen(self) -> bool:
        return self.cycle_state is CycleState.OPEN and self.state is RequestState.SUBMITTED

    def starting_answer(self) -> Answer:
        """What the form starts from: the latest save, else last year's further work of the
        objectives this agency alone is active on, carried forward to edit."""
        if self.latest is not None:
            return self.latest.answer
        return Answer(
            milestones=[MilestoneAnswer(milestone_id=m) for m in self.milestones],
            further_work=[
                FurtherWorkAnswer(objective_id=o.id, text=entry.text)
                for o in self.objectives
                if o.sole_agency
                for entry in o.last_further_work
            ],
        )


class NotFound(LookupError):
    pass


# The form's page reads these on every request: built once, executed with parameters (building
# a statement costs about as much as running it on SQLite). One statement gives the request
# with everything keyed on it (cycle, agency, the plan's identity, last year's report, the
# latest saved revision); columns, not ORM objects, since nothing here is changed.
_PreviousReport = aliased(AnnualReport)
_PREVIOUS_REPORT_ID = (
    select(_PreviousReport.id)
    .where(_PreviousReport.plan_id == Cycle.plan_id, col(_PreviousReport.year) < Cycle.year)
    .order_by(col(_PreviousReport.year).desc())
    .limit(1)
    .correlate(Cycle)
    .scalar_subquery()
)
_Revision = aliased(SubmissionRevision)
_LATEST_NUMBER = (
    select(sa.func.max(_Revision.number))
    .where(_Revision.update_request_id == UpdateRequest.id)
    .correlate(UpdateRequest)
    .scalar_subquery()
)
_REQUEST_COLUMNS: tuple[Any, ...] = (
    col(UpdateRequest.state),
    col(UpdateRequest.revision_number),
    col(UpdateRequest.change_comment),
    col(Cycle.id).label("cycle_id"),
    col(Cycle.plan_id),
    col(Cycle.year),
    col(Cycle.state).label("cycle_state"),
    # The agency's own deadline when it was given an extension.
    deadline_expression().label("deadline"),
    col(Cycle.closed_at),
    col(Agency.id).label("agency_id"),
    col(Agency.full_name),
    col(Agency.acronym),
    col(Plan.slug).label("plan_slug"),
    col(Plan.created_at).label("plan_created_at"),
    col(AnnualReport.id).label("report_id"),
    col(AnnualReport.year).label("report_year"),
    col(AnnualReport.created_at).label("report_created_at"),
    col(SubmissionRevision.number).label("latest_number"),
    col(SubmissionRevision.kind).label("latest_kind"),
    col(SubmissionRevision.author).label("latest_author"),
    col(SubmissionRevision.created_at).label("latest_created_at"),
    col(SubmissionRevision.content).label("latest_content"),
)


def _request_query(*extra: Any) -> sa.Select[Any]:
    return (
        sa.select(*_REQUEST_COLUMNS, *extra)
        .join(Cycle, col(Cycle.id) == UpdateRequest.cycle_id)
        .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
        .join(Plan, col(Plan.id) == Cycle.plan_id)
        .outerjoin(AnnualReport, col(AnnualReport.id) == _PREVIOUS_REPORT_ID)
        .outerjoin(
            SubmissionRevision,
            sa.and_(
                col(SubmissionRevision.update_request_id) == UpdateRequest.id,
                col(SubmissionRevision.number) == _LATEST_NUMBER,
            ),
        )
        .where(col(UpdateRequest.id) == sa.bindparam("request_id"))
    )


_REQUEST = _request_query()
# The same, through one link (the form's session): whether it is still live comes along.
_LINKED_REQUEST = _request_query(col(AccessToken.revoked_at), col(AccessToken.expires_at)).join(
    AccessToken,
    sa.and_(
        col(AccessToken.update_request_id) == UpdateRequest.id,
        col(AccessToken.id) == sa.bindparam("token_id"),
    ),
)
_LATEST_REVISION = (
    select(SubmissionRevision)
    .where(SubmissionRevision.update_request_id == sa.bindparam("request_id"))
    .order_by(col(SubmissionRevision.number).desc())
    .limit(1)
)
_ADDED = select(AuditEvent.subject).where(
    AuditEvent.action == ADDED_MILESTONE,
    AuditEvent.cycle_id == sa.bindparam("cycle_id"),
    AuditEvent.agency_id == sa.bindparam("agency_id"),
)
# Each milestone with its baseline: the previous period of its first revision, what
# "(Delayed from …)" prints.
_FirstRevision = aliased(MilestoneRevision)
_BASELINE = (
    select(_FirstRevision.previous_due_text)
    .where(_FirstRevision.milestone_id == Milestone.id)
    .order_by(col(_FirstRevision.sequence))
    .limit(1)
    .correlate(Milestone)
    .scalar_subquery()
)
_LED_MILESTONES = (
    sa.select(
        col(Milestone.id),
        col(Milestone.objective_id),
        col(Milestone.text),
        col(Milestone.due_text),
        col(Milestone.status),
        col(Milestone.slipped_on),
        _BASELINE.label("delayed_from"),
    )
    .where(
        col(Milestone.plan_id) == sa.bindparam("plan_id"),
        col(Milestone.lead_agency_id) == sa.bindparam("agency_id"),
    )
    .order_by(col(Milestone.due_start).asc().nulls_last(), col(Milestone.id))
)


def load_request_view(session: Session, request_id: int) -> RequestView:
    row = session.execute(_REQUEST, {"request_id": request_id}).first()
    if row is None:
        raise NotFound(f"no update request {request_id}")
    return _view_of(session, request_id, row)


def load_linked_view(
    session: Session, request_id: int, token_id: int, now: datetime, grace: timedelta
) -> RequestView | None:
    """The view of ``request_id`` through link ``token_id``; None when the link is not that
    request's, or no longer live (revoked, expired, or its cycle closed past the grace)."""
    row = session.execute(_LINKED_REQUEST, {"request_id": request_id, "token_id": token_id}).first()
    if row is None:
        return None
    if row.revoked_at is not None:
        return None
    if row.expires_at is not None and now >= as_aware(row.expires_at):
        return None
    if row.closed_at is not None and now >= as_aware(row.closed_at) + grace:
        return None
    return _view_of(session, request_id, row)


def _view_of(session: Session, request_id: int, row: sa.Row[Any]) -> RequestView:
    latest = (
        None
        if row.latest_number is None
        else RevisionView(
            number=row.latest_number,
            kind=row.latest_kind,
            author=row.latest_author,
            created_at=row.latest_created_at,
            answer=Answer.model_validate(row.latest_content),
        )
    )
    return RequestView(
        request_id=request_id,
        state=row.state,
        revision_number=row.revision_number,
        change_comment=row.change_comment,
        cycle_id=row.cycle_id,
        cycle_year=row.year,
        cycle_state=row.cycle_state,
        deadline=row.deadline,
        agency_id=row.agency_id,
        agency_name=row.full_name,
        agency_acronym=row.acronym,
        objectives=_objectives(session, row, request_id, latest),
        latest=latest,
    )


def _latest_revision(session: Session, request_id: int) -> RevisionView | None:
    revision = session.exec(_LATEST_REVISION, params={"request_id": request_id}).first()
    return None if revision is None else _revision_view(revision)


def _revision_view(revision: SubmissionRevision) -> RevisionView:
    return RevisionView(
        number=revision.number,
        kind=revision.kind,
        author=revision.author,
        created_at=revision.created_at,
        answer=Answer.model_validate(revision.content),
    )


def _added_by_request(session: Session, cycle_id: int, agency_id: int) -> set[int]:
    """Milestones this agency added in this cycle (they show as new milestones, not as
    milestones to report on)."""
    subjects = session.exec(_ADDED, params={"cycle_id": cycle_id, "agency_id": agency_id}).all()
    return {int(s.split(":", 1)[1]) for s in subjects if s and s.startswith("milestone:")}


@dataclass(frozen=True)
class _ObjectiveStatic:
    """What a form shows of an objective that does not change during a cycle."""

    id: int
    title: str
    pillar: str
    actions: tuple[tuple[str, str], ...]
    reported: bool  # has an entry in last year's report
    last_achievements: tuple[EntryView, ...]
    last_further_work: tuple[EntryView, ...]
    active_agency_ids: frozenset[int]


@dataclass(frozen=True)
class _PlanStructure:
    report_year: int | None
    objectives: dict[int, _ObjectiveStatic]  # in report order (pillar, position)


# The plan's objectives, actions and last year's report are the same for every form of a cycle
# and change only on a re-import: keep them a minute per process instead of re-reading them on
# every page. The key names the exact rows (ids and creation times), so a different database
# or a re-created plan never reads another's entry.
STRUCTURE_TTL_SECONDS = 60.0
_structures: dict[tuple[object, ...], tuple[float, _PlanStructure]] = {}
_structures_lock = threading.Lock()


def _plan_structure(session: Session, row: sa.Row[Any]) -> _PlanStructure:
    """``row``: the request's row (``_REQUEST``), which names the plan and last year's report."""
    key = (
        str(session.get_bind().engine.url),
        row.plan_id,
        row.plan_slug,
        row.plan_created_at,
        row.year,
        row.report_id,
        row.report_created_at,
    )
    now = time.monotonic()
    with _structures_lock:
        cached = _structures.get(key)
        if cached is not None and now - cached[0] < STRUCTURE_TTL_SECONDS:
            return cached[1]
    structure = _load_structure(session, row.plan_id, row.report_id, row.report_year)
    with _structures_lock:
        for stale in [k for k, (at, _) in _structures.items() if now - at >= STRUCTURE_TTL_SECONDS]:
            del _structures[stale]
        _structures[key] = (now, structure)
    return structure


def _load_structure(
    session: Session, plan_id: int, report_id: int | None, report_year: int | None
) -> _PlanStructure:
    reports: dict[int, ObjectiveReport] = {}
    active: dict[int, set[int]] = {}
    entries: dict[int, dict[Section, list[EntryView]]] = {}
    if report_id is not None:
        for objective_report in session.exec(
            select(ObjectiveReport).where(ObjectiveReport.annual_report_id == report_id)
        ):
            reports[objective_report.objective_id] = objective_report
        by_report = {r.id: r.objective_id for r in reports.values()}
        for row in session.exec(
            select(ObjectiveReportAgency).where(
                col(ObjectiveReportAgency.objective_report_id).in_(list(by_report))
            )
        ):
            active.setdefault(by_report[row.objective_report_id], set()).add(row.agency_id)
        entries = _last_entries(session, list(reports.values()))
    actions: dict[int, list[tuple[str, str]]] = {}
    for action in session.exec(
        select(Action).where(Action.plan_id == plan_id).order_by(col(Action.position))
    ):
        actions.setdefault(action.objective_id, []).append((action.number, action.text))
    objectives: dict[int, _ObjectiveStatic] = {}
    for objective, pillar in session.exec(
        select(Objective, Pillar)
        .join(Pillar, col(Pillar.id) == Objective.pillar_id)
        .where(Objective.plan_id == plan_id)
        .order_by(col(Pillar.position), col(Objective.position))
    ):
        assert objective.id is not None
        this_report = reports.get(objective.id)
        last = entries.get(this_report.id or -1, {}) if this_report else {}
        objectives[objective.id] = _ObjectiveStatic(
            id=objective.id,
            title=objective.title,
            pillar=pillar.name,
            actions=tuple(actions.get(objective.id, [])),
            reported=this_report is not None,
            last_achievements=tuple(last.get(Section.ACHIEVEMENT, [])),
            last_further_work=tuple(last.get(Section.FURTHER_WORK, [])),
            active_agency_ids=frozenset(active.get(objective.id, set())),
        )
    return _PlanStructure(report_year, objectives)


def _objectives(
    session: Session,
    row: sa.Row[Any],
    request_id: int,
    latest: RevisionView | None,
) -> tuple[ObjectiveView, ...]:
    agency_id: int = row.agency_id
    answered = {m.milestone_id for m in latest.answer.milestones} if latest else set()
    added = _added_by_request(session, row.cycle_id, agency_id)
    milestones = [
        m
        for m in session.execute(_LED_MILESTONES, {"plan_id": row.plan_id, "agency_id": agency_id})
        if m.id not in added and (m.status in OPEN_STATUSES or m.id in answered)
    ]
    structure = _plan_structure(session, row)
    led = {m.objective_id for m in milestones}
    views = []
    for objective in structure.objectives.values():
        active_here = agency_id in objective.active_agency_ids
        if not active_here and objective.id not in led:
            continue
        views.append(
            ObjectiveView(
                id=objective.id,
                title=objective.title,
                pillar=objective.pillar,
                actions=objective.actions,
                last_year=structure.report_year if objective.reported else None,
                last_achievements=objective.last_achievements,
                last_further_work=objective.last_further_work,
                milestones=tuple(
                    MilestoneView(
                        id=m.id,
                        objective_id=m.objective_id,
                        text=m.text,
                        due_text=m.due_text,
                        status=m.status.value,
                        delayed_from=m.delayed_from,
                        slipped_on=m.slipped_on,
                    )
                    for m in milestones
                    if m.objective_id == objective.id
                ),
                sole_agency=active_here and len(objective.active_agency_ids) == 1,
            )
        )
    return tuple(views)


def _last_entries(
    session: Session, reports: Sequence[ObjectiveReport]
) -> dict[int, dict[Section, list[EntryView]]]:
    report_ids = [r.id for r in reports]
    if not report_ids:
        return {}
    entries = session.exec(
        select(ReportEntry)
        .where(
            col(ReportEntry.objective_report_id).in_(report_ids),
            col(ReportEntry.section).in_([Section.ACHIEVEMENT, Section.FURTHER_WORK]),
        )
        .order_by(col(ReportEntry.position))
    ).all()
    links: dict[int, list[LinkView]] = {}
    for link in session.exec(
        select(EntryLink)
        .where(col(EntryLink.entry_id).in_([e.id for e in entries]))
        .order_by(col(EntryLink.position))
    ):
        # An imported address that is not http(s) is shown as text, never as a link.
        url = link.url if link.url and url_problem(link.url) is None else None
        links.setdefault(link.entry_id, []).append(LinkView(link.title, url))
    result: dict[int, dict[Section, list[EntryView]]] = {}
    for entry in entries:
        if not entry.text:
            continue
        result.setdefault(entry.objective_report_id, {}).setdefault(entry.section, []).append(
            EntryView(entry.text, tuple(links.get(entry.id or -1, [])))
        )
    return result


# --- validation ---------------------------------------------------------------------------


def period_problem(text: str, today: date | None = None) -> str | None:
    """None when ``text`` reads as a period (one still to come or under way, when ``today``
    is given), else a message for the person who typed it."""
    try:
        period = parse_period(text)
    except ValueError:
        return (
            f"“{text.strip()}” is not a period we can read. Write it like "
            "“Quarter 3 2023”, “Q3-Q4 2023”, “December 2023”, “H1 2024” or “2024”."
        )
    if today is not None and period.has_ended(today):
        # A milestone moved to, or added for, a period already over would be flagged as
        # slipped the moment it is saved: almost always a typo in the year.
        return (
            f"“{text.strip()}” has already ended. Enter the period it is now due in, "
            "such as a later quarter or year."
        )
    return None


def url_problem(url: str) -> str | None:
    """None for an absolute http(s) address, else why not."""
    if len(url) > MAX_URL:
        return f"The address is too long (at most {MAX_URL} characters)."
    if any(ch.isspace() for ch in url):
        return "The address cannot contain spaces."
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Enter a web address starting with https:// or http://."
    return None


def _text_problem(value: str | None, what: str, *, required: bool) -> str | None:
    if value is None or not value.strip():
        return f"Enter {what}." if required else None
    if len(value) > MAX_TEXT:
        return f"This is too long: at most {MAX_TEXT} characters."
    return None


def row_indices(
    items: Iterable[AchievementAnswer | FurtherWorkAnswer | NewMilestoneAnswer],
) -> list[int]:
    """Each row's index within its objective: the ``i`` of its field ids."""
    seen: dict[int, int] = {}
    indices = []
    for item in items:
        index = seen.get(item.objective_id, 0)
        indices.append(index)
        seen[item.objective_id] = index + 1
    return indices


def validate_answer(
    view: RequestView, answer: Answer, *, final: bool, today: date | None = None
) -> list[FieldError]:
    """Every problem with ``answer``, by field. A draft (``final=False``) may leave things
    open but may not hold unreadable periods or bad links; a submission must be complete."""
    errors: list[FieldError] = []

    def check(field_id: str, problem: str | None) -> None:
        if problem:
            errors.append(FieldError(field_id, problem))

    milestones = view.milestones
    objectives = {o.id for o in view.objectives}
    answered: dict[int, MilestoneAnswer] = {}
    for item in answer.milestones:
        if item.milestone_id not in milestones or item.milestone_id in answered:
            errors.append(FieldError("form", "The answer names a milestone that is not yours."))
            continue
        answered[item.milestone_id] = item
    for milestone_id in milestones:
        item = answered.get(milestone_id) or MilestoneAnswer(milestone_id=milestone_id)

        def fid(name: str, _m: int = milestone_id) -> str:
            return milestone_field(_m, name)

        if item.progress is None:
            if final:
                check(fid("progress"), "Choose what happened to this milestone.")
            continue
        if item.progress is MilestoneProgress.COMPLETED:
            if item.completed_on and today and item.completed_on > today:
                check(fid("completed_on"), "The completion date cannot be in the future.")
            check(fid("achievement"), _text_problem(item.achievement, "", required=False))
        elif item.progress is MilestoneProgress.DELAYED:
            if item.new_period and item.new_period.strip():
                check(fid("new_period"), period_problem(item.new_period, today))
            elif final:
                check(fid("new_period"), "Enter the new period, such as “Quarter 2 2024”.")
            check(fid("reason"), _text_problem(item.reason, "why it is delayed", required=final))
        elif item.progress is MilestoneProgress.DROPPED:
            check(
                fid("reason"),
                _text_problem(item.reason, "why it is no longer planned", required=final),
            )

    def objective_known(objective_id: int) -> bool:
        if objective_id in objectives:
            return True
        errors.append(FieldError("form", "The answer names an objective that is not yours."))
        return False

    for achievement, index in zip(
        answer.achievements, row_indices(answer.achievements), strict=True
    ):
        if not objective_known(achievement.objective_id):
            continue

        def aid(name: str, _o: int = achievement.objective_id, _i: int = index) -> str:
            return row_field("achievements", _o, _i, name)

        check(aid("text"), _text_problem(achievement.text, "the achievement", required=True))
        title, url = achievement.link_title, achievement.link_url
        if url and url.strip():
            check(aid("link_url"), url_problem(url.strip()))
            check(aid("link_title"), _text_problem(title, "a title for the link", required=True))
        elif title and title.strip():
            check(aid("link_url"), "Enter the link's address, starting with https://.")
    for work, index in zip(answer.further_work, row_indices(answer.further_work), strict=True):
        if objective_known(work.objective_id):
            check(
                row_field("further_work", work.objective_id, index, "text"),
                _text_problem(work.text, "the area for further work", required=True),
            )
    for new, index in zip(answer.new_milestones, row_indices(answer.new_milestones), strict=True):
        if not objective_known(new.objective_id):
            continue
        period_id = row_field("new_milestones", new.objective_id, index, "period")
        if new.period.strip():
            check(period_id, period_problem(new.period, today))
        else:
            check(period_id, "Enter when the milestone is due, such as “Quarter 2 2024”.")
        check(
            row_field("new_milestones", new.objective_id, index, "text"),
            _text_problem(new.text, "what the milestone is", required=True),
        )
    return errors


# --- saving -------------------------------------------------------------------------------


class InvalidAnswer(ValueError):
    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = list(errors)


class Conflict(Exception):
    """Someone saved since the form was loaded; ``latest`` is their version."""

    def __init__(self, latest: RevisionView | None, revision_number: int) -> None:
        super().__init__(f"the answer has changed since revision was loaded ({revision_number})")
        self.latest = latest
        self.revision_number = revision_number


class NotEditable(Exception):
    """The answer cannot be changed now (submitted, approved, or the cycle is not open)."""


@dataclass(frozen=True)
class SaveResult:
    revision_number: int
    kind: RevisionKind
    state: RequestState
    applied: list[str] = field(default_factory=list)


def save_answer(
    session: Session,
    request_id: int,
    answer: Answer,
    *,
    submit: bool,
    base_revision: int,
    author: str,
    now: datetime,
    view: RequestView | None = None,
    timezone: str = "Pacific/Auckland",
) -> SaveResult:
    """Save ``answer`` as the next revision (in the caller's transaction; the caller commits).

    ``view``: the request's view if the caller has just loaded it in this session (the
    conditional update below still guards against a save or submission meanwhile).
    ``timezone``: where the agency is; whether a period has ended is judged by its date.
    Raises InvalidAnswer (nothing written), NotEditable, or Conflict when the request's
    revision number is no longer ``base_revision``."""
    if view is None or view.request_id != request_id:
        view = load_request_view(session, request_id)
    if not view.editable:
        raise NotEditable(_not_editable_reason(view))
    today = now.astimezone(ZoneInfo(timezone)).date()
    errors = validate_answer(view, answer, final=submit, today=today)
    if errors:
        raise InvalidAnswer(errors)
    # The revision holds only the fields of each milestone's chosen progress (text typed under
    # a choice later changed is not kept); the caller's answer stays as typed, so a page shown
    # after this save (a submission kept as a draft) still shows everything.
    answer = answer.chosen_only()
    number = base_revision + 1
    state = RequestState.SUBMITTED if submit else RequestState.DRAFT
    values: dict[str, object] = {
        "revision_number": number,
        "state": state,
        "last_activity_at": now,
    }
    if submit:
        values["submitted_at"] = now
    # The conditional UPDATE is the lock: of two saves based on the same revision, exactly one
    # matches (PostgreSQL re-checks the row after the first commits; SQLite serialises).
    updated = session.exec(
        sa.update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.revision_number) == base_revision,
            col(UpdateRequest.state).in_(EDITABLE_STATES),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        session.expire_all()
        current = session.get(UpdateRequest, request_id)
        latest = _latest_revision(session, request_id)
        if current is not None and current.revision_number == base_revision:
            raise NotEditable("The answer was submitted meanwhile; reopen it to change it.")
        raise Conflict(latest, current.revision_number if current else base_revision)
    kind = RevisionKind.SUBMITTED if submit else RevisionKind.DRAFT
    session.add(
        SubmissionRevision(
            update_request_id=request_id,
            number=number,
            kind=kind,
            content=answer.model_dump(mode="json"),
            author=author,
            created_at=now,
        )
    )
    applied: list[str] = []
    if submit:
        applied = _apply(session, view, answer, author=author, now=now)
    record(
        session,
        actor=author,
        action="request.submitted" if submit else "request.draft_saved",
        at=now,
        cycle_id=view.cycle_id,
        agency_id=view.agency_id,
        subject=f"update_request:{request_id}",
        detail={"revision": number, "changes": applied} if submit else {"revision": number},
    )
    session.flush()
    session.expire_all()
    return SaveResult(number, kind, state, applied)


def _not_editable_reason(view: RequestView) -> str:
    if view.cycle_state is not CycleState.OPEN:
        return (
            f"The {view.cycle_year} reporting cycle is {view.cycle_state.value}; answers are final."
        )
    if view.state is RequestState.SUBMITTED:
        return "The answer has been submitted; reopen it to change it."
    return "The coordinator has approved this answer; it can no longer be changed."


def reopen(session: Session, request_id: int, *, author: str, now: datetime) -> None:
    """Make a submitted answer editable again (until the cycle is approved)."""
    view = load_request_view(session, request_id)
    if not view.can_reopen:
        raise NotEditable(
            "Only a submitted answer can be reopened, while the cycle is open."
            if view.cycle_state is CycleState.OPEN
            else _not_editable_reason(view)
        )
    updated = session.exec(
        sa.update(UpdateRequest)
        .where(
            col(UpdateRequest.id) == request_id,
            col(UpdateRequest.state) == RequestState.SUBMITTED,
        )
        .values(state=RequestState.DRAFT, last_activity_at=now)
        .execution_options(synchronize_session=False)
    )
    if updated.rowcount != 1:
        raise NotEditable("The answer was changed meanwhile; reload the page.")
    record(
        session,
        actor=author,
        action="request.reopened",
        at=now,
        cycle_id=view.cycle_id,
        agency_id=view.agency_id,
        subject=f"update_request:{request_id}",
        detail={"revision": view.revision_number},
    )
    session.flush()
    session.expire_all()


def mark_opened(
    session: Session, request_id: int, token_id: int, *, author: str, now: datetime
) -> None:
    """The contact continued from the link: the request is opened (if not further along)."""
    request = session.get(UpdateRequest, request_id)
    if request is None:
        raise NotFound(f"no update request {request_id}")
    if request.state in (RequestState.PENDING, RequestState.SENT):
        request.state = RequestState.OPENED
    if request.opened_at is None:
        request.opened_at = now
    request.last_activity_at = now
    session.add(request)
    token = session.get(AccessToken, token_id)
    if token is not None:
        token.last_used_at = now
        session.add(token)
    cycle = session.get(Cycle, request.cycle_id)
    record(
        session,
        actor=author,
        action="request.opened",
        at=now,
        cycle_id=cycle.id if cycle else None,
        agency_id=request.agency_id,
        subject=f"update_request:{request_id}",
    )
    session.flush()


# --- applying a submission to the plan ----------------------------------------------------


def _apply(
    session: Session, view: RequestView, answer: Answer, *, author: str, now: datetime
) -> list[str]:
    """Milestone statuses, due-period revisions and new milestones from a submitted answer.
    Returns a short description of each change, for the audit log."""
    changes: list[str] = []
    ids = [item.milestone_id for item in answer.milestones if item.progress is not None]
    milestones = {
        m.id: m for m in session.exec(select(Milestone).where(col(Milestone.id).in_(ids)))
    }
    revisions: dict[int, list[MilestoneRevision]] = {}
    for revision in session.exec(
        select(MilestoneRevision)
        .where(col(MilestoneRevision.milestone_id).in_(ids))
        .order_by(col(MilestoneRevision.sequence))
    ):
        revisions.setdefault(revision.milestone_id, []).append(revision)
    for item in answer.milestones:
        milestone = milestones.get(item.milestone_id)
        if milestone is None or item.progress is None:
            continue
        history = revisions.get(item.milestone_id, [])
        this_year = history[-1] if history and history[-1].year == view.cycle_year else None
        if item.progress is MilestoneProgress.DELAYED:
            assert item.new_period is not None
            period = parse_period(item.new_period.strip())
            _delay(session, milestone, history, this_year, period, item.reason, view, author, now)
            changes.append(f"milestone:{milestone.id} delayed to {period.text}")
            continue
        if this_year is not None:
            # An earlier submission of this cycle delayed it; that answer has been replaced.
            _restore(milestone, this_year)
            session.delete(this_year)
        if item.progress is MilestoneProgress.COMPLETED:
            milestone.status = MilestoneStatus.COMPLETED
            milestone.completed_on = item.completed_on or now.date()
            milestone.status_note = None
        elif item.progress is MilestoneProgress.ON_TRACK:
            milestone.status = MilestoneStatus.ON_TRACK
            milestone.completed_on = None
            milestone.status_note = None
        else:
            milestone.status = MilestoneStatus.DROPPED
            milestone.completed_on = None
            milestone.status_note = (item.reason or "").strip() or None
        milestone.updated_at = now
        session.add(milestone)
        changes.append(f"milestone:{milestone.id} {item.progress.value}")
    changes.extend(_apply_new_milestones(session, view, answer, author=author, now=now))
    return changes


def _delay(
    session: Session,
    milestone: Milestone,
    history: list[MilestoneRevision],
    this_year: MilestoneRevision | None,
    period: Period,
    reason: str | None,
    view: RequestView,
    author: str,
    now: datetime,
) -> None:
    assert milestone.id is not None
    reason = (reason or "").strip() or None
    if this_year is not None:
        # Re-submitted in the same cycle: amend this year's revision, never add a second one.
        this_year.new_due_text, this_year.new_start, this_year.new_end = (
            period.text,
            period.start,
            period.end,
        )
        this_year.reason = reason
        this_year.changed_by = author
        this_year.changed_at = now
        session.add(this_year)
    elif (milestone.due_start, milestone.due_end) != (period.start, period.end):
        session.add(
            MilestoneRevision(
                milestone_id=milestone.id,
                sequence=(history[-1].sequence + 1) if history else 1,
                year=view.cycle_year,
                previous_due_text=milestone.due_text,
                previous_start=milestone.due_start,
                previous_end=milestone.due_end,
                new_due_text=period.text,
                new_start=period.start,
                new_end=period.end,
                reason=reason,
                changed_by=author,
                changed_at=now,
            )
        )
    milestone.due_text, milestone.due_start, milestone.due_end = (
        period.text,
        period.start,
        period.end,
    )
    milestone.status = MilestoneStatus.DELAYED
    milestone.status_note = reason
    milestone.completed_on = None
    if not period.has_ended(now.date()):
        milestone.slipped_on = None
    milestone.updated_at = now
    session.add(milestone)


def _restore(milestone: Milestone, revision: MilestoneRevision) -> None:
    milestone.due_text = revision.previous_due_text
    milestone.due_start = revision.previous_start
    milestone.due_end = revision.previous_end


def _apply_new_milestones(
    session: Session, view: RequestView, answer: Answer, *, author: str, now: datetime
) -> list[str]:
    changes: list[str] = []
    added_ids = _added_by_request(session, view.cycle_id, view.agency_id)
    existing: dict[tuple[int, str], Milestone] = {}
    if added_ids:
        for row in session.exec(
            select(Milestone).where(col(Milestone.id).in_(added_ids)).order_by(col(Milestone.id))
        ):
            existing.setdefault((row.objective_id, row.text.strip()), row)
    plan_id = session.exec(select(Cycle.plan_id).where(Cycle.id == view.cycle_id)).one()
    kept: set[int] = set()
    for new in answer.new_milestones:
        period = parse_period(new.period.strip())
        key = (new.objective_id, new.text.strip())
        milestone = existing.get(key)
        if milestone is None:
            milestone = Milestone(
                plan_id=plan_id,
                objective_id=new.objective_id,
                lead_agency_id=view.agency_id,
                text=new.text.strip(),
                first_reported_year=view.cycle_year,
                created_at=now,
            )
        milestone.due_text, milestone.due_start, milestone.due_end = (
            period.text,
            period.start,
            period.end,
        )
        milestone.status = MilestoneStatus.PLANNED
        milestone.status_note = None
        milestone.updated_at = now
        session.add(milestone)
        session.flush()
        assert milestone.id is not None
        kept.add(milestone.id)
        if key not in existing:
            existing[key] = milestone
            record(
                session,
                actor=author,
                action=ADDED_MILESTONE,
                at=now,
                cycle_id=view.cycle_id,
                agency_id=view.agency_id,
                subject=f"milestone:{milestone.id}",
                detail={"update_request_id": view.request_id},
            )
            changes.append(f"milestone:{milestone.id} added")
    for milestone in existing.values():
        if milestone.id not in kept and milestone.status is not MilestoneStatus.DROPPED:
            milestone.status = MilestoneStatus.DROPPED
            milestone.status_note = WITHDRAWN_NOTE
            milestone.updated_at = now
            session.add(milestone)
            changes.append(f"milestone:{milestone.id} withdrawn")
    return changes


def revisions(session: Session, request_id: int) -> list[RevisionView]:
    """Every saved revision of a request, oldest first."""
    return [
        _revision_view(r)
        for r in session.exec(
            select(SubmissionRevision)
            .where(SubmissionRevision.update_request_id == request_id)
            .order_by(col(SubmissionRevision.number))
        )
    ]
