"""Due periods as written in plans ("Quarter 3-4 2021", "December 2022", "2023").

PROVISIONAL: a minimal reader; the full grammar replaces it (see issue 2).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}


@dataclass(frozen=True)
class Period:
    text: str
    start: date
    end: date

    def __str__(self) -> str:
        return self.text

    def has_ended(self, on: date) -> bool:
        return on > self.end


def _quarter(year: int, first: int, last: int) -> tuple[date, date]:
    end_month = last * 3
    return date(year, first * 3 - 2, 1), date(
        year, end_month, calendar.monthrange(year, end_month)[1]
    )


def parse_period(text: str) -> Period:
    phrase = " ".join(text.split())
    if m := re.fullmatch(
        r"(?i)(?:quarter\s*|q)([1-4])(?:\s*[-–—]\s*(?:q)?([1-4]))?\s+(\d{4})", phrase
    ):
        first, last = int(m[1]), int(m[2] or m[1])
        start, end = _quarter(int(m[3]), first, last)
        return Period(text, start, end)
    if m := re.fullmatch(r"(?i)([a-z]+)\s+(\d{4})", phrase):
        month = _MONTHS.get(m[1].lower())
        if month:
            year = int(m[2])
            return Period(
                text, date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
            )
    if m := re.fullmatch(r"(\d{4})", phrase):
        year = int(m[1])
        return Period(text, date(year, 1, 1), date(year, 12, 31))
    raise ValueError(f"cannot read the period {text!r}")
