"""``reportcycle demo``: the whole 2022 cycle, played twice into one temporary folder, and
its outputs checked: the outbox, the database, the draft versions and the published report.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from cli import demo_script as script
from cli.demo_browser import Mail, read_outbox
from cli.main import app
from config import settings as settings_module
from models.db import make_engine
from models.tables import (
    AuditEvent,
    Milestone,
    MilestoneStatus,
    Notification,
    NotificationItem,
    UpdateRequest,
)
from tests.conftest import REPORT_2021

NZ = ZoneInfo("Pacific/Auckland")
# The demo is played once per worker process that runs these tests: keep them on one
# (the README's command distributes with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("demo")

AGENCIES = ("DIA", "ENZ", "INZ", "MBIE", "MFAT", "MoJ", "NZP", "OT")
# Files the published report must have, beside its static page and checksums.
FORMATS = ("html", "docx", "txt", "md", "csv")
# Compared between two runs: docx carries a creation time of its own.
TEXT_FORMATS = ("txt", "md", "csv", "html")


@dataclass
class DemoRun:
    out: Path
    output: str
    first_output: str
    first_published: dict[str, bytes]
    first_outbox: Counter[str]
    data_dir: Path


def _run(out: Path) -> str:
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def _published(out: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted((out / "published").rglob("*"))
        if path.is_file() and path.suffix.lstrip(".") in TEXT_FORMATS
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo run twice into the same folder, with REPORTCYCLE_* pointing elsewhere."""
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    data_dir = tmp_path_factory.mktemp("real-data-dir")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REPORTCYCLE_DATA_DIR", str(data_dir))
        patch.setenv("REPORTCYCLE_DATABASE_URL", f"sqlite:///{data_dir / 'real.db'}")
        patch.delenv("REPORTCYCLE_MAIL_URL", raising=False)
        # Anything reading the settings would see the directory the test checks is untouched.
        settings_module.get_settings.cache_clear()
        try:
            first = _run(out)
            published = _published(out)
            outbox = Counter(mail.kind for mail in read_outbox(out / "outbox"))
            second = _run(out)
        finally:
            settings_module.get_settings.cache_clear()
    return DemoRun(out, second, first, published, outbox, data_dir)


@pytest.fixture(scope="module")
def mails(demo: DemoRun) -> list[Mail]:
    return read_outbox(demo.out / "outbox")


@pytest.fixture(scope="module")
def db(demo: DemoRun) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{demo.out / 'reportcycle.db'}")
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture(scope="module")
def published_txt(demo: DemoRun) -> str:
    [path] = (demo.out / "published").rglob("*-2022-v*.txt")
    return path.read_text(encoding="utf-8")


def _local_day(moment: datetime) -> date:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(NZ).date()


def _steps(db: Session) -> list[tuple[str, str, date]]:
    """(step, recipient, local day) of every reason in every sent digest."""
    rows = db.exec(
        select(NotificationItem.step, Notification.recipient, Notification.created_at).join(
            Notification, col(Notification.id) == NotificationItem.notification_id
        )
    ).all()
    return [(step or "", recipient, _local_day(created)) for step, recipient, created in rows]


# --- what it prints ---------------------------------------------------------------------------


def test_it_shows_numbered_steps_then_where_everything_is(demo: DemoRun) -> None:
    lines = demo.output.splitlines()
    numbered = [line for line in lines if re.match(r"\s*\d+\. ", line)]
    assert len(numbered) >= 15
    numbers = [int(line.split(".")[0]) for line in numbered]
    assert numbers == list(range(1, len(numbers) + 1))
    text = " ".join(demo.output.split())
    assert "opened the 2022 cycle (deadline 28 October 2022): 8 update requests sent" in text
    assert re.search(r"1 March – 24 March 2022, daily sweeps: \d+ milestone reminders", text)
    assert re.search(r"1 April 2022, daily sweeps: \d+ milestones flagged as slipped", text)
    assert "MoJ answered late, after the escalation" in text
    assert "asked NZP for changes" in text
    assert "Where everything is" in text
    for fmt in FORMATS:
        assert f"-2022-v2.{fmt}" in text
    assert "index.html" in text and "the static HTML page" in text
    assert re.search(r"Done in \d+\.\d s\.", text)


def test_it_leaves_the_real_data_directory_alone(demo: DemoRun) -> None:
    assert list(demo.data_dir.iterdir()) == []


def test_it_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    mine = tmp_path / "notes.txt"
    mine.write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty and was not made by reportcycle demo" in result.output
    assert mine.read_text(encoding="utf-8") == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --- the outbox ----------------------------------------------------------------------------


def test_every_message_went_out_as_an_eml_file(
    demo: DemoRun, mails: list[Mail], db: Session
) -> None:
    sent = db.exec(select(Notification.id, Notification.kind, Notification.state)).all()
    assert {state for _id, _kind, state in sent} == {"sent"}
    assert len(mails) == len(sent)
    # One file per notification, named by its id and kind.
    on_disk = sorted(m.path.name.split("-n", 1)[1].removesuffix(".eml") for m in mails)
    assert on_disk == sorted(f"{notification_id}-{kind}" for notification_id, kind, _s in sent)
    counts = Counter(mail.kind for mail in mails)
    for kind in script.EXPECTED_KINDS:
        assert counts[kind] >= 1, kind
    assert f"{len(mails)} messages, .eml" in " ".join(demo.output.split())


def test_update_requests_reach_every_agency_with_a_working_link(mails: list[Mail]) -> None:
    requests = [m for m in mails if m.kind == "update_request"]
    assert sorted(m.to.split("<")[-1].rstrip(">") for m in requests) == sorted(
        script.contact_email(a) for a in AGENCIES
    )
    for mail in requests:
        assert mail.path.name.startswith("20220131T193000-")  # 08:30 on 1 February in NZ
        [link] = mail.links
        assert link.startswith("http://127.0.0.1:8000/r/")
        assert "28 October 2022" in mail.text


def test_milestone_reminders_in_march_and_slip_notices_in_april(
    mails: list[Mail], db: Session
) -> None:
    steps = _steps(db)
    march = {(s, day) for s, _who, day in steps if day.month == 3 and s.startswith("milestone-")}
    # Each reminder step names the offset and the end of the period it is about (Q1 2022).
    assert march == {
        ("milestone-30d-2022-03-31", date(2022, 3, 1)),
        ("milestone-7d-2022-03-31", date(2022, 3, 24)),
    }
    slipped_april = {who for s, who, day in steps if s == "slipped" and day == date(2022, 4, 1)}
    assert script.COORDINATOR_EMAIL in slipped_april
    assert script.contact_email("MBIE") in slipped_april
    reminder = next(
        m
        for m in mails
        if m.kind == "reminder"
        and m.path.name.startswith("20220323T")  # 24 March, 09:00 in NZ
        and script.contact_email("ENZ") in m.to
    )
    assert "Quarter 1 2022" in reminder.text
    assert "The Operating Model to put the principles" in reminder.text
    assert any(m.kind == "slipped" and m.path.name.startswith("20220331T") for m in mails)


def test_deadline_reminders_14_7_and_1_days_before_then_an_escalation(
    mails: list[Mail], db: Session
) -> None:
    steps = _steps(db)
    deadline = {(s, day) for s, _who, day in steps if s.startswith("deadline-")}
    assert deadline == {
        ("deadline-14d", date(2022, 10, 14)),
        ("deadline-7d", date(2022, 10, 21)),
        # Labour Day (24 October) moves nothing here: the 1-day step is the 27th.
        ("deadline-1d", date(2022, 10, 27)),
    }
    reminded_1d = {who for s, who, _day in steps if s == "deadline-1d"}
    assert reminded_1d == {script.contact_email("MBIE"), script.contact_email("MoJ")}
    escalations = [m for m in mails if m.kind == "escalation"]
    assert {m.to.split("<")[-1].rstrip(">") for m in escalations} == {
        script.contact_email("MoJ"),
        script.COORDINATOR_EMAIL,
    }
    assert all(m.path.name.startswith("20221030T") for m in escalations)  # Mon 31 Oct, NZ
    assert all("MoJ" in m.subject for m in escalations)


def test_the_coordinator_asked_police_for_changes_and_everyone_heard_of_the_publication(
    mails: list[Mail],
) -> None:
    [changes] = [m for m in mails if m.kind == "changes_requested"]
    assert script.contact_email("NZP") in changes.to
    assert "how many recruit wings" in " ".join(changes.text.split())
    assert changes.links
    published = [m for m in mails if m.kind == "published"]
    assert sorted(m.to.split("<")[-1].rstrip(">") for m in published) == sorted(
        [*(script.contact_email(a) for a in AGENCIES), script.COORDINATOR_EMAIL]
    )


# --- the database ------------------------------------------------------------------------------


def test_slipped_milestones_are_flagged(db: Session) -> None:
    flagged = db.exec(select(AuditEvent).where(AuditEvent.action == "milestone.slipped")).all()
    q1 = [e for e in flagged if e.detail["due_end"] == "2022-03-31"]
    assert len(q1) >= 6
    assert {e.detail["slipped_on"] for e in q1} == {"2022-04-01"}
    research = db.exec(
        select(Milestone).where(col(Milestone.text).startswith("Complete research programme"))
    ).all()
    assert research and all(m.slipped_on == date(2022, 4, 1) for m in research)
    assert all(m.status is MilestoneStatus.COMPLETED for m in research)
    # Delayed to a period that has not ended: no longer slipped.
    [bali] = db.exec(
        select(Milestone).where(col(Milestone.text).startswith("Bali Process Disruption"))
    ).all()
    assert bali.due_text == "Quarter 2 2023" and bali.slipped_on is None


def test_every_request_was_answered_through_the_form(db: Session) -> None:
    states = db.exec(select(UpdateRequest.state)).all()
    assert states and set(states) == {"approved"}
    opened = db.exec(select(AuditEvent.actor).where(AuditEvent.action == "request.opened")).all()
    assert {script.contact_email(a) for a in AGENCIES} <= set(opened)
    late = db.exec(
        select(AuditEvent.at).where(
            AuditEvent.action == "request.submitted",
            AuditEvent.actor == script.contact_email("MoJ"),
        )
    ).all()
    assert [_local_day(at) for at in late] == [date(2022, 11, 2)]
    revisions = db.exec(
        select(sa.func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "request.submitted",
            AuditEvent.actor == script.contact_email("NZP"),
        )
    ).one()
    assert revisions == 2  # once, then again after the request for changes


# --- the reports ----------------------------------------------------------------------------------


def test_each_draft_version_is_written_in_every_format(demo: DemoRun) -> None:
    drafts = sorted(p.name for p in (demo.out / "drafts").iterdir())
    for number in (1, 2):
        for fmt in FORMATS:
            assert any(name.endswith(f"-2022-v{number}.{fmt}") for name in drafts)
    [v1] = (demo.out / "drafts").glob("*-v1.md")
    [v2] = (demo.out / "drafts").glob("*-v2.md")
    # Version 1 was compiled at the deadline, before MoJ answered; version 2 has its answer.
    moj = "published guidance for lawyers and police prosecutors"
    assert moj not in v1.read_text(encoding="utf-8")
    assert moj in v2.read_text(encoding="utf-8")


def test_the_report_is_published_in_every_format_with_its_static_page(demo: DemoRun) -> None:
    [folder] = {p.parent for p in (demo.out / "published").rglob("index.html")}
    names = {p.name for p in folder.iterdir()}
    for fmt in FORMATS:
        assert any(n.endswith(f"-2022-v2.{fmt}") for n in names)
    assert {"index.html", "SHA256SUMS"} <= names
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "recruit wing since July 2022" in page


def _baselines_2021() -> dict[str, str]:
    """Each milestone of the 2021 report (by text) and the period it first had: its
    "(Delayed from …)" when it has one, else its due period then."""
    found = {}
    pattern = re.compile(
        r"^- (?P<due>[^–]+?) – (?P<text>.+?)(?: \(Delayed from (?P<from>[^)]+)\))?\.?$"
    )
    for line in REPORT_2021.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line.strip())
        if match:
            found[match["text"].lower()] = match["from"] or match["due"]
    return found


def test_the_published_report_holds_the_scripted_answers(published_txt: str) -> None:
    text = published_txt
    for visit in script.VISITS:
        for row in visit.achievements:
            assert f"- {row.text}" in text, row.text
            if row.link_url:
                assert f"{row.link_title}(external link) <{row.link_url}>" in text
        for new in visit.new_milestones:
            assert f"- {new.period} – {new.text}" in text
        for answer in visit.milestones:
            if answer.progress == "completed" and answer.achievement:
                assert f"- {answer.achievement}" in text, answer.achievement


def test_delayed_milestones_read_delayed_from_their_first_baseline(published_txt: str) -> None:
    baselines = _baselines_2021()
    lines = published_txt.splitlines()
    delayed = [m for v in script.VISITS for m in v.milestones if m.progress == "delayed"]
    assert len(delayed) >= 5
    for answer in delayed:
        [first] = [b for t, b in baselines.items() if t.startswith(answer.match.lower())][:1]
        wanted = [
            line
            for line in lines
            if line.startswith(f"- {answer.new_period} – ") and answer.match.lower() in line.lower()
        ]
        assert wanted, answer.match
        assert all(line.endswith(f"(Delayed from {first}).") for line in wanted), wanted
    # Delayed before (Q3 2021) and again this year: still the first baseline.
    assert (
        "- Quarter 4 2022 – Migrant worker protection bill introduced, to give effect to "
        "legislative changes proposed under the Temporary Migrant Worker Exploitation Review "
        "(Delayed from Q3 2021)." in lines
    )
    # Delayed for the first time this year: the period it had.
    assert any(
        line.startswith("- Quarter 4 2022 – The Operating Model")
        and line.endswith("(Delayed from Quarter 1 2022).")
        for line in lines
    )


def test_running_it_again_gives_the_same_result(demo: DemoRun, mails: list[Mail]) -> None:
    assert demo.first_published, "the first run published nothing"
    assert _published(demo.out) == demo.first_published
    assert Counter(mail.kind for mail in mails) == demo.first_outbox

    def numbered(output: str) -> list[str]:
        return [line for line in output.splitlines() if re.match(r"\s*\d+\. ", line)]

    assert numbered(demo.output) == numbered(demo.first_output)
