"""The coordinator dashboard through FastAPI's TestClient, on the real databases."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import drafts
from models.accounts import add_account
from models.clock import SimulatedClock
from models.publishing import SIGNED_OFF
from models.tables import (
    AuditEvent,
    CycleState,
    Notification,
    ReportEntry,
    ReportVersion,
    RequestState,
    Section,
    VersionState,
)
from tests.dashboard_support import (  # noqa: F401  (fixtures)
    ACHIEVEMENT,
    EMAIL,
    PASSWORD,
    START,
    ClientFactory,
    c,
    clock,
    csrf_of,
    enqueued,
    make_client,
    sign_in,
    signed_in,
)
from tests.review_helpers import (
    Cycle2022,
    complete_answer,
    submit,
)


def versions(session: Session) -> list[tuple[int, VersionState]]:
    session.expire_all()
    return [(v.number, v.state) for v in session.exec(select(ReportVersion))]


def test_a_coordinator_cannot_approve_without_signing_in(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    version = drafts.compile_cycle(session, c.cycle, START, "schedule")
    session.commit()
    client = make_client()
    assert client.get("/dashboard", follow_redirects=False).headers["location"] == (
        "/dashboard/signin"
    )
    for path in (
        f"/dashboard/cycles/{c.cycle.id}",
        f"/dashboard/cycles/{c.cycle.id}/draft",
        f"/dashboard/cycles/{c.cycle.id}/audit.csv",
    ):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
    csrf = csrf_of(client.get("/dashboard/signin").text)

    response = client.post(
        f"/dashboard/cycles/{c.cycle.id}/approve",
        data={"csrf": csrf, "version": str(version.number)},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/signin"
    assert versions(session) == [(1, VersionState.DRAFT)]
    session.refresh(c.cycle)
    assert c.cycle.state is CycleState.OPEN


def test_sign_in_with_the_right_password_only(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client = make_client()
    wrong = sign_in(client, password="not the password at all")
    assert wrong.status_code == 401
    assert "The email or the password is not right." in wrong.text
    unknown = sign_in(client, email="nobody@example.govt.nz")
    assert unknown.status_code == 401
    assert client.get("/dashboard", follow_redirects=False).status_code == 303

    ok = sign_in(client, email="ANA@mbie.govt.nz")
    assert ok.status_code == 303
    page = client.get("/dashboard")
    assert page.status_code == 200 and f"/dashboard/cycles/{c.cycle.id}" in page.text
    assert EMAIL in page.text
    actions = session.exec(
        select(AuditEvent.action).where(col(AuditEvent.action).startswith("account."))
    ).all()
    assert actions.count("account.signin_failed") == 2 and "account.signed_in" in actions


def test_sign_in_needs_the_csrf_token(c: Cycle2022, make_client: ClientFactory) -> None:
    client = make_client()
    client.get("/dashboard/signin")
    response = client.post(
        "/dashboard/signin",
        data={"csrf": "forged", "email": EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_failed_sign_ins_lock_the_account_then_the_address(
    c: Cycle2022, make_client: ClientFactory, clock: SimulatedClock
) -> None:
    client = make_client()
    for _ in range(5):
        assert sign_in(client, password="wrong password!!").status_code == 401
    locked = sign_in(client)
    assert locked.status_code == 429, "the right password is refused while locked"
    assert "Too many failed attempts for this account" in locked.text

    clock.advance(timedelta(minutes=16))
    assert sign_in(client).status_code == 303

    # The address's own limit: ten attempts per window, whatever the account.
    other = make_client()
    statuses = [sign_in(other, email=f"x{i}@example.govt.nz").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_attempts_while_locked_neither_extend_the_lockout_nor_tell_the_password(
    session: Session, c: Cycle2022, make_client: ClientFactory, clock: SimulatedClock
) -> None:
    # Each client is its own app, so the address limit (ten a window) stays out of the way.
    for _ in range(5):
        assert sign_in(make_client(), password="wrong password!!").status_code == 401
    clock.advance(timedelta(minutes=10))
    client = make_client()
    wrong = sign_in(client, password="still the wrong one")
    right = sign_in(client)
    assert wrong.status_code == right.status_code == 429
    assert "Too many failed attempts for this account" in right.text
    assert wrong.text == right.text, (
        "a locked-out page must not tell whether the password was right"
    )
    for _ in range(4):  # five attempts while locked: before, each counted as a new failure
        assert sign_in(client, password="wrong password!!").status_code == 429

    # The lockout ends 15 minutes after the five failures, not after the attempts since.
    clock.advance(timedelta(minutes=6))
    assert sign_in(make_client()).status_code == 303
    actions = session.exec(
        select(AuditEvent.action).where(col(AuditEvent.action).startswith("account.signin"))
    ).all()
    assert actions.count("account.signin_failed") == 5
    assert actions.count("account.signin_locked") == 6


def test_the_session_expires(
    c: Cycle2022, make_client: ClientFactory, clock: SimulatedClock
) -> None:
    client = make_client(session_max_age_seconds=3600)
    assert sign_in(client).status_code == 303
    assert client.get("/dashboard").status_code == 200
    clock.advance(timedelta(minutes=61))
    response = client.get("/dashboard", follow_redirects=False)
    assert response.headers["location"] == "/dashboard/signin"


def test_setting_a_new_password_ends_the_sessions_signed_in_with_the_old_one(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, _csrf = signed_in(make_client)
    add_account(session, EMAIL, "a brand new passphrase", START)  # coordinator add, again
    session.commit()

    response = client.get(f"/dashboard/cycles/{c.cycle.id}", follow_redirects=False)

    assert response.headers["location"] == "/dashboard/signin"
    assert sign_in(client).status_code == 401, "the old password no longer works"
    assert sign_in(client, password="a brand new passphrase").status_code == 303
    assert client.get(f"/dashboard/cycles/{c.cycle.id}").status_code == 200


def test_every_dashboard_post_needs_the_csrf_token(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, _csrf = signed_in(make_client)
    for path, data in (
        (f"/dashboard/cycles/{c.cycle.id}/compile", {}),
        (f"/dashboard/cycles/{c.cycle.id}/approve", {"version": "1"}),
        (
            f"/dashboard/cycles/{c.cycle.id}/requests/{c.requests['NZP'].id}/changes",
            {"comment": "More."},
        ),
        (f"/dashboard/cycles/{c.cycle.id}/requests/{c.requests['MBIE'].id}/signoff", {}),
        ("/dashboard/signout", {}),
    ):
        response = client.post(path, data={"csrf": "forged", **data}, follow_redirects=False)
        assert response.status_code == 403, path
    assert versions(session) == []
    assert not session.exec(select(AuditEvent).where(AuditEvent.action == SIGNED_OFF)).all()
    session.refresh(c.requests["NZP"])
    assert c.requests["NZP"].state is not RequestState.CHANGES_REQUESTED


def test_the_overview_shows_requests_messages_chart_and_who_has_not_answered(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, _csrf = signed_in(make_client)
    page = client.get(f"/dashboard/cycles/{c.cycle.id}")
    assert page.status_code == 200
    html = page.text
    assert "1 of 8</strong> agencies have answered" in html
    for acronym in ("NZP", "OT", "DIA"):
        assert f'href="#agency-{acronym}"' in html
    assert 'id="agency-MBIE" class="answered"' in html
    assert "update request: 1 pending" in html, "messages and their delivery state"
    assert "<svg" in html and 'class="bar status-on_track"' in html
    assert "<script" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "no external resources"
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_request_changes_from_the_overview(
    session: Session, c: Cycle2022, make_client: ClientFactory, enqueued: list[int]
) -> None:
    client, csrf = signed_in(make_client)
    mbie = c.requests["MBIE"]
    response = client.post(
        f"/dashboard/cycles/{c.cycle.id}/requests/{mbie.id}/changes",
        data={"csrf": csrf, "comment": "Add the <b>link</b>, please."},
        follow_redirects=False,
    )
    assert response.status_code == 303
    session.refresh(mbie)
    assert mbie.state is RequestState.CHANGES_REQUESTED
    assert mbie.change_comment == "Add the <b>link</b>, please."
    claimed = session.exec(
        select(Notification).where(Notification.kind == "changes_requested")
    ).all()
    assert [n.id for n in claimed] == enqueued and len(enqueued) == 1
    page = client.get(response.headers["location"])
    assert "Changes requested; 1 message(s) to send." in page.text
    assert "Add the &lt;b&gt;link&lt;/b&gt;, please." in page.text

    empty = client.post(
        f"/dashboard/cycles/{c.cycle.id}/requests/{mbie.id}/changes",
        data={"csrf": csrf, "comment": "   "},
    )
    assert empty.status_code == 409 and "the comment is empty" in empty.text


def test_compile_edit_move_and_redline_from_the_draft(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    compiled = client.post(
        f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf}, follow_redirects=False
    )
    assert compiled.status_code == 303
    draft = client.get(compiled.headers["location"])
    assert "Compiled draft version 1." in draft.text
    html = draft.text
    assert "Hotline launched &lt;script&gt;alert(1)&lt;/script&gt; – ka pai." in html
    assert '<span class="badge agency" title="Written by MBIE">MBIE</span>' in html
    assert '<span class="badge not-updated">Not updated</span>' in html
    entry = re.search(r'id="entry-(\d+)">\s*<p>[^\n]*Hotline launched', html)
    assert entry, "the achievement has its controls"
    entry_id = entry[1]

    edit_page = client.get(f"/dashboard/cycles/{c.cycle.id}/entries/{entry_id}/edit")
    assert "Hotline launched &lt;script&gt;" in edit_page.text
    edited = client.post(
        f"/dashboard/cycles/{c.cycle.id}/entries/{entry_id}/edit",
        data={"csrf": csrf, "text": "Hotline launched – ka pai."},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    assert versions(session) == [(1, VersionState.DRAFT), (2, VersionState.DRAFT)]
    page = client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
    assert "Edited by ana@mbie.govt.nz" in page

    new_id = re.search(r'id="entry-(\d+)">\s*<p>[^\n]*Hotline launched – ka pai', page)
    assert new_id
    moved = client.post(
        f"/dashboard/cycles/{c.cycle.id}/entries/{new_id[1]}/move",
        data={"csrf": csrf, "direction": "further_work"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    assert len(versions(session)) == 3

    redline = client.get(f"/dashboard/cycles/{c.cycle.id}/redline?from=1&to=2")
    assert redline.status_code == 200
    assert "<del>&lt;script&gt;alert(1)&lt;/script&gt; </del>" in redline.text
    against_last_year = client.get(f"/dashboard/cycles/{c.cycle.id}/redline?from=last&to=3")
    assert against_last_year.status_code == 200 and "<ins>" in against_last_year.text

    old = client.get(f"/dashboard/cycles/{c.cycle.id}/draft?version=1")
    assert "An earlier version: read only." in old.text
    assert "/move" not in old.text
    for fmt, start in (("txt", b"Plan"), ("docx", b"PK"), ("csv", b"pillar")):
        download = client.get(f"/dashboard/cycles/{c.cycle.id}/versions/1.{fmt}")
        assert download.status_code == 200 and download.content.startswith(start), fmt


def test_removing_an_entry_asks_first_and_only_a_post_removes_it(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    html = client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
    entry = re.search(r'id="entry-(\d+)">\s*<p>[^\n]*Hotline launched', html)
    assert entry
    entry_id = entry[1]
    remove = f"/dashboard/cycles/{c.cycle.id}/entries/{entry_id}/remove"
    # The draft links to a question, it holds no form that removes at once.
    assert f'<a href="{remove}" class="button-link danger">' in html
    assert f'action="{remove}"' not in html

    question = client.get(remove)
    assert question.status_code == 200
    assert "Remove this entry from the 2022 draft?" in question.text
    assert "Hotline launched &lt;script&gt;alert(1)&lt;/script&gt;" in question.text
    assert f'<form method="post" action="{remove}">' in question.text
    assert f'href="/dashboard/cycles/{c.cycle.id}/draft#entry-{entry_id}">Keep it</a>' in (
        question.text
    )
    assert versions(session) == [(1, VersionState.DRAFT)], "asking changes nothing"

    forged = client.post(remove, data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert versions(session) == [(1, VersionState.DRAFT)]

    removed = client.post(remove, data={"csrf": csrf}, follow_redirects=False)
    assert removed.status_code == 303
    assert versions(session) == [(1, VersionState.DRAFT), (2, VersionState.DRAFT)]
    page = client.get(removed.headers["location"]).text
    assert "Entry removed: draft version 2." in page
    assert "Hotline launched" not in page
    # Gone from the draft: asking again says so rather than offering it.
    assert client.get(remove).status_code == 404


def test_approve_and_publish_then_the_published_version_cannot_be_changed(
    session: Session,
    c: Cycle2022,
    make_client: ClientFactory,
    tmp_path: Path,
    enqueued: list[int],
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    approved = client.post(
        f"/dashboard/cycles/{c.cycle.id}/approve",
        data={"csrf": csrf, "version": "1"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert versions(session) == [(1, VersionState.APPROVED)]
    version = session.exec(select(ReportVersion)).one()
    assert (version.approved_by, version.approved_at) == (EMAIL, START)

    published = client.post(
        f"/dashboard/cycles/{c.cycle.id}/publish",
        data={"csrf": csrf, "version": "1"},
        follow_redirects=False,
    )
    assert published.status_code == 303
    assert versions(session) == [(1, VersionState.PUBLISHED)]
    session.refresh(c.cycle)
    assert c.cycle.state is CycleState.PUBLISHED and c.cycle.closed_at == START
    folder = tmp_path / "data" / "published" / c.plan.slug / "2022" / "v1"
    assert (folder / "index.html").exists() and (folder / "SHA256SUMS").exists()
    assert enqueued, "publication notices handed to the worker"

    public = make_client().get(f"/reports/{c.plan.slug}/2022")
    assert public.status_code == 200
    assert "Hotline launched &lt;script&gt;alert(1)&lt;/script&gt; – ka pai." in public.text
    assert version.checksum in public.text
    txt = make_client().get(f"/reports/{c.plan.slug}/2022/{c.plan.slug}-2022-v1.txt")
    assert txt.status_code == 200 and "Hotline launched <script>" in txt.text

    # Content changed in the database, past the ORM's freeze: never served as published.
    table = ReportVersion.__table__  # type: ignore[attr-defined]
    original = dict(version.content)
    tamper = sa.update(table).where(table.c.id == version.id)
    session.execute(tamper.values(content=dict(original, title="Altered")))
    session.commit()
    for url in (
        f"/reports/{c.plan.slug}/2022",
        f"/reports/{c.plan.slug}/2022/{c.plan.slug}-2022-v1.txt",
    ):
        refused = make_client().get(url)
        assert refused.status_code == 500
        assert "This report cannot be shown" in refused.text and "Altered" not in refused.text
    session.execute(tamper.values(content=original))
    session.commit()
    session.expire_all()

    content = dict(version.content)
    again = client.post(
        f"/dashboard/cycles/{c.cycle.id}/approve", data={"csrf": csrf, "version": "1"}
    )
    assert again.status_code == 409 and "already published" in again.text
    # An edit after publication is a new draft; the published version stays as it was.
    page = client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
    entry = re.search(r'id="entry-(\d+)">\s*<p>[^\n]*Hotline launched', page)
    assert entry
    client.post(
        f"/dashboard/cycles/{c.cycle.id}/entries/{entry[1]}/edit",
        data={"csrf": csrf, "text": "Changed after publication."},
    )
    assert versions(session) == [(1, VersionState.PUBLISHED), (2, VersionState.DRAFT)]
    session.refresh(version)
    assert version.content == content


def test_the_audit_log_page_and_csv(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    page = client.get(f"/dashboard/cycles/{c.cycle.id}/audit")
    assert page.status_code == 200
    # Times are in the coordinators' time zone, so the column does not claim UTC.
    assert '<th scope="col">When</th>' in page.text and "(UTC)" not in page.text
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d NZ[DS]T</td>", page.text)
    assert "cycle.opened" in page.text and "draft.compiled" in page.text
    exported = client.get(f"/dashboard/cycles/{c.cycle.id}/audit.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0] == ["at", "actor", "action", "agency", "subject", "detail"]
    assert any(row[2] == "request.submitted" and row[3] == "MBIE" for row in rows)
    # The page names each line's agency.
    assert re.search(r"<td>request\.submitted</td><td>MBIE</td>", page.text)


def test_a_get_never_changes_anything(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})

    def snapshot() -> dict[str, list[tuple[str, ...]]]:
        session.expire_all()
        tables = ("reportversion", "reportentry", "updaterequest", "notification", "cycle")
        return {
            name: sorted(
                tuple(str(v) for v in row)
                for row in session.connection().execute(sa.text(f"SELECT * FROM {name}"))  # noqa: S608
            )
            for name in tables
        }

    before = snapshot()
    events = session.exec(select(sa.func.count()).select_from(AuditEvent)).one()
    for path in (
        "/dashboard",
        f"/dashboard/cycles/{c.cycle.id}",
        f"/dashboard/cycles/{c.cycle.id}/draft",
        f"/dashboard/cycles/{c.cycle.id}/draft?version=1",
        f"/dashboard/cycles/{c.cycle.id}/redline",
        f"/dashboard/cycles/{c.cycle.id}/audit",
        f"/dashboard/cycles/{c.cycle.id}/audit.csv",
        f"/dashboard/cycles/{c.cycle.id}/versions/1.html",
        f"/dashboard/cycles/{c.cycle.id}/approve",
        f"/dashboard/cycles/{c.cycle.id}/publish",
    ):
        assert client.get(path).status_code in (200, 405), path
    assert snapshot() == before
    assert session.exec(select(sa.func.count()).select_from(AuditEvent)).one() == events


def signoff_path(c: Cycle2022, acronym: str) -> str:
    return f"/dashboard/cycles/{c.cycle.id}/requests/{c.requests[acronym].id}/signoff"


def test_sign_off_a_section_from_the_overview_shown_on_the_overview_and_the_draft(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    overview_html = client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert f'action="{signoff_path(c, "MBIE")}"' in overview_html
    assert f'action="{signoff_path(c, "NZP")}"' not in overview_html, "NZP has not submitted"
    assert "igned off by" not in overview_html, "nothing shown while unused"
    assert "Sections signed off" not in client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text

    response = client.post(signoff_path(c, "MBIE"), data={"csrf": csrf}, follow_redirects=False)

    assert response.status_code == 303
    event = session.exec(select(AuditEvent).where(AuditEvent.action == SIGNED_OFF)).one()
    assert (event.actor, event.subject, event.detail) == (
        EMAIL,
        f"update_request:{c.requests['MBIE'].id}",
        {"version": 1},
    )
    shown = client.get(response.headers["location"]).text
    assert "Section signed off (draft version 1)." in shown
    # The day in Wellington, where the coordinators read the dashboard.
    day = START.astimezone(ZoneInfo("Pacific/Auckland")).strftime("%Y-%m-%d")
    assert f"Signed off by {EMAIL} on {day} (version 1)" in shown
    draft = client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
    assert f"<strong>MBIE</strong>: signed off by {EMAIL} on {day} (version 1)" in draft

    refused = client.post(signoff_path(c, "NZP"), data={"csrf": csrf})
    assert refused.status_code == 409 and "NZP has not submitted its answer" in refused.text

    client.post(
        f"/dashboard/cycles/{c.cycle.id}/requests/{c.requests['MBIE'].id}/changes",
        data={"csrf": csrf, "comment": "Add the link."},
    )
    assert "igned off by" not in client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert "Sections signed off" not in client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text


def test_a_section_cannot_be_signed_off_without_signing_in(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    drafts.compile_cycle(session, c.cycle, START, "schedule")
    session.commit()
    client = make_client()
    csrf = csrf_of(client.get("/dashboard/signin").text)

    response = client.post(signoff_path(c, "MBIE"), data={"csrf": csrf}, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/signin"
    assert not session.exec(select(AuditEvent).where(AuditEvent.action == SIGNED_OFF)).all()


def test_the_overview_says_when_an_answer_came_after_the_last_compile(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    html = client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert "Approve version 1" in html and 'id="stale"' not in html
    # Changes can be asked of MBIE (submitted), not of agencies that have not answered.
    assert f"/requests/{c.requests['MBIE'].id}/changes" in html
    assert f"/requests/{c.requests['NZP'].id}/changes" not in html

    submit(session, c.requests["NZP"], complete_answer(session, c.requests["NZP"]))
    session.commit()
    html = client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert "NZP submitted after the draft was last compiled" in html
    assert "Approve version 1" not in html
    refused = client.post(
        f"/dashboard/cycles/{c.cycle.id}/approve", data={"csrf": csrf, "version": "1"}
    )
    assert refused.status_code == 409 and "compile the draft again" in refused.text
    assert versions(session) == [(1, VersionState.DRAFT)]

    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    html = client.get(f"/dashboard/cycles/{c.cycle.id}").text
    assert "Approve version 2" in html and 'id="stale"' not in html
    # Each version links to what changed since the one before.
    assert f'href="/dashboard/cycles/{c.cycle.id}/redline?from=1&amp;to=2">since version 1' in html
    assert (
        f'href="/dashboard/cycles/{c.cycle.id}/redline?from=last&amp;to=1">since last year' in html
    )


def test_the_overview_counts_each_agencys_milestones_by_status(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    from models.tables import Milestone

    bill = c.milestone("Migrant worker protection bill")  # MBIE's, "Quarter 2 2022"
    bill.slipped_on = START.date()
    session.add(bill)
    session.commit()
    led = session.exec(
        select(Milestone).where(Milestone.lead_agency_id == c.agencies["MBIE"].id)
    ).all()
    expected = {
        "completed": sum(m.status.value == "completed" for m in led),
        "on_track": sum(
            m.status.value in ("planned", "on_track") and not m.slipped_on for m in led
        ),
        "delayed": sum(m.status.value == "delayed" and not m.slipped_on for m in led),
        "slipped": sum(
            m.status.value not in ("completed", "dropped") and bool(m.slipped_on) for m in led
        ),
    }
    assert expected["slipped"] >= 1 and sum(expected.values()) == len(led)
    client, _csrf = signed_in(make_client)

    html = client.get(f"/dashboard/cycles/{c.cycle.id}").text

    row = html[html.index('id="agency-MBIE"') :]
    cell = row[
        row.index('<td class="milestone-counts">') : row.index(
            "</td>", row.index("milestone-counts")
        )
    ]
    assert f'<span class="status-on_track">{expected["on_track"]} on track</span>' in cell
    assert f'<span class="status-delayed">{expected["delayed"]} delayed</span>' in cell
    assert f'<span class="status-completed">{expected["completed"]} completed</span>' in cell
    assert f'<span class="status-slipped warn">{expected["slipped"]} slipped</span>' in cell


def test_the_draft_page_approves_and_offers_no_edit_of_a_milestone_line(
    session: Session, c: Cycle2022, make_client: ClientFactory
) -> None:
    client, csrf = signed_in(make_client)
    client.post(f"/dashboard/cycles/{c.cycle.id}/compile", data={"csrf": csrf})
    html = client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
    assert "Approve version 1</button>" in html

    milestone_entry = session.exec(  # the newest: the 2022 draft's, not the 2021 report's
        select(ReportEntry.id)
        .where(ReportEntry.section == Section.MILESTONE)
        .order_by(col(ReportEntry.id).desc())
    ).first()
    refused = client.get(f"/dashboard/cycles/{c.cycle.id}/entries/{milestone_entry}/edit")
    assert refused.status_code == 409 and "milestones take their text" in refused.text
    assert "<textarea" not in refused.text
    gone = client.get(f"/dashboard/cycles/{c.cycle.id}/entries/999999/edit")
    assert gone.status_code == 404 and "open the latest draft" in gone.text

    approved = client.post(
        f"/dashboard/cycles/{c.cycle.id}/approve",
        data={"csrf": csrf, "version": "1"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert "Approve version" not in client.get(f"/dashboard/cycles/{c.cycle.id}/draft").text
