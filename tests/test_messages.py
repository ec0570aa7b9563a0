"""Message templates: every kind by naming convention, HTML escaped, the delivery-failure
notice as delivery claims it."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlmodel import Session, select

from models.cycles import open_cycle
from models.messages import KINDS, Message, render_message
from models.notifications import claim_notification
from models.tables import AnnualReport, Contact, Notification, ReportVersion, UpdateRequest
from templates import TEMPLATES_DIR
from tests.cycle_support import build_plan, notifications, nz

BASE = "https://reports.example.govt.nz"


def test_every_kind_has_a_subject_a_text_and_an_html_template() -> None:
    for kind in KINDS:
        for part in ("subject.txt", "body.txt", "body.html"):
            assert (TEMPLATES_DIR / "emails" / f"{kind}-{part}").is_file(), f"{kind}-{part}"


def test_an_unknown_kind_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="no templates for the notification kind 'nonsense'"):
        render_message(
            session,
            Notification(idempotency_key="x", kind="nonsense", recipient="x"),
            nz("2022-02-01"),
            base_url=BASE,
        )


def test_the_delivery_failure_notice_tells_the_coordinator_what_to_do(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    failed = next(
        n
        for n in notifications(session, opened.notification_ids)
        if n.recipient == "bob@police.govt.nz"
    )
    carol = built.contacts["carol"]
    # The context delivery writes (models/delivery.py, _tell_coordinators).
    notice = claim_notification(
        session,
        kind="delivery_failed",
        key=f"delivery_failed:{failed.id}:{carol.id}:email",
        contact=carol,
        channel="email",
        context={
            "failed_notification_id": failed.id,
            "failed_kind": failed.kind,
            "failed_recipient": failed.recipient,
            "error": "550 5.1.1 <bob@police.govt.nz>: mailbox unavailable",
            "agency_id": failed.agency_id,
            "cycle_id": failed.cycle_id,
        },
        now=nz("2022-02-01"),
        cycle_id=failed.cycle_id,
        agency_id=failed.agency_id,
    )
    assert notice is not None
    message = render_message(session, notice, nz("2022-02-01"), base_url=BASE)
    assert message.subject == "Not delivered: an update request to bob@police.govt.nz"
    assert "Kia ora Carol," in message.text
    assert "550 5.1.1 <bob@police.govt.nz>: mailbox unavailable" in message.text
    assert "reportcycle cycle resend 2022 NZP" in message.text
    assert "&lt;bob@police.govt.nz&gt;: mailbox unavailable" in message.html
    assert f"{BASE}/r/" not in message.text  # a coordinator's notice carries no agency link


# --- every kind, as its reader sees it ------------------------------------------------------

OPENED = nz("2022-02-01")
LATE = nz("2022-12-05")  # three days after the cycle's deadline (Friday 2 December 2022)
DEADLINE = date(2022, 12, 2)
# Macrons and '&' in what an agency is called, and markup in a coordinator's comment.
MBIE_NAME = "Hīkina Whakatutuki & Ministry of Business, Innovation and Employment"
COMMENT = "Please add the <b>numbers</b> & a link.\n\nNgā mihi"


@dataclass
class Rendered:
    message: Message
    notification: Notification
    link: str | None


def _every_message(session: Session, *, nzp_name: str | None = None) -> dict[str, Rendered]:
    """One message of every kind (agency's and coordinator's where both exist), each claimed
    with the context its sender writes (models/cycles.py, models/sweep.py,
    models/publishing.py, models/delivery.py) and rendered as it would be sent."""
    built = build_plan(session)
    built.agencies["MBIE"].full_name = MBIE_NAME
    session.add(built.agencies["MBIE"])
    if nzp_name is not None:
        built.agencies["NZP"].full_name = nzp_name
        session.add(built.agencies["NZP"])
    opened = open_cycle(session, built.plan, 2022, DEADLINE, OPENED, "test")
    requests = {r.agency.acronym: r.request for r in opened.requests}
    alice, bob, carol = (built.contacts[k] for k in ("alice", "bob", "carol"))
    cycle_id = opened.cycle.id
    mbie, nzp = requests["MBIE"], requests["NZP"]
    mbie.change_comment = COMMENT
    session.add(mbie)
    session.flush()
    m = built.milestones
    # A published version for the publication notices to link to.
    (report,) = session.exec(select(AnnualReport)).all()
    version = ReportVersion(
        annual_report_id=report.id or 0, number=2, checksum="ab" * 32, created_by="test"
    )
    session.add(version)
    session.flush()

    def agency(request: UpdateRequest, **extra: Any) -> dict[str, Any]:
        return {
            "audience": "agency",
            "agency_id": request.agency_id,
            "cycle_id": cycle_id,
            "update_request_id": request.id,
            "milestone_ids": [],
            "escalations": [],
            "slipped_milestone_ids": [],
            **extra,
        }

    def coordinator(**extra: Any) -> dict[str, Any]:
        return {"audience": "coordinator", "milestone_ids": [], "escalations": [], **extra}

    late = [{"update_request_id": r.id} for r in requests.values()]
    cases: dict[str, tuple[str, Contact, dict[str, Any], datetime]] = {
        "reminder:milestones": (
            "reminder",
            alice,
            agency(mbie, milestone_ids=[m["research"].id, m["triage"].id]),
            nz("2022-03-01"),
        ),
        "reminder:one milestone": (
            "reminder",
            bob,
            agency(nzp, milestone_ids=[m["police"].id]),
            nz("2022-03-01"),
        ),
        "reminder:deadline": ("reminder", bob, agency(nzp, deadline_days=7), nz("2022-11-25")),
        "slipped:agency": (
            "slipped",
            alice,
            agency(mbie, slipped_milestone_ids=[m["research"].id, m["triage"].id]),
            nz("2022-04-01"),
        ),
        "slipped:coordinator": (
            "slipped",
            carol,
            coordinator(slipped_milestone_ids=[m["research"].id, m["police"].id]),
            nz("2022-04-01"),
        ),
        "escalation:agency": (
            "escalation",
            bob,
            agency(nzp, escalations=[{"update_request_id": nzp.id}]),
            LATE,
        ),
        "escalation:coordinator": ("escalation", carol, coordinator(escalations=late), LATE),
        "link_reissued": ("link_reissued", bob, agency(nzp), nz("2022-06-01")),
        "deadline_changed": (
            "deadline_changed",
            alice,
            agency(mbie, previous_deadline="2022-11-25", reason="Budget & Select Committee"),
            nz("2022-06-01"),
        ),
        "changes_requested": ("changes_requested", alice, agency(mbie), nz("2022-11-10")),
        "published:agency": (
            "published",
            alice,
            agency(mbie, version_id=version.id),
            nz("2022-12-20"),
        ),
        "published:coordinator": (
            "published",
            carol,
            coordinator(cycle_id=cycle_id, version_id=version.id),
            LATE,
        ),
        "delivery_failed": (
            "delivery_failed",
            carol,
            {
                "failed_notification_id": 1,
                "failed_kind": "update_request",
                "failed_recipient": "bob@police.govt.nz",
                "error": "550 5.1.1 <bob@police.govt.nz>: mailbox unavailable",
                "agency_id": nzp.agency_id,
                "cycle_id": cycle_id,
            },
            OPENED,
        ),
    }
    rendered: dict[str, Rendered] = {}
    update = next(
        n
        for n in notifications(session, opened.notification_ids)
        if n.recipient == "alice@mbie.govt.nz" and n.channel == "email"
    )
    for name, (kind, contact, context, now) in [
        ("update_request", ("update_request", alice, {}, OPENED)),
        *cases.items(),
    ]:
        if name == "update_request":
            notice: Notification | None = update
        else:
            notice = claim_notification(
                session,
                kind=kind,
                key=f"test:{name}",
                contact=contact,
                channel="email",
                context=context,
                now=now,
                cycle_id=context.get("cycle_id"),
                agency_id=context.get("agency_id"),
            )
        assert notice is not None
        message = render_message(session, notice, now, base_url=BASE, timezone="Pacific/Auckland")
        found = LINK.search(message.text)
        rendered[name] = Rendered(message, notice, found.group(0) if found else None)
    assert set(KINDS) == {name.split(":")[0] for name in rendered}
    return rendered


LINK = re.compile(re.escape(BASE) + r"/r/([A-Za-z0-9_-]+)")


class _Page(HTMLParser):
    """What an HTML part is made of, for the checks a reader (and a screen reader) needs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root_lang: str | None = None
        self.title = ""
        self.headings: list[int] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self.sources: list[str] = []  # any src=, <link href>, url(...) in a style
        self.styles: list[str] = []
        self.widths: list[str] = []
        self._in: list[str] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.root_lang = values.get("lang")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self.headings.append(int(tag[1]))
        if tag in ("img", "script", "link", "iframe", "object", "embed", "source"):
            self.sources.append(f"<{tag}> {values}")
        if "src" in values or "background" in values:
            self.sources.append(f"<{tag}> {values}")
        if "width" in values:
            self.widths.append(f"<{tag} width={values['width']}>")
        style = values.get("style", "")
        if "url(" in style or "@import" in style:
            self.sources.append(style)
        # A fixed width breaks a phone's screen; max-width is what lets it narrow.
        for declaration in style.split(";"):
            prop = declaration.split(":")[0].strip().lower()
            if prop in ("width", "min-width"):
                self.widths.append(f"<{tag} style={style!r}>")
        if tag == "a":
            self._href, self._text = values.get("href", ""), []
        if tag == "style":
            self.styles.append("")
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.title += data
        if self._in and self._in[-1] == "style":
            self.styles[-1] += data
        if self._href is not None:
            self._text.append(data)


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


def test_every_message_is_a_self_contained_accessible_html_page(session: Session) -> None:
    vague = {"click here", "here", "this link", "link", "read more", "more"}
    for name, r in _every_message(session).items():
        page = _page(r.message.html)
        assert page.root_lang == "en-NZ", name
        assert " ".join(page.title.split()) == r.message.subject, name
        # Headings in order from h2 (the subject is the title), none skipped: a list of
        # milestones (h3 per objective) sits under an h2 that says what the list is.
        levels = [1, *page.headings]
        assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), (
            name,
            page.headings,
        )
        assert page.sources == [], (name, page.sources)  # no remote images, fonts or CSS
        assert all("url(" not in s and "@import" not in s for s in page.styles), name
        assert page.widths == [], (name, page.widths)
        for href, text in page.links:
            assert href.startswith(BASE + "/"), (name, href)  # only the app's own pages
            assert text.lower() not in vague and len(text.split()) >= 2, (name, text)
        assert "click here" not in r.message.html.lower(), name


def test_every_plain_text_part_reads_as_plain_text(session: Session) -> None:
    for name, r in _every_message(session).items():
        text = r.message.text
        assert not re.search(r"&(amp|lt|gt|quot|#\d+|#x[0-9a-f]+);", text), name
        assert not re.search(r"</?(p|a|strong|em|ul|li|br|h\d)\b", text), name
        assert "\n\n\n" not in text, (name, text)
        assert not re.search(r"[ \t]+\n", text), name
        assert text.endswith("\n") and not text.endswith("\n\n"), (name, text[-40:])
        assert not text.startswith("\n"), name
        assert "Kia ora" in text.splitlines()[0], name


def test_macrons_and_ampersands_are_kept_in_text_and_escaped_once_in_html(
    session: Session,
) -> None:
    every = _every_message(session)
    changes = every["changes_requested"].message
    assert MBIE_NAME in changes.text
    assert "Ngā mihi" in changes.text
    assert "Please add the <b>numbers</b> & a link." in changes.text
    assert "Please add the &lt;b&gt;numbers&lt;/b&gt; &amp; a link." in changes.html
    assert "Hīkina Whakatutuki &amp; Ministry" in changes.html
    assert "&amp;amp;" not in changes.html
    moved = every["deadline_changed"].message
    assert "Why: Budget & Select Committee" in moved.text
    assert "Budget &amp; Select Committee" in moved.html


def test_the_agency_link_is_only_in_its_own_place(session: Session) -> None:
    """The token is in the one link (the button and its copy-me text in HTML, its line in
    the text), never in a subject, and a coordinator's or closed cycle's message has none."""
    for name, r in _every_message(session).items():
        token_links = LINK.findall(r.message.text + r.message.html)
        if name in ("published:agency", "published:coordinator", "delivery_failed") or (
            name.endswith(":coordinator")
        ):
            assert token_links == [], name
            continue
        assert r.link is not None, name
        token = r.link.rsplit("/", 1)[1]
        assert token not in r.message.subject, name
        assert r.message.text.count(token) == 1, name
        assert r.message.html.count(token) == 2, name  # href and the text to copy
        assert [text for href, text in _page(r.message.html).links if href == r.link] == [
            "Open MBIE's update form" if "MBIE" in r.message.subject else "Open NZP's update form"
        ], name


def test_an_agency_reads_what_to_do_and_by_when_before_the_lists(session: Session) -> None:
    every = _every_message(session)
    request = every["update_request"].message
    expected = f"by Friday 2 December 2022 (in {(DEADLINE - date(2022, 2, 1)).days} days)"
    assert expected in request.text
    assert expected.replace("2022 (", "2022</strong> (").replace("by F", "by <strong>F") in (
        request.html
    )
    reminder = every["reminder:milestones"].message
    assert "MBIE's 2022 update is due by Friday 2 December 2022 (in 276 days)." in reminder.text
    reissued = every["link_reissued"].message
    assert "The update is due by Friday 2 December 2022 (in 184 days)." in reissued.text
    late = every["escalation:agency"].message
    assert "was due on Friday 2 December 2022 (3 days ago)" in late.text
    # The link comes right after the ask, before any list of milestones, in both parts.
    for name, first_item in (
        ("update_request", "Complete research programme on migrant workers."),
        ("reminder:milestones", "Complete research programme on migrant workers."),
        ("slipped:agency", "Complete research programme on migrant workers."),
        ("link_reissued", "Intelligence assessment of the trafficking"),
    ):
        r = every[name]
        assert r.link is not None
        assert r.message.text.index(r.link) < r.message.text.index(first_item), name
        html = r.message.html
        assert html.index(f'href="{r.link}"') < html.index("<h2"), name


def test_a_name_ending_in_s_takes_an_apostrophe_alone(session: Session) -> None:
    every = _every_message(session, nzp_name="Ministry for Pacific Peoples")
    late = every["escalation:agency"].message
    assert "Ministry for Pacific Peoples' update for the 2022 report" in late.text
    assert "Peoples's" not in late.text + late.html
    assert "Ministry for Pacific Peoples&#39; update" in late.html
    # MBIE's full name does not end in s: 's as before.
    changes = every["changes_requested"].message
    assert "Innovation and Employment's update" in changes.text


def test_subjects_say_what_is_asked_and_differ_by_kind(session: Session) -> None:
    every = _every_message(session)
    subjects = {name: r.message.subject for name, r in every.items()}
    assert subjects["slipped:agency"] == (
        "2 MBIE milestones have slipped: please update them by Friday 2 December 2022"
    )
    assert subjects["slipped:coordinator"] == "2 milestones have slipped"
    # An agency scanning its inbox tells each message apart by its subject.
    agency_subjects = [s for n, s in subjects.items() if "coordinator" not in n]
    assert len(set(agency_subjects)) == len(agency_subjects), subjects


def test_coordinator_messages_name_the_agencies_and_where_to_act(session: Session) -> None:
    every = _every_message(session)
    cycle_id = every["update_request"].notification.cycle_id
    late = every["escalation:coordinator"].message
    for acronym in ("DIA", "MBIE", "NZP", "OT"):
        assert f"  - {acronym} (" in late.text
    overview = f"{BASE}/dashboard/cycles/{cycle_id}#agencies"
    assert f"The 2022 cycle's agencies on the dashboard: {overview}" in late.text
    assert (overview, "The 2022 cycle's agencies on the dashboard") in _page(late.html).links
    slipped = every["slipped:coordinator"].message
    assert "(MBIE)" in slipped.text and "(NZP)" in slipped.text
    assert f"{BASE}/dashboard/milestones" in slipped.text
    assert (f"{BASE}/dashboard/milestones", "The milestones on the dashboard") in _page(
        slipped.html
    ).links
    failed = every["delivery_failed"].message
    assert f"{BASE}/dashboard/agencies#add" in failed.text
    assert "reportcycle cycle resend 2022 NZP" in failed.text
    # An agency's message has no dashboard link (it cannot sign in there).
    for name, r in every.items():
        if name != "delivery_failed" and "coordinator" not in name:
            assert "/dashboard" not in r.message.text + r.message.html, name


def test_a_failed_publication_notice_is_not_resent_with_a_link(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, DEADLINE, OPENED, "test")
    nzp = next(r.request for r in opened.requests if r.agency.acronym == "NZP")
    notice = claim_notification(
        session,
        kind="delivery_failed",
        key="delivery_failed:test",
        contact=built.contacts["carol"],
        channel="email",
        context={
            "failed_notification_id": 1,
            "failed_kind": "published",
            "failed_recipient": "bob@police.govt.nz",
            "error": "550 mailbox unavailable",
            "agency_id": nzp.agency_id,
            "cycle_id": opened.cycle.id,
        },
        now=OPENED,
        cycle_id=opened.cycle.id,
        agency_id=nzp.agency_id,
    )
    assert notice is not None
    message = render_message(session, notice, OPENED, base_url=BASE)
    assert message.subject == "Not delivered: a publication notice to bob@police.govt.nz"
    assert "cycle resend" not in message.text + message.html


def test_a_coordinators_words_stand_apart_in_the_plain_text(session: Session) -> None:
    every = _every_message(session)
    changes = every["changes_requested"].message.text
    # The comment is quoted (indented) as its own paragraph, then when it is due again.
    assert "changes:\n\n  Please add the <b>numbers</b> & a link.\n\n  Ngā mihi\n\nYour answer" in (
        changes
    )
    assert "The update is due by Friday 2 December 2022 (in 22 days)." in changes
    moved = every["deadline_changed"].message.text
    assert "it was Friday 25 November 2022.\n\nWhy: Budget & Select Committee\n\nAnything" in moved
    reminder = every["reminder:milestones"].message.text
    assert "\n\nThe 2 milestones below reach the end of their due period soon." in reminder


def test_a_milestone_reminders_subject_says_how_soon(session: Session) -> None:
    every = _every_message(session)
    assert every["reminder:milestones"].message.subject == (
        "Reminder: 2 MBIE milestones are due soon, the first by 31 March 2022 - how are they going?"
    )
    assert every["reminder:one milestone"].message.subject == (
        "Reminder: one NZP milestone is due by 31 March 2022 - how is it going?"
    )
