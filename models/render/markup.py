"""Small helpers shared by the md, html and docx renderers: escaping, safe URLs, grouping.

Registered as Jinja filters by ``models.render``; the DOCX renderer calls them directly.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from models.document import ActionLine, Block, Style

# Characters that start inline Markdown constructs anywhere in a line (emphasis, code, links,
# GFM strikethrough and tables). The backslash comes first so escapes are not doubled.
_MD_INLINE = re.compile(r"([\\`*_\[\]~|])")
# What a line may start with that turns it into a block construct: ATX headings, bullets,
# setext underlines / thematic breaks, ordered list markers ("1." / "1)").
_MD_LINE_START = re.compile(r"^(#|[-+=])")
_MD_ORDERED = re.compile(r"^(\d{1,9})([.)])")
# Keep a URL as written except for what would end or break a Markdown link destination.
_URL_SAFE = ":/?#[]@!$&'*+,;=%~-._"


def md_escape(text: str) -> str:
    """Text that Markdown shows literally: raw HTML as entities, active characters escaped."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    lines = []
    for line in text.splitlines() or [""]:
        # Leading spaces would make an indented code block; they carry no meaning here.
        line = line.lstrip(" \t")
        line = _MD_LINE_START.sub(r"\\\1", line)
        line = _MD_ORDERED.sub(r"\1\\\2", line)
        lines.append(line)
    return "\n".join(lines)


def http_url(url: str | None) -> str | None:
    """The URL, normalised, if it is an absolute http(s) URL, else None: nothing else
    (``javascript:``, ``mailto:``, relative paths) becomes a link."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    # Spaces, quotes, angle brackets and non-ASCII letters are percent-encoded; what is
    # already encoded stays as it is.
    return quote(url, safe=_URL_SAFE + "()")


def md_url(url: str) -> str:
    """A URL for a Markdown link destination: parentheses, spaces and angle brackets encoded."""
    return quote(url, safe=_URL_SAFE)


def action_number(action: ActionLine) -> str:
    """The action's number as written, with its footnote marker: ``21.``, ``N1*.``."""
    return f"{action.number}{'*' if action.footnoted else ''}."


def action_body(action: ActionLine) -> str:
    """The action's text after its number; an incorporated action says where it went."""
    if action.incorporated_into:
        return (
            f"Action {action.number} has been incorporated into Action "
            f"{action.incorporated_into}. ({action.text})"
        )
    return action.text


def block_groups(blocks: Sequence[Block]) -> list[tuple[Style, list[Block]]]:
    """Consecutive blocks of the same style, so bullets render as one list between paragraphs."""
    return [(style, list(group)) for style, group in itertools.groupby(blocks, lambda b: b.style)]
