"""pigeon.domain.usage: categories, prices in millionths, and the days each period covers."""

from __future__ import annotations

from datetime import date

import pytest

from pigeon.domain.usage import CATEGORIES, UsageError, category_of, parse_date, periods, price_micros, resolve_range

TODAY = date(2026, 3, 15)
FIRST = date(2025, 11, 20)


def test_categories_add_up_their_leaves() -> None:
    assert CATEGORIES["sms"].leaves == ("sms-outbound", "sms-inbound")
    assert CATEGORIES["mms-inbound"].leaves == ("mms-inbound",)
    assert category_of(outbound=True, media=False) == "sms-outbound"
    assert category_of(outbound=False, media=True) == "mms-inbound"


@pytest.mark.parametrize(
    ("price", "micros"), [("-0.00790", 7900), ("-0.0237", 23700), ("0", 0), (None, 0), ("", 0), ("-1.5", 1500000)]
)
def test_prices_in_millionths(price: str | None, micros: int) -> None:
    assert price_micros(price) == micros


def test_dates_and_offsets() -> None:
    assert parse_date("2026-01-31", today=TODAY, name="StartDate") == date(2026, 1, 31)
    assert parse_date("-30days", today=TODAY, name="StartDate") == date(2026, 2, 13)
    assert parse_date("+1days", today=TODAY, name="EndDate") == date(2026, 3, 16)
    for bad in ("2026-1-31", "31/01/2026", "-30 days", "yesterday", "2026-02-30"):
        with pytest.raises(UsageError, match="StartDate must be a date"):
            parse_date(bad, today=TODAY, name="StartDate")


@pytest.mark.parametrize(
    ("period", "start", "end", "expected"),
    [
        ("Today", "2020-01-01", None, (TODAY, TODAY)),  # fixed periods ignore the dates
        ("Yesterday", None, None, (date(2026, 3, 14), date(2026, 3, 14))),
        ("ThisMonth", None, None, (date(2026, 3, 1), TODAY)),
        ("LastMonth", None, None, (date(2026, 2, 1), date(2026, 2, 28))),
        ("Records", None, None, (FIRST, TODAY)),  # all time: from the first day with usage
        ("AllTime", None, None, (FIRST, TODAY)),
        ("Daily", "-6days", None, (date(2026, 3, 9), TODAY)),
        ("Monthly", "2026-01-10", "2026-02-20", (date(2026, 1, 10), date(2026, 2, 20))),
    ],
)
def test_ranges(period: str, start: str | None, end: str | None, expected: tuple[date, date]) -> None:
    assert resolve_range(period, start=start, end=end, today=TODAY, first_day=FIRST) == expected


def test_last_month_across_a_year() -> None:
    assert resolve_range("LastMonth", start=None, end=None, today=date(2026, 1, 5), first_day=FIRST) == (
        date(2025, 12, 1),
        date(2025, 12, 31),
    )


def test_bad_ranges() -> None:
    with pytest.raises(UsageError, match="EndDate 2026-03-01 is before StartDate 2026-03-02"):
        resolve_range("Daily", start="2026-03-02", end="2026-03-01", today=TODAY, first_day=FIRST)
    with pytest.raises(UsageError, match="twenty years"):
        resolve_range("Daily", start="1990-01-01", end=None, today=TODAY, first_day=FIRST)


def test_periods_cut_the_range() -> None:
    first, last = date(2025, 12, 30), date(2026, 2, 2)
    assert periods("Daily", date(2026, 2, 27), date(2026, 3, 1)) == [
        (date(2026, 2, 27), date(2026, 2, 27)),
        (date(2026, 2, 28), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 1)),
    ]
    assert periods("Monthly", first, last) == [
        (date(2025, 12, 30), date(2025, 12, 31)),
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 2)),
    ]
    assert periods("Yearly", first, last) == [(first, date(2025, 12, 31)), (date(2026, 1, 1), last)]
    assert periods("Records", first, last) == [(first, last)]


def test_periods_reach_the_last_day_of_the_calendar() -> None:
    """The month after December 9999 is past date.max: Monthly stepped onto it (an OverflowError,
    a 500 for Monthly.json?StartDate=9999-12-01&EndDate=9999-12-31)."""
    first, last = date(9999, 11, 15), date.max
    assert periods("Monthly", first, last) == [(first, date(9999, 11, 30)), (date(9999, 12, 1), last)]
    assert periods("Monthly", date(9999, 12, 1), last) == [(date(9999, 12, 1), last)]
    assert periods("Daily", date(9999, 12, 30), last) == [(date(9999, 12, 30),) * 2, (last, last)]
    assert periods("Yearly", first, last) == [(first, last)]
    assert periods("AllTime", first, last) == [(first, last)]
    assert resolve_range("Monthly", start="9999-12-01", end="9999-12-31", today=TODAY, first_day=FIRST) == (
        date(9999, 12, 1),
        last,
    )
