"""The coordinator's edits to the working draft (edit an entry's text, move it, remove it)
and replaying recorded edits onto a rebuilt draft.

Separate because an edit is both an operation of its own (recorded, written, snapshotted)
and a step of every compile (``apply_edit`` replays the recorded ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models import audit
from models.drafts.storage import annual_report, write_drafts
from models.drafts.versioning import latest_version, lock_cycle, snapshot
from models.drafts.working import (
    TEXT_SECTIONS,
    DraftError,
    ObjectiveDraft,
    load_drafts,
)
from models.tables import (
    AnnualReport,
    AuditEvent,
    Cycle,
    EntryOrigin,
    ObjectiveReport,
    ReportEntry,
    ReportVersion,
    Section,
)

EDITED = "entry.edited"
MOVED = "entry.moved"
REMOVED = "entry.removed"
EDIT_ACTIONS = (EDITED, MOVED, REMOVED)


MAX_ENTRY_TEXT = 5000


# --- coordinator edits -------------------------------------------------------------------------


def apply_edit(draft: ObjectiveDraft, detail: Mapping[str, Any], actor: str, now: datetime) -> bool:
    """Apply one recorded edit to a draft; False when its entry is no longer there."""
    identity = detail.get("entry")
    if not isinstance(identity, list) or len(identity) != 4:
        return False
    entry = draft.find(identity)
    if entry is None:
        return False
    op = detail.get("op")
    entries = draft.entries[entry.section]
    if op == "edit":
        entry.text = str(detail["new_text"])
        entry.origin = EntryOrigin.COORDINATOR
        entry.not_updated = False
    elif op == "remove":
        entries.remove(entry)
        return True
    elif op == "move":
        direction = detail.get("direction")
        index = entries.index(entry)
        if direction == "up" and index > 0:
            entries[index - 1], entries[index] = entries[index], entries[index - 1]
        elif direction == "down" and index < len(entries) - 1:
            entries[index + 1], entries[index] = entries[index], entries[index + 1]
        elif direction in ("achievement", "further_work"):
            target = Section(str(direction))
            if target is entry.section:
                return True
            entries.remove(entry)
            entry.section = target
            draft.entries[target].append(entry)
        else:
            return True
    else:
        return False
    entry.updated_by = actor
    entry.updated_at = now
    return True


def recorded_edits(session: Session, cycle_id: int) -> list[AuditEvent]:
    return list(
        session.exec(
            select(AuditEvent)
            .where(AuditEvent.cycle_id == cycle_id, col(AuditEvent.action).in_(EDIT_ACTIONS))
            .order_by(col(AuditEvent.id))
        )
    )


MILESTONE_TEXT = (
    "milestones take their text and order from the plan; edit the achievements and areas for "
    "further work"
)


def entry_in_draft(session: Session, cycle: Cycle, entry_id: int) -> ReportEntry:
    """An entry of the cycle year's working draft; DraftError when it is not one."""
    return _entry(session, cycle, entry_id).entry


@dataclass(frozen=True)
class EntryRef:
    entry: ReportEntry
    report: ObjectiveReport


def _entry(session: Session, cycle: Cycle, entry_id: int) -> EntryRef:
    row = session.exec(
        select(ReportEntry, ObjectiveReport, AnnualReport)
        .join(ObjectiveReport, col(ObjectiveReport.id) == ReportEntry.objective_report_id)
        .join(AnnualReport, col(AnnualReport.id) == ObjectiveReport.annual_report_id)
        .where(ReportEntry.id == entry_id)
    ).first()
    if row is None or row[2].plan_id != cycle.plan_id or row[2].year != cycle.year:
        raise DraftError(f"entry {entry_id} is not in the {cycle.year} draft")
    return EntryRef(row[0], row[1])


def _edit(
    session: Session,
    cycle: Cycle,
    entry_id: int,
    detail: dict[str, Any],
    action: str,
    now: datetime,
    actor: str,
) -> ReportVersion:
    assert cycle.id is not None
    lock_cycle(session, cycle)
    ref = _entry(session, cycle, entry_id)
    entry = ref.entry
    if entry.section not in TEXT_SECTIONS:
        raise DraftError(MILESTONE_TEXT)
    annual = annual_report(session, cycle, now)
    assert annual.id is not None
    # The draft is read once: the edited objective's is a copy, the others are the stored
    # ones themselves (unchanged, so not written).
    stored = load_drafts(session, annual.id)
    drafts = dict(stored)
    draft = drafts[ref.report.objective_id] = deepcopy(stored[ref.report.objective_id])
    detail = {
        **detail,
        "objective_id": ref.report.objective_id,
        "entry": [entry.section.value, entry.agency_id, entry.milestone_id, entry.text],
    }
    if not apply_edit(draft, detail, actor, now):
        raise DraftError(f"entry {entry_id} could not be changed")
    audit.record(
        session,
        actor=actor,
        action=action,
        at=now,
        cycle_id=cycle.id,
        agency_id=entry.agency_id,
        subject=f"entry:{entry_id}",
        detail=detail,
    )
    write_drafts(session, annual, drafts, now, actor, stored=stored)
    version, _created = snapshot(session, cycle, annual, now, actor)
    return version


def edit_entry(
    session: Session, cycle: Cycle, entry_id: int, text: str, now: datetime, actor: str
) -> ReportVersion:
    """Replace an achievement's or further work's text (attributed to ``actor``)."""
    text = text.strip()
    if not text:
        raise DraftError("the entry's text is empty: remove the entry instead")
    if len(text) > MAX_ENTRY_TEXT:
        raise DraftError(f"the entry's text is longer than {MAX_ENTRY_TEXT} characters")
    current = _entry(session, cycle, entry_id).entry
    if current.text == text:
        latest = latest_version(session, cycle)
        if latest is not None:
            return latest
    return _edit(
        session,
        cycle,
        entry_id,
        {"op": "edit", "previous_text": current.text, "new_text": text},
        EDITED,
        now,
        actor,
    )


MOVES = ("up", "down", "achievement", "further_work")


def move_entry(
    session: Session, cycle: Cycle, entry_id: int, direction: str, now: datetime, actor: str
) -> ReportVersion:
    """Move an entry up or down its list, or to the other section ("achievement",
    "further_work")."""
    if direction not in MOVES:
        raise DraftError(f"{direction!r} is not a move (one of: {', '.join(MOVES)})")
    return _edit(
        session, cycle, entry_id, {"op": "move", "direction": direction}, MOVED, now, actor
    )


def remove_entry(
    session: Session, cycle: Cycle, entry_id: int, now: datetime, actor: str
) -> ReportVersion:
    return _edit(session, cycle, entry_id, {"op": "remove"}, REMOVED, now, actor)
