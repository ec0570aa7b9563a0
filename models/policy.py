"""When a reminder may go out: working days, New Zealand public holidays, quiet hours.

A reminder has a nominal day (say, 7 days before a milestone's due period ends). It becomes due
at the start of the first working morning on or after that day: weekends and national New
Zealand public holidays move it to the next working day, and it goes out no earlier than the
end of the quiet hours. Nothing is sent during quiet hours or on a day off; the sweep waits for
the next working morning.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import holidays

if TYPE_CHECKING:
    from config.settings import Settings

# Longest run of days off in New Zealand is about a week (Christmas to the new year);
# a month is a generous bound that still catches a broken holiday calendar.
_MAX_DAYS_OFF = 31


@functools.cache
def _nz_holidays() -> holidays.HolidayBase:
    # National holidays only: regional anniversary days differ per agency office.
    return holidays.country_holidays("NZ")


def is_public_holiday(day: date) -> bool:
    return day in _nz_holidays()


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_public_holiday(day)


def next_working_day(day: date) -> date:
    """``day`` itself when it is a working day, else the first working day after it."""
    for offset in range(_MAX_DAYS_OFF + 1):
        candidate = day + timedelta(days=offset)
        if is_working_day(candidate):
            return candidate
    raise RuntimeError(f"no working day within {_MAX_DAYS_OFF} days of {day}")


@dataclass(frozen=True)
class ReminderPolicy:
    """Offsets, escalation interval, quiet hours and time zone (from settings)."""

    milestone_days: tuple[int, ...] = (30, 7)
    deadline_days: tuple[int, ...] = (14, 7, 1)
    escalation_interval_days: int = 7
    quiet_start: int = 18
    quiet_end: int = 8
    timezone: str = "Pacific/Auckland"

    @classmethod
    def from_settings(cls, settings: Settings) -> ReminderPolicy:
        return cls(
            milestone_days=tuple(sorted(set(settings.milestone_reminder_days), reverse=True)),
            deadline_days=tuple(sorted(set(settings.deadline_reminder_days), reverse=True)),
            escalation_interval_days=settings.escalation_interval_days,
            quiet_start=settings.quiet_hours_start,
            quiet_end=settings.quiet_hours_end,
            timezone=settings.timezone,
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("the policy needs an aware datetime")
        return now.astimezone(self.zone)

    def today(self, now: datetime) -> date:
        return self.local(now).date()

    def is_quiet_hour(self, hour: int) -> bool:
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        if start > end:  # across midnight, e.g. 18:00-08:00
            return hour >= start or hour < end
        return start <= hour < end

    def _morning(self) -> time:
        # The first hour of the working day: the end of the quiet hours when they cover
        # midnight, else midnight itself.
        return time(self.quiet_end) if self.is_quiet_hour(0) else time(0)

    def may_send(self, now: datetime) -> bool:
        """Whether messages may go out at ``now``: a working day, outside quiet hours."""
        local = self.local(now)
        return is_working_day(local.date()) and not self.is_quiet_hour(local.hour)

    def why_not(self, now: datetime) -> str | None:
        """None when messages may go out at ``now``, else the reason they wait."""
        local = self.local(now)
        day = local.date()
        if day.weekday() >= 5:
            return f"{day:%A} {day.isoformat()} is a weekend day"
        if is_public_holiday(day):
            name = _nz_holidays().get(day)
            return f"{day.isoformat()} is a public holiday ({name})"
        if self.is_quiet_hour(local.hour):
            return (
                f"{local:%H:%M} is within the quiet hours "
                f"({self.quiet_start:02d}:00-{self.quiet_end:02d}:00 {self.timezone})"
            )
        return None

    def due_at(self, nominal: date) -> datetime:
        """When a reminder whose nominal day is ``nominal`` becomes due (aware, local zone)."""
        return datetime.combine(next_working_day(nominal), self._morning(), self.zone)

    def next_send_time(self, now: datetime) -> datetime:
        """The first moment at or after ``now`` when messages may go out."""
        local = self.local(now)
        if self.may_send(local):
            return local
        # Step through whole hours in UTC (local wall-clock arithmetic trips over DST).
        candidate = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        for _ in range(24 * (_MAX_DAYS_OFF + 1)):
            candidate += timedelta(hours=1)
            if self.may_send(candidate):
                return self.local(candidate)
        raise RuntimeError(f"no sending time within {_MAX_DAYS_OFF} days of {local}")
