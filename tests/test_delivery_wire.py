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
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return [part.get_content().replace("\r\n", "\n") for part in parsed.iter_parts()]


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
    assert _parts(raw) == [text.replace("\r\n", "\n"), html.replace("\r\n", "\n")]
