"""The agency form's routes, through FastAPI's TestClient, on the real databases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from config.settings import Settings
from models.clock import SimulatedClock
from models.tables import (
    AccessToken,
    AuditEvent,
    Cycle,
    CycleState,
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    RequestState,
    RevisionKind,
    SubmissionRevision,
    UpdateRequest,
)
from models.tokens import issue_token
from tests.app_clients import ClientFactory, app_clients, csrf_of
from tests.web_helpers import NOW, Scenario, build_scenario
from web.app import create_app


@pytest.fixture
def scenario(session: Session) -> Scenario:
    return build_scenario(session)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(NOW + timedelta(hours=1))


@pytest.fixture
def make_client(session: Session, tmp_path: Path, clock: SimulatedClock) -> Iterator[ClientFactory]:
    """Clients of an app whose sessions join the test's rolled-back connection."""
    with app_clients(session, tmp_path, clock) as factory:
        yield factory


def base_of(html: str) -> str:
    match = re.search(r'name="base" value="([0-9]+)"', html)
    assert match
    return match[1]


def continue_from_link(client: TestClient, token: str, email: str = "kahu@mbie.test") -> str:
    landing = client.get(f"/r/{token}")
    assert landing.status_code == 200
    response = client.post(
        f"/r/{token}", data={"csrf": csrf_of(landing.text), "email": email}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/form"
    form = client.get("/form")
    assert form.status_code == 200
    return str(form.text)


def form_fields(scenario: Scenario, page: str, **fields: str) -> dict[str, str]:
    data = {"csrf": csrf_of(page), "base": base_of(page)}
    data.update(fields)
    return data


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the form could touch."""
    session.expire_all()
    tables = [
        "updaterequest",
        "accesstoken",
        "submissionrevision",
        "milestone",
        "milestonerevision",
        "auditevent",
    ]
    return {
        name: sorted(
            tuple(str(v) for v in row)
            for row in session.connection().execute(sa.text(f"SELECT * FROM {name}"))  # noqa: S608
        )
        for name in tables
    }


# --- the link -----------------------------------------------------------------------------


def test_a_scanners_get_shows_the_page_and_changes_nothing(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    before = snapshot(session)
    response = client.get(f"/r/{scenario.token}")
    assert response.status_code == 200
    assert "Hīkina Whakatutuki – Ministry of Business" in response.text
    assert "2022" in response.text and "Continue" in response.text
    assert snapshot(session) == before
    # The link still works afterwards: the GET did not consume it.
    page = continue_from_link(make_client(), scenario.token)
    assert "Publish guidance for employers" in page
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    session.refresh(request)
    assert request.state is RequestState.OPENED


def test_unknown_expired_and_revoked_tokens_get_the_same_page(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    csrf = csrf_of(client.get(f"/r/{scenario.token}").text)
    unknown = client.get("/r/" + "A" * 43)
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    revoked_token = issue_token(session, request, NOW)
    issue_token(session, request, NOW, revoke_all=True)  # revokes revoked_token
    cycle = session.get(Cycle, scenario.cycle_id)
    assert cycle is not None
    session.commit()
    revoked = client.get(f"/r/{revoked_token}")
    cycle.closed_at = NOW - timedelta(days=30)
    session.add(cycle)
    session.commit()
    expired = client.get(f"/r/{scenario.token}")
    odd = client.get("/r/not/even%20a%20token")
    responses = [unknown, revoked, expired, odd]
    assert {r.status_code for r in responses} == {404}
    assert len({r.text for r in responses}) == 1
    assert "This link does not work" in unknown.text
    assert scenario.coordinator_email in unknown.text
    # Continuing with a dead token is refused the same way, and opens nothing.
    posted = [
        client.post(f"/r/{token}", data={"csrf": csrf, "email": "a@b.nz"})
        for token in ("A" * 43, revoked_token, scenario.token)
    ]
    assert [r.status_code for r in posted] == [404, 404, 404]
    assert {r.text for r in posted} == {unknown.text}
    session.refresh(request)
    assert request.state is RequestState.SENT


def test_continue_sets_a_safe_session_cookie_and_redirects_without_the_token(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    landing = client.get(f"/r/{scenario.token}")
    response = client.post(
        f"/r/{scenario.token}",
        data={"csrf": csrf_of(landing.text), "email": "kahu@mbie.test"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/form"
    assert scenario.token not in response.headers["location"]
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # served over http here; https base URLs add it
    form = client.get("/form")
    assert csrf_of(form.text) != csrf_of(landing.text)  # a fresh CSRF token after Continue
    events = session.exec(
        select(AuditEvent).where(
            AuditEvent.action == "request.opened", AuditEvent.cycle_id == scenario.cycle_id
        )
    ).all()
    assert [e.actor for e in events] == ["kahu@mbie.test"]
    token = session.exec(
        select(AccessToken).where(AccessToken.update_request_id == scenario.request_id)
    ).one()
    session.refresh(token)
    assert token.last_used_at is not None


def test_https_base_url_marks_the_cookie_secure(
    session: Session, scenario: Scenario, tmp_path: Path, clock: SimulatedClock
) -> None:
    connection = session.connection()
    settings = Settings(
        secret_key="s" * 48, data_dir=tmp_path, base_url="https://reports.example.govt.nz"
    )
    app = create_app(
        settings,
        engine=connection.engine,
        clock=clock,
        session_factory=lambda: Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ),
    )
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get(f"/r/{scenario.token}")
    assert "secure" in response.headers["set-cookie"].lower()


def test_continue_needs_an_email(scenario: Scenario, make_client: ClientFactory) -> None:
    client = make_client()
    landing = client.get(f"/r/{scenario.token}")
    response = client.post(
        f"/r/{scenario.token}", data={"csrf": csrf_of(landing.text), "email": "not an email"}
    )
    assert response.status_code == 400
    assert 'href="#email"' in response.text
    assert 'value="not an email"' in response.text


def test_security_headers_on_every_page(scenario: Scenario, make_client: ClientFactory) -> None:
    client = make_client()
    for path in (f"/r/{scenario.token}", "/r/unknown", "/form", "/healthz", "/static/form.css"):
        headers = client.get(path).headers
        assert headers["referrer-policy"] == "no-referrer", path
        assert headers["cache-control"] == "no-store", path
        assert headers["x-content-type-options"] == "nosniff", path
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert "http" not in csp  # no third-party source


def test_form_without_a_session_asks_to_open_the_link(make_client: ClientFactory) -> None:
    response = make_client().get("/form")
    assert response.status_code == 401
    assert "open the link" in response.text.lower()


# --- CSRF, limits --------------------------------------------------------------------------


def test_a_forged_or_missing_csrf_token_is_refused_and_nothing_saved(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    client.get(f"/r/{scenario.token}")
    refused = client.post(f"/r/{scenario.token}", data={"csrf": "forged", "email": "a@b.nz"})
    assert refused.status_code == 403
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    session.refresh(request)
    assert request.state is RequestState.SENT

    page = continue_from_link(client, scenario.token)
    milestone = scenario.milestone_ids[0]
    fields = form_fields(scenario, page, **{f"m-{milestone}-progress": "on_track"})
    for csrf in ("forged", None):
        data = dict(fields, action="save")
        if csrf is None:
            del data["csrf"]
        else:
            data["csrf"] = csrf
        assert client.post("/form", data=data).status_code == 403
    reopen = client.post("/form/reopen", data={"csrf": "forged"})
    assert reopen.status_code == 403
    revisions = session.exec(
        select(SubmissionRevision).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert revisions == []


def test_a_body_over_the_limit_gets_413_and_nothing_saved(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client(max_body_bytes=4096)
    page = continue_from_link(client, scenario.token)
    data = form_fields(
        scenario, page, action="save", **{f"a-{scenario.objective_id}-0-text": "x" * 8000}
    )
    response = client.post("/form", data=data)
    assert response.status_code == 413
    # Without a Content-Length (chunked), the limit is counted as the body arrives.
    body = urlencode(data).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 1024):
            yield body[start : start + 1024]

    streamed = client.post(
        "/form",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert (
        session.exec(
            select(SubmissionRevision).where(
                SubmissionRevision.update_request_id == scenario.request_id
            )
        ).all()
        == []
    )


def test_token_attempts_are_rate_limited_per_client(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client(token_attempts=3)
    statuses = [client.get(f"/r/guess-{n}").status_code for n in range(3)]
    assert statuses == [404, 404, 404]
    limited = client.get(f"/r/{scenario.token}")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert client.post(f"/r/{scenario.token}", data={}).status_code == 429


# --- saving --------------------------------------------------------------------------------


def test_script_in_an_achievement_is_shown_as_text(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    script = '<script>alert("x")</script> & Ngā mihi'
    data = form_fields(
        scenario, page, action="save", **{f"a-{scenario.objective_id}-0-text": script}
    )
    saved = client.post("/form", data=data)
    assert saved.status_code == 200
    assert "Draft saved" in saved.text
    assert "<script>alert" not in saved.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ngā mihi" in saved.text


def test_a_link_that_is_not_http_is_refused_beside_the_field(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    prefix = f"a-{scenario.objective_id}-0"
    data = form_fields(
        scenario,
        page,
        action="save",
        **{
            f"{prefix}-text": "Published the employer guide – kei te pai",
            f"{prefix}-link_title": "Guide",
            f"{prefix}-link_url": "javascript:alert(1)",
        },
    )
    response = client.post("/form", data=data)
    assert response.status_code == 400
    assert f'href="#{prefix}-link_url"' in response.text  # the summary links to the field
    assert f'id="{prefix}-link_url-error"' in response.text  # the message beside it
    assert "https://" in response.text
    assert "Published the employer guide – kei te pai" in response.text  # nothing typed lost
    assert 'value="javascript:alert(1)"' in response.text
    assert (
        session.exec(
            select(SubmissionRevision).where(
                SubmissionRevision.update_request_id == scenario.request_id
            )
        ).all()
        == []
    )


def test_an_unreadable_period_is_refused_and_the_typed_text_kept(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    milestone = scenario.milestone_ids[1]
    data = form_fields(
        scenario,
        page,
        action="submit",
        **{
            f"m-{milestone}-progress": "delayed",
            f"m-{milestone}-new_period": "sometime soon",
            f"m-{milestone}-reason": "Waiting on the translation – he reo Māori.",
        },
    )
    response = client.post("/form", data=data)
    assert response.status_code == 400
    assert f'href="#m-{milestone}-new_period"' in response.text
    assert f'id="m-{milestone}-new_period-error"' in response.text
    assert "“sometime soon” is not a period we can read" in response.text
    assert 'value="sometime soon"' in response.text
    assert "Waiting on the translation – he reo Māori." in response.text
    # A submission must also answer every milestone.
    assert f'href="#m-{scenario.milestone_ids[0]}-progress"' in response.text


def test_add_another_without_javascript_keeps_what_was_typed(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    objective = scenario.objective_id
    data = form_fields(
        scenario,
        page,
        action=f"add:a-{objective}",
        **{f"a-{objective}-0-text": "Trained 40 inspectors", f"f-{objective}-0-text": "Ōtautahi"},
    )
    response = client.post("/form", data=data)
    assert response.status_code == 200
    assert f'name="a-{objective}-1-text"' in response.text
    assert "Trained 40 inspectors" in response.text and "Ōtautahi" in response.text
    removed = client.post(
        "/form", data=dict(data, action=f"remove:a-{objective}-0", **{f"a-{objective}-1-text": ""})
    )
    assert "Trained 40 inspectors" not in removed.text
    assert "Ōtautahi" in removed.text
    assert (
        session.exec(
            select(SubmissionRevision).where(
                SubmissionRevision.update_request_id == scenario.request_id
            )
        ).all()
        == []
    )


def remove_buttons(html: str) -> dict[str, str]:
    """Each Remove button's value and accessible name (its text, hidden parts included)."""
    return {
        value: " ".join(re.sub(r"<[^>]+>", "", inner).split())
        for value, inner in re.findall(
            r'<button type="submit" name="action" value="(remove:[^"]+)"[^>]*>(.*?)</button>', html
        )
    }


def test_each_remove_button_names_its_row(scenario: Scenario, make_client: ClientFactory) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    objective = scenario.objective_id
    more = client.post(
        "/form",
        data=form_fields(
            scenario,
            page,
            action=f"add:a-{objective}",
            **{f"a-{objective}-0-text": "Trained 40 inspectors"},
        ),
    )
    assert more.status_code == 200
    assert remove_buttons(more.text) == {
        f"remove:a-{objective}-0": "Remove achievement 1",
        f"remove:a-{objective}-1": "Remove achievement 2",
        # last year's further work, carried forward (this agency alone is active here)
        f"remove:f-{objective}-0": "Remove area for further work 1",
        f"remove:n-{objective}-0": "Remove new milestone 1",
    }
    # The number is visually hidden text (read out, not shown): the visible label is short.
    assert (
        'Remove achievement<span class="visually-hidden"> <span data-row-number>2</span></span>'
        in more.text
    )


def test_concurrent_saves_give_the_second_a_conflict_and_overwrite_nothing(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    first, second = make_client(), make_client()
    first_page = continue_from_link(first, scenario.token, "aroha@mbie.test")
    second_page = continue_from_link(second, scenario.token, "tane@mbie.test")
    objective = scenario.objective_id
    saved = first.post(
        "/form",
        data=form_fields(
            scenario, first_page, action="save", **{f"a-{objective}-0-text": "Aroha's version"}
        ),
    )
    assert saved.status_code == 200
    clash = second.post(
        "/form",
        data=form_fields(
            scenario, second_page, action="save", **{f"a-{objective}-0-text": "Tāne's version"}
        ),
    )
    assert clash.status_code == 409
    assert "Someone else saved this answer" in clash.text
    assert "Aroha&#39;s version" in clash.text and "Tāne&#39;s version" in clash.text
    assert "aroha@mbie.test" in clash.text
    revisions = session.exec(
        select(SubmissionRevision).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert [(r.number, r.author) for r in revisions] == [(1, "aroha@mbie.test")]
    assert revisions[0].content["achievements"][0]["text"] == "Aroha's version"
    # Saving again from the conflict page (after merging by hand) is based on revision 1.
    merged = second.post(
        "/form",
        data=form_fields(
            scenario, clash.text, action="save", **{f"a-{objective}-0-text": "Both versions"}
        ),
    )
    assert merged.status_code == 200
    session.expire_all()
    numbers = session.exec(
        select(SubmissionRevision.number, SubmissionRevision.author).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert sorted(numbers) == [(1, "aroha@mbie.test"), (2, "tane@mbie.test")]


def visible_text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_conflict_page_marks_what_differs_in_both_versions(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    first, second, third = make_client(), make_client(), make_client()
    first_page = continue_from_link(first, scenario.token, "aroha@mbie.test")
    second_page = continue_from_link(second, scenario.token, "tane@mbie.test")
    third_page = continue_from_link(third, scenario.token, "mere@mbie.test")
    done, late = scenario.milestone_ids
    objective = scenario.objective_id
    shared = {
        f"m-{done}-progress": "completed",
        f"m-{done}-achievement": "Guidance published.",
        f"f-{objective}-0-text": "Extend training to labour inspectors.",
    }
    aroha = {
        **shared,
        f"m-{late}-progress": "on_track",
        f"a-{objective}-0-text": "Aroha's version",
    }
    tane = {
        **shared,
        # Not differences: text under a choice not made, and spacing.
        f"m-{done}-reason": "Typed under 'delayed' first",
        f"f-{objective}-0-text": " Extend training to  labour inspectors.",
        # Differences: the milestone's progress, the achievement, a new milestone.
        f"m-{late}-progress": "delayed",
        f"m-{late}-new_period": "Q4 2022",
        f"m-{late}-reason": "Waiting for the translation.",
        f"a-{objective}-0-text": "Tāne's version",
        f"n-{objective}-0-period": "Quarter 1 2023",
        f"n-{objective}-0-text": "Evaluate the hotline.",
    }
    saved = first.post("/form", data=form_fields(scenario, first_page, action="save", **aroha))
    assert saved.status_code == 200
    clash = second.post("/form", data=form_fields(scenario, second_page, action="save", **tane))
    assert clash.status_code == 409
    html = clash.text
    assert (
        "3 milestones or entries differ between your version and the saved one</strong>: "
        "each is marked “Differs”, in both versions." in html
    )

    # Your version, the form: the milestone and the rows that differ, and only those.
    assert f'<fieldset class="milestone differs" id="milestone-{late}"' in html
    assert f'<fieldset class="milestone" id="milestone-{done}"' in html
    legend = html.split(f'id="milestone-{late}"', 1)[1].split("</legend>", 1)[0]
    assert visible_text(legend).endswith("Differs from the saved version")
    rows = {}
    for piece in html.split('<div class="row')[1:]:
        named = re.search(r'name="([afn]-[0-9]+-[0-9]+)-', piece)
        assert named
        rows[named[1]] = piece.startswith(' differs"') and "Differs" in piece.split("<label", 1)[0]
    assert rows == {f"a-{objective}-0": True, f"f-{objective}-0": False, f"n-{objective}-0": True}

    # The saved version: the same milestone and the achievement it replaced are marked.
    summary = html.split('<dl class="summary">', 1)[1].split("</dl>", 1)[0]
    terms = [
        (marked == ' class="differs"', visible_text(text))
        for marked, text in re.findall(r"<dt( class=\"differs\")?>(.*?)</dt>", summary, re.S)
    ]
    assert (True, "Launch the awareness campaign in Te Reo Māori. Differs from your version") in (
        terms
    )
    assert (False, "Publish guidance for employers on worker exploitation.") in terms
    [achievement] = [t for t in terms if t[1].startswith("Key achievement")]
    [further] = [t for t in terms if t[1].startswith("Further work")]
    assert achievement[0] and achievement[1].endswith("Differs from your version")
    assert not further[0]
    assert re.search(r'<dd class="differs">Aroha&#39;s version</dd>', summary)

    # The same answer saved twice over: the page says nothing differs.
    same = third.post("/form", data=form_fields(scenario, third_page, action="save", **aroha))
    assert same.status_code == 409
    assert "The two versions say the same." in same.text
    assert 'class="milestone differs"' not in same.text and '"row differs"' not in same.text


def test_draft_then_submit_keeps_revisions_and_records_milestone_history(
    session: Session, scenario: Scenario, make_client: ClientFactory, clock: SimulatedClock
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    done, late = scenario.milestone_ids
    objective = scenario.objective_id
    answer = {
        f"m-{done}-progress": "completed",
        f"m-{done}-completed_on": "2022-02-01",
        f"m-{done}-achievement": "Guidance published in English and te reo Māori.",
        f"m-{late}-progress": "delayed",
        f"m-{late}-new_period": "Q4 2022",
        f"m-{late}-reason": "Waiting for the translation.",
        f"a-{objective}-0-text": "Launched the employer hotline.",
        f"a-{objective}-0-link_title": "Hotline",
        f"a-{objective}-0-link_url": "https://www.employment.govt.nz/hotline",
        f"n-{objective}-0-period": "Quarter 1 2023",
        f"n-{objective}-0-text": "Evaluate the hotline.",
    }
    draft = client.post("/form", data=form_fields(scenario, page, action="save", **answer))
    assert draft.status_code == 200 and "Draft saved" in draft.text
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    session.refresh(request)
    assert request.state is RequestState.DRAFT
    milestone = session.get(Milestone, late)
    assert milestone is not None and milestone.due_text == "Quarter 2 2022"  # drafts apply nothing

    clock.advance(timedelta(hours=2))
    submitted = client.post(
        "/form", data=form_fields(scenario, draft.text, action="submit", **answer)
    )
    assert submitted.status_code == 200
    assert "Submitted" in submitted.text and "Reopen to make changes" in submitted.text
    session.expire_all()
    revisions = session.exec(
        select(SubmissionRevision)
        .where(SubmissionRevision.update_request_id == scenario.request_id)
        .order_by(col(SubmissionRevision.number))
    ).all()
    assert [(r.number, r.kind, r.author) for r in revisions] == [
        (1, RevisionKind.DRAFT, "kahu@mbie.test"),
        (2, RevisionKind.SUBMITTED, "kahu@mbie.test"),
    ]
    assert revisions[1].created_at == clock.now
    completed = session.get(Milestone, done)
    delayed = session.get(Milestone, late)
    assert completed is not None and delayed is not None
    assert completed.status is MilestoneStatus.COMPLETED
    assert completed.completed_on == date(2022, 2, 1)
    assert delayed.status is MilestoneStatus.DELAYED
    assert (delayed.due_text, delayed.due_start, delayed.due_end) == (
        "Q4 2022",
        date(2022, 10, 1),
        date(2022, 12, 31),
    )
    history = session.exec(
        select(MilestoneRevision).where(MilestoneRevision.milestone_id == late)
    ).all()
    assert [
        (h.year, h.previous_due_text, h.new_due_text, h.reason, h.changed_by) for h in history
    ] == [(2022, "Quarter 2 2022", "Q4 2022", "Waiting for the translation.", "kahu@mbie.test")]
    added = session.exec(
        select(Milestone).where(
            Milestone.objective_id == objective, Milestone.text == "Evaluate the hotline."
        )
    ).all()
    assert [(m.lead_agency_id, m.due_text, m.first_reported_year) for m in added] == [
        (scenario.agency_id, "Quarter 1 2023", 2022)
    ]
    actions = session.exec(
        select(AuditEvent.action)
        .where(AuditEvent.cycle_id == scenario.cycle_id)
        .order_by(col(AuditEvent.id))
    ).all()
    assert actions == [
        "request.opened",
        "request.draft_saved",
        "milestone.added",
        "request.submitted",
    ]

    # Reopen and submit again: nothing is applied twice.
    reopened = client.post("/form/reopen", data={"csrf": csrf_of(submitted.text)})
    assert reopened.status_code == 200 and "Reopened" in reopened.text
    resubmitted = client.post(
        "/form", data=form_fields(scenario, reopened.text, action="submit", **answer)
    )
    assert resubmitted.status_code == 200 and "Submitted" in resubmitted.text
    session.expire_all()
    assert (
        len(
            session.exec(
                select(MilestoneRevision).where(MilestoneRevision.milestone_id == late)
            ).all()
        )
        == 1
    )
    assert (
        len(
            session.exec(
                select(Milestone).where(
                    Milestone.text == "Evaluate the hotline.", Milestone.objective_id == objective
                )
            ).all()
        )
        == 1
    )
    assert (
        "request.reopened"
        in session.exec(
            select(AuditEvent.action).where(AuditEvent.cycle_id == scenario.cycle_id)
        ).all()
    )


def test_the_coordinators_comment_shows_at_the_top(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    request.state = RequestState.CHANGES_REQUESTED
    request.change_comment = "Please add the <b>hotline</b> numbers – kia ora."
    session.add(request)
    session.commit()
    page = continue_from_link(make_client(), scenario.token)
    assert "The coordinator asked for changes" in page
    assert "Please add the &lt;b&gt;hotline&lt;/b&gt; numbers – kia ora." in page


def test_an_approved_cycle_cannot_be_reopened_or_saved(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    cycle = session.get(Cycle, scenario.cycle_id)
    assert cycle is not None
    cycle.state = CycleState.APPROVED
    session.add(cycle)
    session.commit()
    milestone = scenario.milestone_ids[0]
    response = client.post(
        "/form",
        data=form_fields(scenario, page, action="save", **{f"m-{milestone}-progress": "on_track"}),
    )
    assert response.status_code == 409
    assert "approved" in response.text
    assert client.post("/form/reopen", data={"csrf": csrf_of(page)}).status_code == 409


def test_a_revoked_link_ends_the_session(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    continue_from_link(client, scenario.token)
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    issue_token(session, request, NOW, revoke_all=True)
    session.commit()
    assert client.get("/form").status_code == 401


def test_an_expired_link_or_a_cycle_closed_past_its_grace_ends_the_session(
    session: Session, scenario: Scenario, make_client: ClientFactory, clock: SimulatedClock
) -> None:
    client = make_client()
    continue_from_link(client, scenario.token)
    access = session.exec(
        select(AccessToken).where(AccessToken.update_request_id == scenario.request_id)
    ).one()
    cycle = session.get(Cycle, scenario.cycle_id)
    assert cycle is not None
    now = clock()
    # Closed, but within the grace period (14 days by default): the form still answers.
    cycle.closed_at = now - timedelta(days=13)
    session.add(cycle)
    session.commit()
    assert client.get("/form").status_code == 200
    cycle.closed_at = now - timedelta(days=15)
    session.add(cycle)
    session.commit()
    assert client.get("/form").status_code == 401

    second = make_client()
    cycle.closed_at = None
    session.add(cycle)
    session.commit()
    continue_from_link(second, scenario.token)
    access.expires_at = now - timedelta(minutes=1)
    session.add(access)
    session.commit()
    assert second.get("/form").status_code == 401


def test_the_form_shows_the_latest_save_and_a_milestones_first_baseline(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    milestone_id = scenario.milestone_ids[0]
    for sequence, previous, new in (
        (1, "Quarter 1 2022", "Quarter 2 2022"),
        (2, "Quarter 2 2022", "Quarter 4 2022"),
    ):
        session.add(
            MilestoneRevision(
                milestone_id=milestone_id,
                sequence=sequence,
                year=2021 + sequence,
                previous_due_text=previous,
                previous_start=None,
                previous_end=None,
                new_due_text=new,
                new_start=None,
                new_end=None,
                changed_by="test",
            )
        )
    session.commit()
    client = make_client()
    page = continue_from_link(client, scenario.token)
    assert "(Delayed from Quarter 1 2022)" in page
    assert "Delayed from Quarter 2 2022" not in page
    field = f"f-{scenario.objective_id}-0-text"
    for text in ("First draft", "Second draft"):
        saved = client.post(
            "/form", data=form_fields(scenario, page, action="save", **{field: text})
        )
        assert saved.status_code == 200  # followed the redirect to the form
        page = saved.text
    assert base_of(page) == "2"
    assert "Second draft" in page and "First draft" not in page
    assert "revision 2" in page


def test_live_period_check(scenario: Scenario, make_client: ClientFactory) -> None:
    client = make_client()
    assert client.get("/form/period", params={"text": "Q3 2023"}).status_code == 401
    continue_from_link(client, scenario.token)
    good = client.get("/form/period", params={"text": "Q3 2023"}).json()
    assert good == {
        "ok": True,
        "text": "Quarter 3 2023",
        "start": "2023-07-01",
        "end": "2023-09-30",
    }
    bad = client.get("/form/period", params={"text": "Q5 2023"}).json()
    assert bad["ok"] is False and "Q5 2023" in bad["message"]


def test_autosave_answers_json(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    data = form_fields(
        scenario, page, action="submit", **{f"f-{scenario.objective_id}-0-text": "Autosaved"}
    )
    response = client.post("/form", data=data, headers={"X-Autosave": "1"})
    assert response.status_code == 200
    assert response.json()["ok"] is True and response.json()["revision"] == 1
    again = client.post("/form", data=data, headers={"X-Autosave": "1"})
    assert again.status_code == 409 and again.json()["reason"] == "conflict"
    kinds = session.exec(
        select(SubmissionRevision.kind).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert kinds == [RevisionKind.DRAFT]  # autosave never submits


# --- a user's-eye pass: what a busy official needs from the page ---------------------------


def test_opening_the_link_again_keeps_a_form_open_in_another_tab_saving(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    # The contact has the form open, then clicks the link in the mail again (a second tab, the
    # next morning): the first tab's form must still save what was typed in it.
    client = make_client()
    first_tab = continue_from_link(client, scenario.token)
    continue_from_link(client, scenario.token, "kahu@mbie.test")
    objective = scenario.objective_id
    saved = client.post(
        "/form",
        data=form_fields(
            scenario, first_tab, action="save", **{f"a-{objective}-0-text": "Typed in tab one"}
        ),
    )
    assert saved.status_code == 200 and "Draft saved" in saved.text
    [revision] = session.exec(
        select(SubmissionRevision).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert revision.content["achievements"][0]["text"] == "Typed in tab one"


def test_another_agencys_link_in_the_same_browser_gets_a_fresh_csrf_token(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    first = continue_from_link(client, scenario.token)
    other = UpdateRequest(
        cycle_id=scenario.cycle_id,
        agency_id=session.exec(
            select(Milestone.lead_agency_id).where(Milestone.id == scenario.other_milestone_id)
        ).one(),
        state=RequestState.SENT,
        created_at=NOW,
    )
    session.add(other)
    session.flush()
    token = issue_token(session, other, NOW)
    session.commit()
    second = continue_from_link(client, token)
    assert csrf_of(second) != csrf_of(first)


def test_times_are_shown_in_the_plans_time_zone(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    # The clock is 22:00 UTC on 14 February 2022: 11:00 on the 15th in Wellington (NZDT).
    client = make_client()
    page = continue_from_link(client, scenario.token)
    saved = client.post(
        "/form",
        data=form_fields(
            scenario, page, action="save", **{f"f-{scenario.objective_id}-0-text": "Soon"}
        ),
    )
    assert "Draft saved at 11:00 NZDT, 15 Feb 2022 (revision 1)." in saved.text
    assert "Last saved 11:00 NZDT, 15 Feb 2022 by kahu@mbie.test" in saved.text
    assert "UTC" not in saved.text
    autosaved = client.post(
        "/form",
        data=form_fields(scenario, saved.text, action="save"),
        headers={"X-Autosave": "1"},
    )
    assert autosaved.json()["at"] == "11:00 NZDT, 15 Feb 2022"


def test_the_page_says_what_is_left_by_when_and_whom_to_ask(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    landing = client.get(f"/r/{scenario.token}").text
    assert "Aroha Coordinator" in landing and f"mailto:{scenario.coordinator_email}" in landing
    page = continue_from_link(client, scenario.token)
    # Deadline 31 March 2022, today 15 February in Wellington.
    assert "Tuesday 15 December" not in page
    assert "Thursday 31 March 2022" in page and "(44 days from today)" in page
    assert "Milestones answered: <strong><span data-answered-count>0</span> of 2" in page
    assert f"mailto:{scenario.coordinator_email}" in page and "What to do" in page
    done = scenario.milestone_ids[0]
    saved = client.post(
        "/form",
        data=form_fields(scenario, page, action="save", **{f"m-{done}-progress": "on_track"}),
    )
    assert "<span data-answered-count>1</span> of 2" in saved.text


def test_the_error_summary_names_the_milestone_or_row_of_each_problem(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    objective = scenario.objective_id
    response = client.post(
        "/form",
        data=form_fields(
            scenario,
            page,
            action="submit",
            **{
                f"a-{objective}-0-text": "Hotline",
                f"a-{objective}-0-link_url": "ftp://example.org",
            },
        ),
    )
    assert response.status_code == 400
    summary = response.text.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    done, late = scenario.milestone_ids
    assert (
        f'<a href="#m-{done}-progress"><span class="context">Quarter 1 2022 – Publish guidance '
        "for employers on worker exploitation.:</span> Choose what happened to this milestone."
        in summary
    )
    assert f'<a href="#m-{late}-progress"><span class="context">Quarter 2 2022 – Launch' in summary
    assert (
        f'<a href="#a-{objective}-0-link_url"><span class="context">Key achievement 1 '
        "(Undertake awareness raising and training" in summary
    )


def test_a_delay_to_a_period_already_over_is_refused_live_and_on_save(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    live = client.get("/form/period", params={"text": "Q4 2021"}).json()
    assert live["ok"] is False and "has already ended" in live["message"]
    assert client.get("/form/period", params={"text": "Q1 2022"}).json()["ok"] is True
    late = scenario.milestone_ids[1]
    response = client.post(
        "/form",
        data=form_fields(
            scenario,
            page,
            action="save",
            **{f"m-{late}-progress": "delayed", f"m-{late}-new_period": "Q4 2021"},
        ),
    )
    assert response.status_code == 400
    assert f'id="m-{late}-new_period-error"' in response.text
    assert "“Q4 2021” has already ended" in response.text
    assert 'value="Q4 2021"' in response.text


def test_an_incomplete_submission_is_kept_as_a_draft(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    done, late = scenario.milestone_ids
    response = client.post(
        "/form",
        data=form_fields(
            scenario,
            page,
            action="submit",
            **{f"m-{done}-progress": "completed", f"f-{scenario.objective_id}-0-text": "Ōtaki"},
        ),
    )
    assert response.status_code == 400
    assert "Saved as a draft (revision 1) but not submitted: there is a problem" in response.text
    assert f'href="#m-{late}-progress"' in response.text
    assert base_of(response.text) == "1"  # the next save is based on the draft just kept
    request = session.get(UpdateRequest, scenario.request_id)
    assert request is not None
    session.refresh(request)
    assert request.state is RequestState.DRAFT
    [revision] = session.exec(
        select(SubmissionRevision).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    assert revision.kind is RevisionKind.DRAFT
    assert revision.content["further_work"][0]["text"] == "Ōtaki"


def test_a_save_keeps_only_the_fields_of_the_choice_made(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    # The contact chose "delayed" and typed a new period and a reason, then chose
    # "completed": the delay's text must not reach the saved revision (reviewers, the draft).
    client = make_client()
    page = continue_from_link(client, scenario.token)
    done, late = scenario.milestone_ids
    objective = scenario.objective_id
    typed = {
        f"m-{done}-progress": "completed",
        f"m-{done}-achievement": "Guidance published in te reo Māori.",
        f"m-{done}-new_period": "Quarter 4 2022",
        f"m-{done}-reason": "Stale reason for a delay",
        # Nothing chosen yet for this one: whatever is typed is kept.
        f"m-{late}-reason": "Still deciding – funding",
    }

    def saved() -> list[SubmissionRevision]:
        session.expire_all()
        return list(
            session.exec(
                select(SubmissionRevision)
                .where(SubmissionRevision.update_request_id == scenario.request_id)
                .order_by(col(SubmissionRevision.number))
            ).all()
        )

    # Refused with errors: the page shows everything typed, the other choice's text included.
    bad_link = {f"a-{objective}-0-text": "Hotline", f"a-{objective}-0-link_url": "ftp://x"}
    refused = client.post(
        "/form", data=form_fields(scenario, page, action="save", **typed, **bad_link)
    )
    assert refused.status_code == 400
    assert 'value="Quarter 4 2022"' in refused.text
    assert "Stale reason for a delay" in refused.text
    assert saved() == []

    # A submission kept as a draft (one milestone unanswered): the draft holds only the
    # chosen fields, while the page still shows everything typed.
    kept = client.post("/form", data=form_fields(scenario, refused.text, action="submit", **typed))
    assert kept.status_code == 400 and "Saved as a draft (revision 1)" in kept.text
    assert 'value="Quarter 4 2022"' in kept.text
    assert "Stale reason for a delay" in kept.text
    [draft] = saved()
    milestones = {m["milestone_id"]: m for m in draft.content["milestones"]}
    assert milestones[done] == {
        "milestone_id": done,
        "progress": "completed",
        "completed_on": None,
        "achievement": "Guidance published in te reo Māori.",
        "new_period": None,
        "reason": None,
    }
    assert milestones[late]["progress"] is None
    assert milestones[late]["reason"] == "Still deciding – funding"

    # "No longer planned" after "delayed" keeps the reason, not the new period.
    typed[f"m-{late}-progress"] = "dropped"
    typed[f"m-{late}-new_period"] = "Quarter 3 2022"
    submitted = client.post(
        "/form", data=form_fields(scenario, kept.text, action="submit", **typed)
    )
    assert submitted.status_code == 200 and "Submitted" in submitted.text
    revision = saved()[-1]
    assert revision.kind is RevisionKind.SUBMITTED
    milestones = {m["milestone_id"]: m for m in revision.content["milestones"]}
    assert (milestones[done]["new_period"], milestones[done]["reason"]) == (None, None)
    assert milestones[late]["new_period"] is None
    assert milestones[late]["reason"] == "Still deciding – funding"
    # The form, read back from the saved revision, no longer shows the other choices' text.
    for stale in ("Quarter 4 2022", "Stale reason for a delay", "Quarter 3 2022"):
        assert stale not in submitted.text
    assert "Guidance published in te reo Māori." in submitted.text
    dropped = session.get(Milestone, late)
    assert dropped is not None and dropped.status is MilestoneStatus.DROPPED
    assert dropped.due_text == "Quarter 2 2022"


def test_a_bad_date_under_a_choice_not_made_does_not_block_the_save(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    # A completion date typed badly, then "on track" chosen: the save drops the date (it
    # belongs to "completed"), so it must not be refused for it; the page still shows it while
    # another problem refuses the save. Under "completed", or with nothing chosen yet, the
    # same date is refused.
    client = make_client()
    page = continue_from_link(client, scenario.token)
    done = scenario.milestone_ids[0]
    objective = scenario.objective_id
    date_field = f"m-{done}-completed_on"
    error_id = f'id="m-{done}-completed_on-error"'
    typed = {f"m-{done}-progress": "on_track", date_field: "30/06/2022"}

    bad_link = {f"a-{objective}-0-text": "Hotline", f"a-{objective}-0-link_url": "ftp://x"}
    refused = client.post(
        "/form", data=form_fields(scenario, page, action="save", **typed, **bad_link)
    )
    assert refused.status_code == 400
    assert error_id not in refused.text
    assert 'value="30/06/2022"' in refused.text

    saved = client.post("/form", data=form_fields(scenario, refused.text, action="save", **typed))
    assert saved.status_code == 200 and "Draft saved" in saved.text
    session.expire_all()
    [revision] = session.exec(
        select(SubmissionRevision).where(
            SubmissionRevision.update_request_id == scenario.request_id
        )
    ).all()
    milestones = {m["milestone_id"]: m for m in revision.content["milestones"]}
    assert milestones[done]["progress"] == "on_track"
    assert milestones[done]["completed_on"] is None

    for progress in ("completed", ""):
        again = {f"m-{done}-progress": progress, date_field: "30/06/2022"}
        blocked = client.post(
            "/form", data=form_fields(scenario, saved.text, action="save", **again)
        )
        assert blocked.status_code == 400, progress
        assert error_id in blocked.text
        assert 'value="30/06/2022"' in blocked.text
    session.expire_all()
    assert len(session.exec(select(SubmissionRevision)).all()) == 1


def test_a_save_after_the_session_ended_shows_what_was_typed(
    scenario: Scenario, make_client: ClientFactory
) -> None:
    client = make_client()
    page = continue_from_link(client, scenario.token)
    client.cookies.clear()  # the session cookie expired (8 hours) while the page was open
    objective = scenario.objective_id
    late = scenario.milestone_ids[1]
    response = client.post(
        "/form",
        data=form_fields(
            scenario,
            page,
            action="save",
            **{
                f"a-{objective}-0-text": "Two hours of <careful> writing – ka pai",
                f"m-{late}-reason": "Funding moved to 2023.",
            },
        ),
    )
    assert response.status_code == 401
    assert "What you typed has not been saved" in response.text
    assert "Two hours of &lt;careful&gt; writing – ka pai" in response.text
    assert "Funding moved to 2023." in response.text
    # A post from another site (no session cookie there either) gets the page without echo.
    forged = client.post(
        "/form",
        data={f"a-{objective}-0-text": "Call this number to recover your work"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 401
    assert "Call this number" not in forged.text


def test_the_examples_in_the_hints_are_periods_still_to_come(
    session: Session, scenario: Scenario, make_client: ClientFactory
) -> None:
    # Examples from years already over ("Quarter 3 2023" in a 2026 cycle) invite a period
    # that the form then refuses as ended.
    cycle = session.get(Cycle, scenario.cycle_id)
    assert cycle is not None
    cycle.year = 2026
    session.add(cycle)
    session.commit()
    page = continue_from_link(make_client(), scenario.token)
    late = scenario.milestone_ids[1]
    hint = page.split(f'id="m-{late}-new_period-hint">', 1)[1].split("</p>", 1)[0]
    assert hint == "For example Quarter 3 2027, Q1-Q2 2028, December 2027 or 2028."
    row_hint = page.split(f'id="n-{scenario.objective_id}-0-period-hint">', 1)[1]
    assert row_hint.startswith("For example Quarter 2 2027.</p>")
    done = scenario.milestone_ids[0]
    date_hint = page.split(f'id="m-{done}-completed_on-hint">', 1)[1]
    assert date_hint.startswith("For example 2026-06-30.</p>")
