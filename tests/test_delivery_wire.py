"""The bytes put on the wire: the shortcut for plain headers changes nothing compat32 writes,
and the bodies (quoted-printable by ``binascii``) are 7-bit, in short lines, and read back as
exactly the text rendered."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.tables import Contact, Notification
from tests.smtp_server import read_flowed
from worker.flowed import WIDTH, flow
from worker.notify import WIRE, build_email

COMPAT32_CRLF = email.policy.compat32.clone(linesep="\r\n")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@pytest.mark.parametrize(
    ("subject", "name"),
    [
        ("Reminder: NZP's 2022 update is due in 7 days", "Sam Tipene"),
        ("Please send MBIE's 2022 progress update by Thursday 30 June 2022, " * 3, ""),
        ("Te Manatū Hauora: 2 milestones slipped", "Aroha Ngāta"),
        ("two  spaces and a trailing one ", "O'Brien, Pat"),
        ("x" * 70, "a" * 60),
    ],
)
def test_the_wire_policy_writes_what_compat32_writes(subject: str, name: str) -> None:
    notification = Notification(
        id=42, idempotency_key="k", kind="reminder", recipient="a@example.org", cycle_id=3
    )
    contact = Contact(agency_id=1, email="sam.tipene@police.example.govt.nz", name=name)
    mail = build_email(
        notification,
        contact,
        Rendered(subject=subject, text="Kia ora,\nline\n" * 50, html="<p>Kia ora</p>\n" * 50),
        from_header="Plan of Action <reportcycle@example.govt.nz>",
        domain="reports.example.govt.nz",
        date=datetime(2022, 6, 23, 10, 0, tzinfo=UTC),
    )

    assert mail.as_bytes(policy=WIRE) == mail.as_bytes(policy=COMPAT32_CRLF)


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "two  spaces",
        " leading",
        "trailing ",
        "a\ttab",
        "x" * 66,
        "x" * 67,
        "word " * 20,
        "word " * 20 + "end",
        "Ngāti",
        "=?utf-8?q?Ng=C4=81ti?=",
    ],
)
def test_a_header_folds_as_compat32_folds_it(value: str) -> None:
    assert WIRE.fold_binary("Subject", value) == COMPAT32_CRLF.fold_binary("Subject", value)


def _parts(raw: bytes) -> list[str]:
    """The decoded parts; the plain one (format=flowed) read as a client that knows it."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain" and plain.get_param("format") == "flowed"
    return [
        read_flowed(plain.get_content().replace("\r\n", "\n")),
        html.get_content().replace("\r\n", "\n"),
    ]


def _without_trailing_spaces(text: str) -> str:
    # Flowed text cannot end a line with a space (that marks a soft break): they are dropped.
    return "\n".join(line.rstrip(" ") for line in text.split("\n"))


# Any text a template could give: Unicode (macrons, emoji), "=", dots and "From " at line
# starts, trailing spaces and tabs, long lines, blank lines; no lone carriage returns.
_BODIES = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r"),
    max_size=400,
) | st.sampled_from(
    ["Kia ora Āroha,\n\n.one\nFrom here\n", "trailing \t\nspace \n", "=" * 90, "x" * 300]
)


@settings(max_examples=200, deadline=None)
@given(text=_BODIES, html=_BODIES)
def test_a_body_reads_back_as_the_text_rendered(text: str, html: str) -> None:
    notification = Notification(
        id=7, idempotency_key="k", kind="reminder", recipient="a@example.org", cycle_id=1
    )
    contact = Contact(agency_id=1, email="pat@example.org", name="Pat")
    raw = build_email(
        notification,
        contact,
        Rendered(subject="Reminder", text=text, html=html),
        from_header="Plan of Action <reportcycle@example.govt.nz>",
        domain="reports.example.govt.nz",
        date=datetime(2022, 6, 23, 10, 0, tzinfo=UTC),
    ).as_bytes(policy=WIRE)

    assert raw.isascii(), "7-bit: any server takes it"
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert _parts(raw) == [_without_trailing_spaces(text), html.replace("\r\n", "\n")]


# Lines as templates write them: words, runs of spaces, tabs, long links, quote marks, "From "
# and "-- " where a reader gives them meaning.
_LINES = st.lists(
    st.one_of(
        st.text(alphabet="ab ā\t>-", max_size=12),
        st.sampled_from(["From ", "-- ", ">", " ", "https://example.org/" + "x" * 80]),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINES, min_size=1, max_size=5))
def test_flowed_text_reads_back_as_written_in_short_lines(lines: list[str]) -> None:
    text = "\n".join(lines)
    flowed = flow(text)
    assert read_flowed(flowed) == _without_trailing_spaces(text)
    for line in flowed.split("\n"):
        body = line[1:] if line.startswith(" ") else line
        # Longer than the width only where one word is (a link is never broken), or a
        # "-- " and a word (that alone on a line would read as a signature separator).
        one_word = body.removeprefix("-- ").rstrip(" ")
        assert len(body) <= WIDTH or " " not in one_word, line


def test_a_long_paragraph_is_wrapped_and_a_link_left_whole() -> None:
    link = "https://reports.example.govt.nz/r/" + "A" * 43
    text = "The milestone below reaches the end of its due period soon. " * 3 + f"Link: {link}"
    flowed = flow(text)
    lines = flowed.split("\n")
    assert len(lines) > 3 and all(line.endswith(" ") for line in lines[:-1])
    assert link in lines and lines[-1] == link
    assert read_flowed(flowed) == text
