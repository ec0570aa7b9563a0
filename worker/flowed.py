"""Plain text as ``format=flowed`` (RFC 3676), for the text/plain part of every mail.

The templates write a paragraph as one line (the mail client should wrap it to its window, not
the template to a guess). Sent as it is, a reader without HTML sees 160-character lines, and
some clients wrap them badly or not at all. Flowed text has it both ways: lines of at most
72 characters for any reader, each soft break marked by the space it ends with, so a client
that knows the format joins the paragraph again and wraps it to the window.

The rules (RFC 3676, section 4): a line that ends with a space is followed by more of the same
paragraph; a line that does not is a real line end, so the text's own line ends must not
follow a space (trailing spaces are dropped); and a line that starts with a space, ">" or
"From " gets one space in front ("space-stuffing"), which the reader removes. Words longer
than a line (links) are never broken: a link must stay one piece to be clicked.
"""

from __future__ import annotations

import re

WIDTH = 72

# A run of anything but spaces, with the spaces after it; or spaces at the start of a line.
_CHUNKS = re.compile(r"[^ ]+ *| +")


def flow(text: str, width: int = WIDTH) -> str:
    """``text`` (lines separated by "\\n") as flowed text; "\\n" between its lines."""
    lines: list[str] = []
    for line in text.split("\n"):
        for physical in _wrap(line.rstrip(" "), width):
            lines.append(" " + physical if _needs_stuffing(physical) else physical)
    return "\n".join(lines)


def _wrap(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    wrapped: list[str] = []
    current = ""
    for chunk in _CHUNKS.findall(line):
        # Every chunk but the line's last ends with its spaces, so a break after one leaves
        # the line ending in a space: the soft break.
        # ("-- " alone is a signature separator to a reader, never a soft break.)
        if current and current != "-- " and len(current) + len(chunk.rstrip(" ")) > width:
            wrapped.append(current)
            current = chunk
        else:
            current += chunk
    wrapped.append(current)
    return wrapped


def _needs_stuffing(line: str) -> bool:
    return line.startswith((" ", ">", "From "))
