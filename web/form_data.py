"""Between the HTML form and ``models.answers.Answer``: reading the posted fields, the
per-objective blocks the template renders (with every typed value kept on an error), and what
differs between two versions on a conflict page.

Field names are the ids from ``models.submissions`` (``m-{milestone}-{name}``,
``a|f|n-{objective}-{index}-{name}``), so an error's field id is also the anchor it links to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from difflib import SequenceMatcher
from typing import Any

from models.answers import (
    AchievementAnswer,
    Answer,
    FurtherWorkAnswer,
    MilestoneAnswer,
    MilestoneProgress,
    NewMilestoneAnswer,
)
from models.submissions import (
    ROW_PREFIX,
    FieldError,
    MilestoneView,
    ObjectiveView,
    RequestView,
    milestone_field,
    row_indices,
)

ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "achievements": ("text", "link_title", "link_url"),
    "further_work": ("text",),
    "new_milestones": ("period", "text"),
}
_SECTION_BY_PREFIX = {prefix: section for section, prefix in ROW_PREFIX.items()}
_ROW_NAME = re.compile(r"([afn])-([0-9]{1,9})-([0-9]{1,4})-([a-z_]+)")
_ADD = re.compile(r"add:([afn])-([0-9]{1,9})")
_REMOVE = re.compile(r"remove:([afn])-([0-9]{1,9})-([0-9]{1,4})")


@dataclass
class FormState:
    """What the form holds: the answer as typed, raw text of values that did not convert,
    problems found while reading, and blank rows asked for with "Add another"."""

    answer: Answer
    raw: dict[str, str] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)
    extra_rows: dict[str, int] = field(default_factory=dict)


def _text(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _optional(value: str) -> str | None:
    return value if value.strip() else None


def parse_form(form: Mapping[str, str], view: RequestView) -> FormState:
    """Read the posted fields into an Answer. Blank rows are dropped; nothing typed is."""
    state = FormState(answer=Answer())
    for milestone_id in view.milestones:
        state.answer.milestones.append(_parse_milestone(form, milestone_id, state))
    rows: dict[tuple[str, int, int], dict[str, str]] = {}
    for name in form:
        match = _ROW_NAME.fullmatch(name)
        if match is None:
            continue
        section = _SECTION_BY_PREFIX[match[1]]
        if match[4] not in ROW_FIELDS[section]:
            continue
        rows.setdefault((section, int(match[2]), int(match[3])), {})[match[4]] = _text(form, name)
    order = {objective.id: position for position, objective in enumerate(view.objectives)}
    for (section, objective_id, _index), values in sorted(
        rows.items(), key=lambda item: (order.get(item[0][1], len(order)), item[0][2])
    ):
        if not any(value.strip() for value in values.values()):
            continue
        if section == "achievements":
            state.answer.achievements.append(
                AchievementAnswer(
                    objective_id=objective_id,
                    text=values.get("text", ""),
                    link_title=_optional(values.get("link_title", "")),
                    link_url=_optional(values.get("link_url", "").strip()),
                )
            )
        elif section == "further_work":
            state.answer.further_work.append(
                FurtherWorkAnswer(objective_id=objective_id, text=values.get("text", ""))
            )
        else:
            state.answer.new_milestones.append(
                NewMilestoneAnswer(
                    objective_id=objective_id,
                    period=values.get("period", ""),
                    text=values.get("text", ""),
                )
            )
    return state


def _parse_milestone(
    form: Mapping[str, str], milestone_id: int, state: FormState
) -> MilestoneAnswer:
    def value(name: str) -> str:
        return _text(form, milestone_field(milestone_id, name))

    progress_text = value("progress")
    progress: MilestoneProgress | None = None
    if progress_text:
        try:
            progress = MilestoneProgress(progress_text)
        except ValueError:
            state.errors.append(
                FieldError(milestone_field(milestone_id, "progress"), "Choose one of the options.")
            )
    completed_on: date | None = None
    completed_text = value("completed_on").strip()
    if completed_text:
        try:
            completed_on = date.fromisoformat(completed_text)
        except ValueError:
            field_id = milestone_field(milestone_id, "completed_on")
            # Shown back as typed whatever is chosen; refused only when the date counts: under
            # "completed", or with nothing chosen yet (a draft keeps every field then, and an
            # unreadable date could not be kept). Under another choice a save drops the field
            # (MilestoneAnswer.chosen_only), so it must not block that save.
            state.raw[field_id] = completed_text
            if progress in (None, MilestoneProgress.COMPLETED):
                state.errors.append(
                    FieldError(field_id, "Enter the date as year-month-day, such as 2022-06-30.")
                )
    return MilestoneAnswer(
        milestone_id=milestone_id,
        progress=progress,
        completed_on=completed_on,
        achievement=_optional(value("achievement")),
        new_period=_optional(value("new_period")),
        reason=_optional(value("reason")),
    )


def apply_row_action(state: FormState, action: str) -> bool:
    """Handle an "Add another" or "Remove" button (the no-JavaScript way to change rows).
    True when ``action`` was one of them."""
    if match := _ADD.fullmatch(action):
        key = f"{match[1]}-{match[2]}"
        state.extra_rows[key] = state.extra_rows.get(key, 0) + 1
        return True
    if match := _REMOVE.fullmatch(action):
        section = _SECTION_BY_PREFIX[match[1]]
        objective_id, index = int(match[2]), int(match[3])
        items: list[Any] = getattr(state.answer, section)
        for position, (item, item_index) in enumerate(zip(items, row_indices(items), strict=True)):
            if item.objective_id == objective_id and item_index == index:
                del items[position]
                break
        return True
    return False


# --- what the template renders ------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    index: int
    values: dict[str, str]


@dataclass(frozen=True)
class MilestoneBlock:
    milestone: MilestoneView
    answer: MilestoneAnswer


@dataclass(frozen=True)
class ObjectiveBlock:
    objective: ObjectiveView
    milestones: list[MilestoneBlock]
    achievements: list[Row]
    further_work: list[Row]
    new_milestones: list[Row]


def blocks(view: RequestView, state: FormState) -> list[ObjectiveBlock]:
    answers = {m.milestone_id: m for m in state.answer.milestones}
    result = []
    for objective in view.objectives:
        sections: dict[str, list[Row]] = {}
        for section, names in ROW_FIELDS.items():
            items: Sequence[AchievementAnswer | FurtherWorkAnswer | NewMilestoneAnswer] = getattr(
                state.answer, section
            )
            rows = [
                Row(index, {name: getattr(item, name) or "" for name in names})
                for item, index in zip(items, row_indices(items), strict=True)
                if item.objective_id == objective.id
            ]
            wanted = state.extra_rows.get(f"{ROW_PREFIX[section]}-{objective.id}", 0)
            blanks = max(wanted, 0 if rows else 1)
            first_blank = len(rows)
            rows.extend(
                Row(first_blank + extra, dict.fromkeys(names, "")) for extra in range(blanks)
            )
            sections[section] = rows
        result.append(
            ObjectiveBlock(
                objective=objective,
                milestones=[
                    MilestoneBlock(m, answers.get(m.id) or MilestoneAnswer(milestone_id=m.id))
                    for m in objective.milestones
                ],
                achievements=sections["achievements"],
                further_work=sections["further_work"],
                new_milestones=sections["new_milestones"],
            )
        )
    return result


# --- a conflict: what differs between the two versions ------------------------------------


@dataclass(frozen=True)
class Differences:
    """What differs between the answer in the form ("your version") and the one saved
    meanwhile, for the conflict page to mark. ``yours``: the form's keys (``m-{milestone}``
    for a milestone, a row's field prefix such as ``a-{objective}-{index}``); ``theirs``: the
    saved answer's (``m-{milestone}``, ``{section}:{position}`` in its list); ``count``: how
    many milestones and entries differ."""

    yours: frozenset[str]
    theirs: frozenset[str]
    count: int


def _same(value: object) -> object:
    # Spacing is not a difference a reader can see.
    return " ".join(value.split()) if isinstance(value, str) else value


def _milestone_key(item: MilestoneAnswer) -> tuple[object, ...]:
    # Compared as saved: the fields of the chosen progress only.
    chosen = item.chosen_only()
    return tuple(
        _same(getattr(chosen, name))
        for name in ("progress", "completed_on", "achievement", "new_period", "reason")
    )


def differences(yours: Answer, theirs: Answer) -> Differences:
    mine: set[str] = set()
    saved: set[str] = set()
    count = 0
    unanswered = _milestone_key(MilestoneAnswer(milestone_id=0))
    my_milestones = {m.milestone_id: _milestone_key(m) for m in yours.milestones}
    their_milestones = {m.milestone_id: _milestone_key(m) for m in theirs.milestones}
    for milestone_id in my_milestones.keys() | their_milestones.keys():
        if my_milestones.get(milestone_id, unanswered) != their_milestones.get(
            milestone_id, unanswered
        ):
            key = f"m-{milestone_id}"
            mine.add(key)
            saved.add(key)
            count += 1
    for section, names in ROW_FIELDS.items():
        my_rows = _rows_by_objective(yours, section, names, in_form=True)
        their_rows = _rows_by_objective(theirs, section, names, in_form=False)
        for objective_id in my_rows.keys() | their_rows.keys():
            a, b = my_rows.get(objective_id, []), their_rows.get(objective_id, [])
            # Entries are matched in order, so one added at the top marks that one, not every
            # entry after it.
            matcher = SequenceMatcher(None, [v for v, _ in a], [v for v, _ in b], autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag == "equal":
                    continue
                mine.update(key for _, key in a[i1:i2])
                saved.update(key for _, key in b[j1:j2])
                count += max(i2 - i1, j2 - j1)
    return Differences(frozenset(mine), frozenset(saved), count)


def _rows_by_objective(
    answer: Answer, section: str, names: tuple[str, ...], *, in_form: bool
) -> dict[int, list[tuple[tuple[object, ...], str]]]:
    """Each objective's entries of one section, in order: (the values compared, the key:
    the row's field prefix in the form, else the entry's position in the answer's list)."""
    items: Sequence[AchievementAnswer | FurtherWorkAnswer | NewMilestoneAnswer] = getattr(
        answer, section
    )
    rows: dict[int, list[tuple[tuple[object, ...], str]]] = {}
    for position, (item, index) in enumerate(zip(items, row_indices(items), strict=True)):
        values = tuple(_same(getattr(item, name)) for name in names)
        key = (
            f"{ROW_PREFIX[section]}-{item.objective_id}-{index}"
            if in_form
            else f"{section}:{position}"
        )
        rows.setdefault(item.objective_id, []).append((values, key))
    return rows
