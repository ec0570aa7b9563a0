"""The dashboard's agencies: who is asked for each agency's update (its contacts, or its
parent's for a business unit with none), adding a contact and removing one who left.
Signed-in coordinators only; every change is a POST with CSRF and goes to the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import Response

from models.contacts import (
    ContactError,
    add_contact,
    agency_parents,
    agency_rows,
    deactivate_contact,
    find_agency,
    reached_through,
)
from models.tables import Account, Agency, Contact
from web.dashboard_routes import _guarded, _redirect, page
from web.deps import AppState
from web.security import require_csrf

router = APIRouter()


@dataclass(frozen=True)
class AgencyView:
    agency: Agency
    parent: str | None
    milestones_led: int
    contacts: list[Contact]
    # The ancestor whose contacts read for it when it has none of its own.
    through: str | None


def _agencies(db: Session) -> list[AgencyView]:
    contacts: dict[int, list[Contact]] = {}
    for contact in db.exec(
        select(Contact).where(col(Contact.active)).order_by(col(Contact.email))
    ).all():
        contacts.setdefault(contact.agency_id, []).append(contact)
    readers = {
        agency_id
        for agency_id, found in contacts.items()
        if any(not contact.is_coordinator for contact in found)
    }
    parents = agency_parents(db)
    acronyms = {a.id: a.acronym for a in db.exec(select(Agency)).all()}
    views = []
    for row in agency_rows(db):
        agency_id = row.agency.id or 0
        via = reached_through(agency_id, parents, readers)
        views.append(
            AgencyView(
                agency=row.agency,
                parent=row.parent,
                milestones_led=row.milestones_led,
                contacts=contacts.get(agency_id, []),
                through=acronyms.get(via) if via is not None and via != agency_id else None,
            )
        )
    return views


def _page(
    request: Request,
    db: Session,
    account: Account,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    return page(
        request,
        "agencies.html",
        422 if error else 200,
        agencies=_agencies(db),
        error=error,
        form={"agency": "", "email": "", "name": "", "coordinator": "", **(form or {})},
        coordinator=account.email,
    )


@router.get("/dashboard/agencies")
def agencies_page(request: Request) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        return _page(request, db, account)

    return _guarded(request, work, post=False)


@router.post("/dashboard/agencies/contacts")
def add_contact_route(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    agency: Annotated[str, Form(max_length=100)] = "",
    email: Annotated[str, Form(max_length=400)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    notify_url: Annotated[str, Form(max_length=2000)] = "",
    coordinator: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        try:
            if not agency.strip():
                raise ContactError("agency: choose the agency the contact works for")
            contact = add_contact(
                db,
                find_agency(db, agency),
                email,
                app.now(),
                name=name or None,
                notify_url=notify_url.strip() or None,
                coordinator=coordinator == "yes",
                actor=account.email,
                allow_private_hosts=app.settings.notify_private_hosts,
            )
        except ContactError as exc:
            db.rollback()
            # The notify URL is not sent back: it may hold credentials.
            kept = {"agency": agency, "email": email, "name": name, "coordinator": coordinator}
            return _page(request, db, account, error=str(exc), form=kept)
        role = "a coordinator" if contact.is_coordinator else "a contact"
        target = db.get(Agency, contact.agency_id)
        acronym = target.acronym if target is not None else agency
        return _redirect(
            f"/dashboard/agencies#agency-{acronym}",
            f"{contact.email} is now {role} of {acronym}.",
            request,
        )

    return _guarded(request, work, post=True)


@router.post("/dashboard/contacts/{contact_id}/remove")
def remove_contact_route(
    request: Request, contact_id: int, csrf: Annotated[str, Form()] = ""
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        try:
            contact = deactivate_contact(db, contact_id, app.now(), account.email)
        except ContactError as exc:
            raise LookupError(str(exc)) from exc
        return _redirect(
            "/dashboard/agencies",
            f"{contact.email} gets no more messages (kept in the audit log).",
            request,
        )

    return _guarded(request, work, post=True)
