"""Read the published text format of an annual implementation report into a ReportDocument.

The format, as the New Zealand Plan of Action's 2021 report is published:

    Title line
    introduction paragraphs and "- " bullets
    Pillar                              (a short line without final punctuation)
    Objective title                     (the line before "Actions")
    Actions
    1. Action text                      ("N1*." for new actions; a "*…" footnote line may follow)
    Annual implementation report 2021   (case varies)
    Active agencies – Name (ACRONYM), Name (ACRONYM)
    optional intro paragraph
    Key achievements / Areas for further work / Upcoming milestones
    - bullets; a bullet may be followed by link lines "Title(external link) — Site"
    - PERIOD – milestone text (Delayed from PERIOD).
    Last updated: 19 January 2022

Quirks it accepts: "None identified at this stage." stands for an empty list; dated milestone
bullets under "Areas for further work" (the first objective of 2021) are milestones; bullets
written "•" or "*"; Windows line endings; site navigation text before the title (the title is
the first line ending "implementation report(s)"). What it cannot read is an ImportFormatError
naming the line number and the text; it never guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from models.document import (
    NONE_IDENTIFIED,
    ActionLine,
    ActiveAgency,
    Block,
    Link,
    MilestoneLine,
    ObjectiveSection,
    PillarSection,
    ReportDocument,
)
from models.periods import parse_period


class ImportFormatError(ValueError):
    """The document cannot be read; ``line`` is 1-based (0 when it is about the whole file)."""

    def __init__(self, message: str, line: int = 0, text: str | None = None) -> None:
        self.message = message
        self.line = line
        self.text = text
        where = f"line {line}: " if line else ""
        shown = f": {text!r}" if text is not None else ""
        super().__init__(f"{where}{message}{shown}")


@dataclass(frozen=True)
class _Line:
    number: int
    text: str


_BULLET = re.compile(r"^(?:[-•*·▪–]\s+)(?P<text>.+)$")
_ACTION = re.compile(r"^(?P<number>N?\d+)(?P<star>\*?)\.\s*(?P<text>.*)$")
_INCORPORATED = re.compile(
    r"^Action\s+(?P<number>\S+)\s+has been incorporated into Action\s+(?P<into>[^.\s]+)\.\s*"
    r"\((?P<text>.*)\)$",
    re.IGNORECASE,
)
_REPORT_HEADING = re.compile(r"^annual implementation report\s+(?P<year>\d{4})$", re.IGNORECASE)
_ACTIVE = re.compile(r"^active agencies\s*[–—:-]\s*(?P<list>.+)$", re.IGNORECASE)
_AGENCY = re.compile(r"\s*(?P<name>[^()]+?)\s*\((?P<acronym>[A-Za-z][A-Za-z&.]*)\)\s*(?:,|$)")
_LINK = re.compile(
    r"^(?P<title>.+?)\s?\(external link\)"
    r"(?:\s+[—–-]\s+(?P<site>[^<]+?))?"
    r"(?:\s*<(?P<url>[^>\s]+)>)?$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"\s+[–—-]\s+")
_DELAYED = re.compile(r"^(?P<text>.*?)\s*\(Delayed from (?P<period>[^()]+)\)(?P<stop>\.?)$")
_LAST_UPDATED = re.compile(r"^last updated:?\s*(?P<date>.+)$", re.IGNORECASE)
_TITLE = re.compile(r"implementation reports?$", re.IGNORECASE)

_SECTIONS = {
    "key achievements": "achievements",
    "areas for further work": "further_work",
    "upcoming milestones": "milestones",
}


def _clean_lines(text: str) -> list[_Line]:
    """Non-blank lines with their 1-based numbers; line endings and spacing normalised."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    lines = []
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = " ".join(raw.replace("\u00a0", " ").split())
        if stripped:
            lines.append(_Line(number, stripped))
    return lines


def _bullet(line: _Line) -> str | None:
    match = _BULLET.match(line.text)
    return match["text"] if match else None


def _link(line: _Line) -> Link | None:
    match = _LINK.match(line.text)
    if not match:
        return None
    url = match["url"]
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise ImportFormatError("a link must be http(s)", line.number, line.text)
    return Link(title=match["title"].strip(), site=match["site"], url=url)


def _section_name(line: _Line) -> str | None:
    return _SECTIONS.get(line.text.rstrip(":").strip().lower())


def _is_structural(line: _Line) -> bool:
    lowered = line.text.lower()
    return (
        lowered == "actions"
        or _section_name(line) is not None
        or _REPORT_HEADING.match(line.text) is not None
        or _ACTIVE.match(line.text) is not None
    )


def _looks_like_heading(line: _Line) -> bool:
    """A pillar heading: a short line, not a bullet or link, without final punctuation."""
    return (
        _bullet(line) is None
        and _link(line) is None
        and not _is_structural(line)
        and len(line.text) <= 80
        and line.text[-1] not in ".:;,!?)"
    )


def split_milestone(text: str) -> tuple[str | None, str]:
    """("Quarter 2 2022", "text") from "Quarter 2 2022 – text"; (None, text) when no period.

    An unreadable short prefix ("Ongoing – …", "TBC – …") is kept as the due text of an
    undated milestone rather than guessed at."""
    for match in _SEPARATOR.finditer(text):
        head = text[: match.start()]
        try:
            parse_period(head)
        except ValueError:
            continue
        return head, text[match.end() :]
    first = _SEPARATOR.search(text)
    if first and len(text[: first.start()].split()) <= 3:
        return text[: first.start()], text[first.end() :]
    return None, text


def is_dated_milestone(text: str) -> bool:
    for match in _SEPARATOR.finditer(text):
        try:
            parse_period(text[: match.start()])
        except ValueError:
            continue
        return True
    return False


def _milestone(text: str, line: _Line) -> MilestoneLine:
    due, rest = split_milestone(text)
    delayed_from = None
    if match := _DELAYED.match(rest):
        rest = match["text"] + match["stop"]
        delayed_from = match["period"].strip()
    if not rest:
        raise ImportFormatError("a milestone needs a text after its period", line.number, text)
    start = end = None
    if due is not None:
        try:
            period = parse_period(due)
            start, end = period.start, period.end
        except ValueError:
            pass  # kept undated, never guessed
    return MilestoneLine(text=rest, due=due, start=start, end=end, delayed_from=delayed_from)


def _active_agencies(line: _Line) -> list[ActiveAgency]:
    match = _ACTIVE.match(line.text)
    assert match is not None
    listed = match["list"]
    agencies = []
    position = 0
    for found in _AGENCY.finditer(listed):
        if found.start() != position:
            break
        agencies.append(ActiveAgency(name=found["name"].strip(), acronym=found["acronym"]))
        position = found.end()
    if not agencies or listed[position:].strip():
        raise ImportFormatError(
            "active agencies must read 'Full Name (ACRONYM), Full Name (ACRONYM)'",
            line.number,
            line.text,
        )
    return agencies


def _parse_actions(lines: list[_Line], objective: ObjectiveSection) -> int:
    """Read the action lines after "Actions"; return how many lines were used."""
    used = 0
    for line in lines:
        match = _ACTION.match(line.text)
        if match:
            text = match["text"]
            into = None
            if incorporated := _INCORPORATED.match(text):
                if incorporated["number"] != match["number"]:
                    raise ImportFormatError(
                        "the incorporated action's number does not match",
                        line.number,
                        line.text,
                    )
                into, text = incorporated["into"], incorporated["text"]
            if not text:
                raise ImportFormatError("an action needs a text", line.number, line.text)
            objective.actions.append(
                ActionLine(
                    number=match["number"],
                    text=text,
                    footnoted=bool(match["star"]),
                    incorporated_into=into,
                )
            )
        elif line.text.startswith("*") and _bullet(line) is None and objective.actions:
            objective.actions_footnote = line.text
        else:
            break
        used += 1
    if not objective.actions:
        first = lines[0] if lines else None
        raise ImportFormatError(
            "expected numbered actions ('1. …') after 'Actions'",
            first.number if first else 0,
            first.text if first else None,
        )
    return used


def _parse_report(lines: list[_Line], objective: ObjectiveSection) -> None:
    """The year's report of one objective: heading, active agencies, sections."""
    heading = lines[0]
    match = _REPORT_HEADING.match(heading.text)
    if not match:
        raise ImportFormatError(
            "expected 'Annual implementation report YEAR' after the actions",
            heading.number,
            heading.text,
        )
    objective.year = int(match["year"])
    if len(lines) < 2 or not _ACTIVE.match(lines[1].text):
        line = lines[1] if len(lines) > 1 else heading
        raise ImportFormatError("expected 'Active agencies – …'", line.number, line.text)
    objective.active_agencies = _active_agencies(lines[1])

    section: str | None = None
    intro: list[str] = []
    # The last item a link line attaches to.
    last: Block | MilestoneLine | None = None
    for line in lines[2:]:
        name = _section_name(line)
        if name is not None:
            section, last = name, None
            continue
        link = _link(line)
        if link is not None:
            if last is None:
                raise ImportFormatError(
                    "a link line must follow the bullet it belongs to", line.number, line.text
                )
            last.links.append(link)
            continue
        if section is None:
            if _bullet(line) is not None:
                raise ImportFormatError(
                    "a bullet before any section heading", line.number, line.text
                )
            intro.append(line.text)
            continue
        bullet = _bullet(line)
        if bullet is not None and bullet.rstrip(".").lower() == NONE_IDENTIFIED.rstrip(".").lower():
            last = None
            continue
        if section == "milestones" or (
            section == "further_work" and bullet is not None and is_dated_milestone(bullet)
        ):
            if bullet is None:
                raise ImportFormatError(
                    "expected a milestone bullet ('- PERIOD – text')", line.number, line.text
                )
            milestone = _milestone(bullet, line)
            objective.milestones.append(milestone)
            last = milestone
            continue
        block = (
            Block(text=bullet, style="bullet")
            if bullet is not None
            else Block(text=line.text, style="paragraph")
        )
        target = objective.achievements if section == "achievements" else objective.further_work
        target.append(block)
        last = block
    objective.intro = "\n".join(intro) or None


def _parse_intro(lines: list[_Line]) -> list[Block]:
    blocks: list[Block] = []
    for line in lines:
        link = _link(line)
        if link is not None and blocks:
            blocks[-1].links.append(link)
            continue
        bullet = _bullet(line)
        blocks.append(
            Block(text=bullet, style="bullet")
            if bullet is not None
            else Block(text=line.text, style="paragraph")
        )
    return blocks


def _parse_last_updated(line: _Line) -> date:
    match = _LAST_UPDATED.match(line.text)
    assert match is not None
    text = match["date"].strip().rstrip(".")
    for pattern in ("%d %B %Y", "%d %b %Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ImportFormatError("cannot read the 'Last updated' date", line.number, line.text)


def parse_report(text: str) -> ReportDocument:
    """Read a published report. Raises ImportFormatError naming the line it cannot read."""
    if not text.strip():
        raise ImportFormatError("the document is empty")
    lines = _clean_lines(text)

    start = next((i for i, line in enumerate(lines) if _TITLE.search(line.text)), None)
    if start is None or _REPORT_HEADING.match(lines[start].text):
        start = 0
    lines = lines[start:]
    last_updated = None
    for i, line in enumerate(lines):
        if _LAST_UPDATED.match(line.text):
            last_updated = _parse_last_updated(line)
            lines = lines[:i]  # footer text after it is not part of the report
            break

    actions_at = [i for i, line in enumerate(lines) if line.text.lower() == "actions"]
    if not actions_at:
        raise ImportFormatError(
            "no pillars found: a report has pillars, each with objectives followed by 'Actions'"
        )
    # Where each objective starts (its pillar heading if it has one, else its title).
    starts: list[int] = []
    pillar_at: list[int | None] = []
    for k, i in enumerate(actions_at):
        title_at = i - 1
        if title_at < 1 or title_at <= (actions_at[k - 1] if k else 0):
            line = lines[i]
            raise ImportFormatError("'Actions' without an objective title", line.number, line.text)
        candidate = title_at - 1
        has_pillar = candidate >= 1 and _looks_like_heading(lines[candidate])
        if k == 0 and not has_pillar:
            line = lines[title_at]
            raise ImportFormatError(
                "no pillar heading before the first objective", line.number, line.text
            )
        if k and has_pillar and candidate <= actions_at[k - 1]:
            has_pillar = False
        pillar_at.append(candidate if has_pillar else None)
        starts.append(candidate if has_pillar else title_at)

    doc = ReportDocument(
        title=lines[0].text,
        year=0,
        intro=_parse_intro(lines[1 : starts[0]]),
        last_updated=last_updated,
    )
    years: set[int] = set()
    for k, i in enumerate(actions_at):
        if pillar_at[k] is not None:
            doc.pillars.append(PillarSection(name=lines[starts[k]].text))
        objective = ObjectiveSection(title=lines[i - 1].text)
        end = starts[k + 1] if k + 1 < len(actions_at) else len(lines)
        body = lines[i + 1 : end]
        used = _parse_actions(body, objective)
        rest = body[used:]
        if rest:
            _parse_report(rest, objective)
            assert objective.year is not None
            years.add(objective.year)
        doc.pillars[-1].objectives.append(objective)
    if not years:
        raise ImportFormatError("no 'Annual implementation report YEAR' heading found")
    if len(years) > 1:
        raise ImportFormatError(f"the report covers several years: {sorted(years)}")
    doc.year = years.pop()
    return doc
