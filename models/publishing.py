"""Review decisions on a cycle: asking an agency for changes, approving a version, publishing
it, the audit export, and compiling cycles when they are due.

- A version is never edited: a flush that changes a stored version's content, checksum or
  author, deletes it, or moves its state other than along the review (draft → approved →
  published, approved or published → superseded, each step setting its own who and when)
  raises ``VersionFrozen``. Its stored checksum is checked against its content before
  publishing and on ``verify_version``.
- Publishing closes the cycle (``closed_at = now``, state published) and revokes every live
  link of the cycle at once. The form's grace period (``resolve_token``) is for a cycle that
  closed without publishing; after publication the answers are final and the report is public
  (``/reports/{plan}/{year}``), so there is nothing left for a link to open.
- Every state change is an audit event; ``export_audit`` writes a cycle's log as CSV.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from models import audit, drafts
from models.clock import as_aware
from models.document import ReportDocument
from models.notifications import (
    Claim,
    claim_ids,
    claim_request_round,
    coordinator_recipients,
    recipients,
    request_subject,
)
from models.render import Format, render
from models.tables import (
    AccessToken,
    Agency,
    AuditEvent,
    Contact,
    Cycle,
    CycleState,
    DeliveryState,
    Notification,
    Plan,
    ReportVersion,
    RequestState,
    UpdateRequest,
    VersionState,
)
from templates import render as render_template

CHANGES_REQUESTED = "changes_requested"
PUBLISHED = "published"
REVIEW_KINDS = (CHANGES_REQUESTED, PUBLISHED)
MAX_COMMENT = 5000
REPORT_TIMEZONE = "Pacific/Auckland"


class ReviewError(ValueError):
    """A review step that cannot be done now; the message says why and what to do."""


class VersionFrozen(ReviewError):
    """An attempt to change a published report version."""


# --- versions are immutable ----------------------------------------------------------------

# What a version is: never changed once stored (a change to the report is a new version).
_FROZEN_FIELDS = ("annual_report_id", "number", "content", "checksum", "created_at", "created_by")
# The review's steps: each state change a version may go through, and what it may set.
_TRANSITIONS: dict[tuple[VersionState, VersionState], frozenset[str]] = {
    (VersionState.DRAFT, VersionState.APPROVED): frozenset({"approved_at", "approved_by"}),
    (VersionState.APPROVED, VersionState.PUBLISHED): frozenset({"published_at", "published_by"}),
    (VersionState.APPROVED, VersionState.SUPERSEDED): frozenset(),
    (VersionState.PUBLISHED, VersionState.SUPERSEDED): frozenset(),
}
_STAMPS = ("approved_at", "approved_by", "published_at", "published_by")


def _stored(session: OrmSession, version: ReportVersion) -> VersionState | None:
    """The version's state as the database holds it (an attribute set on an expired object
    has no history to tell), or None when it is not stored yet."""
    if version.id is None:
        return None
    row = (
        session.connection()
        .execute(sa.select(col(ReportVersion.state)).where(col(ReportVersion.id) == version.id))
        .first()
    )
    return None if row is None else VersionState(row[0])


def _frozen(version: ReportVersion, what: str) -> VersionFrozen:
    if version.state is VersionState.PUBLISHED or what == "deleted":
        hint = "publish a new version to supersede it"
    else:
        hint = "a change to the report is a new version"
    return VersionFrozen(f"report version {version.number} is stored and cannot be {what}; {hint}")


@event.listens_for(OrmSession, "before_flush")
def _refuse_changes_to_versions(session: OrmSession, _context: Any, _instances: Any) -> None:
    """Every stored version is frozen: its content and who made it never change, it is never
    deleted, and its state only moves along the review (draft → approved → published →
    superseded), each step setting its own who and when once."""
    for obj in session.deleted:
        if isinstance(obj, ReportVersion) and _stored(session, obj) is not None:
            raise _frozen(obj, "deleted")
    for obj in session.dirty:
        if not isinstance(obj, ReportVersion) or not session.is_modified(obj):
            continue
        before = _stored(session, obj)
        if before is None:
            continue
        attrs = sa.inspect(obj).attrs
        changed = {name for name in (*_FROZEN_FIELDS, *_STAMPS) if attrs[name].history.added}
        if changed & set(_FROZEN_FIELDS):
            raise _frozen(obj, "changed")
        if obj.state is before:
            if changed:
                raise _frozen(obj, "changed")
            continue
        allowed = _TRANSITIONS.get((before, obj.state))
        if allowed is None or not changed <= allowed:
            raise _frozen(obj, "changed")


def verify_version(version: ReportVersion) -> ReportDocument:
    """The version's document, after checking its content against its checksum."""
    doc = ReportDocument.model_validate(version.content)
    if doc.checksum() != version.checksum:
        raise ReviewError(
            f"report version {version.number} does not match its checksum: its stored content "
            "was changed outside reportcycle"
        )
    return doc


# --- requests for changes ----------------------------------------------------------------------


# Changes can be asked of a submitted answer (again, while the agency has not answered the
# first request).
CHANGEABLE_STATES = (RequestState.SUBMITTED, RequestState.CHANGES_REQUESTED)


def request_changes(
    session: Session, request: UpdateRequest, comment: str, now: datetime, actor: str
) -> list[int]:
    """Reopen an agency's answer with the coordinator's comment (shown at the top of its
    form) and claim a ``changes_requested`` message per contact. Returns the notification
    ids (sent by delivery)."""
    comment = comment.strip()
    if not comment:
        raise ReviewError("say what should change: the comment is empty")
    if len(comment) > MAX_COMMENT:
        raise ReviewError(f"the comment is longer than {MAX_COMMENT} characters")
    cycle = session.get(Cycle, request.cycle_id)
    assert cycle is not None and cycle.id is not None and request.id is not None
    drafts.lock_cycle(session, cycle)
    if cycle.state is not CycleState.OPEN:
        raise ReviewError(
            f"the {cycle.year} cycle is {cycle.state.value}: answers can no longer change"
        )
    session.refresh(request)
    if request.state not in CHANGEABLE_STATES:
        # The message thanks the agency for its update and says its answer is open again:
        # untrue of an answer never submitted, whose link works as it is.
        agency = session.get(Agency, request.agency_id)
        name = agency.acronym if agency is not None else f"agency {request.agency_id}"
        raise ReviewError(
            f"{name} has not submitted its answer yet (it is "
            f"{request.state.value.replace('_', ' ')}), so there is nothing to send back: its "
            "link still works, and reminders go out until the deadline"
        )
    request.state = RequestState.CHANGES_REQUESTED
    request.change_comment = comment
    session.add(request)
    ids = claim_request_round(
        session,
        kind=CHANGES_REQUESTED,
        request=request,
        audit_action="request.changes_requested",
        now=now,
        actor=actor,
        detail={"comment": comment},
        name_round=True,
    )
    session.flush()
    return ids


# --- per-agency section sign-off -------------------------------------------------------------

SIGNED_OFF = "section.signed_off"
# An agency's answer changing after a sign-off voids it: the coordinator signed off other text.
_VOIDS_SIGNOFF = ("request.submitted", "request.changes_requested", "request.reopened")


@dataclass(frozen=True)
class SignOff:
    """A coordinator's sign-off of one agency's section of the draft (an audit event)."""

    actor: str
    at: datetime
    version: int
    request_id: int


def sign_off_section(
    session: Session, request: UpdateRequest, now: datetime, actor: str
) -> SignOff:
    """Sign off an agency's submitted section of the latest draft version. Optional: approval
    does not need it; a later submission, reopening or request for changes by that agency
    voids it (``section_signoffs``)."""
    cycle = session.get(Cycle, request.cycle_id)
    assert cycle is not None and cycle.id is not None and request.id is not None
    drafts.lock_cycle(session, cycle)
    session.refresh(request)
    agency = session.get(Agency, request.agency_id)
    name = agency.acronym if agency is not None else f"agency {request.agency_id}"
    if cycle.state is not CycleState.OPEN:
        raise ReviewError(
            f"the {cycle.year} cycle is {cycle.state.value}: sections can no longer be signed off"
        )
    if request.state is not RequestState.SUBMITTED:
        raise ReviewError(
            f"{name} has not submitted its answer (it is {request.state.value.replace('_', ' ')}):"
            " only a submitted section can be signed off"
        )
    latest = drafts.latest_version(session, cycle)
    if latest is None:
        raise ReviewError(
            f"the {cycle.year} report has no draft yet: compile it before signing off sections"
        )
    audit.record(
        session,
        actor=actor,
        action=SIGNED_OFF,
        at=now,
        cycle_id=cycle.id,
        agency_id=request.agency_id,
        subject=request_subject(request),
        detail={"version": latest.number},
    )
    session.flush()
    return SignOff(actor, now, latest.number, request.id)


def section_signoffs(session: Session, cycle: Cycle) -> dict[int, SignOff]:
    """The standing sign-offs by agency id: each agency's latest, unless that agency's answer
    was submitted, reopened or sent back for changes after it. One query."""
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.cycle_id == cycle.id,
            col(AuditEvent.agency_id).is_not(None),
            col(AuditEvent.action).in_((SIGNED_OFF, *_VOIDS_SIGNOFF)),
        )
        .order_by(col(AuditEvent.id))
    ).all()
    standing: dict[int, SignOff] = {}
    for row in events:
        assert row.agency_id is not None
        if row.action != SIGNED_OFF:
            standing.pop(row.agency_id, None)
            continue
        request_id = int((row.subject or "").rpartition(":")[2] or 0)
        standing[row.agency_id] = SignOff(
            row.actor, row.at, int(row.detail.get("version", 0)), request_id
        )
    return standing


# --- approval -------------------------------------------------------------------------------


def approve(
    session: Session, cycle: Cycle, version: ReportVersion, now: datetime, actor: str
) -> ReportVersion:
    """Approve the latest draft version: records who and when (and which agencies' sections
    were signed off, if any), makes the submitted answers final (requests approved, the cycle
    approved)."""
    assert cycle.id is not None
    drafts.lock_cycle(session, cycle)
    session.refresh(version)
    latest = drafts.latest_version(session, cycle)
    if latest is None or latest.id != version.id:
        raise ReviewError(
            f"version {version.number} is not the latest version of the {cycle.year} report"
            + (f" (version {latest.number} is)" if latest else "")
            + ": review and approve the latest"
        )
    if version.state is not VersionState.DRAFT:
        raise ReviewError(f"version {version.number} is already {version.state.value}")
    since = drafts.submitted_since_compile(session, cycle)
    if since is not None:
        # Approving makes every submitted answer final: one not in the report would be lost.
        who = " and ".join(since) if since else "an agency"
        raise ReviewError(
            f"{who} submitted an answer after the draft was last compiled, so version "
            f"{version.number} does not hold it: compile the draft again and approve the new "
            "version"
        )
    verify_version(version)
    signoffs = section_signoffs(session, cycle)
    acronyms = agencies_by_id(session, signoffs)
    for earlier in drafts.versions(session, cycle):
        if earlier.id != version.id and earlier.state is VersionState.APPROVED:
            earlier.state = VersionState.SUPERSEDED
            session.add(earlier)
    version.state = VersionState.APPROVED
    version.approved_at = now
    version.approved_by = actor
    session.add(version)
    approved_requests = session.exec(
        sa.update(UpdateRequest)
        .where(
            col(UpdateRequest.cycle_id) == cycle.id,
            col(UpdateRequest.state) == RequestState.SUBMITTED,
        )
        .values(state=RequestState.APPROVED)
        .execution_options(synchronize_session=False)
    ).rowcount
    if cycle.state is CycleState.OPEN:
        cycle.state = CycleState.APPROVED
        session.add(cycle)
    audit.record(
        session,
        actor=actor,
        action="report.approved",
        at=now,
        cycle_id=cycle.id,
        subject=f"report_version:{version.id}",
        detail={
            "version": version.number,
            "checksum": version.checksum,
            "requests_approved": int(approved_requests or 0),
            "sections_signed_off": [
                {
                    "agency": acronyms[agency_id].acronym
                    if agency_id in acronyms
                    else str(agency_id),
                    "by": signoff.actor,
                    "at": signoff.at.isoformat(),
                    "version": signoff.version,
                }
                for agency_id, signoff in sorted(signoffs.items())
            ],
        },
    )
    session.flush()
    session.expire_all()
    return version


# --- publication ---------------------------------------------------------------------------------


PUBLISHED_FORMATS = (Format.HTML, Format.DOCX, Format.TXT, Format.MD, Format.CSV)


@dataclass(frozen=True)
class PublishedFile:
    name: str
    format: str
    size: int
    sha256: str


@dataclass
class Published:
    version: ReportVersion
    directory: Path
    files: list[PublishedFile] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    links_revoked: int = 0


def file_stem(plan: Plan, year: int, number: int) -> str:
    return f"{plan.slug}-{year}-v{number}"


def publish(
    session: Session,
    cycle: Cycle,
    version: ReportVersion,
    now: datetime,
    actor: str,
    out_dir: Path,
    *,
    base_url: str | None = None,
) -> Published:
    """Freeze the approved ``version``, write its files and a static page to ``out_dir``,
    close the cycle, end its links, and claim ``published`` messages for the agencies and the
    coordinators (sent by delivery)."""
    assert cycle.id is not None and version.id is not None
    drafts.lock_cycle(session, cycle)
    session.refresh(version)
    if version.state is not VersionState.APPROVED:
        raise ReviewError(
            f"version {version.number} is {version.state.value}: only an approved version "
            "can be published (approve it first)"
        )
    plan = session.get(Plan, cycle.plan_id)
    assert plan is not None
    doc = verify_version(version)
    files = write_published_files(
        plan, cycle.year, version, doc, out_dir, now=now, actor=actor, base_url=base_url
    )
    for earlier in drafts.versions(session, cycle):
        if earlier.id != version.id and earlier.state is VersionState.PUBLISHED:
            earlier.state = VersionState.SUPERSEDED
            session.add(earlier)
    version.state = VersionState.PUBLISHED
    version.published_at = now
    version.published_by = actor
    session.add(version)
    cycle.state = CycleState.PUBLISHED
    if cycle.closed_at is None:
        cycle.closed_at = now
    session.add(cycle)
    request_ids = select(UpdateRequest.id).where(UpdateRequest.cycle_id == cycle.id)
    revoked = session.exec(
        sa.update(AccessToken)
        .where(
            col(AccessToken.update_request_id).in_(request_ids),
            col(AccessToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    ids = claim_ids(session, _published_claims(session, cycle, version), now)
    audit.record(
        session,
        actor=actor,
        action="report.published",
        at=now,
        cycle_id=cycle.id,
        subject=f"report_version:{version.id}",
        detail={
            "version": version.number,
            "checksum": version.checksum,
            "files": [{"name": f.name, "sha256": f.sha256} for f in files],
            "links_revoked": int(revoked or 0),
            "messages": len(ids),
        },
    )
    session.flush()
    return Published(version, out_dir, files, ids, int(revoked or 0))


def _published_claims(session: Session, cycle: Cycle, version: ReportVersion) -> list[Claim]:
    agency_ids = session.exec(
        select(UpdateRequest.agency_id)
        .where(UpdateRequest.cycle_id == cycle.id)
        .order_by(col(UpdateRequest.agency_id))
    ).all()
    claims: list[Claim] = []
    seen: set[tuple[int | None, str]] = set()

    def add(contact: Contact, channel: str, audience: str, agency_id: int | None) -> None:
        if (contact.id, channel) in seen:
            return
        seen.add((contact.id, channel))
        claims.append(
            Claim(
                kind=PUBLISHED,
                key=f"{PUBLISHED}:v{version.id}:c{contact.id}:{channel}",
                contact=contact,
                channel=channel,
                context={
                    "audience": audience,
                    "cycle_id": cycle.id,
                    "version_id": version.id,
                    **({"agency_id": agency_id} if agency_id else {}),
                },
                cycle_id=cycle.id,
                agency_id=agency_id,
            )
        )

    for agency_id in agency_ids:
        for contact, channel in recipients(session, agency_id):
            add(contact, channel, "agency", agency_id)
    for contact, channel in coordinator_recipients(session):
        add(contact, channel, "coordinator", None)
    return claims


def write_published_files(
    plan: Plan,
    year: int,
    version: ReportVersion,
    doc: ReportDocument,
    out_dir: Path,
    *,
    now: datetime,
    actor: str,
    base_url: str | None = None,
) -> list[PublishedFile]:
    """The report in every format, ``index.html`` (a static page of the published report
    with its downloads) and ``SHA256SUMS``, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = file_stem(plan, year, version.number)
    files: list[PublishedFile] = []
    for fmt in PUBLISHED_FORMATS:
        data = render(doc, fmt)
        name = f"{stem}.{fmt.value}"
        _write_atomically(out_dir / name, data)
        files.append(PublishedFile(name, fmt.value, len(data), hashlib.sha256(data).hexdigest()))
    page = published_page(
        doc,
        version,
        files,
        published_at=now,
        published_by=actor,
        base_url=base_url,
    ).encode("utf-8")
    _write_atomically(out_dir / "index.html", page)
    files.append(PublishedFile("index.html", "page", len(page), hashlib.sha256(page).hexdigest()))
    sums = "".join(f"{f.sha256}  {f.name}\n" for f in files).encode("ascii")
    _write_atomically(out_dir / "SHA256SUMS", sums)
    return files


def published_page(
    doc: ReportDocument,
    version: ReportVersion,
    files: Sequence[PublishedFile],
    *,
    published_at: datetime,
    published_by: str,
    base_url: str | None = None,
    download_prefix: str = "",
    stylesheet: str | None = None,
) -> str:
    """The static HTML page of a published report: the report, its version, checksum and
    downloads. No script, no external resource."""
    from models.render import template_context

    return render_template(
        "dashboard/published.html",
        **template_context(doc),
        version=version,
        files=list(files),
        published_on=published_at.astimezone(ZoneInfo(REPORT_TIMEZONE)).date(),
        download_prefix=download_prefix,
        stylesheet=stylesheet,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the published report, by plan and year ------------------------------------------------


def published_version(session: Session, plan: Plan, year: int) -> ReportVersion | None:
    """The current published version of a year's report (not superseded), if any."""
    from models.tables import AnnualReport

    return session.exec(
        select(ReportVersion)
        .join(AnnualReport, col(AnnualReport.id) == ReportVersion.annual_report_id)
        .where(
            AnnualReport.plan_id == plan.id,
            AnnualReport.year == year,
            ReportVersion.state == VersionState.PUBLISHED,
        )
        .order_by(col(ReportVersion.number).desc())
        .limit(1)
    ).first()


# --- audit log -----------------------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "actor", "action", "agency", "subject", "detail")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class LogRow:
    """One line of a cycle's audit log: an audit event, or a message the delivery sent or
    gave up on (reminders and escalations are messages, not events, until they go out)."""

    at: datetime
    actor: str
    action: str
    agency_id: int | None
    subject: str | None
    detail: dict[str, Any]


# Messages listed in the log as what they did to a request (the update request itself is
# logged as ``request.sent`` when it goes out; requests for changes and publication by the
# coordinator's own event).
MESSAGE_ACTIONS = {"reminder": "request.reminded", "escalation": "request.escalated"}
MESSAGE_FAILED = "message.failed"


def audit_events(session: Session, cycle: Cycle, *, limit: int | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.cycle_id == cycle.id).order_by(col(AuditEvent.id))
    if limit is not None:
        query = (
            select(AuditEvent)
            .where(AuditEvent.cycle_id == cycle.id)
            .order_by(col(AuditEvent.id).desc())
            .limit(limit)
        )
        return list(reversed(session.exec(query).all()))
    return list(session.exec(query))


def _message_rows(session: Session, cycle: Cycle, limit: int | None) -> list[LogRow]:
    sent = sa.and_(
        col(Notification.kind).in_(tuple(MESSAGE_ACTIONS)),
        col(Notification.state) == DeliveryState.SENT,
        col(Notification.sent_at).is_not(None),
    )
    failed = col(Notification.state) == DeliveryState.FAILED
    at = sa.func.coalesce(
        col(Notification.sent_at), col(Notification.claimed_at), col(Notification.created_at)
    )
    query = (
        select(Notification)
        .where(col(Notification.cycle_id) == cycle.id, sa.or_(sent, failed))
        .order_by(at.desc(), col(Notification.id).desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = []
    for message in session.exec(query):
        request_id = (message.context or {}).get("update_request_id")
        failed_here = message.state is DeliveryState.FAILED
        rows.append(
            LogRow(
                at=as_aware(message.sent_at or message.claimed_at or message.created_at),
                actor="delivery",
                action=MESSAGE_FAILED if failed_here else MESSAGE_ACTIONS[message.kind],
                agency_id=message.agency_id,
                subject=f"update_request:{request_id}"
                if request_id
                else f"notification:{message.id}",
                detail={
                    "kind": message.kind,
                    "to": message.recipient,
                    "notification_id": message.id,
                    **({"error": message.last_error or ""} if failed_here else {}),
                },
            )
        )
    return rows


def cycle_log(session: Session, cycle: Cycle, *, limit: int | None = None) -> list[LogRow]:
    """Every state change of the cycle, oldest first: its audit events with the reminders
    and escalations sent and the messages that failed; ``limit``: only the latest."""
    events = [
        LogRow(as_aware(e.at), e.actor, e.action, e.agency_id, e.subject, e.detail or {})
        for e in audit_events(session, cycle, limit=limit)
    ]
    messages = list(reversed(_message_rows(session, cycle, limit)))
    # Each list keeps its own order (events by id); the two are merged by time.
    rows = list(heapq.merge(events, messages, key=lambda row: row.at))
    return rows[-limit:] if limit is not None else rows


def cycle_log_size(session: Session, cycle: Cycle) -> int:
    """How many lines the cycle's whole log has (two counts)."""
    events = session.exec(
        select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.cycle_id == cycle.id)
    ).one()
    messages = session.exec(
        select(sa.func.count())
        .select_from(Notification)
        .where(
            col(Notification.cycle_id) == cycle.id,
            sa.or_(
                sa.and_(
                    col(Notification.kind).in_(tuple(MESSAGE_ACTIONS)),
                    col(Notification.state) == DeliveryState.SENT,
                    col(Notification.sent_at).is_not(None),
                ),
                col(Notification.state) == DeliveryState.FAILED,
            ),
        )
    ).one()
    return int(events) + int(messages)


def _cell(value: str) -> str:
    # A spreadsheet runs a cell starting with these as a formula; people typed these texts.
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def export_audit(session: Session, cycle: Cycle) -> str:
    """The cycle's audit log as CSV (oldest first), ready for a spreadsheet."""
    acronyms = {a.id: a.acronym for a in session.exec(select(Agency))}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(AUDIT_COLUMNS)
    for row in cycle_log(session, cycle):
        writer.writerow(
            [
                row.at.isoformat(),
                _cell(row.actor),
                row.action,
                acronyms.get(row.agency_id, "") if row.agency_id else "",
                _cell(row.subject or ""),
                _cell(json.dumps(row.detail, ensure_ascii=False, sort_keys=True))
                if row.detail
                else "",
            ]
        )
    return out.getvalue()


# --- compiling when due -----------------------------------------------------------------------

COMPILE_ACTOR = "schedule"


@dataclass(frozen=True)
class DueCompile:
    cycle_id: int
    year: int
    trigger: str
    version: int
    created: bool


def compile_due_cycles(
    session: Session, now: datetime, *, timezone: str = REPORT_TIMEZONE
) -> list[DueCompile]:
    """Compile every open cycle whose deadline has passed (once), or whose requests are all
    submitted (once per set of submitted revisions, so a re-submission after a request for
    changes compiles again). In a constant number of queries before the compiles."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    cycles = session.exec(
        select(Cycle).where(Cycle.state == CycleState.OPEN).order_by(col(Cycle.id))
    ).all()
    if not cycles:
        return []
    ids = [c.id for c in cycles]
    requests: dict[int, list[UpdateRequest]] = {}
    for request in session.exec(select(UpdateRequest).where(col(UpdateRequest.cycle_id).in_(ids))):
        requests.setdefault(request.cycle_id, []).append(request)
    done: set[tuple[int | None, str]] = set()
    for compiled in session.exec(
        select(AuditEvent).where(
            col(AuditEvent.cycle_id).in_(ids), AuditEvent.action == drafts.COMPILED
        )
    ):
        for trigger in compiled.detail.get("triggers", []):
            done.add((compiled.cycle_id, str(trigger)))
    results: list[DueCompile] = []
    for cycle in cycles:
        assert cycle.id is not None
        triggers: list[str] = []
        if today > cycle.deadline:
            triggers.append("deadline")
        mine = requests.get(cycle.id, [])
        if mine and all(r.state is RequestState.SUBMITTED for r in mine):
            marks = ",".join(f"{r.id}:{r.revision_number}" for r in sorted(mine, key=_by_id))
            triggers.append("all_submitted:" + hashlib.sha256(marks.encode()).hexdigest()[:16])
        pending = [t for t in triggers if (cycle.id, t) not in done]
        if not pending:
            continue
        result = drafts.compile_cycle_result(session, cycle, now, COMPILE_ACTOR, triggers=pending)
        results.extend(
            DueCompile(cycle.id, cycle.year, trigger, result.version.number, result.created)
            for trigger in pending
        )
    session.flush()
    return results


def _by_id(request: UpdateRequest) -> int:
    return request.id or 0


# --- the view of review messages --------------------------------------------------------------


def message_view(
    session: Session,
    notification: Notification,
    request: UpdateRequest | None,
    base_url: str,
) -> dict[str, Any]:
    """Extra template context for the ``changes_requested`` and ``published`` messages."""
    context = notification.context or {}
    view: dict[str, Any] = {"comment": None, "report": None}
    if notification.kind == CHANGES_REQUESTED and request is not None:
        view["comment"] = request.change_comment or ""
    if notification.kind == PUBLISHED:
        version = session.get(ReportVersion, context.get("version_id"))
        cycle = session.get(Cycle, context.get("cycle_id"))
        plan = session.get(Plan, cycle.plan_id) if cycle else None
        if version is not None and cycle is not None and plan is not None:
            view["report"] = {
                "year": cycle.year,
                "version": version.number,
                "checksum": version.checksum,
                "url": f"{base_url.rstrip('/')}/reports/{plan.slug}/{cycle.year}",
            }
    return view


def agencies_by_id(session: Session, ids: Iterable[int]) -> dict[int, Agency]:
    wanted = list(ids)
    if not wanted:
        return {}
    return {
        a.id: a
        for a in session.exec(select(Agency).where(col(Agency.id).in_(wanted)))
        if a.id is not None
    }
