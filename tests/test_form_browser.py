"""End to end in a real Chromium: an agency answers its update request through its link."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from config.settings import Settings
from models.cycles import open_cycle
from models.db import make_engine, upgrade
from models.delivery import deliver_now
from models.messages import render_message
from models.tables import (
    Milestone,
    MilestoneRevision,
    MilestoneStatus,
    RequestState,
    RevisionKind,
    SubmissionRevision,
    UpdateRequest,
)
from tests.browser import ARTIFACTS, served
from tests.services import free_port
from tests.smtp_server import SmtpServer
from tests.web_helpers import NOW, Scenario, build_plan, scenario_of
from web.app import create_app
from web.deps import WebOptions
from worker.notify import AppriseTransport

# The pages once, on the embedded default (it runs wherever Chromium does): what depends on
# the database behind them is checked on both backends by the route tests.
pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.parametrize("backend", ["sqlite"])]


@dataclass
class LiveServer:
    base_url: str
    engine: sa.Engine
    scenario: Scenario
    link: str  # as received by mail


def open_cycle_by_mail(
    engine: sa.Engine, smtp_server: SmtpServer, base_url: str, outbox: Path
) -> tuple[Scenario, str]:
    """Open the 2022 cycle and deliver its update requests to the real SMTP server; the
    scenario and the link as the agency's contact received it."""
    with Session(engine, expire_on_commit=False) as session:
        rows = build_plan(session)
        opened = open_cycle(session, rows.plan, 2022, date(2022, 3, 31), NOW, "coordinator")
        session.commit()
        [request] = [r.request for r in opened.requests if r.agency.id == rows.agency_id]
        assert request.id is not None and opened.cycle.id is not None
        ids, cycle_id, request_id = opened.notification_ids, opened.cycle.id, request.id
    transport = AppriseTransport(
        mail_url=smtp_server.url,
        mail_from="reportcycle@example.govt.nz",
        outbox_dir=outbox,
        domain="example.govt.nz",
    )
    deliver_now(
        engine,
        ids,
        NOW,
        transport,
        render=lambda session, notification, now: render_message(
            session, notification, now, base_url=base_url, timezone="Pacific/Auckland"
        ),
    )
    smtp_server.wait_for(1)
    [mail] = smtp_server.to(rows.contact_email)
    found = re.search(re.escape(base_url) + r"/r/[A-Za-z0-9_-]+", mail.text)
    assert found, f"no link in the mail:\n{mail.text}"
    link = found[0]
    return scenario_of(rows, cycle_id, request_id, link.rsplit("/", 1)[1]), link


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, smtp_server: SmtpServer
) -> Iterator[LiveServer]:
    """The real app under uvicorn on a free port, on a fresh migrated database, with the
    2022 cycle opened and its update request mailed through a real SMTP server. Autosave is
    slowed down (unless parametrized) so the test decides when drafts are saved."""
    autosave_seconds = int(getattr(request, "param", 3600))
    engine = make_engine(db_url)
    upgrade(engine)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    scenario, link = open_cycle_by_mail(engine, smtp_server, base_url, tmp_path / "outbox")
    settings = Settings(secret_key="b" * 48, data_dir=tmp_path / "data", base_url=base_url)
    # The app lives in the scenario's time (February 2022, the cycle open), moving on as the
    # test runs, so dates it judges (a period already over, days to the deadline) are stable.
    started = time.monotonic()

    def clock() -> datetime:
        return NOW + timedelta(hours=1, seconds=time.monotonic() - started)

    app = create_app(
        settings, engine, clock=clock, options=WebOptions(autosave_seconds=autosave_seconds)
    )
    try:
        with served(app, port, access_log=True):
            yield LiveServer(base_url, engine, scenario, link)
    finally:
        engine.dispose()


def the_link(server: LiveServer) -> str:
    return server.link


def test_an_agency_answers_through_its_link_in_chromium(
    live_server: LiveServer, browser: object, caplog: pytest.LogCaptureFixture
) -> None:
    from playwright.sync_api import Browser, Dialog, expect

    assert isinstance(browser, Browser)
    scenario = live_server.scenario
    done, late = scenario.milestone_ids
    objective = scenario.objective_id
    link = the_link(live_server)
    caplog.set_level(logging.INFO, logger="uvicorn.access")

    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hīkina Whakatutuki")
    page.get_by_label("Your email address").fill("kahu@mbie.test")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.base_url}/form")

    page.locator(f"#m-{done}-progress").check()
    page.locator(f"#m-{done}-completed_on").fill("2022-02-01")
    page.locator(f"#m-{late}-progress-delayed").check()
    period = page.locator(f"#m-{late}-new_period")
    period.fill("Q5 2022")
    expect(page.locator(f"#m-{late}-new_period-check")).to_contain_text("not a period we can")
    period.fill("Quarter 4 2022")
    expect(page.locator(f"#m-{late}-new_period-check")).to_contain_text("Reads as Quarter 4 2022")
    page.locator(f"#m-{late}-reason").fill("Waiting on the te reo Māori translation.")
    page.locator(f"#a-{objective}-0-text").fill("Launched the employer hotline – kia ora.")
    page.locator(f"#a-{objective}-0-link_title").fill("Hotline")
    page.locator(f"#a-{objective}-0-link_url").fill("https://www.employment.govt.nz/hotline")
    # Another row, added in the page by the script (keyboard: focus lands in the new row).
    page.get_by_role("button", name="Add another achievement").click()
    expect(page.locator(f"#a-{objective}-1-text")).to_be_focused()
    page.keyboard.type("<script>alert('x')</script> stays text")
    page.locator(".actions-bar").get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "agency-form.png"), full_page=True)
    context.close()  # the browser is closed: the draft must survive in the database

    again = browser.new_context()
    page = again.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(link)
    page.get_by_label("Your email address").fill("kahu@mbie.test")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.base_url}/form")
    expect(page.locator(f"#m-{late}-new_period")).to_have_value("Quarter 4 2022")
    expect(page.locator(f"#m-{done}-progress")).to_be_checked()
    expect(page.locator(f"#a-{objective}-1-text")).to_have_value(
        "<script>alert('x')</script> stays text"
    )
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("status")).to_contain_text("Submitted")
    expect(page.get_by_role("button", name="Reopen to make changes")).to_be_visible()
    assert dialogs == []  # the script typed in was never run
    again.close()

    with Session(live_server.engine) as session:
        request = session.get(UpdateRequest, scenario.request_id)
        assert request is not None and request.state is RequestState.SUBMITTED
        saved = session.exec(
            select(SubmissionRevision)
            .where(SubmissionRevision.update_request_id == scenario.request_id)
            .order_by(col(SubmissionRevision.number))
        ).all()
        assert [(r.number, r.kind, r.author) for r in saved] == [
            (1, RevisionKind.DRAFT, "kahu@mbie.test"),
            (2, RevisionKind.SUBMITTED, "kahu@mbie.test"),
        ]
        achievements = saved[1].content["achievements"]
        assert achievements[0]["link_url"] == "https://www.employment.govt.nz/hotline"
        completed = session.get(Milestone, done)
        assert completed is not None and completed.status is MilestoneStatus.COMPLETED
        history = session.exec(
            select(MilestoneRevision).where(MilestoneRevision.milestone_id == late)
        ).all()
        assert [(h.previous_due_text, h.new_due_text, h.year) for h in history] == [
            ("Quarter 2 2022", "Quarter 4 2022", 2022)
        ]
    access_log = "\n".join(r.getMessage() for r in caplog.records if r.name == "uvicorn.access")
    assert "/r/[redacted]" in access_log
    assert scenario.token not in caplog.text


def test_the_form_works_without_javascript(live_server: LiveServer, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    scenario = live_server.scenario
    objective = scenario.objective_id
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(the_link(live_server))
    page.get_by_label("Your email address").fill("tane@mbie.test")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.base_url}/form")
    page.locator(f"#a-{objective}-0-text").fill("First achievement")
    page.get_by_role("button", name="Add another achievement").click()  # a round trip
    expect(page.locator(f"#a-{objective}-0-text")).to_have_value("First achievement")
    page.locator(f"#a-{objective}-1-text").fill("Second achievement")
    page.locator(f"#a-{objective}-1-link_url").fill("ftp://example.org/file")
    page.locator(f"#a-{objective}-1-link_title").fill("File")
    page.locator(".actions-bar").get_by_role("button", name="Save draft").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("https://")
    summary.get_by_role("link").first.click()
    expect(page).to_have_url(f"{live_server.base_url}/form#a-{objective}-1-link_url")
    expect(page.locator(f"#a-{objective}-1-text")).to_have_value("Second achievement")
    page.locator(f"#a-{objective}-1-link_url").fill("https://example.org/file")
    page.locator(".actions-bar").get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    context.close()
    with Session(live_server.engine) as session:
        [revision] = session.exec(
            select(SubmissionRevision).where(
                SubmissionRevision.update_request_id == scenario.request_id
            )
        ).all()
        texts = [a["text"] for a in revision.content["achievements"]]
        assert texts == ["First achievement", "Second achievement"]


@pytest.mark.parametrize("live_server", [1], indirect=True)
def test_javascript_removes_rows_and_autosaves(live_server: LiveServer, browser: object) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    scenario = live_server.scenario
    objective = scenario.objective_id
    context = browser.new_context()
    page = context.new_page()
    page.goto(the_link(live_server))
    page.get_by_label("Your email address").fill("kahu@mbie.test")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.base_url}/form")
    page.locator(f"#a-{objective}-0-text").fill("Keep this one")
    page.get_by_role("button", name="Add another achievement").click()
    page.locator(f"#a-{objective}-1-text").fill("Drop this one")
    # The row added in the page names its own Remove button (not a copy of the last one's).
    remove = page.get_by_role("button", name=re.compile(r"^Remove achievement \d+$"))
    expect(remove).to_have_count(2)
    page.get_by_role("button", name="Remove achievement 2", exact=True).click()
    expect(page.locator(f"#a-{objective}-1-text")).to_have_count(0)
    expect(remove).to_have_count(1)
    expect(page.get_by_role("button", name="Remove achievement 1", exact=True)).to_have_count(1)
    expect(page.locator("#autosave-status")).to_contain_text(
        "Draft saved automatically", timeout=20_000
    )
    # The page now stands on the autosaved revision: saving by hand is no conflict.
    page.locator(".actions-bar").get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Draft saved")
    context.close()
    with Session(live_server.engine) as session:
        saved = session.exec(
            select(SubmissionRevision)
            .where(SubmissionRevision.update_request_id == scenario.request_id)
            .order_by(col(SubmissionRevision.number))
        ).all()
    assert len(saved) >= 2 and {r.kind for r in saved} == {RevisionKind.DRAFT}
    assert [a["text"] for a in saved[-1].content["achievements"]] == ["Keep this one"]


def continue_in(page: object, server: LiveServer, email: str = "kahu@mbie.test") -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    page.goto(the_link(server))
    page.get_by_label("Your email address").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{server.base_url}/form")


def test_the_form_keeps_a_busy_reader_oriented_in_chromium(
    live_server: LiveServer, browser: object
) -> None:
    from playwright.sync_api import Browser, Dialog, expect

    assert isinstance(browser, Browser)
    scenario = live_server.scenario
    done, late = scenario.milestone_ids
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    continue_in(page, live_server)
    panel = page.locator("#status-panel")
    expect(panel).to_contain_text("Milestones answered: 0 of 2")
    expect(panel).to_contain_text("Aroha Coordinator")
    expect(page.locator(".lede")).to_contain_text("Thursday 31 March 2022")

    # The count follows the choices as they are made, before any save.
    page.locator(f"#m-{done}-progress-on_track").click()
    expect(panel).to_contain_text("Milestones answered: 1 of 2")

    # Keyboard only, through the whole form: the sticky Save/Submit bar never covers the
    # field that has focus.
    covered = []
    for _ in range(60):
        page.keyboard.press("Tab")
        hidden = page.evaluate(
            """() => {
              const el = document.activeElement, bar = document.querySelector('.actions-bar');
              if (!el || el === document.body || bar.contains(el)) return null;
              const over = el.getBoundingClientRect().bottom - bar.getBoundingClientRect().top;
              return over > 1 ? el.id || el.tagName : null;
            }"""
        )
        if hidden:
            covered.append(hidden)
    assert covered == []
    # Nor one that was half under the bar already (the browser does not scroll for those).
    objective = scenario.objective_id
    half_hidden = page.evaluate(
        """(objective) => {
          const bar = document.querySelector('.actions-bar');
          const box = document.getElementById(`a-${objective}-0-text`);
          document.getElementById(`a-${objective}-0-link_title`).focus({preventScroll: true});
          const top = box.getBoundingClientRect().top;
          window.scrollBy(0, top - bar.getBoundingClientRect().top + 20);
          return box.getBoundingClientRect().bottom > bar.getBoundingClientRect().top;
        }""",
        objective,
    )
    assert half_hidden
    page.keyboard.press("Shift+Tab")
    expect(page.locator(f"#a-{objective}-0-text")).to_be_focused()
    assert page.evaluate(
        """() => document.activeElement.getBoundingClientRect().bottom
                 <= document.querySelector('.actions-bar').getBoundingClientRect().top"""
    )

    # Leaving with changes not yet saved asks first; after a save it does not.
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.locator(f"#m-{late}-progress-delayed").click()
    page.locator(f"#m-{late}-new_period").click()
    page.keyboard.type("Quarter 3 2022")
    page.close(run_before_unload=True)
    expect(page.locator(f"#m-{late}-new_period")).to_have_value("Quarter 3 2022")
    assert dialogs == ["beforeunload"]
    page.locator(".actions-bar").get_by_role("button", name="Save draft").click()
    # The app's clock is 22:00 UTC on 14 February 2022 (and a few seconds): Wellington time.
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"Draft saved at 11:0[0-9] NZDT, 15 Feb 2022")
    )
    expect(panel).to_contain_text("Milestones answered: 2 of 2")
    page.screenshot(path=str(ARTIFACTS / "agency-form-desktop.png"))
    page.close(run_before_unload=True)
    assert dialogs == ["beforeunload"]
    context.close()


@pytest.mark.parametrize("live_server", [1], indirect=True)
def test_submit_pressed_during_an_autosave_waits_for_it(
    live_server: LiveServer, browser: object
) -> None:
    """Submit pressed while an autosave is on its way was posted on the revision before it,
    and came back as a conflict with oneself ("someone else saved")."""
    from playwright.sync_api import APIResponse, Browser, Route, expect

    assert isinstance(browser, Browser)
    scenario = live_server.scenario
    done, late = scenario.milestone_ids
    context = browser.new_context()
    page = context.new_page()
    continue_in(page, live_server)
    held: list[tuple[Route, APIResponse]] = []

    def hold_autosave(route: Route) -> None:
        if route.request.headers.get("x-autosave") != "1" or held:
            route.continue_()
            return
        # The save reaches the server (revision 1 is written); its answer is held back.
        held.append((route, route.fetch()))

    page.route("**/form", hold_autosave)
    page.locator(f"#m-{done}-progress-on_track").click()
    page.locator(f"#m-{late}-progress-on_track").click()
    deadline = time.monotonic() + 20
    while not held:
        assert time.monotonic() < deadline, "no autosave was sent"
        page.wait_for_timeout(100)
    page.locator(".actions-bar").get_by_role("button", name="Submit").click()
    expect(page.locator("#autosave-status")).to_have_text("Saving…")
    route, response = held[0]
    route.fulfill(response=response)
    expect(page.get_by_role("status")).to_contain_text("Submitted (revision 2)")
    context.close()
    with Session(live_server.engine) as session:
        saved = session.exec(
            select(SubmissionRevision.number, SubmissionRevision.kind)
            .where(SubmissionRevision.update_request_id == scenario.request_id)
            .order_by(col(SubmissionRevision.number))
        ).all()
    assert list(saved) == [(1, RevisionKind.DRAFT), (2, RevisionKind.SUBMITTED)]
