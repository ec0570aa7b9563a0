"""Time comes from a clock passed in, so tests and the demo can move through a whole year."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Clock = Callable[[], datetime]


def as_aware(value: datetime) -> datetime:
    """A datetime read from the database as an aware one: SQLite gives back naive UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def system_clock() -> datetime:
    return datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    if at.tzinfo is None:
        raise ValueError("a clock needs an aware datetime")
    return lambda: at


class SimulatedClock:
    """A clock the caller moves by hand (the demo and the tests)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock needs an aware datetime")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("a clock needs an aware datetime")
        self.now = at


def parse_instant(text: str, tz: str = "Pacific/Auckland", default_hour: int = 9) -> datetime:
    """Read an ISO 8601 date-time for ``--now``. A date alone means 09:00 local time;
    a date-time without an offset is local time. ValueError quoting the text otherwise."""
    zone = ZoneInfo(tz)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not an ISO 8601 date or date-time: {text!r}") from exc
    if len(text.strip()) == 10:  # a date alone
        parsed = datetime.combine(date.fromisoformat(text), time(default_hour), zone)
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        # The first or last day Python can hold, moved to UTC (0001-01-01 in Auckland).
        raise ValueError(f"{text!r} is out of range") from None
