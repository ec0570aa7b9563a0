"""The report's milestones as CSV: one row per milestone, for a spreadsheet."""

from __future__ import annotations

import csv
import io

from models.document import MilestoneLine, ObjectiveSection, ReportDocument, Revision

COLUMNS = (
    "pillar",
    "objective",
    "actions",
    "lead_agency",
    "due",
    "start",
    "end",
    "status",
    "delayed_from",
    "history",
    "text",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection);
# agencies type these texts, so such a cell gets a leading apostrophe, shown as text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str | None) -> str:
    if not value:
        return ""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def revision_text(revision: Revision) -> str:
    """``2022: Quarter 3 2021 → Quarter 2 2022 (COVID-19)``; an undated side reads "undated"."""
    text = f"{revision.year}: {revision.previous or 'undated'} → {revision.new or 'undated'}"
    return f"{text} ({revision.reason})" if revision.reason else text


def milestone_row(
    pillar: str, objective: ObjectiveSection, milestone: MilestoneLine
) -> dict[str, str]:
    return {
        "pillar": pillar,
        "objective": objective.title,
        "actions": "; ".join(action.number for action in objective.actions),
        "lead_agency": milestone.lead or "",
        "due": milestone.due or "",
        "start": milestone.start.isoformat() if milestone.start else "",
        "end": milestone.end.isoformat() if milestone.end else "",
        "status": milestone.status,
        "delayed_from": milestone.delayed_from or "",
        "history": "; ".join(revision_text(revision) for revision in milestone.history),
        "text": milestone.text,
    }


def render_csv(doc: ReportDocument) -> bytes:
    """UTF-8 CSV (no BOM), header row first, rows in the report's order."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for pillar in doc.pillars:
        for objective in pillar.objectives:
            for milestone in objective.milestones:
                row = milestone_row(pillar.name, objective, milestone)
                writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue().encode("utf-8")
