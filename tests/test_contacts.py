"""Contacts: addresses, notify URLs that never leak, CSV import all or nothing, recipients,
and claiming notification rows."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, col, select

from models.contacts import (
    ContactError,
    add_contact,
    check_notify_url,
    find_agency,
    import_contacts,
    normalise_email,
)
from models.importer import import_report
from models.notifications import (
    Claim,
    ClaimItem,
    claim_notification,
    claim_notifications,
    coordinator_recipients,
    digest_key,
    recipients,
)
from models.tables import AuditEvent, Contact, Notification, NotificationItem
from tests.cycle_support import build_plan

NOW = datetime(2022, 2, 1, tzinfo=UTC)
HEADER = "agency,email,name,notify_url,coordinator\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice@mbie.govt.nz", "alice@mbie.govt.nz"),
        ("  Alice.Smith+nz@MBIE.Govt.NZ ", "Alice.Smith+nz@mbie.govt.nz"),
        ("o'brien@police.govt.nz", "o'brien@police.govt.nz"),
    ],
)
def test_good_addresses_are_kept_with_the_domain_in_lower_case(text: str, expected: str) -> None:
    assert normalise_email(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        "alice@",
        "@mbie.govt.nz",
        "alice@mbie",
        "al ice@mbie.govt.nz",
        "a@b..nz",
        "alice@-mbie.govt.nz",
        "alice@mbie.govt.nz,bob@x.nz",
        "alice@1.2.3.4",
    ],
)
def test_bad_addresses_are_refused_by_name(text: str) -> None:
    with pytest.raises(ContactError):
        normalise_email(text)


def test_a_notify_url_is_checked_by_apprise_and_never_shown_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert check_notify_url(" json://user:pw@hooks.example.org/x ") == (
        "json://user:pw@hooks.example.org/x"
    )
    secret = "hunter2-secret"
    with caplog.at_level(logging.DEBUG), pytest.raises(ContactError) as refused:
        check_notify_url(f"madeup://admin:{secret}@host/path")
    assert "madeup://…" in str(refused.value)
    assert secret not in str(refused.value)
    assert secret not in caplog.text
    with pytest.raises(ContactError, match="email URL"):
        check_notify_url(f"mailtos://user:{secret}@smtp.example.org")
    with pytest.raises(ContactError, match=r"^the notify URL \(not a URL\) is not"):
        check_notify_url("just words")


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("json://127.0.0.1:8080/hook", "127.0.0.1"),
        ("jsons://user:hunter2-secret@10.0.0.5/hook", "10.0.0.5"),
        ("form://169.254.169.254/latest/meta-data", "169.254.169.254"),  # cloud metadata
        ("xml://[::1]:9000/", "::1"),
        ("json://[::ffff:192.168.1.2]/", "::ffff:192.168.1.2"),
        ("json://localhost:8000/", "localhost"),
        ("json://api.localhost/", "api.localhost"),
        ("mmost://192.168.1.20/token", "192.168.1.20"),  # any service given an address
    ],
)
def test_a_notify_url_to_a_private_or_local_address_is_refused_unless_allowed(
    url: str, named: str
) -> None:
    with pytest.raises(ContactError) as refused:
        check_notify_url(url)
    message = str(refused.value)
    assert f"points at {named}, a private or local address" in message
    assert "REPORTCYCLE_NOTIFY_PRIVATE_HOSTS=true" in message
    assert "hunter2-secret" not in message
    assert check_notify_url(url, allow_private_hosts=True) == url


@pytest.mark.parametrize(
    "url",
    [
        "json://hooks.example.org/x",  # a name: not looked up when entered
        "json://93.184.215.14/hook",  # a public address
        "slack://TokenA/TokenB/TokenC",  # a service whose "host" is a token
    ],
)
def test_a_notify_url_to_a_public_or_named_host_is_accepted(url: str) -> None:
    assert check_notify_url(url) == url


def test_csv_import_refuses_a_private_notify_url_unless_allowed(session: Session) -> None:
    build_plan(session)
    text = "agency,email,name,notify_url,coordinator\nMBIE,ops@mbie.govt.nz,,json://10.0.0.5/x,\n"
    with pytest.raises(ContactError, match=r'line 2, field "notify_url": .*points at 10\.0\.0\.5'):
        import_contacts(session, text, NOW)
    assert session.exec(select(Contact).where(Contact.email == "ops@mbie.govt.nz")).all() == []
    result = import_contacts(session, text, NOW, allow_private_hosts=True)
    assert [c.notify_url for c in result.added] == ["json://10.0.0.5/x"]


def test_agencies_are_found_by_acronym_or_alias_in_any_case(session: Session) -> None:
    built = build_plan(session, contacts=False)
    assert find_agency(session, "mbie").id == built.agencies["MBIE"].id
    assert find_agency(session, "police").id == built.agencies["NZP"].id
    with pytest.raises(ContactError, match=r"no agency 'ACC' \(known: DIA, INZ, MBIE"):
        find_agency(session, "ACC")


def test_csv_import_is_all_or_nothing_and_names_line_and_field(session: Session) -> None:
    build_plan(session, contacts=False)
    bad = (
        HEADER
        + "MBIE,alice@mbie.govt.nz,Alice,,no\n"
        + "NZP,bob@police,Bob,,no\n"
        + "MBIE,ALICE@mbie.govt.nz,,,no\n"
        + "OT,olive@ot.govt.nz,,,perhaps\n"
        + "OT,olive2@ot.govt.nz,,\n"
    )
    with pytest.raises(ContactError) as error:
        import_contacts(session, bad, NOW)
    message = str(error.value)
    assert 'line 3, field "email"' in message
    assert 'line 4, field "email": ALICE@mbie.govt.nz of MBIE is already on line 2' in message
    assert "line 5, field \"coordinator\": 'perhaps' is not yes or no" in message
    assert "line 6: expected 5 fields, found 4" in message
    assert session.exec(select(Contact)).all() == []


def test_csv_import_refuses_bad_names_and_an_unreadable_line_naming_each(
    session: Session,
) -> None:
    # A name goes into the To: header of every mail: no line break or control character, at
    # most 200 characters. A field over the csv module's limit used to be a traceback.
    build_plan(session, contacts=False)
    bad = (
        HEADER
        + "MBIE,alice@mbie.govt.nz,Alice,,no\n"
        + 'NZP,bob@police.govt.nz,"Bob\nSmith",,no\n'
        + f"OT,olive@ot.govt.nz,{'O' * 201},,no\n"
        + "DIA,dan@dia.govt.nz,Dan\x00,,no\n"
        + "DIA,dee@dia.govt.nz,"
        + "d" * 200_000
        + ",,no\n"
    )
    with pytest.raises(ContactError) as error:
        import_contacts(session, bad, NOW)
    message = str(error.value)
    assert message.startswith("nothing imported:")
    assert 'line 3, field "name": the name holds a line break' in message
    assert 'line 5, field "name": the name is longer than 200 characters' in message
    assert 'line 6, field "name": the name holds a line break or another control' in message
    assert "line 7: not readable as CSV (field larger than field limit" in message
    assert "line 2" not in message
    assert session.exec(select(Contact)).all() == []

    ot = find_agency(session, "OT")
    with pytest.raises(ContactError, match="line break"):
        add_contact(session, ot, "carl@ot.govt.nz", NOW, name="Carl\r\nBcc: x@evil.example")
    assert session.exec(select(Contact)).all() == []


def test_csv_import_adds_then_updates(session: Session) -> None:
    built = build_plan(session, contacts=False)
    first = import_contacts(
        session,
        "\ufeff" + HEADER + "MBIE,alice@mbie.govt.nz,Alice,,no\nPolice,bob@police.govt.nz,,,\n"
        "\n"
        "MBIE,carol@coordination.govt.nz,Carol,,yes\n",
        NOW,
    )
    assert (len(first.added), len(first.updated)) == (3, 0)
    again = import_contacts(
        session,
        HEADER + "MBIE,alice@mbie.govt.nz,Alice Smith,slack://T1/B2/C3,no\n",
        NOW,
    )
    assert (len(again.added), len(again.updated)) == (0, 1)
    alice = again.updated[0]
    assert alice.name == "Alice Smith" and alice.notify_url == "slack://T1/B2/C3"
    mbie = built.agencies["MBIE"].id or 0
    assert [(c.email, ch) for c, ch in recipients(session, mbie)] == [
        ("alice@mbie.govt.nz", "email"),
        ("alice@mbie.govt.nz", "notify_url"),
    ]
    assert [c.email for c, _ch in coordinator_recipients(session)] == ["carol@coordination.govt.nz"]
    alice.active = False
    session.add(alice)
    session.flush()
    assert recipients(session, mbie) == []


def test_csv_import_counts_unchanged_rows_and_audits_what_it_changes(session: Session) -> None:
    # A second import of the same file changed nothing but reported every row "updated", and
    # contacts imported from a file (who receives the agencies' links) left no audit trail.
    build_plan(session, contacts=False)
    text = HEADER + "MBIE,alice@mbie.govt.nz,Alice,,no\nNZP,bob@police.govt.nz,Bob,,no\n"
    first = import_contacts(session, text, NOW, actor="cli:ops")
    assert (len(first.added), len(first.updated), len(first.unchanged)) == (2, 0, 0)
    again = import_contacts(session, text, NOW, actor="cli:ops")
    assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 2)
    secret = "T1/B2/s3cr3t"
    changed = import_contacts(
        session,
        HEADER
        + "MBIE,alice@mbie.govt.nz,Alice,,yes\n"
        + f"NZP,bob@police.govt.nz,Bob,slack://{secret},no\n",
        NOW,
        actor="cli:ops",
    )
    assert (len(changed.added), len(changed.updated), len(changed.unchanged)) == (0, 2, 0)
    bob = changed.updated[1]
    bob.active = False  # left; a later file brings him back
    session.add(bob)
    back = import_contacts(session, HEADER + "NZP,bob@police.govt.nz,,,no\n", NOW, actor="x")
    assert [c.email for c in back.added] == ["bob@police.govt.nz"] and bob.active

    events = session.exec(select(AuditEvent).order_by(col(AuditEvent.id))).all()
    assert [(e.action, e.actor, e.detail["email"], e.detail.get("changed")) for e in events] == [
        ("contact.added", "cli:ops", "alice@mbie.govt.nz", None),
        ("contact.added", "cli:ops", "bob@police.govt.nz", None),
        ("contact.updated", "cli:ops", "alice@mbie.govt.nz", ["is_coordinator"]),
        ("contact.updated", "cli:ops", "bob@police.govt.nz", ["notify_url"]),
        ("contact.added", "x", "bob@police.govt.nz", None),
    ]
    assert all(secret not in str(e.detail) for e in events)


def test_adding_a_contact_twice_is_refused(session: Session) -> None:
    built = build_plan(session, contacts=False)
    add_contact(session, built.agencies["OT"], "olive@ot.govt.nz", NOW, name="Olive")
    with pytest.raises(ContactError, match=r"olive@ot\.govt\.nz is already a contact of OT"):
        add_contact(session, built.agencies["OT"], "Olive@OT.govt.nz", NOW)


def test_a_claim_is_refused_when_its_key_or_any_item_key_is_taken(session: Session) -> None:
    built = build_plan(session)
    alice = built.contacts["alice"]

    def claim(key: str, *items: str) -> Notification | None:
        return claim_notification(
            session,
            kind="reminder",
            key=key,
            contact=alice,
            channel="email",
            context={"agency_id": alice.agency_id},
            now=NOW,
            items=[ClaimItem(key=i, step="test") for i in items],
        )

    first = claim("k1", "a", "b")
    assert first is not None and first.recipient == "alice@mbie.govt.nz"
    assert claim("k1", "c") is None  # the same message key
    assert claim("k2", "b", "c") is None  # one reason already claimed
    keys = sorted(session.exec(select(NotificationItem.idempotency_key)).all())
    assert keys == ["a", "b"]  # the refused claim left nothing behind
    assert len(session.exec(select(Notification)).all()) == 1
    assert claim("k3", "c") is not None


def test_a_digest_that_lost_some_reasons_is_claimed_again_with_the_rest(
    session: Session,
) -> None:
    built = build_plan(session)
    alice = built.contacts["alice"]
    research, triage = built.milestones["research"].id, built.milestones["triage"].id
    # Another sweep already claimed the research reminder for alice.
    taken = claim_notification(
        session,
        kind="reminder",
        key="other-sweep",
        contact=alice,
        channel="email",
        context={"milestone_ids": [research]},
        now=NOW,
        items=[ClaimItem(key="mr:research", milestone_id=research, step="milestone-7d")],
    )
    assert taken is not None
    items = (
        ClaimItem(key="mr:research", milestone_id=research, step="milestone-7d"),
        ClaimItem(key="mr:triage", milestone_id=triage, step="milestone-7d"),
        ClaimItem(key="dr:deadline", step="deadline-7d"),
    )
    claim = Claim(
        kind="reminder",
        key=digest_key("reminder", alice, "email", items),
        contact=alice,
        channel="email",
        context={"milestone_ids": [research, triage], "deadline_days": 7, "escalations": []},
        items=items,
    )
    ((notification_id, rebuilt),) = claim_notifications(session, [claim], NOW)
    assert rebuilt.key != claim.key
    assert [i.key for i in rebuilt.items] == ["mr:triage", "dr:deadline"]
    row = session.get(Notification, notification_id)
    assert row is not None
    assert row.context["milestone_ids"] == [triage] and row.context["deadline_days"] == 7
    assert len(session.exec(select(Notification)).all()) == 2


def test_an_agency_added_by_hand_is_found_by_its_names_and_audited_and_bad_ones_refused(
    session: Session, report_2021_text: str
) -> None:
    from models.contacts import AGENCY_ADDED, add_agency
    from models.tables import AuditEvent

    import_report(session, report_2021_text, NOW)
    unit = add_agency(
        session,
        "HSU",
        "  Health and Safety   Unit ",
        NOW,
        "coordinator",
        parent="mbie",
        aliases=["H&S Unit", "H&S Unit"],
    )
    assert unit.full_name == "Health and Safety Unit" and unit.aliases == ["H&S Unit"]
    assert unit.parent_id == find_agency(session, "MBIE").id
    assert find_agency(session, "h&s unit").id == unit.id
    (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == AGENCY_ADDED)).all()
    assert event.detail == {"acronym": "HSU", "name": "Health and Safety Unit", "parent": "MBIE"}

    for acronym, name, kwargs, message in [
        ("H5U", "Name", {}, "acronym 'H5U': letters only"),
        ("HSU2", "Name", {}, "acronym 'HSU2'"),
        ("NEW", "", {}, "name: give the agency's full name"),
        ("hsu", "Another", {}, "'hsu' already names HSU (Health and Safety Unit)"),
        ("NEW", "New Zealand Police", {}, "'New Zealand Police' already names NZP"),
        ("NEW", "New one", {"aliases": ["Police"]}, "'Police' already names NZP"),
        ("NEW", "New one", {"parent": "Nowhere"}, "parent: no agency 'Nowhere'"),
    ]:
        with pytest.raises(ContactError, match="^" + re.escape(message)):
            add_agency(session, acronym, name, NOW, "c", **kwargs)
    assert find_agency(session, "HSU").id == unit.id
