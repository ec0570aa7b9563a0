"""A redline between two reports (or two texts): what was deleted and inserted, word by word,
as HTML with ``<del>`` and ``<ins>``. Every piece of text is escaped here; the result is
``Markup`` so a template includes it as it is.

Two passes keep it fast on a large plan: lines are matched first, and only the lines that
changed are compared word by word.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from models.document import ReportDocument
from models.render import render

_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class Line:
    kind: str  # "same", "changed", "added", "removed", "gap"
    html: Markup


@dataclass(frozen=True)
class Redline:
    lines: tuple[Line, ...]
    inserted_words: int
    deleted_words: int

    @property
    def changed(self) -> bool:
        return bool(self.inserted_words or self.deleted_words)

    def html(self) -> Markup:
        return Markup("\n").join(
            Markup('<div class="rl rl-{}">{}</div>').format(
                line.kind, line.html or Markup("&nbsp;")
            )
            for line in self.lines
        )


def report_text(doc: ReportDocument) -> str:
    """The report as the published text reads: what a redline compares."""
    return render(doc, "txt").decode("utf-8")


def redline_documents(
    old: ReportDocument, new: ReportDocument, *, context: int | None = 2
) -> Redline:
    return redline_texts(report_text(old), report_text(new), context=context)


def redline_texts(old: str, new: str, *, context: int | None = 2) -> Redline:
    """``context``: unchanged lines kept around each change (None keeps every line)."""
    old_lines = old.splitlines()
    new_lines = new.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    lines: list[Line] = []
    inserted = deleted = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            lines.extend(Line("same", escape(text)) for text in old_lines[i1:i2])
            continue
        for before, after in _aligned(old_lines[i1:i2], new_lines[j1:j2]):
            if before is None and after is not None:
                inserted += _words(after)
                lines.append(Line("added", Markup("<ins>{}</ins>").format(after)))
            elif after is None and before is not None:
                deleted += _words(before)
                lines.append(Line("removed", Markup("<del>{}</del>").format(before)))
            elif before is not None and after is not None:
                html, plus, minus = _word_diff(before, after)
                inserted += plus
                deleted += minus
                lines.append(Line("changed", html))
    if context is not None:
        lines = list(_with_context(lines, context))
    return Redline(tuple(lines), inserted, deleted)


# Two lines are compared word by word when at least half their words match; otherwise one
# is deleted and the other inserted whole (pairing unrelated lines makes an unreadable mix).
_SIMILAR = 0.5
# Beyond this many line pairs in one changed block, its lines are not paired at all.
_MAX_PAIRS = 40_000


def _aligned(olds: Sequence[str], news: Sequence[str]) -> Iterator[tuple[str | None, str | None]]:
    """The lines of a changed block in order, each old line paired with the most similar new
    line (as ``difflib.Differ`` does), or alone when none is similar enough."""
    if not olds or not news or len(olds) * len(news) > _MAX_PAIRS:
        yield from ((before, None) for before in olds)
        yield from ((None, after) for after in news)
        return
    best, at = _SIMILAR - 1e-9, None
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    old_words = [line.split() for line in olds]
    for j, after in enumerate(news):
        matcher.set_seq2(after.split())  # the second sequence is the one the matcher indexes
        for i, words in enumerate(old_words):
            matcher.set_seq1(words)
            if (
                matcher.real_quick_ratio() > best
                and matcher.quick_ratio() > best
                and (ratio := matcher.ratio()) > best
            ):
                best, at = ratio, (i, j)
    if at is None:
        yield from ((before, None) for before in olds)
        yield from ((None, after) for after in news)
        return
    i, j = at
    yield from _aligned(olds[:i], news[:j])
    yield olds[i], news[j]
    yield from _aligned(olds[i + 1 :], news[j + 1 :])


def _words(text: str) -> int:
    return len(text.split())


def _word_diff(before: str, after: str) -> tuple[Markup, int, int]:
    old = _TOKENS.findall(before)
    new = _TOKENS.findall(after)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    parts: list[Markup] = []
    inserted = deleted = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        removed = "".join(old[i1:i2])
        added = "".join(new[j1:j2])
        if tag == "equal":
            parts.append(escape(removed))
            continue
        if removed:
            deleted += _words(removed)
            parts.append(Markup("<del>{}</del>").format(removed))
        if added:
            inserted += _words(added)
            parts.append(Markup("<ins>{}</ins>").format(added))
    return Markup("").join(parts), inserted, deleted


def _with_context(lines: Sequence[Line], context: int) -> Iterator[Line]:
    keep = [False] * len(lines)
    for index, line in enumerate(lines):
        if line.kind != "same":
            for near in range(max(0, index - context), min(len(lines), index + context + 1)):
                keep[near] = True
    skipped = 0
    for index, line in enumerate(lines):
        if keep[index]:
            if skipped:
                yield Line("gap", Markup("… {} unchanged line{} …").format(skipped, _s(skipped)))
                skipped = 0
            yield line
        else:
            skipped += 1
    if skipped and any(keep):
        yield Line("gap", Markup("… {} unchanged line{} …").format(skipped, _s(skipped)))


def _s(count: int) -> str:
    return "" if count == 1 else "s"
