"""End to end in a real Chromium: a coordinator signs in, sees the overview, compiles the
draft, asks an agency for changes (the request goes out through a real SMTP server), the
agency answers through the link in that mail, and the coordinator approves and publishes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from config.settings import Settings
from models.accounts import add_account
from models.contacts import add_contact
from models.cycles import open_cycle
from models.db import make_engine, upgrade
from models.delivery import deliver_now
from models.importer import import_report
from models.messages import render_message
from models.tables import Agency, Plan, RequestState, UpdateRequest
from tests.browser import ARTIFACTS, served
from tests.review_helpers import complete_answer, objective_ids, submit
from tests.services import free_port
from tests.smtp_server import SmtpServer
from web.app import create_app
from worker.notify import AppriseTransport

# The pages once, on the embedded default (it runs wherever Chromium does): what depends on
# the database behind them is checked on both backends by the route tests.
pytestmark = [pytest.mark.browser, pytest.mark.smtp, pytest.mark.parametrize("backend", ["sqlite"])]

EMAIL = "ana@mbie.govt.nz"
PASSWORD = "correct horse battery staple"
AGENCY_EMAIL = "sam@police.govt.nz"
FIRST_ANSWER = "Police delivered awareness training to new recruits."
COMMENT = "Please say how many frontline staff were trained."
NEW_ANSWER = "Police trained 240 frontline staff to recognise trafficking – ka pai."


@dataclass
class Live:
    base_url: str
    engine: sa.Engine
    plan_slug: str
    cycle_id: int
    nzp_request_id: int
    data_dir: Path
    enqueued: list[int]
    transport: AppriseTransport


@pytest.fixture
def live(
    db_url: str, tmp_path: Path, smtp_server: SmtpServer, report_2021_text: str
) -> Iterator[Live]:
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session:
        summary = import_report(session, report_2021_text, now)
        plan = session.get(Plan, summary.plan_id)
        assert plan is not None
        agencies = {a.acronym: a for a in session.exec(select(Agency))}
        add_contact(session, agencies["NZP"], AGENCY_EMAIL, now, name="Sam")
        add_contact(session, agencies["MBIE"], EMAIL, now, coordinator=True)
        add_account(session, EMAIL, PASSWORD, now)
        opened = open_cycle(session, plan, 2022, (now + timedelta(days=60)).date(), now, EMAIL)
        [nzp] = [r.request for r in opened.requests if r.agency.acronym == "NZP"]
        # NZP has answered once already.
        first = objective_ids(session, nzp)[0]
        submit(
            session,
            nzp,
            complete_answer(session, nzp, achievements=[(first, FIRST_ANSWER)]),
            now=now,
            author=AGENCY_EMAIL,
        )
        session.commit()
        assert nzp.id is not None and opened.cycle.id is not None
        slug, cycle_id, request_id = plan.slug, opened.cycle.id, nzp.id

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    settings = Settings(secret_key="d" * 48, data_dir=data_dir, base_url=base_url)
    app = create_app(settings, engine)
    enqueued: list[int] = []
    app.state.dashboard_enqueue = enqueued.extend
    transport = AppriseTransport(
        mail_url=smtp_server.url,
        mail_from="reportcycle@example.govt.nz",
        outbox_dir=tmp_path / "outbox",
        domain="example.govt.nz",
    )
    try:
        with served(app, port):
            yield Live(base_url, engine, slug, cycle_id, request_id, data_dir, enqueued, transport)
    finally:
        engine.dispose()


def deliver(live: Live, ids: list[int]) -> None:
    deliver_now(
        live.engine,
        ids,
        datetime.now(UTC),
        live.transport,
        render=lambda session, notification, now: render_message(
            session, notification, now, base_url=live.base_url, timezone="Pacific/Auckland"
        ),
    )


def test_a_coordinator_reviews_asks_for_a_change_approves_and_publishes(
    live: Live, browser: object, smtp_server: SmtpServer
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    coordinator = browser.new_context(viewport={"width": 1280, "height": 900})
    page = coordinator.new_page()
    page.goto(f"{live.base_url}/dashboard")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Reporting cycles")).to_be_visible()
    page.get_by_role("link", name="2022").click()

    # The overview: who answered, the chart, the agencies.
    expect(page.get_by_role("heading", name="2022 reporting cycle")).to_be_visible()
    expect(page.locator(".glance")).to_contain_text("1 of 8")
    expect(page.locator("#agency-NZP")).to_contain_text("submitted")
    expect(page.locator("figure.chart svg")).to_be_visible()
    page.get_by_role("button", name="Compile the draft").click()
    expect(page.get_by_role("status")).to_contain_text("Compiled draft version 1")
    expect(page.locator(".report-draft")).to_contain_text(FIRST_ANSWER)
    expect(page.locator(".report-draft .badge.not-updated").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard-draft.png"), full_page=False)

    page.get_by_role("link", name="Overview").click()
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"), full_page=True)
    # On a phone the wide tables scroll inside their box; the page itself keeps its width.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#agency-NZP")).to_contain_text("on track")
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview-narrow.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    row = page.locator("#agency-NZP")
    row.get_by_text("Ask NZP for changes").click()
    row.get_by_label("What should NZP change?").fill(COMMENT)
    row.get_by_role("button", name="Request changes").click()
    expect(page.get_by_role("status")).to_contain_text("Changes requested")
    expect(page.locator("#agency-NZP")).to_contain_text("changes requested")

    # The request goes out by mail; the agency follows the link in it.
    assert live.enqueued, "the request for changes claimed a message"
    deliver(live, list(live.enqueued))
    [mail] = smtp_server.wait_for(1)
    assert mail.subject == "Changes requested to NZP's 2022 progress update"
    assert COMMENT in mail.text
    found = re.search(re.escape(live.base_url) + r"/r/[A-Za-z0-9_-]+", mail.text)
    assert found, mail.text
    agency = browser.new_context()
    form = agency.new_page()
    form.goto(found[0])
    form.get_by_label("Your email address").fill(AGENCY_EMAIL)
    form.get_by_role("button", name="Continue").click()
    form.wait_for_url(f"{live.base_url}/form")
    expect(form.get_by_role("heading", name="The coordinator asked for changes")).to_be_visible()
    expect(form.locator("main")).to_contain_text(COMMENT)
    achievement = form.locator("textarea[id^='a-'][id$='-0-text']")
    expect(achievement).to_have_value(FIRST_ANSWER)
    achievement.fill(NEW_ANSWER)
    form.get_by_role("button", name="Submit").click()
    expect(form.get_by_role("status")).to_contain_text("Submitted")
    agency.close()
    with Session(live.engine) as session:
        request = session.get(UpdateRequest, live.nzp_request_id)
        assert request is not None and request.state is RequestState.SUBMITTED

    # Back on the dashboard: compile again, approve, publish.
    page.goto(f"{live.base_url}/dashboard/cycles/{live.cycle_id}")
    expect(page.locator("#agency-NZP")).to_contain_text("submitted")
    page.get_by_role("button", name="Compile the draft again").click()
    expect(page.get_by_role("status")).to_contain_text("Compiled draft version 2")
    expect(page.locator(".report-draft")).to_contain_text(NEW_ANSWER)
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Approve version 2").click()
    expect(page.get_by_role("status")).to_contain_text("Version 2 approved")
    page.get_by_role("button", name="Publish version 2").click()
    expect(page.get_by_role("status")).to_contain_text("published")
    expect(page.locator(".meta").first).to_contain_text("published")

    page.get_by_role("link", name="The published 2022 report").click()
    expect(page.locator("body")).to_contain_text(NEW_ANSWER)
    expect(page.locator("body")).not_to_contain_text(FIRST_ANSWER)
    coordinator.close()

    folder = live.data_dir / "published" / live.plan_slug / "2022" / "v2"
    published_html = (folder / f"{live.plan_slug}-2022-v2.html").read_text(encoding="utf-8")
    assert NEW_ANSWER in published_html
    assert NEW_ANSWER in (folder / "index.html").read_text(encoding="utf-8")
    # The agency's link stopped working with the publication.
    closed = browser.new_context().new_page()
    response = closed.goto(found[0])
    assert response is not None and response.status == 404


def test_a_coordinator_adds_a_contact_and_corrects_a_milestone_lead(
    live: Live, browser: object
) -> None:
    """In Chromium: the agencies page (INZ has no contact, and MBIE only a coordinator, so
    nobody reads for INZ), a contact added to INZ, then a milestone's lead corrected."""
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live.base_url}/dashboard/signin")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Agencies and their contacts").click()
    expect(page.locator("#agency-INZ")).to_contain_text("no contacts")
    expect(page.locator("#agency-NZP")).to_contain_text(AGENCY_EMAIL)

    page.get_by_label("Agency", exact=True).select_option("INZ")
    page.locator("#email").fill("Hemi@inz.govt.nz")
    page.get_by_label("Name (optional)").fill("Hēmi")
    page.get_by_role("button", name="Add the contact").click()
    expect(page.get_by_role("status")).to_contain_text("Hemi@inz.govt.nz is now a contact of INZ")
    expect(page.locator("#agency-INZ")).to_contain_text("Hēmi · Hemi@inz.govt.nz")
    page.screenshot(path=str(ARTIFACTS / "dashboard-agencies.png"), full_page=True)

    page.goto(f"{live.base_url}/dashboard")
    page.get_by_role("link", name="Milestones and who leads them").click()
    page.get_by_label("Lead agency").select_option("INZ")
    page.get_by_label("Text contains").fill("triage")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status")).to_contain_text("1 milestone.")
    page.locator("table.data a").first.click()
    expect(page.locator("dl.facts")).to_contain_text("Immigration New Zealand (INZ)")
    page.get_by_label("Lead agency").select_option("ENZ")
    page.get_by_label("Why (for the audit log; optional)").fill("ENZ runs the triage")
    page.get_by_role("button", name="Change the lead").click()
    expect(page.locator(".flash")).to_contain_text("ENZ leads it now (was INZ)")
    expect(page.locator("dl.facts")).to_contain_text("Employment New Zealand (ENZ)")
    expect(page.locator("main")).to_contain_text(f"lead INZ → ENZ, by {EMAIL}: ENZ runs the triage")
    page.screenshot(path=str(ARTIFACTS / "dashboard-milestone.png"), full_page=True)
    context.close()
