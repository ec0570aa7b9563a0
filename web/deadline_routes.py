"""The dashboard's deadline page: a cycle's deadline and each agency's own (an extension),
moving the one or granting the other. Signed-in coordinators only; a change is a POST with
CSRF, goes to the audit log (``models.cycles.change_deadline``), and the agencies still to
answer are told through the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response

from models.cycles import AWAITING_ANSWER, CycleError, change_deadline, deadline_of
from models.tables import Account, Agency, Cycle, CycleState, Plan, UpdateRequest
from web.dashboard_routes import _cycle, _enqueue, _guarded, _redirect, page
from web.deps import AppState
from web.security import require_csrf

router = APIRouter()


@dataclass(frozen=True)
class AgencyDeadline:
    agency: Agency
    request: UpdateRequest
    deadline: date
    extended: bool
    # Still owes its answer: its deadline can be extended.
    awaiting: bool


def _rows(db: Session, cycle: Cycle) -> list[AgencyDeadline]:
    rows = db.exec(
        select(UpdateRequest, Agency)
        .join(Agency, col(Agency.id) == UpdateRequest.agency_id)
        .where(col(UpdateRequest.cycle_id) == cycle.id)
        .order_by(col(Agency.acronym))
    ).all()
    return [
        AgencyDeadline(
            agency=agency,
            request=request,
            deadline=deadline_of(request, cycle),
            extended=deadline_of(request, cycle) != cycle.deadline,
            awaiting=request.state in AWAITING_ANSWER,
        )
        for request, agency in rows
    ]


def _page(
    request: Request,
    db: Session,
    account: Account,
    cycle: Cycle,
    plan: Plan,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "deadline.html",
        422 if error else 200,
        cycle=cycle,
        plan=plan,
        agencies=_rows(db, cycle),
        is_open=cycle.state == CycleState.OPEN,
        error=error,
        form={"deadline": "", "agency": "", "reason": "", **(form or {})},
        coordinator=account.email,
    )


@router.get("/dashboard/cycles/{cycle_id}/deadline")
def deadline_page(request: Request, cycle_id: int) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        return _page(request, db, account, cycle, plan)

    return _guarded(request, work, post=False)


@router.post("/dashboard/cycles/{cycle_id}/deadline")
def change_deadline_route(
    request: Request,
    cycle_id: int,
    csrf: Annotated[str, Form()] = "",
    deadline: Annotated[str, Form(max_length=40)] = "",
    agency: Annotated[str, Form(max_length=100)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    require_csrf(request, csrf)
    claimed: list[int] = []

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        kept = {"deadline": deadline, "agency": agency, "reason": reason}
        try:
            new = date.fromisoformat(deadline.strip())
        except ValueError:
            error = f"New deadline: “{deadline.strip()}” is not a date; pick one (YYYY-MM-DD)."
            return _page(request, db, account, cycle, plan, error=error, form=kept)
        try:
            change = change_deadline(
                db,
                cycle,
                new,
                app.now(),
                account.email,
                agency_name=agency.strip() or None,
                reason=reason,
                timezone=app.settings.timezone,
            )
        except CycleError as exc:
            db.rollback()
            return _page(request, db, account, cycle, plan, error=str(exc), form=kept)
        claimed.extend(change.notification_ids)
        who = change.agency.acronym + "'s" if change.agency else f"The {cycle.year}"
        told = ", ".join(m.agency.acronym for m in change.moved) or "nobody"
        return _redirect(
            f"/dashboard/cycles/{cycle_id}/deadline",
            f"{who} deadline is now {new.isoformat()}. Told: {told} "
            f"({len(claimed)} message(s) to send).",
            request,
        )

    # Enqueued once ``_guarded`` has committed them: the worker must find the rows.
    response = _guarded(request, work, post=True)
    _enqueue(request, claimed)
    return response
