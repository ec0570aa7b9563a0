"""Compiling a cycle's answers into the year's report draft, the coordinator's edits to it,
and its numbered versions.

The working draft is the year's ``AnnualReport`` rows (objective reports, entries, links).
Every change to it (a compile, a coordinator's edit) is snapshotted as a new numbered
``ReportVersion`` (never overwritten), so the latest version always shows the working draft
and every version renders in every format from its stored content.

What a compile builds, per objective:

- active agencies: the agencies whose latest *submitted* answer says something about the
  objective (an achievement, further work, a new milestone or progress on one of its
  milestones), in last year's order, new ones after; when nobody answered, last year's line;
- key achievements and areas for further work: each answering agency's own, plus its
  milestones completed this year offered as achievements (the entry keeps the milestone's
  id, so the dashboard marks it and the coordinator can keep, edit or remove it); an agency
  that did not answer for the objective (no submitted answer, or one that says nothing about
  it) keeps last year's entries there, copied with origin ``carried_forward`` and
  ``not_updated`` (rendered visibly marked; the coordinator may remove them);
- upcoming milestones: the objective's open milestones (not completed, not dropped) sorted
  by due period, undated last; a milestone whose lead agency did not answer is marked not
  updated. "(Delayed from …)" comes from each milestone's history (the compiler's
  ``milestone_as_of``: the first baseline, however many times it moved).

Milestones an agency reported as no longer planned are not silently dropped: ``review_notes``
lists them (with the reason) for the coordinator.

Coordinator edits (edit an entry's text, move it up, down or to the other section, remove
it) are audit events (``entry.edited``, ``entry.moved``, ``entry.removed``) naming the entry
by what it is (objective, section, agency, text) rather than by row id. A recompile rebuilds
the draft from the answers and then replays the edits in order: an edit whose entry is still
there (the agency's answer did not change that text) is kept; one whose entry changed is
dropped and listed on the compile's audit event (``stale_edits``), because the agency's new
answer wins. Milestone entries take their text and order from the plan and are not edited
here.
"""

from __future__ import annotations

from models.drafts.building import previous_report
from models.drafts.compiling import (
    COMPILED,
    compile_cycle,
    compile_cycle_result,
    submitted_since_compile,
)
from models.drafts.edits import (
    EDITED,
    MAX_ENTRY_TEXT,
    MILESTONE_TEXT,
    edit_entry,
    entry_in_draft,
    move_entry,
    remove_entry,
)
from models.drafts.notes import review_notes
from models.drafts.versioning import (
    find_version,
    latest_version,
    lock_cycle,
    version_document,
    versions,
)
from models.drafts.working import TEXT_SECTIONS, DraftError

__all__ = [
    "COMPILED",
    "EDITED",
    "MAX_ENTRY_TEXT",
    "MILESTONE_TEXT",
    "TEXT_SECTIONS",
    "DraftError",
    "compile_cycle",
    "compile_cycle_result",
    "edit_entry",
    "entry_in_draft",
    "find_version",
    "latest_version",
    "lock_cycle",
    "move_entry",
    "previous_report",
    "remove_entry",
    "review_notes",
    "submitted_since_compile",
    "version_document",
    "versions",
]
