"""Rendering a notification row into a message, from its templates and the database.

Templates by naming convention: ``emails/{kind}-subject.txt``, ``emails/{kind}-body.txt`` and
``emails/{kind}-body.html`` (autoescaped). A notification's context holds ids only; everything
shown is re-read here, at send time, so a retried message shows the current state.

A message that carries the agency's link gets a fresh token tied to the notification
(``models.tokens.issue_token``): a retried send revokes the token of its failed attempt, so at
most one link per message works.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import jinja2
import sqlalchemy as sa
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from models import audit
from models.contacts import agencies_with_contacts, agency_parents, reached_through
from models.cycles import (
    DEADLINE_CHANGED,
    LINK_REISSUED,
    OPEN_MILESTONE,
    UPDATE_REQUEST,
    deadline_of,
    mark_request_sent,
)
from models.periods import MONTH_NAMES
from models.tables import (
    Agency,
    AnnualReport,
    Contact,
    Cycle,
    CycleState,
    Milestone,
    Notification,
    Objective,
    ObjectiveReport,
    Pillar,
    Plan,
    RequestState,
    UpdateRequest,
)
from models.tables import ObjectiveReportAgency as ActiveAgency
from models.tokens import issue_token
from templates import environment

DELIVERY_FAILED = "delivery_failed"
NO_LINK_KINDS = (DELIVERY_FAILED, "published")
# The review's kinds (their view: models.publishing.message_view).
REVIEW_KINDS = ("changes_requested", "published")
KINDS = (
    UPDATE_REQUEST,
    "reminder",
    "escalation",
    "slipped",
    LINK_REISSUED,
    DEADLINE_CHANGED,
    DELIVERY_FAILED,
    *REVIEW_KINDS,
)
KIND_LABELS = {
    UPDATE_REQUEST: "update request",
    "reminder": "reminder",
    "escalation": "overdue notice",
    "slipped": "slipped milestones notice",
    LINK_REISSUED: "new link",
    DEADLINE_CHANGED: "new deadline notice",
    DELIVERY_FAILED: "delivery failure notice",
    "changes_requested": "request for changes",
    "published": "publication notice",
}
_STATE_LABELS = {
    RequestState.PENDING: "not sent yet",
    RequestState.SENT: "sent, not opened",
    RequestState.OPENED: "opened, nothing saved",
    RequestState.DRAFT: "draft saved, not submitted",
    RequestState.SUBMITTED: "submitted",
    RequestState.CHANGES_REQUESTED: "changes requested",
    RequestState.APPROVED: "approved",
}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


def render_message(
    session: Session,
    notification: Notification,
    now: datetime,
    *,
    base_url: str | None = None,
    timezone: str | None = None,
) -> Message:
    """The message for ``notification`` at ``now`` (issuing its link token when it has one)."""
    if notification.kind not in KINDS:
        raise ValueError(f"no templates for the notification kind {notification.kind!r}")
    if base_url is None or timezone is None:
        from config.settings import get_settings

        settings = get_settings()
        base_url = base_url or settings.base_url
        timezone = timezone or settings.timezone
    view = _View(session, notification, now, base_url.rstrip("/"), ZoneInfo(timezone)).build()
    name = f"emails/{notification.kind}"
    # The subject is plain text; the HTML body shows it through {{ subject }} (escaped).
    subject = " ".join(_render(f"{name}-subject.txt", view).split())
    view["subject"] = subject
    return Message(
        subject=subject,
        text=_tidy(_render(f"{name}-body.txt", view)),
        html=_render(f"{name}-body.html", view),
    )


def _tidy(text: str) -> str:
    """The plain text without what its templates' optional parts leave behind: spaces at a
    line's end, runs of blank lines, blank lines at the start or end (one final newline)."""
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


_BLANK_RUNS = re.compile(r"\n{3,}")


def _render(template: str, view: dict[str, Any]) -> str:
    return _mail_templates().get_template(template).render(view)


@functools.cache
def _mail_templates() -> jinja2.Environment:
    """The one environment's settings, without its check of every template file (and each
    one it includes) for changes at every message: a process that sends mail loads a
    template once (restart a worker to change its messages, as for its code)."""
    return environment().overlay(auto_reload=False)


def after_sent(session: Session, notification: Notification, now: datetime) -> None:
    """A message went out: a pending request whose link it carried is now sent."""
    context = notification.context or {}
    request_id = context.get("update_request_id")
    if request_id is None or context.get("audience", "agency") != "agency":
        return
    if request_id in _requests_not_pending(session):
        return  # past pending when the message was rendered: nothing to mark, no query
    request = session.get(UpdateRequest, request_id)
    if request is None or request.state != RequestState.PENDING:
        return
    if not mark_request_sent(session, request_id, now):
        return  # another process moved it on since this session read it
    _requests_not_pending(session).add(request_id)
    audit.record(
        session,
        actor="delivery",
        action="request.sent",
        at=now,
        cycle_id=notification.cycle_id,
        agency_id=notification.agency_id,
        subject=f"update_request:{request_id}",
        detail={"notification_id": notification.id, "kind": notification.kind},
    )


def _requests_not_pending(session: Session) -> set[int]:
    """Update requests this session has seen past "pending" (sent, opened …): a request never
    goes back to pending, so a message sent for one of them has no request to mark sent.
    Kept for the session's life (a batch of messages): the set never goes stale."""
    seen: set[int] = session.info.setdefault("reportcycle.requests_not_pending", set())
    return seen


# --- the view the templates see -----------------------------------------------------------

# Built once, with parameters: building a statement costs more than running it here.
# The agency, update request, cycle (the request's when none is named) and plan of a message.
_PRELOAD = (
    select(UpdateRequest, Cycle, Plan, Agency)
    .select_from(sa.select(sa.literal(1)).subquery())
    .outerjoin(UpdateRequest, col(UpdateRequest.id) == sa.bindparam("request_id", type_=sa.Integer))
    .outerjoin(
        Cycle,
        col(Cycle.id)
        == sa.func.coalesce(sa.bindparam("cycle_id", type_=sa.Integer), UpdateRequest.cycle_id),
    )
    .outerjoin(Plan, col(Plan.id) == Cycle.plan_id)
    .outerjoin(Agency, col(Agency.id) == sa.bindparam("agency_id", type_=sa.Integer))
)
_MILESTONES = (
    select(Milestone, Objective, Pillar)
    .join(Objective, col(Objective.id) == Milestone.objective_id)
    .join(Pillar, col(Pillar.id) == Objective.pillar_id)
    .where(col(Milestone.id).in_(sa.bindparam("milestone_ids", expanding=True)))
)


def long_date(day: date) -> str:
    """ "Friday 2 December 2022" (English names whatever the process locale)."""
    return f"{_DAYS[day.weekday()]} {day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _short_date(day: date) -> str:
    """ "31 March 2022": the date in a subject line."""
    return f"{day.day} {MONTH_NAMES[day.month - 1]} {day.year}"


def days_until(day: date, today: date) -> str:
    days = (day - today).days
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days > 1:
        return f"in {days} days"
    if days == -1:
        return "yesterday"
    return f"{-days} days ago"


_Row = TypeVar("_Row", UpdateRequest, Cycle, Plan, Agency)
_HELD = "reportcycle.messages.held"


class _View:
    def __init__(
        self, session: Session, notification: Notification, now: datetime, base: str, zone: Any
    ) -> None:
        self.session = session
        self.n = notification
        self.now = now
        self.base = base
        self.today = now.astimezone(zone).date()
        self.context: dict[str, Any] = dict(notification.context or {})
        self.audience = str(self.context.get("audience", "agency"))

    def build(self) -> dict[str, Any]:
        session, context = self.session, self.context
        contact = session.get(Contact, self.n.contact_id) if self.n.contact_id else None
        agency_id = context.get("agency_id", self.n.agency_id)
        request_id = context.get("update_request_id")
        cycle_id = context.get("cycle_id", self.n.cycle_id)
        request, cycle, plan, agency = self._preload(agency_id, request_id, cycle_id)
        if request is not None and request.id and request.state != RequestState.PENDING:
            _requests_not_pending(session).add(request.id)
        link = None
        # A link only while its cycle is open: a notice after publication carries none.
        if (
            request is not None
            and self.audience == "agency"
            and self.n.kind not in NO_LINK_KINDS
            and cycle is not None
            and cycle.state == CycleState.OPEN
        ):
            token = issue_token(
                session,
                request,
                self.now,
                notification_id=self.n.id,
                first_attempt=self.n.attempts == 1,
            )
            link = f"{self.base}/r/{token}"
        milestone_ids = [int(m) for m in context.get("milestone_ids", [])]
        slipped_ids = [int(m) for m in context.get("slipped_milestone_ids", [])]
        escalations = list(context.get("escalations", []))
        deadline_days = context.get("deadline_days")
        view: dict[str, Any] = {
            "kind": self.n.kind,
            "audience": self.audience,
            "name": (contact.name if contact and contact.name else None),
            "agency": _agency(agency),
            "routed_via": self._routed_via(contact, agency),
            "plan_title": plan.title if plan else _any_plan_title(session),
            "cycle": self._cycle(cycle, request),
            "link": link,
            "base_url": self.base,
            "objectives": [],
            "reminders": self._groups(milestone_ids),
            "deadline": None,
            "escalations": self._escalations(escalations),
            "slipped": self._groups(slipped_ids, with_lead=self.audience == "coordinator"),
            "failure": None,
            "dashboard": None,
        }
        view["reminder_count"] = sum(len(g["milestones"]) for g in view["reminders"])
        # The subject names the first period end: an inbox shows how soon without opening it.
        ends = [m["end"] for g in view["reminders"] for m in g["milestones"] if m["end"]]
        view["reminder_first_end"] = _short_date(min(ends)) if ends else None
        view["slipped_count"] = sum(len(g["milestones"]) for g in view["slipped"])
        if self.n.kind in (UPDATE_REQUEST, LINK_REISSUED) and agency is not None and plan:
            view["objectives"] = self._agency_objectives(agency, plan)
        if deadline_days is not None and cycle is not None:
            due = deadline_of(request, cycle) if request is not None else cycle.deadline
            view["deadline"] = {"days": int(deadline_days), "when": days_until(due, self.today)}
        if self.n.kind == DEADLINE_CHANGED and context.get("previous_deadline"):
            view["deadline_change"] = {
                "previous": long_date(date.fromisoformat(str(context["previous_deadline"]))),
                "reason": context.get("reason"),
            }
        if self.n.kind in REVIEW_KINDS:
            from models.publishing import message_view

            view.update(message_view(session, self.n, request, self.base))
        if self.n.kind == DELIVERY_FAILED:
            failed_kind = str(context.get("failed_kind"))
            label = KIND_LABELS.get(failed_kind, "message")
            view["failure"] = {
                "kind": ("an " if label[0] in "aeiou" else "a ") + label,
                "recipient": str(context.get("failed_recipient", "an unknown recipient")),
                "error": str(context.get("error", "no reason given")),
                "notification_id": context.get("failed_notification_id"),
                # Only a message that carried the agency's link is worth resending.
                "resend": failed_kind not in NO_LINK_KINDS,
            }
        view["dashboard"] = self._dashboard(view["escalations"], slipped_ids)
        return view

    def _dashboard(
        self, escalations: list[dict[str, Any]], slipped_ids: list[int]
    ) -> dict[str, str] | None:
        """Where on the dashboard a coordinator's message sends them to act: the cycle's
        overview for late agencies, the milestones for slips, the agencies page (to add a
        contact) for a failed delivery. None for an agency's message."""
        if self.n.kind == DELIVERY_FAILED:
            return {"url": f"{self.base}/dashboard/agencies#add", "label": "Agencies and contacts"}
        if self.audience != "coordinator":
            return None
        if escalations:
            cycles = {e["cycle_id"] for e in escalations}
            if len(cycles) == 1:
                (cycle_id,) = cycles
                year = escalations[0]["year"]
                url = f"{self.base}/dashboard/cycles/{cycle_id}#agencies"
                return {"url": url, "label": f"The {year} cycle's agencies"}
            return {"url": f"{self.base}/dashboard", "label": "The reporting cycles"}
        if slipped_ids:
            return {"url": f"{self.base}/dashboard/milestones", "label": "The milestones"}
        return None

    def _preload(
        self, agency_id: int | None, request_id: int | None, cycle_id: int | None
    ) -> tuple[UpdateRequest | None, Cycle | None, Plan | None, Agency | None]:
        """The update request, cycle (the request's when none is named), plan and agency in
        one query instead of four (each None when not named or not found)."""
        if not (agency_id or request_id or cycle_id):
            return None, None, None, None
        known = self._in_session(agency_id, request_id, cycle_id)
        if known is not None:
            return known
        row = self.session.exec(
            _PRELOAD,
            params={
                "request_id": request_id or None,
                "cycle_id": cycle_id or None,
                "agency_id": agency_id or None,
            },
        ).first()
        if row is None:
            return None, None, None, None
        request, cycle, plan, agency = row
        # The session's identity map holds its objects weakly: kept here, they are still in it
        # for the next message of the batch (``_in_session``).
        held: dict[tuple[type, int], object] = self.session.info.setdefault(_HELD, {})
        for found in (request, cycle, plan, agency):
            if found is not None and found.id is not None:
                held[(type(found), found.id)] = found
        return request, cycle, plan, agency

    def _in_session(
        self, agency_id: int | None, request_id: int | None, cycle_id: int | None
    ) -> tuple[UpdateRequest | None, Cycle, Plan, Agency | None] | None:
        """The same four rows when an earlier message of this session (a batch) loaded them
        all: a sweep's batch holds many messages for one cycle and for each agency's several
        contacts. None when one of them is not in the session: the query reads them."""
        request = self._known(UpdateRequest, request_id) if request_id else None
        if request_id and request is None:
            return None
        cycle_id = cycle_id or (request.cycle_id if request is not None else None)
        cycle = self._known(Cycle, cycle_id) if cycle_id else None
        plan = self._known(Plan, cycle.plan_id) if cycle is not None else None
        if cycle is None or plan is None:
            return None
        agency = self._known(Agency, agency_id) if agency_id else None
        if agency_id and agency is None:
            return None
        return request, cycle, plan, agency

    def _known(self, model: type[_Row], row_id: int) -> _Row | None:
        """The row if this session holds it (no query)."""
        found = self.session.identity_map.get(identity_key(model, row_id))
        return found if isinstance(found, model) else None

    def _cycle(self, cycle: Cycle | None, request: UpdateRequest | None) -> dict[str, Any] | None:
        if cycle is None:
            return None
        # The agency's own deadline when it was given an extension.
        deadline = deadline_of(request, cycle) if request is not None else cycle.deadline
        return {
            "year": cycle.year,
            "deadline": long_date(deadline),
            "deadline_when": days_until(deadline, self.today),
            "past_deadline": self.today > deadline,
            "extended": deadline != cycle.deadline,
        }

    def _groups(self, milestone_ids: list[int], *, with_lead: bool = False) -> list[dict[str, Any]]:
        if not milestone_ids:
            return []
        rows = self.session.exec(_MILESTONES, params={"milestone_ids": milestone_ids}).all()
        if not with_lead:
            return _group(rows, self.today, None)
        leads = self._agency_names({m.lead_agency_id for m, _o, _p in rows if m.lead_agency_id})
        return _group(rows, self.today, leads)

    def _routed_via(self, contact: Contact | None, agency: Agency | None) -> dict[str, str] | None:
        """The parent agency whose contact receives a business unit's message (INZ through
        MBIE), so the message says why it came to them; None when it is the agency's own."""
        if (
            self.audience != "agency"
            or contact is None
            or agency is None
            or contact.is_coordinator
            or contact.agency_id == agency.id
        ):
            return None
        return _agency(self.session.get(Agency, contact.agency_id))

    def _agency_names(self, ids: set[int]) -> dict[int, str]:
        if not ids:
            return {}
        agencies = self.session.exec(select(Agency).where(col(Agency.id).in_(ids))).all()
        return {a.id: a.acronym for a in agencies if a.id is not None}

    def _escalations(self, escalations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = [int(e["update_request_id"]) for e in escalations]
        if not ids:
            return []
        rows = self.session.exec(
            select(UpdateRequest, Agency, Cycle)
            .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
            .join(Cycle, col(Cycle.id) == UpdateRequest.cycle_id)
            .where(col(UpdateRequest.id).in_(ids))
            .order_by(col(Agency.acronym))
        ).all()
        with_contacts = agencies_with_contacts(self.session)
        # A business unit without contacts is reached through its parent's (INZ → MBIE).
        parents = agency_parents(self.session)
        return [
            {
                "acronym": agency.acronym,
                "name": agency.full_name,
                "cycle_id": cycle.id,
                "year": cycle.year,
                "contacts": reached_through(agency.id or 0, parents, with_contacts) is not None,
                "deadline": long_date(deadline_of(request, cycle)),
                "days_late": max((self.today - deadline_of(request, cycle)).days, 0),
                "state": _STATE_LABELS.get(request.state, request.state.value),
            }
            for request, agency, cycle in rows
        ]

    def _agency_objectives(self, agency: Agency, plan: Plan) -> list[dict[str, Any]]:
        """The agency's open milestones grouped by objective, and the objectives it is active
        on in the latest report (possibly with no milestones of its own)."""
        rows = self.session.exec(
            select(Milestone, Objective, Pillar)
            .join(Objective, col(Objective.id) == Milestone.objective_id)
            .join(Pillar, col(Pillar.id) == Objective.pillar_id)
            .where(
                col(Milestone.plan_id) == plan.id,
                col(Milestone.lead_agency_id) == agency.id,
                col(Milestone.status).in_(OPEN_MILESTONE),
            )
        ).all()
        groups = _group(rows, self.today, None)
        latest = self.session.exec(
            select(AnnualReport.id)
            .where(col(AnnualReport.plan_id) == plan.id)
            .order_by(col(AnnualReport.year).desc())
        ).first()
        if latest is not None:
            active = self.session.exec(
                select(Objective, Pillar)
                .join(Pillar, col(Pillar.id) == Objective.pillar_id)
                .join(ObjectiveReport, col(ObjectiveReport.objective_id) == Objective.id)
                .join(ActiveAgency, col(ActiveAgency.objective_report_id) == ObjectiveReport.id)
                .where(
                    col(ObjectiveReport.annual_report_id) == latest,
                    col(ActiveAgency.agency_id) == agency.id,
                )
            ).all()
            titles = {g["title"] for g in groups}
            for objective, pillar in active:
                if objective.title not in titles:
                    groups.append(_empty_group(objective, pillar))
            groups.sort(key=lambda g: g["order"])
        return groups


def _agency(agency: Agency | None) -> dict[str, str] | None:
    if agency is None:
        return None
    return {"acronym": agency.acronym, "name": agency.full_name}


def _any_plan_title(session: Session) -> str:
    plan = session.exec(select(Plan).order_by(col(Plan.id))).first()
    return plan.title if plan else "the plan"


def _empty_group(objective: Objective, pillar: Pillar) -> dict[str, Any]:
    return {
        "title": objective.title,
        "pillar": pillar.name,
        "order": (pillar.position, objective.position),
        "milestones": [],
    }


def _group(rows: Any, today: date, leads: dict[int, str] | None) -> list[dict[str, Any]]:
    """Milestones grouped by objective (plan order), each in due order."""
    groups: dict[int, dict[str, Any]] = {}
    members: dict[int, list[tuple[tuple[date, date, int], dict[str, Any]]]] = defaultdict(list)
    for milestone, objective, pillar in rows:
        assert objective.id is not None
        groups.setdefault(objective.id, _empty_group(objective, pillar))
        end = milestone.due_end
        members[objective.id].append(
            (
                (milestone.due_start or date.max, end or date.max, milestone.id or 0),
                {
                    "text": milestone.text,
                    "due": milestone.due_text or "no due date",
                    "due_end": long_date(end) if end else None,
                    "end": end,
                    "when": days_until(end, today) if end else None,
                    "lead": (leads or {}).get(milestone.lead_agency_id or 0),
                    "status": milestone.status.value.replace("_", " "),
                },
            )
        )
    ordered = sorted(groups.items(), key=lambda item: item[1]["order"])
    result = []
    for objective_id, group in ordered:
        group["milestones"] = [view for _key, view in sorted(members[objective_id], key=_first)]
        result.append(group)
    return result


def _first(pair: tuple[tuple[date, date, int], dict[str, Any]]) -> tuple[date, date, int]:
    return pair[0]
