"""The bytes put on the wire: the shortcut for plain headers changes nothing compat32 writes."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

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
