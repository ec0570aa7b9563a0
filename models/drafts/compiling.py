"""The compile operation (``compile_cycle``, ``compile_cycle_result``): build, replay the
recorded edits, write, snapshot, record; and telling whether answers were submitted since
the last compile.

Separate because it is the one place that ties the other modules together; the answers
mark lives here because the compile's audit event is what records it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import audit
from models.drafts.building import build_drafts_for_plan, load_plan
from models.drafts.edits import apply_edit, recorded_edits
from models.drafts.storage import annual_report, write_drafts_with_ids
from models.drafts.versioning import lock_cycle, report_rows, snapshot
from models.drafts.working import (
    ObjectiveDraft,
    load_drafts,
    stored_digests,
    stored_entry_ids,
)
from models.tables import (
    Agency,
    AuditEvent,
    Cycle,
    EntryOrigin,
    ReportVersion,
    RevisionKind,
    Section,
    SubmissionRevision,
    UpdateRequest,
)

COMPILED = "draft.compiled"


# --- the operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    version: ReportVersion
    created: bool
    objective_reports_written: int
    stale_edits: list[int]


def compile_cycle(session: Session, cycle: Cycle, now: datetime, actor: str) -> ReportVersion:
    """Compile the cycle's submitted answers into the year's draft; see the package docs."""
    return compile_cycle_result(session, cycle, now, actor).version


def compile_cycle_result(
    session: Session,
    cycle: Cycle,
    now: datetime,
    actor: str,
    *,
    triggers: Sequence[str] = (),
) -> Compiled:
    """``compile_cycle`` with what it did; ``triggers`` (what made a scheduled compile due)
    are recorded on its audit event so each one compiles once."""
    assert cycle.id is not None
    lock_cycle(session, cycle)
    plan = load_plan(session, cycle.plan_id)
    drafts = build_drafts_for_plan(session, cycle, now, actor, plan)
    stale: list[int] = []
    for event in recorded_edits(session, cycle.id):
        objective_id = event.detail.get("objective_id")
        draft = drafts.get(objective_id) if isinstance(objective_id, int) else None
        if draft is None or not apply_edit(draft, event.detail, event.actor, event.at):
            assert event.id is not None
            stale.append(event.id)
    # Edited entries keep the time and author of the edit; unchanged entries keep theirs.
    annual = annual_report(session, cycle, now)
    assert annual.id is not None
    # An objective whose stored digest is the new draft's is unchanged without reading its
    # rows (most of them, on a recompile: reading a large plan's draft back cost more than a
    # third of it); only its entry ids are read, for the document. The others are read and
    # compared row by row (a missing digest: rows an import wrote, or a draft from before
    # digests), and each needs its unchanged entries' stamps.
    recorded = stored_digests(session, annual.id)
    unchanged = {
        objective_id
        for objective_id, draft in drafts.items()
        if (found := recorded.get(objective_id)) is not None
        and found.digest is not None
        and found.digest == draft.digest()
    }
    kept_ids = stored_entry_ids(session, [recorded[o].report_id for o in unchanged])
    for objective_id in list(unchanged):
        ids = kept_ids.get(recorded[objective_id].report_id, {})
        if any(
            len(ids.get(section, [])) != len(drafts[objective_id].entries[section])
            for section in Section
        ):
            unchanged.discard(objective_id)  # its rows are not what its digest says: compare
    stored = load_drafts(session, annual.id, objectives=[o for o in recorded if o not in unchanged])
    for objective_id, draft in drafts.items():
        if objective_id in stored and stored[objective_id].comparable() == draft.comparable():
            unchanged.add(objective_id)
        elif objective_id not in unchanged:
            _keep_stamps(draft, stored.get(objective_id))
    written, report_ids = write_drafts_with_ids(
        session,
        annual,
        drafts,
        now,
        actor,
        stored=stored,
        unchanged=unchanged,
        kept_ids={o: kept_ids.get(recorded[o].report_id, {}) for o in unchanged if o not in stored},
        digests={o: found.digest for o, found in recorded.items()},
    )
    # The document from what was just written, rather than read back.
    rows = report_rows(drafts, report_ids, plan)
    version, created = snapshot(session, cycle, annual, now, actor, rows=rows)
    audit.record(
        session,
        actor=actor,
        action=COMPILED,
        at=now,
        cycle_id=cycle.id,
        subject=f"report_version:{version.id}",
        detail={
            "version": version.number,
            "new_version": created,
            "objective_reports_written": written,
            "stale_edits": stale,
            ANSWERS_MARK: answers_mark(session, cycle),
            **({"triggers": list(triggers)} if triggers else {}),
        },
    )
    session.flush()
    return Compiled(version, created, written, stale)


# --- answers submitted since the last compile ------------------------------------------------

# The compile's audit event records which submitted answers it read (a digest of each
# request's latest submitted revision number), so approving can tell whether an agency
# submitted again since: its new answer is not in any version yet.
ANSWERS_MARK = "answers"


def answers_mark(session: Session, cycle: Cycle) -> str:
    """A digest of each request's latest submitted revision in the cycle (one query)."""
    rows = session.execute(
        sa.select(
            col(SubmissionRevision.update_request_id), sa.func.max(col(SubmissionRevision.number))
        )
        .join(UpdateRequest, col(UpdateRequest.id) == col(SubmissionRevision.update_request_id))
        .where(
            col(UpdateRequest.cycle_id) == cycle.id,
            col(SubmissionRevision.kind) == RevisionKind.SUBMITTED,
        )
        .group_by(col(SubmissionRevision.update_request_id))
    ).all()
    marks = ",".join(f"{request_id}:{number}" for request_id, number in sorted(rows))
    return hashlib.sha256(marks.encode("ascii")).hexdigest()[:16]


def submitted_since_compile(session: Session, cycle: Cycle) -> list[str] | None:
    """None when the latest compile read every answer submitted so far (or nothing was
    compiled yet); else the acronyms of the agencies that submitted since, by name (empty
    when they cannot be told apart: the answers changed all the same)."""
    last = session.exec(
        select(AuditEvent)
        .where(AuditEvent.cycle_id == cycle.id, AuditEvent.action == COMPILED)
        .order_by(col(AuditEvent.id).desc())
        .limit(1)
    ).first()
    if last is None or last.id is None:
        return None
    recorded = last.detail.get(ANSWERS_MARK)
    if recorded is not None and recorded == answers_mark(session, cycle):
        return None
    later = sorted(
        set(
            session.exec(
                select(Agency.acronym)
                .join(AuditEvent, col(AuditEvent.agency_id) == col(Agency.id))
                .where(
                    AuditEvent.cycle_id == cycle.id,
                    AuditEvent.action == "request.submitted",
                    col(AuditEvent.id) > last.id,
                )
            ).all()
        )
    )
    if recorded is None and not later:
        return None  # compiled before the digest was recorded, and nothing submitted since
    return later


def _keep_stamps(draft: ObjectiveDraft, stored: ObjectiveDraft | None) -> None:
    """Unchanged entries keep their stored author and time, so a recompile of the same
    answers changes nothing."""
    if stored is None:
        return
    for section in Section:
        previous = {e.comparable(): e for e in stored.entries[section]}
        for entry in draft.entries[section]:
            same = previous.get(entry.comparable())
            if same is not None and entry.origin is not EntryOrigin.COORDINATOR:
                entry.updated_by = same.updated_by
                entry.updated_at = same.updated_at
            elif same is not None:
                entry.updated_by = entry.updated_by or same.updated_by
                entry.updated_at = entry.updated_at or same.updated_at
