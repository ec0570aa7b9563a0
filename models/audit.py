"""The audit log: every state change of a cycle, as a row (who, what, when, about what)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.tables import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    at: datetime,
    cycle_id: int | None = None,
    agency_id: int | None = None,
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session's transaction (it commits with the change it logs).

    ``action`` is a short verb phrase such as ``cycle.opened``, ``request.submitted``,
    ``token.reissued``; ``detail`` must never hold a token or a credential."""
    event = AuditEvent(
        at=at,
        actor=actor,
        action=action,
        cycle_id=cycle_id,
        agency_id=agency_id,
        subject=subject,
        detail=detail or {},
    )
    session.add(event)
    return event
