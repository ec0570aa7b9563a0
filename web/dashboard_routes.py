"""The coordinator dashboard, under ``/dashboard``, and the published reports, under
``/reports``.

- Sign-in with email and password (argon2, ``models.accounts``): failed attempts are limited
  per client address (in memory) and per account (in the database); the signed-in session
  lasts ``WebOptions.session_max_age_seconds`` from sign-in; sign-in rotates the CSRF token.
- Every POST checks the session's CSRF token (``web.security``); a GET never changes state.
- Pages: the cycles, a cycle's overview (requests, messages and their delivery, milestone
  status with an inline SVG chart, who has not answered, versions), the draft as the report
  reads with each entry's agency and edit/move controls, a redline between any two versions
  or against last year's report, the audit log (and its CSV).
- Messages claimed here (requests for changes, publication notices) are handed to the worker
  after the commit; if the broker is away the next sweep re-enqueues them.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter, Form, Query
from jinja2 import pass_context
from jinja2.runtime import Context
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from models import accounts, drafts, publishing
from models.clock import as_aware
from models.compiler import ReportNotFound, build_document
from models.document import ReportDocument
from models.overview import STATUS_KEYS, STATUS_LABELS, overview, status_chart
from models.redline import redline_documents
from models.render import Format, agency_label, milestone_line, render
from models.render.markup import http_url
from models.tables import Account, Cycle, Plan, ReportVersion, UpdateRequest, VersionState
from templates import environment
from templates import render as render_template
from web.deps import AppState, state_of
from web.security import CSRF_SESSION_KEY, RateLimiter, client_address, csrf_token, require_csrf

router = APIRouter()
log = logging.getLogger(__name__)

SESSION_ACCOUNT = "dash_account"
SESSION_SINCE = "dash_since"
SESSION_KEY = "dash_key"
SESSION_FLASH = "dash_flash"
SIGNIN_ATTEMPTS = 10
SIGNIN_WINDOW_SECONDS = 300.0
MEDIA_TYPES = {
    Format.HTML: "text/html; charset=utf-8",
    Format.TXT: "text/plain; charset=utf-8",
    Format.MD: "text/markdown; charset=utf-8",
    Format.CSV: "text/csv; charset=utf-8",
    Format.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


class SignInRequired(Exception):
    pass


# --- plumbing ---------------------------------------------------------------------------------


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    limiter = getattr(state, "dashboard_signin_limiter", None)
    if not isinstance(limiter, RateLimiter):
        limiter = RateLimiter(SIGNIN_ATTEMPTS, SIGNIN_WINDOW_SECONDS)
        state.dashboard_signin_limiter = limiter
    return limiter


def _enqueue(request: Request, ids: Iterable[int]) -> None:
    """Hand claimed messages to the worker; tests set ``app.state.dashboard_enqueue``."""
    wanted = list(ids)
    if not wanted:
        return
    hook = getattr(request.app.state, "dashboard_enqueue", None)
    if callable(hook):
        hook(wanted)
        return
    try:
        from config.celery import SEND_TASK
        from worker.app import celery_app

        for notification_id in wanted:
            celery_app.send_task(SEND_TASK, args=[notification_id])
    except Exception as exc:  # the broker is away: the sweep re-enqueues pending rows
        log.warning("messages %s left for the next sweep: %s", wanted, type(exc).__name__)


def _filters() -> None:
    environment().filters.update(
        milestone_line=milestone_line,
        agency_label=agency_label,
        http_url=http_url,
        local_time=local_time,
    )


@pass_context
def local_time(context: Context, moment: datetime, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """An instant in the coordinators' time zone (settings; the page passes ``timezone``):
    the dashboard is read in Wellington, not in UTC."""
    zone = ZoneInfo(str(context.get("timezone") or "Pacific/Auckland"))
    return as_aware(moment).astimezone(zone).strftime(fmt)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    _filters()
    flash = request.session.pop(SESSION_FLASH, None)
    html = render_template(
        f"dashboard/{name}",
        csrf=csrf_token(request),
        timezone=state_of(request).settings.timezone,
        coordinator=context.pop("coordinator", None),
        flash=flash if isinstance(flash, str) else None,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def _redirect(url: str, flash: str | None = None, request: Request | None = None) -> Response:
    if flash and request is not None:
        request.session[SESSION_FLASH] = flash
    return RedirectResponse(url, status_code=303)


def _signed_in(request: Request, db: Session) -> Account | None:
    app = state_of(request)
    account_id = request.session.get(SESSION_ACCOUNT)
    since = request.session.get(SESSION_SINCE)
    if not isinstance(account_id, int) or not isinstance(since, str):
        return None
    try:
        started = datetime.fromisoformat(since)
    except ValueError:
        return None
    age = app.now() - started
    if age > timedelta(seconds=app.options.session_max_age_seconds) or age < -timedelta(minutes=5):
        _sign_out(request)
        return None
    account = db.get(Account, account_id)
    key = request.session.get(SESSION_KEY)
    if (
        account is None
        or not isinstance(key, str)
        or not hmac.compare_digest(key, accounts.session_key(account))
    ):
        # The account is gone or its password was set again since this sign-in.
        _sign_out(request)
        return None
    return account


def _sign_out(request: Request) -> None:
    for key in (SESSION_ACCOUNT, SESSION_SINCE, SESSION_KEY):
        request.session.pop(key, None)


def _require(request: Request, db: Session) -> Account:
    account = _signed_in(request, db)
    if account is None:
        raise SignInRequired
    return account


def _cycle(db: Session, cycle_id: int) -> tuple[Cycle, Plan]:
    cycle = db.get(Cycle, cycle_id)
    plan = db.get(Plan, cycle.plan_id) if cycle else None
    if cycle is None or plan is None:
        raise LookupError(f"no cycle {cycle_id}")
    return cycle, plan


def _guarded(
    request: Request, work: Callable[[AppState, Session, Account], Response], *, post: bool
) -> Response:
    """Open a session, check the sign-in, run ``work``; sign-in required → the sign-in page
    (nothing done); a bad request → the message page; commit only what ``work`` did."""
    app = state_of(request)
    with app.session() as db:
        try:
            account = _require(request, db)
        except SignInRequired:
            if post:
                return _redirect("/dashboard/signin", "Sign in first.", request)
            return _redirect("/dashboard/signin")
        try:
            response = work(app, db, account)
        except LookupError as exc:
            db.rollback()
            return page(
                request,
                "message.html",
                404,
                heading="Not found",
                message=str(exc),
                coordinator=account.email,
            )
        except sa.exc.IntegrityError:
            db.rollback()
            return page(
                request,
                "message.html",
                409,
                heading="Someone else changed the draft",
                message="Another change to this report was saved at the same moment. "
                "Go back, reload the page and try again.",
                coordinator=account.email,
            )
        except (drafts.DraftError, publishing.ReviewError) as exc:
            db.rollback()
            return page(
                request,
                "message.html",
                409,
                heading="That cannot be done now",
                message=str(exc),
                coordinator=account.email,
            )
        db.commit()
        return response


# --- sign-in -------------------------------------------------------------------------------------


@router.get("/dashboard/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> Response:
    with state_of(request).session() as db:
        if _signed_in(request, db) is not None:
            return _redirect("/dashboard")
    return page(request, "signin.html", email="", error=None)


@router.post("/dashboard/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=accounts.MAX_PASSWORD_LENGTH)] = "",
) -> Response:
    require_csrf(request, csrf)
    app = state_of(request)
    address = client_address(request)
    limiter = _limiter(request)
    if not limiter.hit(f"signin:{address}"):
        response = page(
            request,
            "signin.html",
            429,
            email=email,
            error="Too many sign-in attempts from here. Wait a few minutes.",
        )
        response.headers["Retry-After"] = str(limiter.retry_after(f"signin:{address}"))
        return response
    with app.session() as db:
        result = accounts.authenticate(db, email, password, app.now(), client=address)
        db.commit()
        if result.locked:
            return page(
                request,
                "signin.html",
                429,
                email=email,
                error="Too many failed attempts for this account. Wait 15 minutes.",
            )
        if result.account is None or result.account.id is None:
            return page(
                request,
                "signin.html",
                401,
                email=email,
                error="The email or the password is not right.",
            )
        # A fresh CSRF token for the signed-in session (no fixation from before).
        request.session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
        request.session[SESSION_ACCOUNT] = result.account.id
        request.session[SESSION_SINCE] = app.now().isoformat()
        request.session[SESSION_KEY] = accounts.session_key(result.account)
    return _redirect("/dashboard")


@router.post("/dashboard/signout")
def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    require_csrf(request, csrf)
    _sign_out(request)
    return _redirect("/dashboard/signin", "Signed out.", request)


# --- cycles and the overview ------------------------------------------------------------------


@router.get("/dashboard", response_class=HTMLResponse)
def cycles_page(request: Request) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        rows = db.exec(
            select(Cycle, Plan)
            .join(Plan, col(Plan.id) == Cycle.plan_id)
            .order_by(col(Cycle.year).desc(), col(Plan.slug))
        ).all()
        return page(request, "cycles.html", cycles=rows, coordinator=account.email)

    return _guarded(request, work, post=False)


@router.get("/dashboard/cycles/{cycle_id}", response_class=HTMLResponse)
def overview_page(request: Request, cycle_id: int) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        view = overview(db, cycle)
        notes = drafts.review_notes(db, cycle, entries=False)
        signoffs = {s.request_id: s for s in publishing.section_signoffs(db, cycle).values()}
        return page(
            request,
            "overview.html",
            view=view,
            notes=notes,
            signoffs=signoffs,
            chart=status_chart(view.objectives),
            stale=drafts.submitted_since_compile(db, cycle) if view.latest else None,
            status_keys=STATUS_KEYS,
            status_labels=STATUS_LABELS,
            coordinator=account.email,
        )

    return _guarded(request, work, post=False)


@router.post("/dashboard/cycles/{cycle_id}/compile")
def compile_draft(request: Request, cycle_id: int, csrf: Annotated[str, Form()] = "") -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        result = drafts.compile_cycle_result(db, cycle, app.now(), account.email)
        flash = (
            f"Compiled draft version {result.version.number}."
            if result.created
            else f"Nothing changed since version {result.version.number}."
        )
        return _redirect(f"/dashboard/cycles/{cycle_id}/draft", flash, request)

    return _guarded(request, work, post=True)


# --- the draft --------------------------------------------------------------------------------


@router.get("/dashboard/cycles/{cycle_id}/draft", response_class=HTMLResponse)
def draft_page(
    request: Request, cycle_id: int, version: Annotated[int | None, Query()] = None
) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        versions = drafts.versions(db, cycle)
        if not versions:
            return page(
                request,
                "draft.html",
                cycle=cycle,
                plan=plan,
                versions=[],
                shown=None,
                doc=None,
                editable=False,
                notes=None,
                signoffs=[],
                coordinator=account.email,
            )
        shown = versions[-1] if version is None else drafts.find_version(db, cycle, version)
        latest = versions[-1]
        return page(
            request,
            "draft.html",
            cycle=cycle,
            plan=plan,
            versions=versions,
            shown=shown,
            doc=drafts.version_document(shown),
            editable=shown.id == latest.id,
            stale=drafts.submitted_since_compile(db, cycle),
            notes=drafts.review_notes(db, cycle),
            signoffs=_signoff_list(db, cycle),
            coordinator=account.email,
        )

    return _guarded(request, work, post=False)


def _signoff_list(db: Session, cycle: Cycle) -> list[tuple[str, publishing.SignOff]]:
    """The standing section sign-offs as (agency acronym, sign-off), by acronym."""
    signoffs = publishing.section_signoffs(db, cycle)
    agencies = publishing.agencies_by_id(db, signoffs)
    return sorted(
        (
            (agencies[agency_id].acronym if agency_id in agencies else str(agency_id), signoff)
            for agency_id, signoff in signoffs.items()
        ),
        key=lambda pair: pair[0],
    )


def _entry_text(db: Session, cycle: Cycle, entry_id: int) -> str:
    """The text of an entry of this cycle's draft that can be edited (the edit itself
    refuses the others; the page should not offer them)."""
    try:
        entry = drafts.entry_in_draft(db, cycle, entry_id)
    except drafts.DraftError:
        raise LookupError(
            f"entry {entry_id} is not in the {cycle.year} draft (it may have changed since the "
            "page was loaded: open the latest draft)"
        ) from None
    if entry.section not in drafts.TEXT_SECTIONS:
        raise drafts.DraftError(drafts.MILESTONE_TEXT)
    return entry.text or ""


def _entry_page(
    request: Request, cycle_id: int, entry_id: int, template: str, **context: Any
) -> Response:
    """A page about one entry of the draft (its edit form, the question before removing it)."""

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        return page(
            request,
            template,
            cycle=cycle,
            entry_id=entry_id,
            text=_entry_text(db, cycle, entry_id),
            coordinator=account.email,
            **context,
        )

    return _guarded(request, work, post=False)


@router.get("/dashboard/cycles/{cycle_id}/entries/{entry_id}/edit", response_class=HTMLResponse)
def edit_entry_page(request: Request, cycle_id: int, entry_id: int) -> Response:
    return _entry_page(request, cycle_id, entry_id, "edit_entry.html", error=None)


@router.post("/dashboard/cycles/{cycle_id}/entries/{entry_id}/edit", response_class=HTMLResponse)
def edit_entry(
    request: Request,
    cycle_id: int,
    entry_id: int,
    csrf: Annotated[str, Form()] = "",
    text: Annotated[str, Form(max_length=drafts.MAX_ENTRY_TEXT * 2)] = "",
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        try:
            version = drafts.edit_entry(db, cycle, entry_id, text, app.now(), account.email)
        except drafts.DraftError as exc:
            db.rollback()
            return page(
                request,
                "edit_entry.html",
                422,
                cycle=cycle,
                entry_id=entry_id,
                text=text,
                error=str(exc),
                coordinator=account.email,
            )
        return _redirect(
            f"/dashboard/cycles/{cycle_id}/draft#entry-{entry_id}",
            f"Entry edited: draft version {version.number}.",
            request,
        )

    return _guarded(request, work, post=True)


@router.post("/dashboard/cycles/{cycle_id}/entries/{entry_id}/move")
def move_entry(
    request: Request,
    cycle_id: int,
    entry_id: int,
    csrf: Annotated[str, Form()] = "",
    direction: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        version = drafts.move_entry(db, cycle, entry_id, direction, app.now(), account.email)
        return _redirect(
            f"/dashboard/cycles/{cycle_id}/draft",
            f"Entry moved: draft version {version.number}.",
            request,
        )

    return _guarded(request, work, post=True)


@router.get("/dashboard/cycles/{cycle_id}/entries/{entry_id}/remove", response_class=HTMLResponse)
def remove_entry_page(request: Request, cycle_id: int, entry_id: int) -> Response:
    """Asks first: a removal takes the entry out of every later version, and a button on a
    long draft page is easy to press by mistake."""
    return _entry_page(request, cycle_id, entry_id, "remove_entry.html")


@router.post("/dashboard/cycles/{cycle_id}/entries/{entry_id}/remove")
def remove_entry(
    request: Request, cycle_id: int, entry_id: int, csrf: Annotated[str, Form()] = ""
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        version = drafts.remove_entry(db, cycle, entry_id, app.now(), account.email)
        return _redirect(
            f"/dashboard/cycles/{cycle_id}/draft",
            f"Entry removed: draft version {version.number}.",
            request,
        )

    return _guarded(request, work, post=True)


@router.get("/dashboard/cycles/{cycle_id}/versions/{number}.{fmt}")
def download_version(request: Request, cycle_id: int, number: int, fmt: str) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        try:
            chosen = Format(fmt)
        except ValueError:
            raise LookupError(f"no format {fmt!r} (html, docx, txt, md, csv)") from None
        version = drafts.find_version(db, cycle, number)
        data = render(drafts.version_document(version), chosen, show_authors=False)
        name = f"{publishing.file_stem(plan, cycle.year, number)}.{chosen.value}"
        return Response(
            data,
            media_type=MEDIA_TYPES[chosen],
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    return _guarded(request, work, post=False)


# --- redline ----------------------------------------------------------------------------------


LAST_YEAR = "last"


def _document_for(db: Session, cycle: Cycle, plan: Plan, which: str) -> tuple[str, ReportDocument]:
    if which == LAST_YEAR:
        assert plan.id is not None
        previous = drafts.previous_report(db, plan.id, cycle.year)
        if previous is None:
            raise LookupError(f"there is no report before {cycle.year}")
        published = publishing.published_version(db, plan, previous.year)
        if published is not None:
            return f"the published {previous.year} report", drafts.version_document(published)
        try:
            return f"the {previous.year} report", build_document(db, plan.id, previous.year)
        except ReportNotFound as exc:
            raise LookupError(str(exc)) from None
    try:
        number = int(which)
    except ValueError:
        raise LookupError(f"{which!r} is not a version number") from None
    version = drafts.find_version(db, cycle, number)
    return f"version {number}", drafts.version_document(version)


@router.get("/dashboard/cycles/{cycle_id}/redline", response_class=HTMLResponse)
def redline_page(
    request: Request,
    cycle_id: int,
    old: Annotated[str | None, Query(alias="from", max_length=12)] = None,
    new: Annotated[str | None, Query(alias="to", max_length=12)] = None,
    full: Annotated[bool, Query()] = False,
) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        versions = drafts.versions(db, cycle)
        if not versions:
            raise LookupError(f"the {cycle.year} report has no version yet: compile it first")
        to_key = new or str(versions[-1].number)
        from_key = old or (str(versions[-2].number) if len(versions) > 1 else LAST_YEAR)
        from_label, from_doc = _document_for(db, cycle, plan, from_key)
        to_label, to_doc = _document_for(db, cycle, plan, to_key)
        diff = redline_documents(from_doc, to_doc, context=None if full else 2)
        return page(
            request,
            "redline.html",
            cycle=cycle,
            versions=versions,
            from_key=from_key,
            to_key=to_key,
            from_label=from_label,
            to_label=to_label,
            diff=diff,
            redline=diff.html(),
            full=full,
            coordinator=account.email,
        )

    return _guarded(request, work, post=False)


# --- decisions --------------------------------------------------------------------------------


@router.post("/dashboard/cycles/{cycle_id}/requests/{request_id}/changes")
def request_changes(
    request: Request,
    cycle_id: int,
    request_id: int,
    csrf: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=publishing.MAX_COMMENT * 2)] = "",
) -> Response:
    require_csrf(request, csrf)
    claimed: list[int] = []

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        update = db.get(UpdateRequest, request_id)
        if update is None or update.cycle_id != cycle.id:
            raise LookupError(f"no update request {request_id} in the {cycle.year} cycle")
        claimed.extend(publishing.request_changes(db, update, comment, app.now(), account.email))
        return _redirect(
            f"/dashboard/cycles/{cycle_id}#agencies",
            f"Changes requested; {len(claimed)} message(s) to send.",
            request,
        )

    response = _guarded(request, work, post=True)
    _enqueue(request, claimed)
    return response


@router.post("/dashboard/cycles/{cycle_id}/requests/{request_id}/signoff")
def sign_off_section(
    request: Request, cycle_id: int, request_id: int, csrf: Annotated[str, Form()] = ""
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        update = db.get(UpdateRequest, request_id)
        if update is None or update.cycle_id != cycle.id:
            raise LookupError(f"no update request {request_id} in the {cycle.year} cycle")
        done = publishing.sign_off_section(db, update, app.now(), account.email)
        return _redirect(
            f"/dashboard/cycles/{cycle_id}#agencies",
            f"Section signed off (draft version {done.version}).",
            request,
        )

    return _guarded(request, work, post=True)


def _chosen_version(db: Session, cycle: Cycle, number: int) -> ReportVersion:
    return drafts.find_version(db, cycle, number)


@router.post("/dashboard/cycles/{cycle_id}/approve")
def approve(
    request: Request,
    cycle_id: int,
    csrf: Annotated[str, Form()] = "",
    version: Annotated[int, Form()] = 0,
) -> Response:
    require_csrf(request, csrf)

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        chosen = _chosen_version(db, cycle, version)
        publishing.approve(db, cycle, chosen, app.now(), account.email)
        return _redirect(f"/dashboard/cycles/{cycle_id}", f"Version {version} approved.", request)

    return _guarded(request, work, post=True)


def published_dir(app: AppState, plan: Plan, year: int, number: int) -> Path:
    return app.settings.data_dir / "published" / plan.slug / str(year) / f"v{number}"


@router.post("/dashboard/cycles/{cycle_id}/publish")
def publish(
    request: Request,
    cycle_id: int,
    csrf: Annotated[str, Form()] = "",
    version: Annotated[int, Form()] = 0,
) -> Response:
    require_csrf(request, csrf)
    claimed: list[int] = []

    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        chosen = _chosen_version(db, cycle, version)
        done = publishing.publish(
            db,
            cycle,
            chosen,
            app.now(),
            account.email,
            published_dir(app, plan, cycle.year, chosen.number),
            base_url=app.settings.base_url,
        )
        claimed.extend(done.notification_ids)
        return _redirect(
            f"/dashboard/cycles/{cycle_id}",
            f"Version {version} published; the {cycle.year} cycle is closed.",
            request,
        )

    response = _guarded(request, work, post=True)
    _enqueue(request, claimed)
    return response


# --- audit log --------------------------------------------------------------------------------


AUDIT_PAGE_LINES = 500


@router.get("/dashboard/cycles/{cycle_id}/audit", response_class=HTMLResponse)
def audit_page(request: Request, cycle_id: int) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, _plan = _cycle(db, cycle_id)
        events = publishing.cycle_log(db, cycle, limit=AUDIT_PAGE_LINES)
        agencies = publishing.agencies_by_id(
            db, {e.agency_id for e in events if e.agency_id is not None}
        )
        return page(
            request,
            "audit.html",
            cycle=cycle,
            events=events,
            total=publishing.cycle_log_size(db, cycle),
            acronyms={agency_id: a.acronym for agency_id, a in agencies.items()},
            coordinator=account.email,
        )

    return _guarded(request, work, post=False)


@router.get("/dashboard/cycles/{cycle_id}/audit.csv")
def audit_csv(request: Request, cycle_id: int) -> Response:
    def work(app: AppState, db: Session, account: Account) -> Response:
        cycle, plan = _cycle(db, cycle_id)
        return Response(
            publishing.export_audit(db, cycle),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{plan.slug}-{cycle.year}-audit.csv"'
            },
        )

    return _guarded(request, work, post=False)


# --- published reports (public) ---------------------------------------------------------------


def _published(db: Session, slug: str, year: int) -> tuple[Plan, ReportVersion] | None:
    plan = db.exec(select(Plan).where(Plan.slug == slug)).first()
    if plan is None:
        return None
    version = publishing.published_version(db, plan, year)
    return None if version is None else (plan, version)


def _unverifiable(request: Request, exc: publishing.ReviewError) -> Response:
    """A published version whose stored content no longer matches its checksum (changed in
    the database, past reportcycle): never served as if it were the published report."""
    log.error("refused to serve a published report: %s", exc)
    return page(
        request,
        "message.html",
        500,
        heading="This report cannot be shown",
        message="Its stored content no longer matches the checksum recorded when it was "
        "published, so it may have been altered. Please tell the reporting team; the files "
        "written at publication, with their SHA256SUMS, are the reference.",
    )


@router.get("/reports/{slug}/{year}", response_class=HTMLResponse)
def published_report(request: Request, slug: str, year: int) -> Response:
    with state_of(request).session() as db:
        found = _published(db, slug, year)
        if found is None:
            return page(
                request,
                "message.html",
                404,
                heading="No published report",
                message=f"There is no published {year} report here.",
            )
        plan, version = found
        try:
            doc = publishing.verify_version(version)
        except publishing.ReviewError as exc:
            return _unverifiable(request, exc)
        files = [
            publishing.PublishedFile(
                f"{publishing.file_stem(plan, year, version.number)}.{fmt.value}",
                fmt.value,
                0,
                "",
            )
            for fmt in publishing.PUBLISHED_FORMATS
        ]
        assert version.published_at is not None and version.published_by is not None
        html = publishing.published_page(
            doc,
            version,
            files,
            published_at=version.published_at,
            published_by=version.published_by,
            download_prefix=f"/reports/{slug}/{year}/",
            stylesheet="/static/dashboard.css",
        )
        return HTMLResponse(html)


@router.get("/reports/{slug}/{year}/{name}")
def published_file(request: Request, slug: str, year: int, name: str) -> Response:
    with state_of(request).session() as db:
        found = _published(db, slug, year)
        if found is not None:
            plan, version = found
            stem, _dot, ext = name.rpartition(".")
            if stem == publishing.file_stem(plan, year, version.number) and ext in {
                f.value for f in publishing.PUBLISHED_FORMATS
            }:
                try:
                    doc = publishing.verify_version(version)
                except publishing.ReviewError as exc:
                    return _unverifiable(request, exc)
                data = render(doc, Format(ext))
                return Response(
                    data,
                    media_type=MEDIA_TYPES[Format(ext)],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
        return page(
            request, "message.html", 404, heading="Not found", message="There is no such file."
        )


def versions_in_state(versions: list[ReportVersion], state: VersionState) -> list[ReportVersion]:
    return [v for v in versions if v.state is state]
