"""The dashboard's milestones: find them by lead agency or text, and correct who leads one
(``models.milestone_leads``). Signed-in coordinators only; the change is a POST with CSRF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response

from models.contacts import ContactError, find_agency
from models.cycles import CycleError, find_plan
from models.milestone_leads import (
    STATUS_CHOICES,
    LeadError,
    MilestoneRow,
    change_lead,
    list_milestones,
    milestone_history,
)
from models.tables import Account, Agency, Milestone, Objective
from web.dashboard_routes import _guarded, _redirect, page
from web.deps import AppState
from web.security import require_csrf

router = APIRouter()

# A page lists at most this many (a plan may hold 20,000): narrow with the filters.
PAGE_ROWS = 200
MAX_REASON = 500


def _agencies(db: Session) -> list[Agency]:
    return list(db.exec(select(Agency).order_by(col(Agency.acronym))).all())


@router.get("/dashboard/milestones")
def milestones_page(
    request: Request,
    agency: Annotated[str, Query(max_length=100)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    plan: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        try:
            found = find_plan(db, plan)
        except CycleError as exc:
            raise LookupError(str(exc)) from exc
        error = None
        lead = None
        if agency:
            try:
                lead = find_agency(db, agency)
            except ContactError as exc:
                error = str(exc)
        rows: list[MilestoneRow] = []
        if error is None:
            try:
                rows = list_milestones(
                    db, found, agency=lead, search=q or None, status=status or None
                )
            except LeadError as exc:
                error = str(exc)
        return page(
            request,
            "milestones.html",
            plan=found,
            rows=rows[:PAGE_ROWS],
            total=len(rows),
            agencies=_agencies(db),
            agency=lead.acronym if lead else agency,
            q=q,
            status_filter=status,
            statuses=STATUS_CHOICES,
            error=error,
            coordinator=account.email,
        )

    return _guarded(request, work, post=False)


def _milestone_page(
    request: Request,
    db: Session,
    account: Account,
    milestone_id: int,
    *,
    error: str | None = None,
    chosen: str | None = None,
    reason: str = "",
) -> Response:
    milestone = db.get(Milestone, milestone_id)
    if milestone is None:
        raise LookupError(f"no milestone {milestone_id}")
    objective = db.get(Objective, milestone.objective_id)
    lead = db.get(Agency, milestone.lead_agency_id) if milestone.lead_agency_id else None
    return page(
        request,
        "milestone.html",
        422 if error else 200,
        milestone=milestone,
        objective=objective,
        lead=lead,
        agencies=_agencies(db),
        chosen=chosen if chosen is not None else (lead.acronym if lead else ""),
        reason=reason,
        history=milestone_history(db, milestone_id),
        error=error,
        coordinator=account.email,
    )


@router.get("/dashboard/milestones/{milestone_id}")
def milestone_page(request: Request, milestone_id: int) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        return _milestone_page(request, db, account, milestone_id)

    return _guarded(request, work, post=False)


@router.post("/dashboard/milestones/{milestone_id}/lead")
def change_lead_route(
    request: Request,
    milestone_id: int,
    csrf: Annotated[str, Form()] = "",
    agency: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=MAX_REASON * 2)] = "",
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        problem = None
        if not agency.strip():
            problem = "Choose the agency that leads this milestone."
        elif len(reason) > MAX_REASON:
            problem = f"The reason is {len(reason)} characters long; at most {MAX_REASON}."
        if problem is None:
            try:
                change = change_lead(
                    db,
                    milestone_id,
                    agency,
                    app.now(),
                    account.email,
                    reason=reason.strip() or None,
                )
            except (LeadError, ContactError) as exc:
                db.rollback()
                problem = str(exc)
        if problem is not None:
            return _milestone_page(
                request, db, account, milestone_id, error=problem, chosen=agency, reason=reason
            )
        was = change.previous.acronym if change.previous is not None else "nobody"
        flash = f"Milestone {milestone_id}: {change.lead.acronym} leads it now (was {was})."
        if change.added_request is not None and change.cycle is not None:
            flash += (
                f" {change.lead.acronym} had no update request in the open "
                f"{change.cycle.year} cycle: one was added, and the next sweep sends it."
            )
        return _redirect(f"/dashboard/milestones/{milestone_id}", flash, request)

    return _guarded(request, work, post=True)
