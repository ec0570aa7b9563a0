"""Tokenised links: 256-bit random tokens, stored only as their SHA-256.

A token is scoped to one update request (one agency, one cycle). It stops working when it is
revoked, re-issued, past its own expiry, or when its cycle has closed and the grace period
has passed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models.tables import AccessToken, Cycle, UpdateRequest

TOKEN_BYTES = 32  # 256 bits
# Built once: a token is issued per message sent.
_INSERT = sa.insert(AccessToken.__table__)  # type: ignore[attr-defined]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and its hash. Only the hash is ever stored."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def issue_token(
    session: Session,
    request: UpdateRequest,
    now: datetime,
    *,
    notification_id: int | None = None,
    revoke_all: bool = False,
    first_attempt: bool = False,
) -> str:
    """Add a live token for ``request`` and return it (the only time it is seen in clear).

    Each message carries its own link, so earlier links keep working until the cycle closes.
    A retried send of the same notification revokes the link of its failed attempt;
    ``revoke_all`` (a coordinator's re-issue) makes every earlier link stop working.
    ``first_attempt``: the notification's first claim, which has no earlier attempt's link to
    revoke (a claim and its token are committed together), so no UPDATE looks for one."""
    assert request.id is not None
    # Statements, not ORM objects loaded and flushed: a token is issued per message sent.
    # The UPDATE is ORM-enabled, so tokens already loaded in the session see their revocation.
    if revoke_all or (notification_id is not None and not first_attempt):
        live = sa.update(AccessToken).where(
            col(AccessToken.update_request_id) == request.id,
            col(AccessToken.revoked_at).is_(None),
        )
        if not revoke_all:
            live = live.where(col(AccessToken.notification_id) == notification_id)
        session.execute(live.values(revoked_at=now))
    token, digest = new_token()
    session.connection().execute(
        _INSERT,
        {
            "update_request_id": request.id,
            "token_hash": digest,
            "created_at": now,
            "notification_id": notification_id,
        },
    )
    return token


def resolve_token(
    session: Session, token: str, now: datetime, grace: timedelta
) -> tuple[AccessToken, UpdateRequest, Cycle] | None:
    """The live token, its request and cycle; None when unknown, revoked or expired.

    The caller must answer every None the same way (no oracle between "never existed" and
    "expired")."""
    if not token or len(token) > 128:
        return None
    row = session.exec(
        select(AccessToken, UpdateRequest, Cycle)
        .join(UpdateRequest, UpdateRequest.id == AccessToken.update_request_id)  # type: ignore[arg-type]
        .join(Cycle, Cycle.id == UpdateRequest.cycle_id)  # type: ignore[arg-type]
        .where(AccessToken.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    access, request, cycle = row
    if access.revoked_at is not None:
        return None
    if access.expires_at is not None and now >= access.expires_at:
        return None
    if cycle.closed_at is not None and now >= cycle.closed_at + grace:
        return None
    return access, request, cycle
