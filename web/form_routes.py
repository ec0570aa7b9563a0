"""The tokenised agency form.

- ``GET /r/{token}`` only shows a page (mail scanners fetch links): the agency, the cycle, a
  field for the contact's email and a Continue button.
- ``POST /r/{token}`` exchanges the token for a signed session cookie and redirects to
  ``/form``, a URL without the token.
- ``GET /form`` shows the answer; ``POST /form`` saves a draft, submits, or adds/removes a row
  (without JavaScript); ``POST /form/reopen`` reopens a submitted answer;
  ``GET /form/period`` checks a period as it is typed (JavaScript).

An unknown, expired or revoked token always gets the same page with the same status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import APIRouter
from sqlmodel import Session, col
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from models.clock import as_aware
from models.periods import parse_period
from models.submissions import (
    Conflict,
    FieldError,
    InvalidAnswer,
    NotEditable,
    RequestView,
    load_linked_view,
    load_request_view,
    mark_opened,
    period_problem,
    reopen,
    save_answer,
)
from models.tables import Contact, RequestState
from models.tokens import resolve_token
from templates import render
from web.deps import AppState, state_of
from web.form_data import FormState, apply_row_action, blocks, differences, parse_form
from web.security import (
    CSRF_FIELD,
    CSRF_SESSION_KEY,
    client_address,
    csrf_matches,
    csrf_token,
    require_csrf,
)

router = APIRouter()

SESSION_REQUEST = "form_request"
SESSION_LINK = "form_link"
SESSION_WHO = "form_who"
SESSION_FLASH = "form_flash"
SESSION_SAVED = "form_saved"
FORM_KEYS = (SESSION_REQUEST, SESSION_LINK, SESSION_WHO, SESSION_FLASH, SESSION_SAVED)
_EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")

STATE_LABELS = {
    RequestState.PENDING: "not yet opened",
    RequestState.SENT: "not yet opened",
    RequestState.OPENED: "opened, nothing saved yet",
    RequestState.DRAFT: "draft saved, not submitted",
    RequestState.SUBMITTED: "submitted",
    RequestState.CHANGES_REQUESTED: "changes requested by the coordinator",
    RequestState.APPROVED: "approved",
}


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(f"forms/{name}", **context), status_code=status)


# --- the link ------------------------------------------------------------------------------


# Built once and run through Core: every form page names whom to contact, and building the
# statement and loading it through the ORM cost a tenth of the page.
_COORDINATORS = (
    sa.select(col(Contact.name), col(Contact.email))
    .where(col(Contact.is_coordinator), col(Contact.active))
    .order_by(col(Contact.email))
)


def _coordinator_contacts(db: Session) -> list[tuple[str | None, str]]:
    return [(name, email) for name, email in db.connection().execute(_COORDINATORS)]


def _invalid_link(app: AppState, db: Session) -> HTMLResponse:
    # The same page and status for a token that never existed, expired or was revoked.
    return page("invalid_link.html", status=404, coordinators=_coordinator_contacts(db))


def _too_many(app: AppState, key: str) -> HTMLResponse:
    response = page("too_many.html", status=429)
    response.headers["Retry-After"] = str(app.token_limiter.retry_after(key))
    return response


@router.get("/r/{token:path}", response_class=HTMLResponse)
async def open_link(request: Request, token: str) -> Response:
    app = state_of(request)
    key = f"token:{client_address(request)}"
    if not app.token_limiter.hit(key):
        return _too_many(app, key)
    csrf = csrf_token(request)
    return await app.run(_landing, app, token, csrf, None, "", 200)


def _landing(
    app: AppState, token: str, csrf: str, error: str | None, email: str, status: int
) -> Response:
    with app.session() as db:
        found = resolve_token(db, token, app.now(), app.grace)
        if found is None:
            return _invalid_link(app, db)
        _access, update_request, cycle = found
        view = load_request_view(db, update_request.id or 0)
        return page(
            "landing.html",
            status=status,
            view=view,
            csrf=csrf,
            error=error,
            email=email,
            deadline=view.deadline,
            state_label=STATE_LABELS[view.state],
            cycle_year=cycle.year,
            coordinators=_coordinator_contacts(db),
        )


@router.post("/r/{token:path}", response_class=HTMLResponse)
async def continue_from_link(request: Request, token: str) -> Response:
    app = state_of(request)
    key = f"token:{client_address(request)}"
    if not app.token_limiter.hit(key):
        return _too_many(app, key)
    form = await request.form(max_fields=20, max_files=0)
    require_csrf(request, form.get(CSRF_FIELD))
    email = str(form.get("email") or "").strip()
    if not _EMAIL.fullmatch(email) or len(email) > 320:
        return await app.run(
            _landing,
            app,
            token,
            csrf_token(request),
            "Enter your email address, such as name@agency.govt.nz.",
            email,
            400,
        )
    opened = await app.run(_continue, app, token, email)
    if isinstance(opened, Response):
        return opened
    request_id, token_id = opened
    # A fresh CSRF token once the link is used for another request; other keys (a
    # coordinator's sign-in in the same browser) are left alone. Opening the same request's
    # link again (a second tab, the mail clicked twice) keeps the token, so a form still open
    # in another tab can save what was typed in it.
    same_request = request.session.get(SESSION_REQUEST) == request_id
    for key in FORM_KEYS if same_request else (*FORM_KEYS, CSRF_SESSION_KEY):
        request.session.pop(key, None)
    request.session[SESSION_REQUEST] = request_id
    request.session[SESSION_LINK] = token_id
    request.session[SESSION_WHO] = email
    csrf_token(request)
    return RedirectResponse("/form", status_code=303)


def _continue(app: AppState, token: str, email: str) -> tuple[int, int] | Response:
    with app.session() as db:
        found = resolve_token(db, token, app.now(), app.grace)
        if found is None:
            return _invalid_link(app, db)
        access, update_request, _cycle = found
        assert access.id is not None and update_request.id is not None
        mark_opened(db, update_request.id, access.id, author=email, now=app.now())
        db.commit()
        return update_request.id, access.id


# --- the form ------------------------------------------------------------------------------


def _session_view(request: Request, db: Session, app: AppState) -> RequestView | None:
    """The update request this browser session may answer, while its link is still live."""
    request_id = request.session.get(SESSION_REQUEST)
    token_id = request.session.get(SESSION_LINK)
    if not isinstance(request_id, int) or not isinstance(token_id, int):
        return None
    return load_linked_view(db, request_id, token_id, app.now(), app.grace)


_TYPED_TEXT = re.compile(
    r"m-[0-9]{1,9}-(achievement|new_period|reason|completed_on)"
    r"|[afn]-[0-9]{1,9}-[0-9]{1,4}-(text|link_title|link_url|period)"
)


def _session_ended(request: Request, form: Mapping[str, str] | None = None) -> HTMLResponse:
    for key in FORM_KEYS:
        request.session.pop(key, None)
    # A save that arrives after the session ended cannot be stored (nothing says whose it
    # is), but what was typed is shown back so it can be copied, not lost.
    typed = [
        value.strip()
        for name, value in (form or {}).items()
        if _TYPED_TEXT.fullmatch(name) and value.strip()
    ]
    return page("session_ended.html", status=401, typed=typed)


def _form_page(
    request: Request,
    db: Session,
    view: RequestView,
    state: FormState,
    *,
    status: int = 200,
    base: int | None = None,
    conflict: Conflict | None = None,
    notice: str | None = None,
    focus: str | None = None,
    saved_as_draft: int | None = None,
) -> HTMLResponse:
    app = state_of(request)
    errors_by_field: dict[str, list[str]] = {}
    for error in state.errors:
        errors_by_field.setdefault(error.field, []).append(error.message)
    milestones = view.milestones
    answered = {
        m.milestone_id
        for m in state.answer.milestones
        if m.progress is not None and m.milestone_id in milestones
    }
    today = app.now().astimezone(_zone(app)).date()
    # On a conflict, both versions are marked where they differ (the saved one as it counts:
    # only the fields of each chosen progress).
    theirs = conflict.latest.answer.chosen_only() if conflict and conflict.latest else None
    return page(
        "form.html",
        status=status,
        view=view,
        blocks=blocks(view, state),
        raw=state.raw,
        errors=state.errors,
        field_errors=errors_by_field,
        csrf=csrf_token(request),
        base=view.revision_number if base is None else base,
        conflict=conflict,
        their_answer=theirs,
        differs=differences(state.answer, theirs) if theirs is not None else None,
        notice=notice,
        who=str(request.session.get(SESSION_WHO) or ""),
        state_label=STATE_LABELS[view.state],
        show_comment=bool(view.change_comment)
        and view.state not in (RequestState.SUBMITTED, RequestState.APPROVED),
        autosave_seconds=app.options.autosave_seconds,
        focus=focus,
        objective_titles={o.id: o.title for o in view.objectives},
        error_context=_error_context(view, state),
        saved_as_draft=saved_as_draft,
        answered=len(answered),
        answered_ids=answered,
        milestone_count=len(milestones),
        days_left=(view.deadline - today).days,
        coordinators=_coordinator_contacts(db),
        local_time=lambda moment: _clock_text(app, moment),
    )


def _error_context(view: RequestView, state: FormState) -> dict[str, str]:
    """What each erroneous field belongs to, for the error summary at the top: "Choose what
    happened to this milestone" twenty times over says nothing about which."""
    context: dict[str, str] = {}
    titles = {o.id: o.title for o in view.objectives}
    milestones = view.milestones
    rows = {"a": "Key achievement", "f": "Area for further work", "n": "New milestone"}
    for error in state.errors:
        parts = error.field.split("-")
        if parts[0] == "m" and len(parts) >= 3 and parts[1].isdigit():
            milestone = milestones.get(int(parts[1]))
            if milestone is not None:
                due = milestone.due_text or "Undated"
                context[error.field] = f"{due} – {_short(milestone.text)}"
        elif parts[0] in rows and len(parts) >= 4 and parts[1].isdigit() and parts[2].isdigit():
            title = titles.get(int(parts[1]))
            if title is not None:
                context[error.field] = f"{rows[parts[0]]} {int(parts[2]) + 1} ({_short(title)})"
    return context


def _short(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@router.get("/form", response_class=HTMLResponse)
async def show_form(request: Request) -> Response:
    app = state_of(request)
    notice = request.session.pop(SESSION_FLASH, None)
    return await app.run(_show_form, request, app, notice)


def _show_form(request: Request, app: AppState, notice: str | None) -> Response:
    with app.session() as db:
        view = _session_view(request, db, app)
        if view is None:
            return _session_ended(request)
        return _form_page(
            request, db, view, FormState(answer=view.starting_answer()), notice=notice
        )


@router.post("/form", response_class=HTMLResponse)
async def post_form(request: Request) -> Response:
    app = state_of(request)
    form = await request.form(max_fields=app.options.max_form_fields, max_files=0)
    autosave = request.headers.get("x-autosave") == "1"
    if not csrf_matches(request, form.get(CSRF_FIELD)):
        if autosave:
            return JSONResponse({"ok": False, "reason": "csrf"}, status_code=403)
        if not isinstance(request.session.get(SESSION_REQUEST), int):
            # The session (and its CSRF token) expired while the page was open: nothing can
            # be saved, but what was typed is shown back rather than lost.
            return _session_ended(request, _fields(form) if _same_origin(request) else None)
        require_csrf(request, None)
    return await app.run(_post_form, request, app, _fields(form), autosave)


def _same_origin(request: Request) -> bool:
    """Whether the browser says this POST came from our own page. Only then is typed text
    shown back: another site must not be able to put words on our pages."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == f"{request.url.scheme}://{request.url.netloc}"
    return True  # neither header: an old browser or a test client; nothing is saved anyway


def _fields(form: FormData) -> dict[str, str]:
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _post_form(
    request: Request, app: AppState, form: Mapping[str, str], autosave: bool
) -> Response:
    with app.session() as db:
        view = _session_view(request, db, app)
        if view is None:
            if autosave:
                return JSONResponse({"ok": False, "reason": "session"}, status_code=401)
            return _session_ended(request, form)
        request_id = view.request_id
        state = parse_form(form, view)
        action = form.get("action", "save")
        if apply_row_action(state, action):
            focus = action.split(":", 1)[1] if action.startswith("add:") else None
            return _form_page(request, db, view, state, base=_base(form, view), focus=focus)
        if action not in ("save", "submit"):
            action = "save"
        base = _base(form, view)
        if state.errors:
            return _refused(request, db, view, state, base, autosave)
        who = str(request.session.get(SESSION_WHO) or "unknown")
        submitting = action == "submit" and not autosave
        try:
            result = save_answer(
                db,
                request_id,
                state.answer,
                submit=submitting,
                base_revision=base,
                author=who,
                now=app.now(),
                view=view,
                timezone=app.settings.timezone,
            )
            db.commit()
        except InvalidAnswer as invalid:
            db.rollback()
            state.errors.extend(invalid.errors)
            saved = _draft_instead(db, app, view, state, base, who) if submitting else None
            if saved is not None:
                return _form_page(
                    request,
                    db,
                    load_request_view(db, request_id),
                    state,
                    status=400,
                    base=saved,
                    saved_as_draft=saved,
                )
            return _refused(request, db, view, state, base, autosave)
        except Conflict as conflict:
            db.rollback()
            if autosave:
                return JSONResponse({"ok": False, "reason": "conflict"}, status_code=409)
            view = load_request_view(db, request_id)
            return _form_page(
                request,
                db,
                view,
                state,
                status=409,
                base=conflict.revision_number,
                conflict=conflict,
            )
        except NotEditable as refused:
            db.rollback()
            if autosave:
                return JSONResponse({"ok": False, "reason": "closed"}, status_code=409)
            view = load_request_view(db, request_id)
            state.errors.append(FieldError("form", str(refused)))
            return _form_page(request, db, view, state, status=409)
        if autosave:
            # Touch the session so its cookie is re-signed: someone typing for hours keeps it.
            request.session[SESSION_SAVED] = result.revision_number
            return JSONResponse(
                {
                    "ok": True,
                    "revision": result.revision_number,
                    "at": _clock_text(app, app.now()),
                }
            )
        if result.state is RequestState.SUBMITTED:
            flash = f"Submitted (revision {result.revision_number}). Thank you."
        else:
            flash = (
                f"Draft saved at {_clock_text(app, app.now())} (revision {result.revision_number})."
            )
        request.session[SESSION_FLASH] = flash
        return RedirectResponse("/form", status_code=303)


def _draft_instead(
    db: Session, app: AppState, view: RequestView, state: FormState, base: int, who: str
) -> int | None:
    """A submission that is not complete yet is kept as a draft when it can be (every
    milestone not yet answered, say): the revision number, else None (nothing saved)."""
    try:
        result = save_answer(
            db,
            view.request_id,
            state.answer,
            submit=False,
            base_revision=base,
            author=who,
            now=app.now(),
            view=view,
            timezone=app.settings.timezone,
        )
        db.commit()
    except (InvalidAnswer, Conflict, NotEditable):
        db.rollback()
        return None
    return result.revision_number


def _refused(
    request: Request, db: Session, view: RequestView, state: FormState, base: int, autosave: bool
) -> Response:
    if autosave:
        return JSONResponse(
            {"ok": False, "reason": "invalid", "errors": [e.field for e in state.errors]},
            status_code=400,
        )
    return _form_page(request, db, view, state, status=400, base=base)


def _base(form: Mapping[str, str], view: RequestView) -> int:
    try:
        return int(form.get("base", ""))
    except ValueError:
        return view.revision_number


def _zone(app: AppState) -> ZoneInfo:
    return ZoneInfo(app.settings.timezone)


def _clock_text(app: AppState, moment: datetime) -> str:
    """A moment as the agency reads it: in the plan's time zone (settings), not UTC."""
    local = as_aware(moment).astimezone(_zone(app))
    return f"{local:%H:%M} {local.tzname()}, {local.day} {local:%b %Y}"


@router.post("/form/reopen", response_class=HTMLResponse)
async def reopen_answer(request: Request) -> Response:
    app = state_of(request)
    form = await request.form(max_fields=20, max_files=0)
    require_csrf(request, form.get(CSRF_FIELD))
    return await app.run(_reopen, request, app)


def _reopen(request: Request, app: AppState) -> Response:
    with app.session() as db:
        linked = _session_view(request, db, app)
        if linked is None:
            return _session_ended(request)
        request_id = linked.request_id
        who = str(request.session.get(SESSION_WHO) or "unknown")
        try:
            reopen(db, request_id, author=who, now=app.now())
            db.commit()
        except NotEditable as refused:
            db.rollback()
            view = load_request_view(db, request_id)
            state = FormState(answer=view.starting_answer())
            state.errors.append(FieldError("form", str(refused)))
            return _form_page(request, db, view, state, status=409)
        request.session[SESSION_FLASH] = "Reopened: change the answer and submit it again."
        return RedirectResponse("/form", status_code=303)


@router.get("/form/period")
async def check_period(request: Request, text: str = "") -> JSONResponse:
    """Live period checking for the form's JavaScript (reads only)."""
    if not isinstance(request.session.get(SESSION_REQUEST), int):
        return JSONResponse({"ok": False, "message": "session ended"}, status_code=401)
    text = text[:200]
    if not text.strip():
        return JSONResponse({"ok": True, "empty": True})
    app = state_of(request)
    problem = period_problem(text, app.now().astimezone(_zone(app)).date())
    if problem:
        return JSONResponse({"ok": False, "message": problem})
    period = parse_period(text.strip())
    return JSONResponse(
        {
            "ok": True,
            "text": period.canonical_text(),
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
        }
    )
