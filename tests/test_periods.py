"""The due-period grammar: every accepted spelling, every refusal, and round trips."""

from __future__ import annotations

import calendar
import re
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.periods import Period, format_period, parse_period, period_sort_key

MONTHS = [
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
]


def last(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


D = date

# (text, start, end, canonical text)
ACCEPTED: list[tuple[str, date, date, str]] = [
    # quarters
    ("Quarter 1 2022", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    ("Quarter 2 2022", D(2022, 4, 1), D(2022, 6, 30), "Quarter 2 2022"),
    ("Q1 2022", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    ("Qtr 1 2022", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    ("qtr1 2022", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    ("q 4 2022", D(2022, 10, 1), D(2022, 12, 31), "Quarter 4 2022"),
    ("QUARTER 3 2022", D(2022, 7, 1), D(2022, 9, 30), "Quarter 3 2022"),
    ("Q1, 2022", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    # quarter ranges
    ("Quarter 3-4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Quarter 3 - 4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Quarter 3–4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Quarter 3 — 4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Q3-Q4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Q3 – Q4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Q3-4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Quarter 3 - Quarter 4 2021", D(2021, 7, 1), D(2021, 12, 31), "Quarter 3-4 2021"),
    ("Qtr 1-3 2022", D(2022, 1, 1), D(2022, 9, 30), "Quarter 1-3 2022"),
    ("Q2-Q2 2022", D(2022, 4, 1), D(2022, 6, 30), "Quarter 2 2022"),
    # halves
    ("H1 2023", D(2023, 1, 1), D(2023, 6, 30), "H1 2023"),
    ("H2 2023", D(2023, 7, 1), D(2023, 12, 31), "H2 2023"),
    ("h 2 2023", D(2023, 7, 1), D(2023, 12, 31), "H2 2023"),
    ("first half of 2023", D(2023, 1, 1), D(2023, 6, 30), "H1 2023"),
    ("First half 2023", D(2023, 1, 1), D(2023, 6, 30), "H1 2023"),
    ("second half 2023", D(2023, 7, 1), D(2023, 12, 31), "H2 2023"),
    ("the second half of 2023", D(2023, 7, 1), D(2023, 12, 31), "H2 2023"),
    ("1st half 2023", D(2023, 1, 1), D(2023, 6, 30), "H1 2023"),
    ("2nd half of 2023", D(2023, 7, 1), D(2023, 12, 31), "H2 2023"),
    # months
    ("December 2021", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    ("Dec 2021", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    ("Dec. 2021", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    ("Sept 2022", D(2022, 9, 1), D(2022, 9, 30), "September 2022"),
    ("sep 2022", D(2022, 9, 1), D(2022, 9, 30), "September 2022"),
    ("February 2024", D(2024, 2, 1), D(2024, 2, 29), "February 2024"),
    ("February 1900", D(1900, 2, 1), D(1900, 2, 28), "February 1900"),
    ("MAY 2022", D(2022, 5, 1), D(2022, 5, 31), "May 2022"),
    ("december, 2021", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    # month ranges
    ("July-September 2022", D(2022, 7, 1), D(2022, 9, 30), "July-September 2022"),
    ("Jul – Sep 2022", D(2022, 7, 1), D(2022, 9, 30), "July-September 2022"),
    ("July—August 2022", D(2022, 7, 1), D(2022, 8, 31), "July-August 2022"),
    ("June-June 2022", D(2022, 6, 1), D(2022, 6, 30), "June 2022"),
    # days
    ("1 Dec 2021", D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    ("30 June 2022", D(2022, 6, 30), D(2022, 6, 30), "30 June 2022"),
    ("1 December, 2021", D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    ("1st December 2021", D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    ("22nd Sept 2022", D(2022, 9, 22), D(2022, 9, 22), "22 September 2022"),
    ("03 Mar 2023", D(2023, 3, 3), D(2023, 3, 3), "3 March 2023"),
    ("December 1, 2021", D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    ("29 February 2024", D(2024, 2, 29), D(2024, 2, 29), "29 February 2024"),
    # years
    ("2023", D(2023, 1, 1), D(2023, 12, 31), "2023"),
    ("1900", D(1900, 1, 1), D(1900, 12, 31), "1900"),
    ("2199", D(2199, 1, 1), D(2199, 12, 31), "2199"),
    # New Zealand financial years
    ("2022/23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("FY2022/23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("FY 2022/2023", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("2022-23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("2022 – 23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("2022 / 2023", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("fy2022-2023", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("Financial year 2022/23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    ("1999/00", D(1999, 7, 1), D(2000, 6, 30), "1999/00"),
    ("2198/99", D(2198, 7, 1), D(2199, 6, 30), "2198/99"),
    # by: the period itself
    ("by Q2 2022", D(2022, 4, 1), D(2022, 6, 30), "Quarter 2 2022"),
    ("By December 2022", D(2022, 12, 1), D(2022, 12, 31), "December 2022"),
    ("by 2023", D(2023, 1, 1), D(2023, 12, 31), "2023"),
    ("by 1 Dec 2021", D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    ("by FY2022/23", D(2022, 7, 1), D(2023, 6, 30), "2022/23"),
    # end of: the last month, or a month's last day
    ("end of 2022", D(2022, 12, 1), D(2022, 12, 31), "December 2022"),
    ("End of June 2022", D(2022, 6, 30), D(2022, 6, 30), "30 June 2022"),
    ("the end of February 2024", D(2024, 2, 29), D(2024, 2, 29), "29 February 2024"),
    ("by the end of 2022", D(2022, 12, 1), D(2022, 12, 31), "December 2022"),
    ("by end of Q2 2022", D(2022, 6, 1), D(2022, 6, 30), "June 2022"),
    ("end of H1 2023", D(2023, 6, 1), D(2023, 6, 30), "June 2023"),
    ("end of Quarter 3-4 2021", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    ("end of 2022/23", D(2023, 6, 1), D(2023, 6, 30), "June 2023"),
    # flexible spacing, surrounding whitespace, one trailing full stop
    ("  Quarter  1\t2022  ", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    ("Quarter 1 2022.", D(2022, 1, 1), D(2022, 3, 31), "Quarter 1 2022"),
    (" December 2021. ", D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    ("2023.", D(2023, 1, 1), D(2023, 12, 31), "2023"),
    ("Q3\u00a02021", D(2021, 7, 1), D(2021, 9, 30), "Quarter 3 2021"),
    ("Quarter 3\r\n2021", D(2021, 7, 1), D(2021, 9, 30), "Quarter 3 2021"),
]


@pytest.mark.parametrize(("text", "start", "end", "canonical"), ACCEPTED)
def test_reads(text: str, start: date, end: date, canonical: str) -> None:
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.text == text
    assert str(period) == text
    assert period.canonical_text() == canonical
    assert parse_period(canonical) == Period(canonical, start, end)


# Every period written in the published 2021 report, due or "Delayed from".
REPORT_2021: list[tuple[str, date, date]] = [
    ("December 2021", D(2021, 12, 1), D(2021, 12, 31)),
    ("December 2022", D(2022, 12, 1), D(2022, 12, 31)),
    ("Quarter 1 2022", D(2022, 1, 1), D(2022, 3, 31)),
    ("Quarter 2 2022", D(2022, 4, 1), D(2022, 6, 30)),
    ("Quarter 3 2022", D(2022, 7, 1), D(2022, 9, 30)),
    ("Quarter 4 2022", D(2022, 10, 1), D(2022, 12, 31)),
    ("Q3 2021", D(2021, 7, 1), D(2021, 9, 30)),
    ("Quarter 3 2021", D(2021, 7, 1), D(2021, 9, 30)),
    ("Quarter 3-4 2021", D(2021, 7, 1), D(2021, 12, 31)),
    ("July 2021", D(2021, 7, 1), D(2021, 7, 31)),
    ("July 2022", D(2022, 7, 1), D(2022, 7, 31)),
    ("2022", D(2022, 1, 1), D(2022, 12, 31)),
    ("2023", D(2023, 1, 1), D(2023, 12, 31)),
    ("Quarter 4 2021", D(2021, 10, 1), D(2021, 12, 31)),
    ("Q1 2021", D(2021, 1, 1), D(2021, 3, 31)),
    ("2021", D(2021, 1, 1), D(2021, 12, 31)),
]


@pytest.mark.parametrize(("text", "start", "end"), REPORT_2021)
def test_reads_the_2021_report_periods(text: str, start: date, end: date) -> None:
    period = parse_period(text)
    assert (period.start, period.end, period.text) == (start, end, text)


_DUE = re.compile(r"^[-•*] (.+?) – ", re.MULTILINE)
_DELAYED = re.compile(r"\(Delayed from ([^)]*)\)")


def test_the_table_is_every_period_of_the_2021_report(report_2021_text: str) -> None:
    # Milestone bullets open with their due period; other bullets open with prose, which the
    # grammar must refuse rather than misread (e.g. "'Tango i Te Kaupae Muri").
    due, refused = set(), set()
    for phrase in _DUE.findall(report_2021_text):
        try:
            parse_period(phrase)
        except ValueError:
            refused.add(phrase)
        else:
            due.add(phrase)
    delayed = set(_DELAYED.findall(report_2021_text))
    assert due | delayed == {text for text, _, _ in REPORT_2021}
    assert refused == {"'Tango i Te Kaupae Muri"}
    for text in delayed:
        parse_period(text)


# (text, the reason given after the quoted phrase)
REFUSED: list[tuple[str, str]] = [
    ("Ongoing", "not a quarter"),
    ("TBC", "not a quarter"),
    ("soon", "not a quarter"),
    ("", "it is empty"),
    ("   ", "it is empty"),
    (".", "it is empty"),
    ("Q5 2022", "quarters run from 1 to 4"),
    ("Quarter 0 2022", "quarters run from 1 to 4"),
    ("Q3-Q5 2022", "quarters run from 1 to 4"),
    ("Quarter 4-3 2021", "quarter 4 comes after quarter 3"),
    ("H3 2023", "halves are H1 and H2"),
    ("third half of 2023", "'third' is not first or second half"),
    ("31 February 2022", "February 2022 has 28 days"),
    ("30 February 2024", "February 2024 has 29 days"),
    ("31 June 2022", "June 2022 has 30 days"),
    ("0 June 2022", "June 2022 has 30 days"),
    ("Decembre 2021", "'decembre' is not a month"),
    ("mid 2022", "'mid' is not a month"),
    ("September-July 2022", "September comes after July"),
    ("1899", "years run from 1900 to 2199"),
    ("2200", "years run from 1900 to 2199"),
    ("Q1 1899", "years run from 1900 to 2199"),
    ("2199/00", "years run from 1900 to 2199"),
    ("2022/24", "a financial year starting in 2022 ends in 2023"),
    ("FY 2022/2021", "a financial year starting in 2022 ends in 2023"),
    ("2022-2023", "may be two calendar years"),
    ("end of 1 December 2021", "'end of' needs a month or longer"),
    ("end of", "not a quarter"),
    ("by", "not a quarter"),
    ("by soon", "not a quarter"),
    ("early 2022", "'early' is not a month"),
    ("Q4 2021 - Q1 2022", "not a quarter"),
    ("December 2021 - March 2022", "not a quarter"),
    ("1/12/2021", "not a quarter"),
    ("2021-12-01", "not a quarter"),
    ("FY2023", "not a quarter"),
    ("Q1 2022..", "not a quarter"),
    ("Q1 22", "not a quarter"),
    ("Quarter 1 2022 (tentative)", "not a quarter"),
    ("Q\u0661 2022", "not a quarter"),  # an Arabic-Indic digit is no quarter number
]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_period(text)
    message = str(raised.value)
    assert message.startswith(f"cannot read the period {text!r}: ")
    assert reason in message


def test_refusal_message_quotes_the_phrase() -> None:
    with pytest.raises(ValueError, match=r"^cannot read the period 'Q5 2022': quarters run"):
        parse_period("Q5 2022")


# --- Period ------------------------------------------------------------------------------


def test_period_dates_and_ordering() -> None:
    q3 = parse_period("Q3 2021")
    assert not q3.has_ended(D(2021, 9, 30))
    assert q3.has_ended(D(2021, 10, 1))
    assert q3.contains(D(2021, 7, 1))
    assert q3.contains(D(2021, 9, 30))
    assert not q3.contains(D(2021, 6, 30))
    assert not q3.contains(D(2021, 10, 1))
    assert q3.sort_key == (D(2021, 7, 1), D(2021, 9, 30), "Q3 2021")

    texts = ["2022", "Quarter 3-4 2021", "Q3 2021", "July 2021", "Quarter 3 2021", "1 Jul 2021"]
    ordered = sorted(parse_period(t) for t in texts)
    assert [p.text for p in ordered] == [
        "1 Jul 2021",
        "July 2021",
        "Q3 2021",
        "Quarter 3 2021",
        "Quarter 3-4 2021",
        "2022",
    ]
    assert sorted(parse_period(t) for t in texts) == sorted(
        (parse_period(t) for t in texts), key=lambda p: p.sort_key
    )
    assert parse_period("Q1 2022") < parse_period("Q2 2022") <= parse_period("Q2 2022")
    assert parse_period("2023") > parse_period("Q4 2022")

    undated: list[Period | None] = [None, parse_period("2023"), None, parse_period("Q1 2022")]
    assert [str(p) for p in sorted(undated, key=period_sort_key)] == [
        "Q1 2022",
        "2023",
        "None",
        "None",
    ]


def test_period_built_by_hand() -> None:
    # Rows from the database are rebuilt as Period(text, start, end); their canonical text
    # comes from the text when it reads as those dates, else from the dates.
    assert Period("Q3-Q4 2021", D(2021, 7, 1), D(2021, 12, 31)).canonical_text() == (
        "Quarter 3-4 2021"
    )
    assert Period("Ongoing", D(2021, 7, 1), D(2021, 12, 31)).canonical_text() == "H2 2021"
    assert Period("Q1 2020", D(2021, 7, 1), D(2021, 9, 30)).canonical_text() == "Quarter 3 2021"
    with pytest.raises(ValueError, match="not made of whole months"):
        Period("soon", D(2021, 7, 2), D(2021, 9, 30)).canonical_text()
    with pytest.raises(ValueError, match=r"starts .* after it ends"):
        Period("backwards", D(2021, 9, 30), D(2021, 7, 1))


# --- format_period -----------------------------------------------------------------------

FORMATTED: list[tuple[date, date, str]] = [
    (D(2021, 12, 1), D(2021, 12, 1), "1 December 2021"),
    (D(2021, 12, 1), D(2021, 12, 31), "December 2021"),
    (D(2021, 7, 1), D(2021, 9, 30), "Quarter 3 2021"),
    (D(2021, 4, 1), D(2021, 9, 30), "Quarter 2-3 2021"),
    (D(2021, 1, 1), D(2021, 9, 30), "Quarter 1-3 2021"),
    (D(2021, 1, 1), D(2021, 6, 30), "H1 2021"),
    (D(2021, 7, 1), D(2021, 12, 31), "H2 2021"),
    (D(2021, 1, 1), D(2021, 12, 31), "2021"),
    (D(2021, 7, 1), D(2022, 6, 30), "2021/22"),
    (D(1999, 7, 1), D(2000, 6, 30), "1999/00"),
    (D(2021, 8, 1), D(2021, 11, 30), "August-November 2021"),
    (D(2024, 2, 1), D(2024, 2, 29), "February 2024"),
]


@pytest.mark.parametrize(("start", "end", "text"), FORMATTED)
def test_formats(start: date, end: date, text: str) -> None:
    assert format_period(start, end) == text
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.canonical_text() == text


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        (D(2021, 12, 2), D(2021, 12, 31), "not made of whole months"),
        (D(2021, 12, 1), D(2021, 12, 30), "not made of whole months"),
        (D(2024, 2, 1), D(2024, 2, 28), "not made of whole months"),
        (D(2021, 12, 31), D(2021, 12, 1), "starts after it ends"),
        (D(2021, 1, 1), D(2022, 12, 31), "more than one calendar year"),
        (D(2021, 10, 1), D(2022, 3, 31), "more than one calendar year"),
        (D(2021, 6, 1), D(2022, 6, 30), "more than one calendar year"),
        (D(1899, 1, 1), D(1899, 12, 31), "outside the years 1900 to 2199"),
        (D(2199, 7, 1), D(2200, 6, 30), "outside the years 1900 to 2199"),
    ],
)
def test_format_refuses(start: date, end: date, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        format_period(start, end)


# --- properties --------------------------------------------------------------------------
# Each strategy draws one period of a shape and returns its spellings (the canonical one
# first) with the dates computed here, independently of the module.

Drawn = tuple[list[str], date, date]
years = st.integers(min_value=1900, max_value=2199)
dashes = st.sampled_from(["-", "–", "—", " - ", " – ", "—  "])


@st.composite
def quarters(draw: st.DrawFn) -> Drawn:
    y, q = draw(years), draw(st.integers(1, 4))
    spellings = [f"Quarter {q} {y}", f"Q{q} {y}", f"qtr {q} {y}", f"  QUARTER {q}  {y}. "]
    return spellings, D(y, 3 * q - 2, 1), last(y, 3 * q)


@st.composite
def quarter_ranges(draw: st.DrawFn) -> Drawn:
    y, a = draw(years), draw(st.integers(1, 3))
    b, dash = draw(st.integers(a + 1, 4)), draw(dashes)
    spellings = [f"Quarter {a}-{b} {y}", f"Q{a}{dash}Q{b} {y}", f"quarter {a}{dash}{b} {y}"]
    return spellings, D(y, 3 * a - 2, 1), last(y, 3 * b)


@st.composite
def halves(draw: st.DrawFn) -> Drawn:
    y, h = draw(years), draw(st.integers(1, 2))
    word = "first" if h == 1 else "second"
    spellings = [f"H{h} {y}", f"{word} half of {y}", f"The {word.title()} Half {y}"]
    return spellings, D(y, 1 if h == 1 else 7, 1), last(y, 6 if h == 1 else 12)


@st.composite
def months(draw: st.DrawFn) -> Drawn:
    y, m = draw(years), draw(st.integers(1, 12))
    name = MONTHS[m - 1]
    spellings = [f"{name} {y}", f"{name[:3]} {y}", f"{name.upper()}, {y}."]
    return spellings, D(y, m, 1), last(y, m)


@st.composite
def month_ranges(draw: st.DrawFn) -> Drawn:
    y, a = draw(years), draw(st.integers(1, 11))
    b, dash = draw(st.integers(a + 1, 12)), draw(dashes)
    first, second = MONTHS[a - 1], MONTHS[b - 1]
    spellings = [f"{first}-{second} {y}", f"{first[:3]}{dash}{second[:3]} {y}"]
    return spellings, D(y, a, 1), last(y, b)


@st.composite
def days(draw: st.DrawFn) -> Drawn:
    day = draw(st.dates(D(1900, 1, 1), D(2199, 12, 31)))
    name = MONTHS[day.month - 1]
    spellings = [
        f"{day.day} {name} {day.year}",
        f"{day.day:02d} {name[:3]}, {day.year}",
        f"{name} {day.day}, {day.year}",
    ]
    return spellings, day, day


@st.composite
def calendar_years(draw: st.DrawFn) -> Drawn:
    y = draw(years)
    return [str(y), f" {y}. ", f"by {y}"], D(y, 1, 1), D(y, 12, 31)


@st.composite
def financial_years(draw: st.DrawFn) -> Drawn:
    y = draw(st.integers(1900, 2198))
    short = f"{(y + 1) % 100:02d}"
    spellings = [f"{y}/{short}", f"FY{y}/{short}", f"FY {y}/{y + 1}", f"{y}-{short}"]
    return spellings, D(y, 7, 1), D(y + 1, 6, 30)


any_shape = st.one_of(
    quarters(),
    quarter_ranges(),
    halves(),
    months(),
    month_ranges(),
    days(),
    calendar_years(),
    financial_years(),
)


@settings(deadline=None, max_examples=300)
@given(any_shape)
def test_every_spelling_reads_as_its_dates(drawn: Drawn) -> None:
    spellings, start, end = drawn
    canonical = spellings[0]
    for text in spellings:
        period = parse_period(text)
        assert (period.start, period.end) == (start, end), text
        assert period.text == text
        assert period.canonical_text() == canonical
        assert period.start <= period.end


@settings(deadline=None, max_examples=300)
@given(any_shape)
def test_format_round_trips(drawn: Drawn) -> None:
    _, start, end = drawn
    text = format_period(start, end)
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)
    assert period.canonical_text() == text


@settings(deadline=None, max_examples=300)
@given(
    st.dates(D(1900, 1, 1), D(2199, 12, 31)),
    st.dates(D(1900, 1, 1), D(2199, 12, 31)),
)
def test_format_either_round_trips_or_refuses(a: date, b: date) -> None:
    start, end = min(a, b), max(a, b)
    try:
        text = format_period(start, end)
    except ValueError:
        return
    period = parse_period(text)
    assert (period.start, period.end) == (start, end)


TOKENS = [
    "q", "quarter", "qtr", "h", "fy", "by", "end of", "the", "first", "half", "of",
    "0", "1", "2", "3", "4", "5", "12", "31", "23", "2021", "2022", "1899", "2199",
    "dec", "june", "sept", "february", "-", "–", "/", ",", ".", " ", "  ",
]  # fmt: skip


@settings(deadline=None, max_examples=500)
@given(st.one_of(st.text(max_size=30), st.lists(st.sampled_from(TOKENS), max_size=8).map("".join)))
def test_anything_reads_or_is_refused_cleanly(text: str) -> None:
    try:
        period = parse_period(text)
    except ValueError as refusal:
        assert str(refusal).startswith(f"cannot read the period {text!r}: ")
        return
    assert period.start <= period.end
    assert period.text == text
    again = parse_period(period.canonical_text())
    assert (again.start, again.end) == (period.start, period.end)
