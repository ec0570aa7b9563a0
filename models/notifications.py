"""Claiming notifications: every intended message is a row before it is a message.

A claim inserts the Notification row and its NotificationItem rows (the reasons inside a
digest) with ``INSERT … ON CONFLICT DO NOTHING``. Both keys are unique, so whatever claims
first wins, whether the other claimant is the same sweep run twice, a second sweep at the
same time in another process, or a redelivered task: on PostgreSQL the loser waits for the
winner's commit and then inserts nothing; on SQLite writers are serialised. A digest whose
items were partly taken by someone else is withdrawn (its rows deleted in the same
transaction) and claimed again with the items still free, so no reason is lost and none is
sent twice.

Each table's rows go in as one statement whatever their number, in key order (one lock
order for every claimant): PostgreSQL reads them from one array per column with
``unnest()``, SQLite from one JSON array with ``json_each()``.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from models import audit
from models.contacts import (
    CHANNEL_EMAIL,
    CHANNEL_NOTIFY_URL,
    Recipient,
    agencies_with_contacts,
    agency_parents,
    channels,
    reached_through,
    recipient_label,
)
from models.tables import (
    AuditEvent,
    Contact,
    DeliveryState,
    Notification,
    NotificationItem,
    UpdateRequest,
)

__all__ = [
    "CHANNEL_EMAIL",
    "CHANNEL_NOTIFY_URL",
    "Claim",
    "ClaimItem",
    "claim_ids",
    "claim_notification",
    "claim_notifications",
    "coordinator_recipients",
    "digest_key",
    "recipients",
]

# Keys per look-up query.
_CHUNK = 1000
# A digest that keeps losing items to concurrent sweeps gives up after this many rounds; the
# next sweep claims whatever is still free.
_ROUNDS = 3


@dataclass(frozen=True)
class ClaimItem:
    key: str
    milestone_id: int | None = None
    step: str | None = None


@dataclass(frozen=True)
class Claim:
    """One intended message to one recipient, with the reasons it carries."""

    kind: str
    key: str
    contact: Contact
    channel: str
    context: Mapping[str, Any]
    cycle_id: int | None = None
    agency_id: int | None = None
    items: tuple[ClaimItem, ...] = field(default_factory=tuple)


def digest_key(kind: str, contact: Contact, channel: str, items: Iterable[ClaimItem]) -> str:
    """A digest's own key: its recipient and the set of its items. Two sweeps that find the
    same things due for the same recipient build the same key."""
    digest = hashlib.sha256("\n".join(sorted(item.key for item in items)).encode()).hexdigest()
    return f"{kind}:c{contact.id}:{channel}:{digest[:32]}"


def recipients(session: Session, agency_id: int) -> list[Recipient]:
    """An agency's active contacts that are not coordinators, each email and notify URL; for
    a business unit with none of its own (INZ), those of its nearest ancestor with some
    (MBIE), as the sweep does (``route_through_parents``)."""
    found = _agency_recipients(session, agency_id)
    if found:
        return found
    reader = reached_through(agency_id, agency_parents(session), agencies_with_contacts(session))
    return _agency_recipients(session, reader) if reader is not None else []


def _agency_recipients(session: Session, agency_id: int) -> list[Recipient]:
    contacts = session.exec(
        select(Contact)
        .where(
            col(Contact.agency_id) == agency_id,
            col(Contact.active),
            col(Contact.is_coordinator).is_(False),
        )
        .order_by(col(Contact.id))
    ).all()
    return [recipient for contact in contacts for recipient in channels(contact)]


def coordinator_recipients(session: Session) -> list[Recipient]:
    contacts = session.exec(
        select(Contact)
        .where(col(Contact.active), col(Contact.is_coordinator))
        .order_by(col(Contact.id))
    ).all()
    return [recipient for contact in contacts for recipient in channels(contact)]


def claim_notification(
    session: Session,
    *,
    kind: str,
    key: str,
    contact: Contact,
    channel: str,
    context: Mapping[str, Any],
    now: datetime,
    cycle_id: int | None = None,
    agency_id: int | None = None,
    items: Sequence[ClaimItem] = (),
) -> Notification | None:
    """Insert the row and its items unless the key (or any item key) is taken: then None."""
    claim = Claim(
        kind=kind,
        key=key,
        contact=contact,
        channel=channel,
        context=context,
        cycle_id=cycle_id,
        agency_id=agency_id,
        items=tuple(items),
    )
    ids = _insert_round(session, [claim], now)
    if not ids:
        return None
    return session.get(Notification, ids[claim.key])


def claim_ids(session: Session, claims: Sequence[Claim], now: datetime) -> list[int]:
    """``claim_notifications`` when only the ids matter."""
    return [
        notification_id for notification_id, _claim in claim_notifications(session, claims, now)
    ]


def request_subject(request: UpdateRequest) -> str:
    """How audit events name an update request."""
    return f"update_request:{request.id}"


def claim_request_round(
    session: Session,
    *,
    kind: str,
    request: UpdateRequest,
    audit_action: str,
    now: datetime,
    actor: str,
    detail: Mapping[str, Any],
    name_round: bool = False,
    found: Sequence[tuple[Contact, str]] | None = None,
    context: Mapping[str, Any] | None = None,
) -> list[int]:
    """Claim one ``kind`` message per recipient of the request's agency for the next round
    of ``audit_action`` (a coordinator's re-issue, a request for changes, a moved deadline),
    and record the ``audit_action`` event that closes the round: ``detail`` plus the number
    of messages (and the round's number, with ``name_round``). Each round is a new message,
    and the same round is never claimed twice. ``context``: what the message needs besides
    the request's ids (what was true when it was claimed). Returns the claimed ids."""
    previous = session.exec(
        select(sa.func.count())
        .select_from(AuditEvent)
        .where(
            col(AuditEvent.action) == audit_action,
            col(AuditEvent.subject) == request_subject(request),
        )
    ).one()
    round_number = int(previous) + 1
    claims = [
        Claim(
            kind=kind,
            key=f"{kind}:r{request.id}:n{round_number}:c{contact.id}:{channel}",
            contact=contact,
            channel=channel,
            context={
                **(context or {}),
                "cycle_id": request.cycle_id,
                "update_request_id": request.id,
                "agency_id": request.agency_id,
            },
            cycle_id=request.cycle_id,
            agency_id=request.agency_id,
        )
        for contact, channel in (
            found if found is not None else recipients(session, request.agency_id)
        )
    ]
    ids = claim_ids(session, claims, now)
    numbered = {"round": round_number} if name_round else {}
    audit.record(
        session,
        actor=actor,
        action=audit_action,
        at=now,
        cycle_id=request.cycle_id,
        agency_id=request.agency_id,
        subject=request_subject(request),
        detail={**detail, **numbered, "messages": len(ids)},
    )
    return ids


def claim_notifications(
    session: Session, claims: Sequence[Claim], now: datetime, *, rebuild: bool = True
) -> list[tuple[int, Claim]]:
    """Claim many messages in a few statements; the rows inserted (id and claim), by id.

    With ``rebuild``, a digest that lost some items to a concurrent claimant is claimed again
    with the items still free (under a new key, since its key names its items)."""
    claimed: list[tuple[int, Claim]] = []
    pending = list(claims)
    for _ in range(_ROUNDS):
        if not pending:
            break
        inserted = _insert_round(session, pending, now)
        claimed.extend((inserted[c.key], c) for c in pending if c.key in inserted)
        if not rebuild:
            break
        lost = [claim for claim in pending if claim.key not in inserted and claim.items]
        if not lost:
            break
        taken = _taken_item_keys(session, [i.key for c in lost for i in c.items])
        pending = []
        for claim in lost:
            free = tuple(item for item in claim.items if item.key not in taken)
            if free and len(free) < len(claim.items):
                pending.append(
                    Claim(
                        kind=claim.kind,
                        key=digest_key(claim.kind, claim.contact, claim.channel, free),
                        contact=claim.contact,
                        channel=claim.channel,
                        context=_narrow_context(claim.context, free),
                        cycle_id=claim.cycle_id,
                        agency_id=claim.agency_id,
                        items=free,
                    )
                )
    return sorted(claimed, key=lambda pair: pair[0])


def _narrow_context(context: Mapping[str, Any], items: Sequence[ClaimItem]) -> dict[str, Any]:
    """The context of a digest rebuilt with fewer items: only what those items are about."""
    keep_steps = {item.step for item in items}
    keep_milestones = {item.milestone_id for item in items if item.milestone_id is not None}
    narrowed = dict(context)
    if "milestone_ids" in narrowed:
        narrowed["milestone_ids"] = [m for m in narrowed["milestone_ids"] if m in keep_milestones]
    if "slipped_milestone_ids" in narrowed:
        narrowed["slipped_milestone_ids"] = [
            m for m in narrowed["slipped_milestone_ids"] if m in keep_milestones
        ]
    if "deadline_days" in narrowed and f"deadline-{narrowed['deadline_days']}d" not in keep_steps:
        narrowed.pop("deadline_days")
    if "escalations" in narrowed:
        narrowed["escalations"] = [
            e
            for e in narrowed["escalations"]
            if f"escalation-r{e['update_request_id']}-w{e['round']}" in keep_steps
        ]
    return narrowed


def _insert_round(session: Session, claims: Sequence[Claim], now: datetime) -> dict[str, int]:
    """Insert the claims; the ids of those whose row and all items went in, by key. Claims
    that lost any item are deleted again."""
    if not claims:
        return {}
    # The inserts below go through the connection, past the ORM: write pending changes first
    # (the rows they reference, in order).
    session.flush()
    ordered = sorted(claims, key=lambda c: c.key)  # one lock order for every claimant
    rows = [
        {
            "idempotency_key": claim.key,
            "kind": claim.kind,
            "cycle_id": claim.cycle_id,
            "agency_id": claim.agency_id,
            "contact_id": claim.contact.id,
            "channel": claim.channel,
            "recipient": recipient_label(claim.contact, claim.channel),
            "context": dict(claim.context),
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "created_at": now,
        }
        for claim in ordered
    ]
    notification = table_of(Notification)
    ids: dict[str, int] = {
        row[0]: row[1]
        for row in _bulk_insert(
            session,
            notification,
            rows,
            returning=(notification.c.idempotency_key, notification.c.id),
            constant=("state", "attempts", "created_at"),
        )
    }
    by_key = {claim.key: claim for claim in ordered}
    item_rows = sorted(
        (
            {
                "notification_id": ids[claim.key],
                "idempotency_key": item.key,
                "milestone_id": item.milestone_id,
                "step": item.step,
            }
            for claim in ordered
            if claim.key in ids
            for item in claim.items
        ),
        key=_item_key,
    )
    inserted_items: dict[int, int] = {}
    if item_rows:
        item = table_of(NotificationItem)
        for row in _bulk_insert(session, item, item_rows, returning=(item.c.notification_id,)):
            notification_id = row[0]
            inserted_items[notification_id] = inserted_items.get(notification_id, 0) + 1
    withdrawn = [
        ids[key]
        for key, claim in by_key.items()
        if key in ids and inserted_items.get(ids[key], 0) != len(claim.items)
    ]
    if withdrawn:
        session.execute(
            sa.delete(NotificationItem).where(col(NotificationItem.notification_id).in_(withdrawn))
        )
        session.execute(sa.delete(Notification).where(col(Notification.id).in_(withdrawn)))
        for key in [k for k, v in ids.items() if v in set(withdrawn)]:
            del ids[key]
    return ids


def _taken_item_keys(session: Session, keys: Sequence[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(keys), _CHUNK * 10):
        chunk = keys[start : start + _CHUNK * 10]
        taken.update(
            session.exec(
                select(NotificationItem.idempotency_key).where(
                    col(NotificationItem.idempotency_key).in_(chunk)
                )
            ).all()
        )
    return taken


def taken_item_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of ``keys`` are already claimed (one query for up to 10,000 keys)."""
    return _taken_item_keys(session, keys)


def table_of(model: type[Any]) -> sa.Table:
    """A model's Core table (executemany on it skips the ORM's per-statement overhead)."""
    table = model.__table__
    assert isinstance(table, sa.Table)
    return table


def _item_key(row: Mapping[str, Any]) -> str:
    return str(row["idempotency_key"])


def _bulk_insert(
    session: Session,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    returning: Sequence[sa.Column[Any]],
    constant: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING …`` of ``rows`` (all with
    the same keys), in their order: one lock order for every claimant. ``constant`` names
    columns whose value is the same in every row."""
    if not rows:
        return []
    # The inserts go through the connection, past the ORM (no per-row objects).
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        # One statement whatever the number of rows: a column is one array parameter, the
        # rows come from unnest(). Its text never changes, so the driver converts and
        # prepares it once (a multi-row VALUES is new text, megabytes of it, for every size).
        names = tuple(rows[0])
        statement = _unnest_insert(table, names, tuple(constant), tuple(c.name for c in returning))
        params: dict[str, Any] = {}
        for name in names:
            if name in constant:
                params[name] = rows[0][name]
            elif isinstance(table.c[name].type, sa.JSON):
                params[name] = [json.dumps(row[name]) for row in rows]
            else:
                params[name] = [row[name] for row in rows]
        return [tuple(row) for row in connection.execute(statement, params)]
    if dialect == "sqlite":
        # The same on SQLite: the rows are one JSON array parameter, read by json_each() (a
        # multi-row VALUES would need a statement per page of its 32,766 parameters).
        names = tuple(rows[0])
        statement = _json_each_insert(
            table, names, tuple(constant), tuple(c.name for c in returning)
        )
        params = {name: rows[0][name] for name in constant}
        params["rows"] = json.dumps(
            [[row[name] for name in names if name not in constant] for row in rows]
        )
        return [tuple(row) for row in connection.execute(statement, params)]
    raise NotImplementedError(f"claiming notifications on {dialect} is not supported")


@functools.cache
def _unnest_insert(
    table: sa.Table, names: tuple[str, ...], constant: tuple[str, ...], returning: tuple[str, ...]
) -> Any:
    """``INSERT INTO table (names) SELECT … FROM unnest(:a, :b, …) WITH ORDINALITY ORDER BY
    ordinality ON CONFLICT (idempotency_key) DO NOTHING RETURNING …`` for PostgreSQL."""
    varying = [name for name in names if name not in constant]
    arrays = [
        sa.bindparam(name, type_=postgresql.ARRAY(_element_type(table.c[name].type)))
        for name in varying
    ]
    source = (
        sa.func.unnest(*arrays)
        .table_valued(*varying, with_ordinality="ordinality")
        .render_derived(name="claimed")
    )
    selected: list[Any] = []
    for name in names:
        column = table.c[name]
        if name in constant:
            selected.append(sa.bindparam(name, type_=column.type))
        elif isinstance(column.type, sa.JSON):
            selected.append(sa.cast(source.c[name], postgresql.JSON))
        else:
            selected.append(source.c[name])
    return (
        postgresql.insert(table)
        .from_select(list(names), sa.select(*selected).order_by(source.c.ordinality))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(*(table.c[name] for name in returning))
    )


@functools.cache
def _json_each_insert(
    table: sa.Table, names: tuple[str, ...], constant: tuple[str, ...], returning: tuple[str, ...]
) -> Any:
    """``INSERT INTO table (names) SELECT json_extract(value, '$[i]'), … FROM json_each(:rows)
    ORDER BY key ON CONFLICT (idempotency_key) DO NOTHING RETURNING …`` for SQLite."""
    source = sa.func.json_each(sa.bindparam("rows", type_=sa.Text())).table_valued("key", "value")
    selected: list[Any] = []
    position = 0
    for name in names:
        if name in constant:
            selected.append(sa.bindparam(name, type_=table.c[name].type))
            continue
        # A JSON column's value comes out as its JSON text: stored as SQLAlchemy would.
        selected.append(sa.func.json_extract(source.c.value, f"$[{position}]"))
        position += 1
    return (
        sqlite.insert(table)
        .from_select(
            list(names),
            # The WHERE keeps SQLite from reading ON CONFLICT as a join's ON.
            sa.select(*selected).where(sa.true()).order_by(source.c.key),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(*(table.c[name] for name in returning))
    )


def _element_type(column_type: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    if isinstance(column_type, sa.types.TypeDecorator):  # SQLModel's AutoString
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.JSON):
        return sa.Text()  # sent as JSON text, cast in the statement
    if isinstance(column_type, sa.Integer):
        return sa.Integer()
    if isinstance(column_type, sa.String):  # also a non-native Enum (a VARCHAR)
        return sa.String()
    raise NotImplementedError(f"no array type for {column_type!r}")
