"""Notifications: every intended message is a row before it is a message."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.tables._types import enum_type, utcnow


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class Notification(SQLModel, table=True):
    """One message to one recipient (an email address or a contact's extra notify URL)."""

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=40, index=True)
    cycle_id: int | None = Field(default=None, foreign_key="cycle.id", index=True)
    agency_id: int | None = Field(default=None, foreign_key="agency.id", index=True)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    # "email": the contact's address through REPORTCYCLE_MAIL_URL (or the outbox);
    # "notify_url": the contact's extra Apprise URL, read at send time and never copied.
    channel: str = Field(default="email", max_length=16)
    # For people and logs: an email address, or "notify-url of contact 7". Never a URL.
    recipient: str = Field(max_length=320)
    # What the message is about, by id, so the task can re-read and render it.
    context: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    state: DeliveryState = Field(default=DeliveryState.PENDING, sa_type=enum_type(DeliveryState))
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    claimed_at: datetime | None = None
    sent_at: datetime | None = None


class NotificationItem(SQLModel, table=True):
    """One reason inside a digest (a milestone reminder, a deadline step). Unique on its key,
    so the same reminder is never claimed by two sweeps."""

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True)
    idempotency_key: str = Field(max_length=255, unique=True)
    milestone_id: int | None = Field(default=None, foreign_key="milestone.id", index=True)
    step: str | None = Field(default=None, max_length=40)
