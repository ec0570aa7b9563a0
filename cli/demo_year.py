"""The demo's year: the 2022 cycle of the bundled 2021 report, played with a simulated clock.

Everything goes through the code the service runs: ``import_report``, ``open_cycle``, the
beat's daily ``sweep`` and scheduled compile (``compile_due_cycles``), delivery
(``deliver_now`` with the Apprise outbox transport, one ``.eml`` file per message), the
agency form (``web.app``'s routes, with each contact following the link in their mail), and
the coordinator's dashboard (sign in, request changes, approve, publish). The script of who
does what when is ``cli.demo_script``.

The demo's settings are fixed here, not read from the environment: it writes only under its
own folder, whatever ``REPORTCYCLE_*`` says.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from fastapi import FastAPI
from sqlmodel import Session, col, select

from cli import demo_script as script
from cli.demo_browser import Browser, DemoError, Page, link_for, read_outbox
from config.settings import Mode, Settings
from models import drafts
from models.accounts import add_account
from models.clock import SimulatedClock
from models.contacts import add_contact
from models.cycles import find_cycle, find_plan, open_cycle
from models.db import make_engine, upgrade
from models.delivery import DeliveryPolicy, deliver_now
from models.importer import ImportSummary, import_report
from models.messages import render_message
from models.periods import parse_period
from models.publishing import compile_due_cycles, file_stem
from models.render import Format, render
from models.sweep import sweep
from models.tables import Agency, DeliveryState, Milestone, Notification, Plan
from web.app import create_app
from web.dashboard_routes import published_dir
from web.deps import WebOptions
from worker.notify import AppriseTransport, message_domain

DATABASE_NAME = "reportcycle.db"
ACTOR = "demo"
# Where the links in the mails point: the address ``reportcycle serve`` listens on.
BASE_URL = "http://127.0.0.1:8000"
ZONE = ZoneInfo(script.TIMEZONE)

Say = Callable[[str], None]


def local(day: date, at: time) -> datetime:
    """``at`` o'clock in New Zealand on ``day``, as an aware datetime."""
    return datetime.combine(day, at, ZONE)


def long_day(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def demo_settings(out: Path) -> Settings:
    """Fixed settings under ``out`` (the defaults of an embedded installation)."""
    return Settings.model_construct(
        mode=Mode.EMBEDDED,
        data_dir=out,
        database_url=f"sqlite:///{out / DATABASE_NAME}",
        base_url=BASE_URL,
        mail_url=None,
        mail_from="reportcycle@example.govt.nz",
        outbox_dir=out / "outbox",
        secret_key=None,
        timezone=script.TIMEZONE,
    )


@dataclass(frozen=True)
class DraftFiles:
    number: int
    state: str
    created_at: datetime
    created_by: str
    files: list[Path]


@dataclass
class DemoResult:
    out: Path
    database: Path
    outbox: Path
    messages: Counter[str] = field(default_factory=Counter)
    drafts: list[DraftFiles] = field(default_factory=list)
    published: list[Path] = field(default_factory=list)
    published_dir: Path | None = None
    published_version: int | None = None


@dataclass
class _Tally:
    """What the daily sweeps did since the last line printed."""

    first: date | None = None
    last: date | None = None
    milestone_reminders: int = 0
    deadline_reminders: int = 0
    escalations: int = 0
    slipped: int = 0
    messages: int = 0

    def add(self, day: date, reminders: int, deadline: int, esc: int, slips: int, n: int) -> None:
        if not (reminders or deadline or esc or slips or n):
            return
        self.first = self.first or day
        self.last = day
        self.milestone_reminders += reminders
        self.deadline_reminders += deadline
        self.escalations += esc
        self.slipped += slips
        self.messages += n

    def line(self) -> str | None:
        if self.first is None or self.last is None:
            return None
        parts = []
        for count, one, many in (
            (self.milestone_reminders, "milestone reminder", "milestone reminders"),
            (self.slipped, "milestone flagged as slipped", "milestones flagged as slipped"),
            (self.deadline_reminders, "deadline reminder", "deadline reminders"),
            (self.escalations, "escalation", "escalations"),
        ):
            if count:
                parts.append(f"{count} {one if count == 1 else many}")
        if self.first == self.last:
            when = long_day(self.first)
        elif self.first.year == self.last.year:
            when = f"{self.first.day} {self.first:%B} – {long_day(self.last)}"
        else:
            when = f"{long_day(self.first)} – {long_day(self.last)}"
        messages = "1 message" if self.messages == 1 else f"{self.messages} messages"
        return f"{when}, daily sweeps: {', '.join(parts)}; {messages} sent"


class DemoYear:
    """One run of the demo into ``out`` (which the caller has cleared)."""

    def __init__(self, out: Path, say: Say) -> None:
        self.out = out
        self.say = say
        self.settings = demo_settings(out)
        self.outbox = self.settings.outbox_path
        self.engine: sa.Engine = make_engine(self.settings.sqlalchemy_url)
        self.clock = SimulatedClock(local(script.IMPORTED_ON, time(10, 0)))
        self.transport = AppriseTransport(
            mail_url=None,
            mail_from=self.settings.mail_from,
            outbox_dir=self.outbox,
            domain=message_domain(self.settings),
        )
        self.result = DemoResult(out, out / DATABASE_NAME, self.outbox)
        self._enqueued: list[int] = []
        self._tally = _Tally()
        self._password = secrets.token_urlsafe(24)
        self.app: FastAPI | None = None
        self.plan_id = 0
        self.cycle_id = 0

    # --- plumbing ------------------------------------------------------------------------------

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def deliver(self, ids: list[int]) -> Counter[str]:
        """Send ``ids`` through the real delivery path into the outbox; sent counts by kind."""
        if not ids:
            return Counter()
        deliver_now(
            self.engine,
            ids,
            self.clock,
            self.transport,
            policy=DeliveryPolicy.from_settings(self.settings),
            render=partial(
                render_message, base_url=self.settings.base_url, timezone=self.settings.timezone
            ),
            attempts=1,
        )
        with self.session() as session:
            rows = session.exec(
                select(Notification.kind, Notification.state, Notification.last_error).where(
                    col(Notification.id).in_(ids)
                )
            ).all()
        failed = [f"{kind}: {error}" for kind, state, error in rows if state != DeliveryState.SENT]
        if failed:
            raise DemoError("messages could not be written to the outbox: " + "; ".join(failed))
        sent = Counter(kind for kind, _state, _error in rows)
        self.result.messages.update(sent)
        return sent

    def event(self, text: str) -> None:
        """Print what just happened, after what the sweeps did before it."""
        self.flush()
        self.say(text)

    def flush(self) -> None:
        line = self._tally.line()
        if line:
            self.say(line)
        self._tally = _Tally()

    # --- the year ------------------------------------------------------------------------------

    def run(self, report_text: str) -> DemoResult:
        try:
            upgrade(self.engine)
            summary = self.import_report(report_text)
            self.add_contacts()
            self.open_cycle()
            self.app = create_app(
                self.settings,
                self.engine,
                clock=self.clock,
                # Every person here comes from the TestClient's one address: no rate limit.
                options=WebOptions(token_attempts=10_000),
            )
            # The dashboard hands claimed messages to Celery; here they go out in-process.
            self.app.state.dashboard_enqueue = self._enqueued.extend
            self.play_year()
            self.write_drafts(summary)
            self.check()
            return self.result
        finally:
            self.engine.dispose()

    def import_report(self, text: str) -> ImportSummary:
        with self.session() as session:
            summary = import_report(session, text, self.clock())
            session.commit()
        self.plan_id = summary.plan_id
        counts = summary.counts()
        self.event(
            f"{long_day(script.IMPORTED_ON)}: imported the published {summary.year} report "
            f"into a fresh database: {counts['pillars']} pillars, {counts['objectives']} "
            f"objectives, {counts['actions']} actions, {counts['milestones']} milestones, "
            f"{counts['agencies']} agencies"
        )
        return summary

    def add_contacts(self) -> None:
        with self.session() as session:
            agencies = session.exec(select(Agency).order_by(col(Agency.acronym))).all()
            for agency in agencies:
                add_contact(
                    session,
                    agency,
                    script.contact_email(agency.acronym),
                    self.clock(),
                    name=f"{agency.acronym} progress reporting",
                )
            coordinating = next(a for a in agencies if a.acronym == script.COORDINATOR_AGENCY)
            add_contact(
                session,
                coordinating,
                script.COORDINATOR_EMAIL,
                self.clock(),
                name=script.COORDINATOR_NAME,
                coordinator=True,
            )
            add_account(
                session, script.COORDINATOR_EMAIL, self._password, self.clock(), actor=ACTOR
            )
            session.commit()
        self.event(
            f"Demo contacts: one for each of the {len(agencies)} agencies "
            f"({script.contact_email('MBIE')}, …) and the coordinator "
            f"{script.COORDINATOR_EMAIL}, who also gets a dashboard account"
        )

    def open_cycle(self) -> None:
        self.clock.set(local(script.OPENED_ON, time(8, 30)))
        with self.session() as session:
            plan = find_plan(session)
            opened = open_cycle(
                session,
                plan,
                script.YEAR,
                script.DEADLINE,
                self.clock(),
                ACTOR,
                timezone=script.TIMEZONE,
            )
            session.commit()
            assert opened.cycle.id is not None
            self.cycle_id = opened.cycle.id
            ids = opened.notification_ids
        sent = self.deliver(ids)
        self.event(
            f"{long_day(script.OPENED_ON)}: opened the {script.YEAR} cycle "
            f"(deadline {long_day(script.DEADLINE)}): "
            f"{sent['update_request']} update requests sent, each with its own link"
        )

    def play_year(self) -> None:
        review = script.REVIEW
        events: dict[date, list[tuple[time, Callable[[], None]]]] = {}
        for visit in script.VISITS:
            events.setdefault(visit.day, []).append((visit.at, partial(self.visit, visit)))
        changes = review.changes
        events.setdefault(changes.day, []).append((changes.at, self.request_changes))
        events.setdefault(review.publish_on, []).append((review.publish_at, self.publish))
        day = script.OPENED_ON
        while day <= review.publish_on:
            self.daily_beat(day)
            for at, action in sorted(events.get(day, []), key=lambda item: item[0]):
                self.clock.set(local(day, at))
                action()
            day += timedelta(days=1)
        self.flush()

    def daily_beat(self, day: date) -> None:
        """What the beat does each morning: a sweep, then the scheduled compile."""
        self.clock.set(local(day, script.SWEEP_AT))
        with self.session() as session:
            result = sweep(session, self.clock(), self.settings)
            compiled = compile_due_cycles(session, self.clock(), timezone=script.TIMEZONE)
            session.commit()
            ids = result.notification_ids
        sent = self.deliver(ids)
        first = self._tally.first
        if first is not None and (first.year, first.month) != (day.year, day.month):
            self.flush()  # one line per month at most
        self._tally.add(
            day,
            result.milestone_reminders,
            result.deadline_reminders,
            result.escalations,
            len(result.slipped_milestone_ids),
            sum(sent.values()),
        )
        for done in compiled:
            if not done.created:
                continue
            with self.session() as session:
                cycle = find_cycle(session, find_plan(session), script.YEAR)
                waiting = drafts.review_notes(session, cycle).not_answered
            reason = (
                "the deadline has passed"
                if done.trigger == "deadline"
                else "every agency has submitted"
            )
            missing = (
                f"; not answered yet: {', '.join(waiting)} (its entries are marked not updated)"
                if waiting
                else ""
            )
            self.event(
                f"{long_day(day)}: {reason}, so the schedule compiled draft version "
                f"{done.version}{missing}"
            )

    # --- the agencies --------------------------------------------------------------------------

    def visit(self, visit: script.Visit) -> None:
        """A contact follows the link in their mail, continues, fills in the form and saves."""
        assert self.app is not None
        address = script.contact_email(visit.agency)
        kind = None if visit.link_from == "latest" else visit.link_from
        link = link_for(self.outbox, address, kind)
        browser = Browser(self.app, BASE_URL)
        try:
            landing = browser.get(link)
            page = browser.submit(landing, landing.form(), {"email": address})
            reopen = [f for f in page.forms if f.action.endswith("/form/reopen")]
            if reopen:
                page = browser.submit(page, reopen[0])
            form = page.form("/form")
            typed, counts = self.fill(page, visit)
            action = "submit" if visit.submit else "save"
            done = browser.submit(page, form, typed, button=("action", action))
        finally:
            browser.close()
        expected = "Submitted" if visit.submit else "Draft saved"
        if expected not in done.html:
            raise DemoError(f"{visit.agency}'s form did not say {expected!r}: {done.problem()}")
        said = ", ".join(_count(n, what) for what, n in counts.items() if n)
        self.event(
            f"{long_day(visit.day)}: {visit.agency} {visit.why}, through its link"
            + (f" ({said})" if said else "")
        )

    def fill(self, page: Page, visit: script.Visit) -> tuple[dict[str, str], Counter[str]]:
        """The fields the contact types, from the page as shown and the script."""
        values = page.form("/form").values()
        typed: dict[str, str] = {}
        counts: Counter[str] = Counter()
        for element_id, legend in page.legends.items():
            if not element_id.startswith("milestone-"):
                continue
            prefix = f"m-{element_id.removeprefix('milestone-')}-"
            wanted = next((m for m in visit.milestones if m.match.lower() in legend.lower()), None)
            if wanted is None and visit.submit and visit.answer_the_rest:
                if values.get(prefix + "progress"):
                    continue  # answered in an earlier draft
                wanted = _as_a_person_would(legend, visit.day)
            if wanted is None:
                continue
            typed[prefix + "progress"] = wanted.progress
            typed[prefix + "completed_on"] = (
                wanted.completed_on.isoformat() if wanted.completed_on else ""
            )
            typed[prefix + "achievement"] = wanted.achievement or ""
            typed[prefix + "new_period"] = wanted.new_period or ""
            typed[prefix + "reason"] = wanted.reason or ""
            counts[wanted.progress.replace("_", " ")] += 1
        objectives = {
            element_id.removeprefix("objective-").removesuffix("-title"): title
            for element_id, title in page.headings.items()
            if element_id.startswith("objective-") and element_id.endswith("-title")
        }
        for section, rows, names, label in (
            ("a", visit.achievements, ("text", "link_title", "link_url"), "achievement"),
            ("f", visit.further_work, ("text",), "area for further work"),
            ("n", visit.new_milestones, ("period", "text"), "new milestone"),
        ):
            for row in rows:
                objective = next(
                    (oid for oid, title in objectives.items() if title.startswith(row.objective)),
                    None,
                )
                if objective is None:
                    raise DemoError(
                        f"{visit.agency}'s form has no objective starting {row.objective!r}"
                    )
                index = _free_row(values | typed, f"{section}-{objective}-")
                for name in names:
                    value = getattr(row, name) or ""
                    typed[f"{section}-{objective}-{index}-{name}"] = value
                counts[label] += 1
        return typed, counts

    # --- the coordinator -----------------------------------------------------------------------

    def coordinator(self) -> tuple[Browser, Page]:
        """The coordinator signs in to the dashboard and opens the cycle's overview."""
        assert self.app is not None
        browser = Browser(self.app, BASE_URL)
        signin = browser.get("/dashboard/signin")
        browser.submit(
            signin,
            signin.form("/dashboard/signin"),
            {"email": script.COORDINATOR_EMAIL, "password": self._password},
        )
        overview = browser.get(f"/dashboard/cycles/{self.cycle_id}")
        return browser, overview

    def request_changes(self) -> None:
        changes = script.REVIEW.changes
        browser, overview = self.coordinator()
        try:
            browser.get(f"/dashboard/cycles/{self.cycle_id}/draft")  # reads the draft first
            form = overview.form("/changes", within=f"agency-{changes.agency}")
            browser.submit(overview, form, {"comment": changes.comment})
        finally:
            browser.close()
        sent = self.deliver(self._take_enqueued())
        self.event(
            f"{long_day(changes.day)}: the coordinator read the draft on the dashboard and "
            f"asked {changes.agency} for changes ({sent['changes_requested']} message, with "
            "the link)"
        )

    def publish(self) -> None:
        browser, overview = self.coordinator()
        try:
            approve = overview.form("/approve")
            number = approve.values().get("version", "?")
            overview = browser.submit(overview, approve)
            overview = browser.submit(overview, overview.form("/publish"))
        finally:
            browser.close()
        sent = self.deliver(self._take_enqueued())
        self.result.published_version = int(number)
        assert self.app is not None
        with self.session() as session:
            plan = session.get(Plan, self.plan_id)
            assert plan is not None
            folder = published_dir(self.app.state.rc, plan, script.YEAR, int(number))
        self.result.published_dir = folder
        self.result.published = sorted(p for p in folder.iterdir() if p.is_file())
        self.event(
            f"{long_day(script.REVIEW.publish_on)}: the coordinator approved draft version "
            f"{number} and published it: the cycle is closed, its links stop working, and "
            f"{sent['published']} publication notices were sent"
        )

    def _take_enqueued(self) -> list[int]:
        ids, self._enqueued[:] = list(self._enqueued), []
        return ids

    # --- the outputs ---------------------------------------------------------------------------

    def write_drafts(self, summary: ImportSummary) -> None:
        """Every version of the 2022 report, in every format, under ``drafts/``."""
        folder = self.out / "drafts"
        folder.mkdir(parents=True, exist_ok=True)
        with self.session() as session:
            plan = session.get(Plan, summary.plan_id)
            assert plan is not None
            cycle = find_cycle(session, plan, script.YEAR)
            for version in drafts.versions(session, cycle):
                doc = drafts.version_document(version)
                stem = file_stem(plan, script.YEAR, version.number)
                files = []
                for fmt in Format:
                    path = folder / f"{stem}.{fmt.value}"
                    path.write_bytes(render(doc, fmt, show_authors=fmt is not Format.TXT))
                    files.append(path)
                self.result.drafts.append(
                    DraftFiles(
                        version.number,
                        version.state.value,
                        version.created_at,
                        version.created_by,
                        files,
                    )
                )

    def check(self) -> None:
        """The demo shows what it says it shows, or fails saying what is missing."""
        missing = [kind for kind in script.EXPECTED_KINDS if not self.result.messages[kind]]
        if missing:
            raise DemoError(f"the year sent no {', '.join(missing)} messages")
        on_disk = Counter(mail.kind for mail in read_outbox(self.outbox))
        if on_disk != self.result.messages:
            raise DemoError(
                f"the outbox holds {dict(on_disk)} but {dict(self.result.messages)} were sent"
            )
        with self.session() as session:
            slipped = session.exec(
                select(sa.func.count())
                .select_from(Milestone)
                .where(col(Milestone.slipped_on).is_not(None))
            ).one()
        if not slipped:
            raise DemoError("no milestone was flagged as slipped")


_PLURALS = {"area for further work": "areas for further work"}
_NOUNS = ("achievement", "area for further work", "new milestone")


def _count(n: int, what: str) -> str:
    if n == 1 or what not in _NOUNS:
        return f"{n} {what}"
    return f"{n} {_PLURALS.get(what, what + 's')}"


def _as_a_person_would(legend: str, day: date) -> script.MilestoneAnswer:
    """A milestone the script does not name: done if its period has ended, else on track."""
    due = legend.split(" – ", 1)[0].strip()
    try:
        period = parse_period(due)
    except ValueError:
        return script.MilestoneAnswer(legend, "on_track")
    if period.has_ended(day):
        return script.MilestoneAnswer(legend, "completed", min(period.end, day))
    return script.MilestoneAnswer(legend, "on_track")


def _free_row(values: dict[str, str], prefix: str) -> int:
    """The first row of a section that is blank, else the next index ("Add another")."""
    indices: dict[int, bool] = {}
    for name, value in values.items():
        if not name.startswith(prefix):
            continue
        index_text, _sep, _rest = name.removeprefix(prefix).partition("-")
        if index_text.isdigit():
            index = int(index_text)
            indices[index] = indices.get(index, False) or bool(value.strip())
    for index in sorted(indices):
        if not indices[index]:
            return index
    return max(indices, default=-1) + 1
