"""The accessibility gate: axe-core's WCAG 2.0 and 2.1 A and AA rules, run in a real Chromium
on every page reportcycle serves (the agency's link, form and its states; the coordinator's
dashboard; the published report) and on the standalone HTML report, at a desktop width and,
for the pages read on a phone (the form, the overview), at 375 px.

Each test walks its pages in one browser against one server and fails once at the end with
every violation found: the page, the rule, its impact, the element and axe's help text."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from config.settings import Settings
from models.accounts import add_account
from models.db import make_engine, upgrade
from models.publishing import file_stem, request_changes
from models.submissions import save_answer
from models.tables import UpdateRequest
from models.tokens import issue_token
from tests.browser import served
from tests.review_helpers import (
    ANSWERED,
    COORDINATOR,
    OPENED,
    complete_answer,
    objective_ids,
    open_2022,
    submit,
)
from tests.services import free_port
from web.app import create_app

pytestmark = [pytest.mark.browser]
# The pages once, on the embedded default, like the other Chromium tests: what the database
# behind them changes is checked on both backends by the route tests.
on_sqlite = pytest.mark.parametrize("backend", ["sqlite"])

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
PASSWORD = "correct horse battery staple"
AGENCY = "NZP"  # answers through the form in the browser
ASKED = "INZ"  # submitted, and asked for changes by the coordinator
TITLE = "Plan of action implementation reports"  # the imported report's


@dataclass
class Gate:
    """axe run on page after page; what it finds is kept, to be reported all at once."""

    found: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    _axe: Any = None

    def check(
        self, page: Any, name: str, *, heading: str | None = None, dark: bool = False
    ) -> None:
        """Run axe's WCAG A/AA rules on the page as it is now. ``heading``: text the page's
        h1 must hold, so a redirect never gets a page checked in place of another. ``dark``:
        again with the reader's system set to dark (the form's stylesheet has a dark scheme;
        its colours are checked too)."""
        from playwright.sync_api import expect

        if heading is not None:
            expect(page.locator("h1")).to_contain_text(heading)
        self._run(page, name)
        if dark:
            page.emulate_media(color_scheme="dark")
            self._run(page, f"{name}, dark")
            page.emulate_media(color_scheme="light")

    def _run(self, page: Any, name: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        if self._axe is None:
            self._axe = Axe()
        options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
        results = self._axe.run(page, options=options)
        self.pages.append(name)
        for violation in results.response["violations"]:
            for node in violation["nodes"]:
                target = " >> ".join(
                    t if isinstance(t, str) else " ".join(t) for t in node["target"]
                )
                # What axe measured (a contrast ratio, the missing name), when it says.
                checks = [c["message"] for key in ("any", "all", "none") for c in node[key]]
                self.found.append(
                    f"{name}: {violation['id']} ({violation['impact']}) at {target}: "
                    f"{violation['help']}" + (f" [{checks[0]}]" if checks else "")
                )

    def assert_clean(self) -> None:
        assert not self.found, (
            f"{len(self.found)} accessibility violation(s) on {len(self.pages)} pages checked:\n"
            + "\n".join(self.found)
        )


@dataclass
class Live:
    base_url: str
    engine: sa.Engine
    cycle_id: int
    links: dict[str, str]
    request_ids: dict[str, int]
    published: Path  # where version 1 is written when published
    stem: str  # its files' name


@pytest.fixture
def live(db_url: str, tmp_path: Path, report_2021_text: str) -> Iterator[Live]:
    """The real app under uvicorn on the imported 2021 report with the 2022 cycle open: a
    link for NZP (nothing answered yet) and for INZ (submitted, then asked for changes), MBIE
    submitted, a coordinator's account. The app's clock runs from early December 2022."""
    engine = make_engine(db_url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        cycle = open_2022(session, report_2021_text)
        for acronym in ("MBIE", ASKED):
            request = cycle.requests[acronym]
            first = objective_ids(session, request)[0]
            answer = complete_answer(
                session,
                request,
                achievements=[(first, f"{acronym} ran the awareness campaign – ka pai.")],
                further_work=[(first, "Extend the campaign to the regions.")],
                link=("Campaign report", "https://www.example.govt.nz/campaign"),
            )
            submit(session, request, answer, author=f"contact@{acronym.lower()}.govt.nz")
        request_changes(
            session,
            cycle.requests[ASKED],
            "Please say how many employers the campaign reached.",
            ANSWERED,
            COORDINATOR,
        )
        tokens = {
            acronym: issue_token(session, cycle.requests[acronym], OPENED)
            for acronym in (AGENCY, ASKED)
        }
        add_account(session, COORDINATOR, PASSWORD, OPENED)
        session.commit()
        assert cycle.cycle.id is not None
        cycle_id, slug, stem = cycle.cycle.id, cycle.plan.slug, file_stem(cycle.plan, 2022, 1)
        request_ids = {a: r.id for a, r in cycle.requests.items() if r.id is not None}

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    settings = Settings(secret_key="a" * 48, data_dir=data_dir, base_url=base_url)
    started = time.monotonic()

    def clock() -> datetime:
        return ANSWERED + timedelta(hours=1, seconds=time.monotonic() - started)

    app = create_app(settings, engine, clock=clock)
    app.state.dashboard_enqueue = lambda ids: None  # no worker: messages stay claimed
    links = {acronym: f"{base_url}/r/{token}" for acronym, token in tokens.items()}
    published = data_dir / "published" / slug / "2022" / "v1"
    try:
        with served(app, port):
            yield Live(base_url, engine, cycle_id, links, request_ids, published, stem)
    finally:
        engine.dispose()


def test_the_gate_reports_what_axe_finds(browser: object) -> None:
    """The gate itself can fail: an image without a text alternative and an unlabelled
    field are reported by rule, impact, element and help text."""
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    page = browser.new_page()
    page.set_content(
        '<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
        '<h1>Broken</h1><img src="data:," id="pic"><input id="nameless" type="text">'
        "</main></body></html>"
    )
    gate = Gate()
    gate.check(page, "broken page", heading="Broken")
    page.close()
    assert any(
        line.startswith("broken page: image-alt (critical) at #pic: Images must have")
        for line in gate.found
    ), gate.found
    assert any(line.startswith("broken page: label (critical) at #nameless") for line in gate.found)
    with pytest.raises(AssertionError, match="accessibility violation"):
        gate.assert_clean()


@on_sqlite
def test_the_agency_pages_pass_axe(live: Live, browser: object) -> None:
    """The link's landing page (and with an error), the invalid link, the form empty (desktop
    and phone), refused with its errors, on a conflict, after the session ended with typed
    text shown back, submitted, and with the coordinator's request for changes (the form's
    pages in the dark scheme too); the session-ended, not-found and too-many-attempts pages."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    gate = Gate()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    link = live.links[AGENCY]

    page.goto(f"{live.base_url}/r/not-a-link-we-sent")
    gate.check(page, "invalid link", heading="This link does not work")

    page.goto(link)
    gate.check(page, "link landing", heading="New Zealand Police")
    page.get_by_role("button", name="Continue").click()
    gate.check(page, "link landing with an error", heading="New Zealand Police", dark=True)
    expect(page.get_by_role("alert")).to_contain_text("Enter your email address")

    page.get_by_label("Your email address").fill("sam@police.govt.nz")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.base_url}/form")
    gate.check(page, "form, empty", heading="New Zealand Police")
    page.set_viewport_size(PHONE)
    gate.check(page, "form, empty, phone", dark=True)
    page.set_viewport_size(DESKTOP)

    # A save refused: a link that is not a web address.
    text = page.locator("textarea[id^='a-'][id$='-0-text']").first
    text.fill("Police trained 240 frontline staff.")
    page.locator("input[id^='a-'][id$='-0-link_url']").first.fill("ftp://example.org/file")
    save = page.locator(".actions-bar").get_by_role("button", name="Save draft")
    save.click()
    expect(page.get_by_role("alert")).to_contain_text("nothing was saved")
    gate.check(page, "form, refused with errors", dark=True)

    # Someone else saves meanwhile: this page's save comes back as a conflict.
    with Session(live.engine) as session:
        request = session.get(UpdateRequest, live.request_ids[AGENCY])
        assert request is not None and request.id is not None
        first = objective_ids(session, request)[0]
        save_answer(
            session,
            request.id,
            complete_answer(session, request, achievements=[(first, "Their achievement.")]),
            submit=False,
            base_revision=request.revision_number,
            author="someone-else@police.govt.nz",
            now=ANSWERED,
        )
        session.commit()
    page.locator("input[id^='a-'][id$='-0-link_url']").first.fill("https://example.org/file")
    page.locator("input[id^='a-'][id$='-0-link_title']").first.fill("Training")
    save.click()
    expect(page.locator(".conflict")).to_contain_text("Someone else saved")
    gate.check(page, "form, conflict", dark=True)

    # The session ends with the page open: what was typed is shown back.
    context.clear_cookies()
    text.fill("Typed after the session ended.")
    save.click()
    gate.check(page, "session ended, typed text shown", heading="Please open your link again")

    # Back through the link; every milestone answered, then submitted.
    page.goto(link)
    page.get_by_label("Your email address").fill("sam@police.govt.nz")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.base_url}/form")
    for radio in page.locator("input[type=radio][value=on_track]").all():
        radio.check()
    page.locator(".actions-bar").get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted")
    gate.check(page, "form, submitted", dark=True)
    context.close()

    asked = browser.new_context(viewport=DESKTOP)
    page = asked.new_page()
    page.goto(f"{live.base_url}/form")
    gate.check(page, "session ended", heading="Please open your link again")
    page.goto(live.links[ASKED])
    page.get_by_label("Your email address").fill("contact@inz.govt.nz")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live.base_url}/form")
    expect(page.locator("main")).to_contain_text("The coordinator asked for changes")
    gate.check(page, "form, changes requested", dark=True)

    page.goto(f"{live.base_url}/no-such-page")
    gate.check(page, "page not found", heading="Page not found")
    # Links opened too often from one address: the limiter's page.
    for _ in range(40):
        if page.request.get(f"{live.base_url}/r/guessing").status == 429:
            break
    page.goto(f"{live.base_url}/r/guessing")
    gate.check(page, "too many attempts", heading="Too many attempts")
    asked.close()
    gate.assert_clean()


@on_sqlite
def test_the_dashboard_and_the_published_report_pass_axe(live: Live, browser: object) -> None:
    """Sign-in (and with an error), the cycles, the overview (desktop and phone), the draft,
    an entry's edit page and its removal question, a redline, the deadlines, the audit log
    (desktop and phone), the agencies, the milestones and one milestone, the dashboard's
    message page, then the published report as served and as written to disk."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    gate = Gate()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    cycle = f"{live.base_url}/dashboard/cycles/{live.cycle_id}"

    page.goto(f"{live.base_url}/dashboard")
    gate.check(page, "sign-in", heading="Sign in")
    page.get_by_label("Email").fill(COORDINATOR)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    gate.check(page, "sign-in with an error", heading="Sign in")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    gate.check(page, "cycles", heading="Reporting cycles")

    page.goto(cycle)
    gate.check(page, "overview", heading="2022 reporting cycle")
    page.set_viewport_size(PHONE)
    gate.check(page, "overview, phone")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="Compile the draft").click()
    expect(page.get_by_role("status")).to_contain_text("Compiled draft version 1")
    gate.check(page, "draft", heading="2022 report draft")
    page.locator(".controls a.button-link").first.click()
    gate.check(page, "edit an entry", heading="Edit an entry")
    page.goto(f"{cycle}/draft")
    page.locator(".controls a.button-link.danger").first.click()
    gate.check(page, "remove an entry?", heading="Remove this entry")

    page.goto(f"{cycle}/redline?from=last&to=1")
    gate.check(page, "redline", heading="Changes from")
    page.goto(f"{cycle}/deadline")
    gate.check(page, "deadlines", heading="2022 deadlines")
    page.goto(f"{cycle}/audit")
    gate.check(page, "audit log", heading="Audit log")
    page.set_viewport_size(PHONE)  # its wide table scrolls in its box there
    gate.check(page, "audit log, phone")
    page.set_viewport_size(DESKTOP)
    page.goto(f"{live.base_url}/dashboard/agencies")
    gate.check(page, "agencies", heading="Agencies and their contacts")
    page.goto(f"{live.base_url}/dashboard/milestones?agency=INZ")
    gate.check(page, "milestones", heading="Milestones and who leads them")
    page.locator("table.data a").first.click()
    gate.check(page, "a milestone", heading="Milestone")
    page.goto(f"{cycle}0")  # no such cycle
    gate.check(page, "dashboard message", heading="Not found")

    page.goto(cycle)
    page.get_by_role("button", name="Approve version 1").click()
    page.get_by_role("button", name="Publish version 1").click()
    expect(page.get_by_role("status")).to_contain_text("published")
    page.get_by_role("link", name="The published 2022 report").click()
    gate.check(page, "published report, served", heading=TITLE)
    context.close()

    # The files written at publication, opened as files: the standalone report (what
    # models/render makes of the html format) and the static page around it.
    files = browser.new_context(viewport=DESKTOP)
    page = files.new_page()
    page.goto((live.published / f"{live.stem}.html").as_uri())
    gate.check(page, "standalone html report (file)", heading=TITLE)
    page.goto((live.published / "index.html").as_uri())
    gate.check(page, "published static page (file)", heading=TITLE)
    files.close()
    gate.assert_clean()
