"""Column helpers shared by the table modules."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

import sqlalchemy as sa


def enum_type(enum: type[Enum]) -> sa.Enum:
    """Store an enum by its value (SQLAlchemy would store the member name)."""
    return sa.Enum(
        enum,
        values_callable=lambda members: [member.value for member in members],
        native_enum=False,
        length=32,
        validate_strings=True,
    )


def utcnow() -> datetime:
    return datetime.now(UTC)
