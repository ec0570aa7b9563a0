"""Requests for changes, approval, publication, the audit export and scheduled compiles, on
the real databases (both backends)."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import drafts, publishing
from models.document import ReportDocument
from models.messages import render_message
from models.submissions import load_request_view, reopen
from models.tables import (
    AccessToken,
    AuditEvent,
    CycleState,
    DeliveryState,
    Notification,
    ReportVersion,
    RequestState,
    VersionState,
)
from models.tokens import issue_token, resolve_token
from tests.review_helpers import (
    ANSWERED,
    COORDINATOR,
    DEADLINE,
    Cycle2022,
    complete_answer,
    objective_ids,
    open_2022,
    submit,
)

LATER = ANSWERED + timedelta(days=3)
BASE = "https://reports.example.govt.nz"


@pytest.fixture
def c(session: Session, report_2021_text: str) -> Cycle2022:
    return open_2022(session, report_2021_text)


def answer_mbie(session: Session, c: Cycle2022, text: str = "Guidance published.") -> None:
    first = objective_ids(session, c.requests["MBIE"])[0]
    submit(
        session,
        c.requests["MBIE"],
        complete_answer(session, c.requests["MBIE"], achievements=[(first, text)]),
        author="kahu@mbie.govt.nz",
    )


def test_request_changes_reopens_the_answer_with_the_comment_and_tells_each_contact(
    session: Session, c: Cycle2022
) -> None:
    answer_mbie(session, c)
    request = c.requests["MBIE"]
    assert request.state is RequestState.SUBMITTED

    ids = publishing.request_changes(
        session, request, "Please add a link to the guidance.", LATER, COORDINATOR
    )

    session.refresh(request)
    assert request.state.value == "changes_requested"
    assert request.change_comment == "Please add a link to the guidance."
    view = load_request_view(session, request.id or 0)
    assert view.editable and view.change_comment == "Please add a link to the guidance."
    rows = session.exec(select(Notification).where(col(Notification.id).in_(ids))).all()
    assert [(n.kind, n.recipient) for n in rows] == [("changes_requested", "contact@mbie.govt.nz")]
    message = render_message(session, rows[0], LATER, base_url=BASE, timezone="Pacific/Auckland")
    assert "Please add a link to the guidance." in message.text
    assert "Please add a link to the guidance." in message.html
    assert f"{BASE}/r/" in message.text, "the message carries the agency's link"
    assert "MBIE" in message.subject
    event = session.exec(
        select(AuditEvent).where(AuditEvent.action == "request.changes_requested")
    ).one()
    assert (event.actor, event.detail["comment"]) == (COORDINATOR, request.change_comment)

    # A second request for changes is a new round: a new message, none re-claimed.
    again = publishing.request_changes(session, request, "And the date.", LATER, COORDINATOR)
    assert again and not set(again) & set(ids)


def test_a_comment_is_required_and_escaped_in_the_html_mail(session: Session, c: Cycle2022) -> None:
    answer_mbie(session, c)
    with pytest.raises(publishing.ReviewError, match="comment is empty"):
        publishing.request_changes(session, c.requests["MBIE"], "  ", LATER, COORDINATOR)
    ids = publishing.request_changes(
        session, c.requests["MBIE"], "<script>alert(1)</script> & more", LATER, COORDINATOR
    )
    row = session.get(Notification, ids[0])
    assert row is not None
    message = render_message(session, row, LATER, base_url=BASE, timezone="Pacific/Auckland")
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in message.html


def test_changes_can_only_be_asked_of_a_submitted_answer(session: Session, c: Cycle2022) -> None:
    nzp = c.requests["NZP"]
    with pytest.raises(publishing.ReviewError, match="NZP has not submitted its answer yet"):
        publishing.request_changes(session, nzp, "Add the numbers.", LATER, COORDINATOR)
    session.refresh(nzp)
    assert nzp.state is not RequestState.CHANGES_REQUESTED and nzp.change_comment is None
    assert not session.exec(
        select(Notification).where(Notification.kind == "changes_requested")
    ).all()

    answer_mbie(session, c)
    mbie = c.requests["MBIE"]
    assert publishing.request_changes(session, mbie, "Add the link.", LATER, COORDINATOR)
    # Asked again before the agency answered: the new comment replaces the first.
    assert publishing.request_changes(session, mbie, "And the date.", LATER, COORDINATOR)
    session.refresh(mbie)
    assert mbie.change_comment == "And the date."


def test_a_version_compiled_before_an_agency_submitted_again_cannot_be_approved(
    session: Session, c: Cycle2022
) -> None:
    answer_mbie(session, c)
    stale = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    assert drafts.submitted_since_compile(session, c.cycle) is None
    # NZP answers after the compile: approving version 1 would make its answer final
    # without it being in the report.
    submit(session, c.requests["NZP"], complete_answer(session, c.requests["NZP"]))
    assert drafts.submitted_since_compile(session, c.cycle) == ["NZP"]

    with pytest.raises(publishing.ReviewError, match="NZP submitted an answer after the draft"):
        publishing.approve(session, c.cycle, stale, LATER, COORDINATOR)
    session.refresh(stale)
    assert stale.state is VersionState.DRAFT
    session.refresh(c.requests["NZP"])
    assert c.requests["NZP"].state is RequestState.SUBMITTED

    fresh = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    assert drafts.submitted_since_compile(session, c.cycle) is None
    assert publishing.approve(session, c.cycle, fresh, LATER, COORDINATOR).number == 2


def test_approve_records_who_and_when_and_makes_the_answers_final(
    session: Session, c: Cycle2022
) -> None:
    answer_mbie(session, c)
    first = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    answer_nzp = complete_answer(session, c.requests["NZP"])
    submit(session, c.requests["NZP"], answer_nzp, author="sam@police.govt.nz")
    latest = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    assert latest.number == 2

    with pytest.raises(publishing.ReviewError, match="not the latest version"):
        publishing.approve(session, c.cycle, first, LATER, COORDINATOR)
    approved = publishing.approve(session, c.cycle, latest, LATER, "ana@mbie.govt.nz")

    assert (approved.state, approved.approved_by, approved.approved_at) == (
        VersionState.APPROVED,
        "ana@mbie.govt.nz",
        LATER,
    )
    session.refresh(c.cycle)
    assert c.cycle.state is CycleState.APPROVED
    for acronym in ("MBIE", "NZP"):
        session.refresh(c.requests[acronym])
        assert c.requests[acronym].state is RequestState.APPROVED
        assert not load_request_view(session, c.requests[acronym].id or 0).editable
    with pytest.raises(publishing.ReviewError, match="already approved"):
        publishing.approve(session, c.cycle, approved, LATER, COORDINATOR)
    with pytest.raises(publishing.ReviewError, match="can no longer change"):
        publishing.request_changes(session, c.requests["MBIE"], "More.", LATER, COORDINATOR)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "report.approved")).one()


def test_publish_freezes_the_version_writes_the_files_closes_the_cycle_and_notifies(
    session: Session, c: Cycle2022, tmp_path: Path
) -> None:
    answer_mbie(session, c, "Hotline launched – ka pai <b>.")
    request = c.requests["MBIE"]
    token = issue_token(session, request, LATER)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    with pytest.raises(publishing.ReviewError, match="only an approved version"):
        publishing.publish(session, c.cycle, version, LATER, COORDINATOR, tmp_path)
    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    out = tmp_path / "site"

    result = publishing.publish(
        session, c.cycle, version, LATER + timedelta(hours=1), COORDINATOR, out
    )

    assert version.state is VersionState.PUBLISHED
    assert version.published_by == COORDINATOR
    stem = f"{c.plan.slug}-2022-v1"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{stem}.{ext}" for ext in ("html", "docx", "txt", "md", "csv")]
        + ["index.html", "SHA256SUMS"]
    )
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    page = (out / "index.html").read_text()
    assert "Hotline launched – ka pai &lt;b&gt;." in page
    assert version.checksum in page and "<script" not in page
    assert "Hotline launched – ka pai <b>." in (out / f"{stem}.txt").read_text()
    assert (out / f"{stem}.docx").read_bytes()[:2] == b"PK"

    session.refresh(c.cycle)
    assert c.cycle.state is CycleState.PUBLISHED
    assert c.cycle.closed_at == LATER + timedelta(hours=1)
    assert resolve_token(session, token, LATER + timedelta(hours=2), timedelta(days=14)) is None
    assert result.links_revoked >= 1
    live = session.exec(
        select(AccessToken).where(
            AccessToken.update_request_id == request.id, col(AccessToken.revoked_at).is_(None)
        )
    ).all()
    assert live == []

    rows = session.exec(
        select(Notification).where(col(Notification.id).in_(result.notification_ids))
    ).all()
    recipients = sorted(n.recipient for n in rows)
    assert COORDINATOR in recipients and "contact@mbie.govt.nz" in recipients
    assert all(n.kind == "published" for n in rows)
    agency_mail = next(n for n in rows if n.recipient == "contact@mbie.govt.nz")
    message = render_message(
        session, agency_mail, LATER + timedelta(hours=1), base_url=BASE, timezone="Pacific/Auckland"
    )
    assert f"{BASE}/reports/{c.plan.slug}/2022" in message.text
    assert "/r/" not in message.text, "the form is closed: no link to it"
    assert version.checksum in message.text
    coordinator_mail = next(n for n in rows if n.recipient == COORDINATOR)
    assert render_message(
        session, coordinator_mail, LATER, base_url=BASE, timezone="Pacific/Auckland"
    ).subject == ("The 2022 annual implementation report has been published")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "report.published")).one()
    assert event.detail["checksum"] == version.checksum


def test_a_published_version_cannot_be_changed_only_superseded(
    session: Session, c: Cycle2022, tmp_path: Path
) -> None:
    answer_mbie(session, c)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    publishing.publish(session, c.cycle, version, LATER, COORDINATOR, tmp_path / "v1")
    session.commit()

    doc = ReportDocument.model_validate(version.content)
    doc.title = "Something else"
    version.content = doc.model_dump(mode="json")
    with pytest.raises(publishing.VersionFrozen, match="cannot be changed"):
        session.flush()
    session.rollback()

    version.state = VersionState.DRAFT
    with pytest.raises(publishing.VersionFrozen):
        session.flush()
    session.rollback()

    session.delete(version)
    with pytest.raises(publishing.VersionFrozen, match="cannot be deleted"):
        session.flush()
    session.rollback()

    # A correction is a new version: edited, approved and published, it supersedes.
    entry = drafts.version_document(version).objectives()[0].achievements[0].entry_id
    assert entry is not None
    correction = drafts.edit_entry(session, c.cycle, entry, "Corrected text.", LATER, COORDINATOR)
    assert correction.number == 2 and correction.state is VersionState.DRAFT
    publishing.approve(session, c.cycle, correction, LATER, COORDINATOR)
    publishing.publish(session, c.cycle, correction, LATER, COORDINATOR, tmp_path / "v2")
    session.refresh(version)
    assert version.state is VersionState.SUPERSEDED
    assert publishing.published_version(session, c.plan, 2022) == correction
    # Its content is still what was published.
    assert publishing.verify_version(version).checksum() == version.checksum


def test_a_version_whose_content_was_tampered_with_is_not_published(
    session: Session, c: Cycle2022, tmp_path: Path
) -> None:
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    session.flush()
    doc = ReportDocument.model_validate(version.content)
    doc.title = "Tampered"
    session.execute(
        sa.update(ReportVersion)
        .where(col(ReportVersion.id) == version.id)
        .values(content=doc.model_dump(mode="json"))
    )
    session.expire_all()
    tampered = session.get(ReportVersion, version.id)
    assert tampered is not None
    with pytest.raises(publishing.ReviewError, match="does not match its checksum"):
        publishing.publish(session, c.cycle, tampered, LATER, COORDINATOR, tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_audit_log_exports_every_state_change_as_csv(
    session: Session, c: Cycle2022, tmp_path: Path
) -> None:
    answer_mbie(session, c, '=HYPERLINK("http://evil")')
    publishing.request_changes(session, c.requests["MBIE"], "Please check.", LATER, COORDINATOR)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    publishing.publish(session, c.cycle, version, LATER, COORDINATOR, tmp_path)

    rows = list(csv.reader(io.StringIO(publishing.export_audit(session, c.cycle))))

    assert tuple(rows[0]) == publishing.AUDIT_COLUMNS
    actions = [row[2] for row in rows[1:]]
    for action in (
        "cycle.opened",
        "request.submitted",
        "request.changes_requested",
        drafts.COMPILED,
        "report.approved",
        "report.published",
    ):
        assert action in actions
    assert actions.index("cycle.opened") < actions.index("report.published")
    changes = next(row for row in rows if row[2] == "request.changes_requested")
    assert changes[3] == "MBIE" and "Please check." in changes[5]


def test_the_audit_log_lists_the_reminders_and_escalations_sent_and_failed_messages(
    session: Session, c: Cycle2022
) -> None:
    # What delivery leaves behind: a reminder sent to NZP, an escalation that failed.
    nzp = c.requests["NZP"]
    sent_at = ANSWERED - timedelta(days=20)
    for key, kind, state, at, error in (
        ("r1", "reminder", DeliveryState.SENT, sent_at, None),
        ("e1", "escalation", DeliveryState.FAILED, sent_at + timedelta(days=7), "550 no such user"),
        ("r2", "reminder", DeliveryState.PENDING, sent_at, None),  # not sent: not a change
    ):
        session.add(
            Notification(
                idempotency_key=f"test:{key}",
                kind=kind,
                cycle_id=c.cycle.id,
                agency_id=nzp.agency_id,
                recipient="contact@nzp.govt.nz",
                context={"update_request_id": nzp.id},
                state=state,
                created_at=at,
                claimed_at=at if state is not DeliveryState.PENDING else None,
                sent_at=at if state is DeliveryState.SENT else None,
                last_error=error,
            )
        )
    answer_mbie(session, c)
    session.flush()

    log = publishing.cycle_log(session, c.cycle)
    actions = [(row.action, row.at) for row in log]
    assert actions == sorted(actions, key=lambda pair: pair[1]), "oldest first"
    reminded = [row for row in log if row.action == "request.reminded"]
    assert [(r.actor, r.subject, r.detail["to"]) for r in reminded] == [
        ("delivery", f"update_request:{nzp.id}", "contact@nzp.govt.nz")
    ]
    [failed] = [row for row in log if row.action == "message.failed"]
    assert failed.detail["kind"] == "escalation" and failed.detail["error"] == "550 no such user"
    assert [row.action for row in publishing.cycle_log(session, c.cycle, limit=2)] == [
        row.action for row in log[-2:]
    ]
    assert publishing.cycle_log_size(session, c.cycle) == len(log)

    rows = list(csv.reader(io.StringIO(publishing.export_audit(session, c.cycle))))
    assert ["request.reminded", "NZP"] in [row[2:4] for row in rows]
    assert ["message.failed", "NZP"] in [row[2:4] for row in rows]


def test_compile_due_cycles_runs_once_per_trigger(session: Session, c: Cycle2022) -> None:
    assert publishing.compile_due_cycles(session, LATER) == []

    for acronym, request in c.requests.items():
        submit(session, request, complete_answer(session, request), author=f"x@{acronym}.nz")
    first = publishing.compile_due_cycles(session, LATER)
    assert [(r.year, r.trigger.split(":")[0], r.version) for r in first] == [
        (2022, "all_submitted", 1)
    ]
    assert publishing.compile_due_cycles(session, LATER + timedelta(hours=1)) == []

    # A request for changes and a re-submission is a new trigger.
    mbie = c.requests["MBIE"]
    publishing.request_changes(session, mbie, "More detail, please.", LATER, COORDINATOR)
    assert publishing.compile_due_cycles(session, LATER + timedelta(hours=2)) == []
    first_objective = objective_ids(session, mbie)[0]
    submit(
        session,
        mbie,
        complete_answer(session, mbie, achievements=[(first_objective, "More detail.")]),
    )
    again = publishing.compile_due_cycles(session, LATER + timedelta(hours=3))
    assert [(r.trigger.split(":")[0], r.version, r.created) for r in again] == [
        ("all_submitted", 2, True)
    ]

    after_deadline = publishing.compile_due_cycles(
        session, LATER.replace(year=2023, month=3, day=2)
    )
    assert [(r.trigger, r.created) for r in after_deadline] == [("deadline", False)]
    assert publishing.compile_due_cycles(session, LATER.replace(year=2023, month=3, day=3)) == []
    assert LATER.replace(year=2023, month=3, day=2).date() > DEADLINE


# --- per-agency section sign-off ------------------------------------------------------------


def approved_detail(session: Session) -> dict[str, object]:
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "report.approved")).one()
    return dict(event.detail)


def test_a_section_sign_off_is_recorded_and_listed_in_the_approval(
    session: Session, c: Cycle2022
) -> None:
    answer_mbie(session, c)
    mbie = c.requests["MBIE"]
    with pytest.raises(publishing.ReviewError, match="no draft yet"):
        publishing.sign_off_section(session, mbie, LATER, COORDINATOR)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    assert publishing.section_signoffs(session, c.cycle) == {}

    done = publishing.sign_off_section(session, mbie, LATER, "ana@mbie.govt.nz")

    assert (done.actor, done.at, done.version, done.request_id) == (
        "ana@mbie.govt.nz",
        LATER,
        version.number,
        mbie.id,
    )
    event = session.exec(select(AuditEvent).where(AuditEvent.action == publishing.SIGNED_OFF)).one()
    assert (event.actor, event.agency_id, event.subject, event.detail) == (
        "ana@mbie.govt.nz",
        mbie.agency_id,
        f"update_request:{mbie.id}",
        {"version": version.number},
    )
    assert publishing.section_signoffs(session, c.cycle) == {mbie.agency_id: done}

    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    assert approved_detail(session)["sections_signed_off"] == [
        {
            "agency": "MBIE",
            "by": "ana@mbie.govt.nz",
            "at": LATER.isoformat(),
            "version": version.number,
        }
    ]
    # The sign-off still stands for the approved report; no more can be made.
    assert set(publishing.section_signoffs(session, c.cycle)) == {mbie.agency_id}
    with pytest.raises(publishing.ReviewError, match="cycle is approved"):
        publishing.sign_off_section(session, mbie, LATER, COORDINATOR)


def test_approving_needs_no_sign_off(session: Session, c: Cycle2022) -> None:
    answer_mbie(session, c)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    assert approved_detail(session)["sections_signed_off"] == []


def test_a_section_not_submitted_cannot_be_signed_off(session: Session, c: Cycle2022) -> None:
    answer_mbie(session, c)
    drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    with pytest.raises(publishing.ReviewError, match="NZP has not submitted its answer"):
        publishing.sign_off_section(session, c.requests["NZP"], LATER, COORDINATOR)
    assert publishing.section_signoffs(session, c.cycle) == {}
    assert not session.exec(
        select(AuditEvent).where(AuditEvent.action == publishing.SIGNED_OFF)
    ).all()


def test_a_request_for_changes_and_the_resubmission_void_the_sign_off(
    session: Session, c: Cycle2022
) -> None:
    answer_mbie(session, c)
    nzp = c.requests["NZP"]
    submit(session, nzp, complete_answer(session, nzp), author="sam@police.govt.nz")
    drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    mbie = c.requests["MBIE"]
    publishing.sign_off_section(session, mbie, LATER, COORDINATOR)
    kept = publishing.sign_off_section(session, nzp, LATER, COORDINATOR)

    publishing.request_changes(session, mbie, "Add the link.", LATER, COORDINATOR)
    assert publishing.section_signoffs(session, c.cycle) == {nzp.agency_id: kept}
    with pytest.raises(publishing.ReviewError, match="changes requested"):
        publishing.sign_off_section(session, mbie, LATER, COORDINATOR)

    # The agency answers again; the coordinator signs off the new draft; the agency reopens
    # its answer and submits once more: that sign-off is void too, and stays void.
    answer_mbie(session, c, "Guidance published, with the link.")
    session.refresh(mbie)
    assert mbie.state is RequestState.SUBMITTED
    version = drafts.compile_cycle(session, c.cycle, LATER + timedelta(hours=1), COORDINATOR)
    again = publishing.sign_off_section(session, mbie, LATER + timedelta(hours=1), COORDINATOR)
    assert again.version == version.number
    assert publishing.section_signoffs(session, c.cycle)[mbie.agency_id] == again
    reopen(session, mbie.id or 0, author="kahu@mbie.govt.nz", now=LATER + timedelta(hours=2))
    assert publishing.section_signoffs(session, c.cycle) == {nzp.agency_id: kept}
    answer_mbie(session, c, "Guidance published, with the link and the date.")
    assert publishing.section_signoffs(session, c.cycle) == {nzp.agency_id: kept}


def test_a_draft_version_is_never_changed_or_deleted_either(session: Session, c: Cycle2022) -> None:
    answer_mbie(session, c)
    version = drafts.compile_cycle(session, c.cycle, LATER, COORDINATOR)
    session.commit()
    content = drafts.version_document(version).model_dump(mode="json")

    for field, value in (
        ("content", {**content, "title": "Something else"}),
        ("checksum", "0" * 64),
        ("created_by", "mallory@example.org"),
        ("number", 7),
        ("approved_by", "mallory@example.org"),
        ("published_at", LATER),
        ("state", VersionState.PUBLISHED),
    ):
        setattr(version, field, value)
        session.add(version)
        with pytest.raises(publishing.VersionFrozen, match="cannot be changed"):
            session.flush()
        session.rollback()

    session.delete(version)
    with pytest.raises(publishing.VersionFrozen, match="cannot be deleted"):
        session.flush()
    session.rollback()

    # The review's own steps still go through.
    approved = publishing.approve(session, c.cycle, version, LATER, COORDINATOR)
    assert approved.state is VersionState.APPROVED
    session.refresh(version)
    assert drafts.version_document(version).model_dump(mode="json") == content
