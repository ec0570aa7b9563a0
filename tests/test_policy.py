"""Working days, New Zealand public holidays and quiet hours (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from config.settings import Settings
from models.policy import ReminderPolicy, is_public_holiday, is_working_day, next_working_day
from tests.cycle_support import NZ, nz


@pytest.mark.parametrize(
    ("nominal", "moved_to"),
    [
        ("2023-02-06", "2023-02-07"),  # Waitangi Day, a Monday
        ("2023-02-04", "2023-02-07"),  # Saturday, then Sunday, then Waitangi Day
        ("2023-04-25", "2023-04-26"),  # Anzac Day, a Tuesday
        ("2023-04-07", "2023-04-11"),  # Good Friday, the weekend, Easter Monday
        ("2022-12-24", "2022-12-28"),  # Christmas and Boxing Day observed on 26-27
        ("2022-12-31", "2023-01-04"),  # New Year: 1-3 January 2023 are off
        ("2022-06-24", "2022-06-27"),  # Matariki 2022, a Friday
        ("2023-03-01", "2023-03-01"),  # an ordinary Wednesday stays
    ],
)
def test_a_day_off_moves_to_the_next_working_day(nominal: str, moved_to: str) -> None:
    assert next_working_day(date.fromisoformat(nominal)) == date.fromisoformat(moved_to)


def test_only_national_holidays_count() -> None:
    assert is_public_holiday(date(2023, 2, 6))
    # Wellington Anniversary Day is regional: agencies elsewhere work.
    assert not is_public_holiday(date(2023, 1, 23))
    assert is_working_day(date(2023, 1, 23))


def test_quiet_hours_run_from_six_in_the_evening_to_eight_in_the_morning() -> None:
    policy = ReminderPolicy()
    day = date(2022, 3, 2)  # a Wednesday
    assert not policy.may_send(nz(day, 7, 59))
    assert policy.may_send(nz(day, 8, 0))
    assert policy.may_send(nz(day, 17, 59))
    assert not policy.may_send(nz(day, 18, 0))
    assert policy.why_not(nz(day, 18, 0)) == (
        "18:00 is within the quiet hours (18:00-08:00 Pacific/Auckland)"
    )
    assert policy.why_not(nz(day, 12)) is None


def test_a_reminder_is_due_at_the_start_of_the_working_morning_local_time() -> None:
    policy = ReminderPolicy()
    due = policy.due_at(date(2022, 4, 2))  # Saturday; NZ daylight saving ends on 3 April
    assert due == datetime(2022, 4, 4, 8, 0, tzinfo=NZ)
    assert due.astimezone(UTC) == datetime(2022, 4, 3, 20, 0, tzinfo=UTC)


def test_the_next_send_time_skips_quiet_hours_weekends_and_holidays() -> None:
    policy = ReminderPolicy()
    friday_evening = nz("2023-02-03", 19)
    assert policy.next_send_time(friday_evening) == datetime(2023, 2, 7, 8, tzinfo=NZ)
    assert policy.next_send_time(nz("2023-02-07", 6)) == datetime(2023, 2, 7, 8, tzinfo=NZ)
    noon = nz("2023-02-07", 12)
    assert policy.next_send_time(noon) == noon.astimezone(NZ)


def test_the_policy_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTCYCLE_MILESTONE_REMINDER_DAYS", "7,30,14")
    monkeypatch.setenv("REPORTCYCLE_DEADLINE_REMINDER_DAYS", "[3]")
    monkeypatch.setenv("REPORTCYCLE_QUIET_HOURS_START", "20")
    policy = ReminderPolicy.from_settings(Settings())
    assert policy.milestone_days == (30, 14, 7)
    assert policy.deadline_days == (3,)
    assert policy.quiet_start == 20 and policy.quiet_end == 8
    assert policy.may_send(nz("2022-03-02", 19))


def test_quiet_hours_within_one_day_and_none_at_all() -> None:
    lunch = ReminderPolicy(quiet_start=12, quiet_end=13)
    assert not lunch.may_send(nz("2022-03-02", 12, 30))
    assert lunch.may_send(nz("2022-03-02", 6))
    assert lunch.due_at(date(2022, 3, 2)) == datetime(2022, 3, 2, 0, tzinfo=NZ)
    never = ReminderPolicy(quiet_start=8, quiet_end=8)
    assert never.may_send(nz("2022-03-02", 23))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        ReminderPolicy().may_send(datetime(2022, 3, 2, 9))
