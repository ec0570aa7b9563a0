"""Due periods as written in plans ("Quarter 3-4 2021", "December 2022", "2023").

A period is an inclusive range of calendar days with the phrase it was read from. The grammar
(case-insensitive; `-`, `–` or `—` with any spacing; commas and surrounding whitespace ignored;
one trailing full stop tolerated):

- quarter:        `Quarter 1 2022`, `Q1 2022`, `Qtr 1 2022`
- quarter range:  `Quarter 3-4 2021`, `Q3-Q4 2021`, `Q3 – Q4 2021`, `Quarter 3 - Quarter 4 2021`
                  (one calendar year; first quarter <= last)
- half:           `H1 2023`, `first half of 2023`, `the second half 2023`, `1st half 2023`
- month:          `December 2021`, `Dec 2021`, `Dec. 2021`, `Sept 2022`
- month range:    `July-September 2022`, `Jul–Sep 2022` (one calendar year; first <= last)
- day:            `1 Dec 2021`, `30 June 2022`, `1 December, 2021`, `1st December 2021`,
                  `December 1, 2021` (never numeric dates such as 1/12/2021: day-month order
                  would be a guess)
- calendar year:  `2023`
- NZ financial year (1 July to 30 June): `2022/23`, `2022/2023`, `2022-23`, `FY2022/23`,
                  `FY 2022/2023`, `FY2022-2023`, `financial year 2022/23`. A bare `2022-2023` is
                  refused: it may as well mean two calendar years.
- `by X` means X itself (due within X, late once X has ended): `by Q2 2022` = Q2 2022.
- `end of X` (also `the end of X`, `by the end of X`) is the last month of X, or the last day
  when X is a single month: `end of 2022` = December 2022, `end of Q2 2022` = June 2022,
  `end of June 2022` = 30 June 2022. `end of` a single day is refused.

Years run from 1900 to 2199. Anything else (`Ongoing`, `TBC`, `soon`, `mid 2022`, `Q5 2022`,
`31 February 2022`) raises ValueError quoting the phrase: an unreadable due date stays undated,
it is never guessed.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache, total_ordering
from typing import Literal

MIN_YEAR = 1900
MAX_YEAR = 2199

# English names, not calendar.month_name: that one follows the process locale.
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTHS: dict[str, int] = {}
for _number, _name in enumerate(MONTH_NAMES, start=1):
    _MONTHS[_name.lower()] = _number
    _MONTHS[_name[:3].lower()] = _number
_MONTHS["sept"] = 9

Kind = Literal["quarter", "quarters", "half", "month", "months", "day", "year", "fy"]


@total_ordering
@dataclass(frozen=True)
class Period:
    """An inclusive range of days, with the phrase it was written as."""

    text: str
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.start > self.end:
            raise ValueError(
                f"the period {self.text!r} starts ({self.start}) after it ends ({self.end})"
            )

    def __str__(self) -> str:
        return self.text

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self.sort_key < other.sort_key

    def has_ended(self, on: date) -> bool:
        return on > self.end

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end

    @property
    def sort_key(self) -> tuple[date, date, str]:
        """Earliest first; of two starting together, the shorter first."""
        return (self.start, self.end, self.text)

    def canonical_text(self) -> str:
        """The standard spelling: `Q3 2021` → "Quarter 3 2021", `by Dec 2022` → "December 2022".

        The shape as written is kept (`Quarter 3-4 2021` stays a quarter range, not "H2 2021").
        A period whose text does not read as its own dates is spelt from the dates alone, and
        raises ValueError when they have no standard spelling.
        """
        try:
            reading = _read(self.text)
        except ValueError:
            reading = None
        if reading is not None and (reading.start, reading.end) == (self.start, self.end):
            return reading.canonical
        return format_period(self.start, self.end)


def period_sort_key(period: Period | None) -> tuple[bool, date, date, str]:
    """Sort key for optional periods: dated ones in date order, undated ones last."""
    if period is None:
        return (True, date.max, date.max, "")
    return (False, *period.sort_key)


def parse_period(text: str) -> Period:
    """Read a due-period phrase; ValueError (quoting it) when its meaning is not exact."""
    reading = _read(text)
    return Period(text, reading.start, reading.end)


def format_period(start: date, end: date) -> str:
    """The canonical text for an inclusive range of one of the readable shapes.

    Where shapes coincide the broadest name wins: Q1-Q2 is "H1 2022", Q1-Q4 is "2022", and
    July-September is "Quarter 3 2022". Any other run of whole months in one year is a month
    range ("July-August 2022").
    """
    if start > end:
        raise ValueError(f"the range {start}..{end} starts after it ends")
    for day in (start, end):
        if not MIN_YEAR <= day.year <= MAX_YEAR:
            raise ValueError(
                f"the range {start}..{end} is outside the years {MIN_YEAR} to {MAX_YEAR}"
            )
    if start == end:
        return _canonical("day", start.year, start.month, start.day)
    whole_months = start.day == 1 and end.day == _last_day(end.year, end.month)
    if not whole_months:
        raise ValueError(f"the range {start}..{end} is not made of whole months")
    if start.year + 1 == end.year and (start.month, end.month) == (7, 6):
        return _canonical("fy", start.year)
    if start.year != end.year:
        raise ValueError(
            f"the range {start}..{end} spans more than one calendar year and is not a "
            "financial year"
        )
    year, first, last = start.year, start.month, end.month
    if (first, last) == (1, 12):
        return _canonical("year", year)
    if first == last:
        return _canonical("month", year, first)
    if (first, last) in ((1, 6), (7, 12)):
        return _canonical("half", year, 1 if first == 1 else 2)
    if first % 3 == 1 and last % 3 == 0:
        q1, q2 = (first + 2) // 3, last // 3
        return _canonical("quarter" if q1 == q2 else "quarters", year, q1, q2)
    return _canonical("months", year, first, last)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    kind: Kind
    start: date
    end: date
    canonical: str


class _Unreadable(Exception):
    """A reason the phrase cannot be read; parse_period wraps it with the phrase."""


_DASHES = re.compile("[\u2010\u2011\u2012\u2013\u2014\u2015\u2212]")
_YEAR = r"([0-9]{4})"
_QUARTER_WORD = r"(?:quarter|qtr|q)"
_MONTH = r"([a-z]+)\.?"
_ORDINAL = r"([0-9]{1,2})(?:st|nd|rd|th)?"
_HALF_WORDS = {"first": 1, "1st": 1, "second": 2, "2nd": 2}

_RE_QUARTER = re.compile(rf"{_QUARTER_WORD} ?([0-9]{{1,3}}) {_YEAR}")
_RE_QUARTERS = re.compile(
    rf"{_QUARTER_WORD} ?([0-9]{{1,3}})-(?:{_QUARTER_WORD} ?)?([0-9]{{1,3}}) {_YEAR}"
)
_RE_HALF = re.compile(rf"h ?([0-9]{{1,3}}) {_YEAR}")
_RE_HALF_WORDS = re.compile(rf"(?:the )?([a-z0-9]+) half (?:of )?{_YEAR}")
_RE_MONTH = re.compile(rf"{_MONTH} {_YEAR}")
_RE_MONTHS = re.compile(rf"{_MONTH}-{_MONTH} {_YEAR}")
_RE_DAY = re.compile(rf"{_ORDINAL} {_MONTH} {_YEAR}")
_RE_DAY_US = re.compile(rf"{_MONTH} {_ORDINAL} {_YEAR}")
_RE_YEAR = re.compile(_YEAR)
_RE_END_OF = re.compile(r"(?:the )?end of (.+)")
_RE_FY = re.compile(r"(?:(fy|financial year) ?)?([0-9]{4})([/-])([0-9]{2}|[0-9]{4})")


@lru_cache(maxsize=4096)
def _read(text: str) -> _Reading:
    try:
        return _read_phrase(_normalise(text))
    except _Unreadable as reason:
        raise ValueError(f"cannot read the period {text!r}: {reason}") from None


def _normalise(text: str) -> str:
    phrase = text.strip()
    if phrase.endswith("."):
        phrase = phrase[:-1]
    phrase = _DASHES.sub("-", phrase.lower()).replace(",", " ")
    phrase = " ".join(phrase.split())
    return re.sub(r" ?([-/]) ?", r"\1", phrase)


def _read_phrase(phrase: str) -> _Reading:
    if not phrase:
        raise _Unreadable("it is empty")
    # "by X" is due within X: the same period.
    phrase = phrase.removeprefix("by ")
    if m := _RE_END_OF.fullmatch(phrase):
        return _end_of(_read_base(m[1]))
    return _read_base(phrase)


def _end_of(whole: _Reading) -> _Reading:
    if whole.kind == "day":
        raise _Unreadable("'end of' needs a month or longer, not a day")
    year, month = whole.end.year, whole.end.month
    if whole.kind == "month":
        return _make("day", year, month, whole.end.day)
    return _make("month", year, month)


def _read_base(phrase: str) -> _Reading:
    if m := _RE_QUARTER.fullmatch(phrase):
        quarter, year = _quarter(m[1]), _year(m[2])
        return _make("quarter", year, quarter, quarter)
    if m := _RE_QUARTERS.fullmatch(phrase):
        first, last, year = _quarter(m[1]), _quarter(m[2]), _year(m[3])
        if first > last:
            raise _Unreadable(f"quarter {first} comes after quarter {last}")
        return _make("quarter" if first == last else "quarters", year, first, last)
    if m := _RE_HALF.fullmatch(phrase):
        return _make("half", _year(m[2]), _half(m[1]))
    if m := _RE_HALF_WORDS.fullmatch(phrase):
        if m[1] not in _HALF_WORDS:
            raise _Unreadable(f"{m[1]!r} is not first or second half")
        return _make("half", _year(m[2]), _HALF_WORDS[m[1]])
    if m := _RE_FY.fullmatch(phrase):
        return _financial_year(m[1], m[2], m[3], m[4])
    if m := _RE_YEAR.fullmatch(phrase):
        return _make("year", _year(m[1]))
    if m := _RE_MONTH.fullmatch(phrase):
        return _make("month", _year(m[2]), _month(m[1]))
    if m := _RE_MONTHS.fullmatch(phrase):
        first, last, year = _month(m[1]), _month(m[2]), _year(m[3])
        if first > last:
            raise _Unreadable(f"{MONTH_NAMES[first - 1]} comes after {MONTH_NAMES[last - 1]}")
        return _make("month" if first == last else "months", year, first, last)
    if m := _RE_DAY.fullmatch(phrase):
        return _day(m[1], m[2], m[3])
    if m := _RE_DAY_US.fullmatch(phrase):
        return _day(m[2], m[1], m[3])
    raise _Unreadable(
        "not a quarter, quarter range, half, month, month range, day, year or financial year"
    )


def _financial_year(prefix: str | None, first: str, dash: str, second: str) -> _Reading:
    year = _year(first)
    if dash == "-" and len(second) == 4 and prefix is None:
        raise _Unreadable(
            f"{first}-{second} may be two calendar years; write FY {first}/{second[2:]} "
            f"for the financial year"
        )
    expected = str(year + 1) if len(second) == 4 else f"{(year + 1) % 100:02d}"
    if second != expected:
        raise _Unreadable(f"a financial year starting in {year} ends in {year + 1}")
    _year(str(year + 1))
    return _make("fy", year)


def _day(day_text: str, month_text: str, year_text: str) -> _Reading:
    month, year = _month(month_text), _year(year_text)
    day, days = int(day_text), _last_day(year, month)
    if not 1 <= day <= days:
        raise _Unreadable(f"{MONTH_NAMES[month - 1]} {year} has {days} days")
    return _make("day", year, month, day)


def _year(text: str) -> int:
    year = int(text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise _Unreadable(f"years run from {MIN_YEAR} to {MAX_YEAR}")
    return year


def _quarter(text: str) -> int:
    quarter = int(text)
    if not 1 <= quarter <= 4:
        raise _Unreadable("quarters run from 1 to 4")
    return quarter


def _half(text: str) -> int:
    half = int(text)
    if half not in (1, 2):
        raise _Unreadable("halves are H1 and H2")
    return half


def _month(text: str) -> int:
    month = _MONTHS.get(text)
    if month is None:
        raise _Unreadable(f"{text!r} is not a month")
    return month


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _make(kind: Kind, year: int, a: int = 0, b: int = 0) -> _Reading:
    """The reading of one shape; a and b are its numbers (quarters, half, months, day)."""
    match kind:
        case "quarter" | "quarters":
            start, end = date(year, a * 3 - 2, 1), date(year, b * 3, _last_day(year, b * 3))
        case "half":
            start = date(year, 1 if a == 1 else 7, 1)
            end = date(year, 6, 30) if a == 1 else date(year, 12, 31)
        case "month":
            start, end = date(year, a, 1), date(year, a, _last_day(year, a))
        case "months":
            start, end = date(year, a, 1), date(year, b, _last_day(year, b))
        case "day":
            start = end = date(year, a, b)
        case "year":
            start, end = date(year, 1, 1), date(year, 12, 31)
        case "fy":
            start, end = date(year, 7, 1), date(year + 1, 6, 30)
    return _Reading(kind, start, end, _canonical(kind, year, a, b))


def _canonical(kind: Kind, year: int, a: int = 0, b: int = 0) -> str:
    match kind:
        case "quarter":
            return f"Quarter {a} {year}"
        case "quarters":
            return f"Quarter {a}-{b} {year}"
        case "half":
            return f"H{a} {year}"
        case "month":
            return f"{MONTH_NAMES[a - 1]} {year}"
        case "months":
            return f"{MONTH_NAMES[a - 1]}-{MONTH_NAMES[b - 1]} {year}"
        case "day":
            return f"{b} {MONTH_NAMES[a - 1]} {year}"
        case "year":
            return str(year)
        case "fy":
            return f"{year}/{(year + 1) % 100:02d}"
