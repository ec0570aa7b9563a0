"""Message templates: every kind by naming convention, HTML escaped, the delivery-failure
notice as delivery claims it."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session

from models.cycles import open_cycle
from models.messages import KINDS, render_message
from models.notifications import claim_notification
from models.tables import Notification
from templates import TEMPLATES_DIR
from tests.cycle_support import build_plan, notifications, nz

BASE = "https://reports.example.govt.nz"


def test_every_kind_has_a_subject_a_text_and_an_html_template() -> None:
    for kind in KINDS:
        for part in ("subject.txt", "body.txt", "body.html"):
            assert (TEMPLATES_DIR / "emails" / f"{kind}-{part}").is_file(), f"{kind}-{part}"


def test_an_unknown_kind_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="no templates for the notification kind 'nonsense'"):
        render_message(
            session,
            Notification(idempotency_key="x", kind="nonsense", recipient="x"),
            nz("2022-02-01"),
            base_url=BASE,
        )


def test_the_delivery_failure_notice_tells_the_coordinator_what_to_do(session: Session) -> None:
    built = build_plan(session)
    opened = open_cycle(session, built.plan, 2022, date(2022, 12, 2), nz("2022-02-01"), "test")
    failed = next(
        n
        for n in notifications(session, opened.notification_ids)
        if n.recipient == "bob@police.govt.nz"
    )
    carol = built.contacts["carol"]
    # The context delivery writes (models/delivery.py, _tell_coordinators).
    notice = claim_notification(
        session,
        kind="delivery_failed",
        key=f"delivery_failed:{failed.id}:{carol.id}:email",
        contact=carol,
        channel="email",
        context={
            "failed_notification_id": failed.id,
            "failed_kind": failed.kind,
            "failed_recipient": failed.recipient,
            "error": "550 5.1.1 <bob@police.govt.nz>: mailbox unavailable",
            "agency_id": failed.agency_id,
            "cycle_id": failed.cycle_id,
        },
        now=nz("2022-02-01"),
        cycle_id=failed.cycle_id,
        agency_id=failed.agency_id,
    )
    assert notice is not None
    message = render_message(session, notice, nz("2022-02-01"), base_url=BASE)
    assert message.subject == "Not delivered: an update request to bob@police.govt.nz"
    assert "Kia ora Carol," in message.text
    assert "550 5.1.1 <bob@police.govt.nz>: mailbox unavailable" in message.text
    assert "reportcycle cycle resend 2022 NZP" in message.text
    assert "&lt;bob@police.govt.nz&gt;: mailbox unavailable" in message.html
    assert f"{BASE}/r/" not in message.text  # a coordinator's notice carries no agency link
