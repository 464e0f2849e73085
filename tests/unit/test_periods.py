"""The moments and spans people type into filters (pigeon.domain.periods), and the doctor's
duplicate window: every value either parses or raises ValueError, the edges of the calendar
included (they reached the store as 500s before, found by probing the API)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pigeon.domain import periods
from pigeon.domain.diagnosis.duplicates import MAX_WINDOW_SECONDS, parse_window

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        (" 2h ", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
    ],
)
def test_a_duration_counts_back_from_now(text: str, back: timedelta) -> None:
    assert periods.back_from(NOW, text) == NOW - back
    assert periods.since(text, NOW) == NOW - back


def test_a_duration_past_year_one_is_the_earliest_moment() -> None:
    assert periods.since("99999999999999999d", NOW) == periods.EARLIEST
    assert periods.since(f"{(NOW - periods.EARLIEST).days + 1}d", NOW) == periods.EARLIEST


def test_what_is_not_a_duration_is_read_as_a_moment() -> None:
    assert periods.back_from(NOW, "2026-12-01") is None
    assert periods.since("2026-12-01", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert periods.since("2026-12-01T10:00:00Z", NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "value", "whole_day"),
    [
        ("2026-12-06", datetime(2026, 12, 6, tzinfo=UTC), True),
        ("2026-12-06T10:30:00Z", datetime(2026, 12, 6, 10, 30, tzinfo=UTC), False),
        ("2026-12-06T10:30:00", datetime(2026, 12, 6, 10, 30, tzinfo=UTC), False),
        ("2026-12-06T10:30:00+02:00", datetime(2026, 12, 6, 8, 30, tzinfo=UTC), False),
        # What Pigeon's own responses carry, echoed back.
        ("Sun, 06 Dec 2026 10:30:00 +0000", datetime(2026, 12, 6, 10, 30, tzinfo=UTC), False),
        ("9999-12-31", datetime(9999, 12, 31, tzinfo=UTC), True),
    ],
)
def test_a_moment_is_a_day_an_iso_date_time_or_an_rfc_2822_date_in_utc(
    text: str, value: datetime, whole_day: bool
) -> None:
    parsed = periods.moment(text)
    assert parsed == (value, whole_day)
    assert parsed[0].tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    ["", "yesterday", "2026-13-45", "2026-02-30T25:00:00Z", "\x00", "Sun, 99 Foo", "15x", "1e308"],
)
def test_anything_else_is_a_value_error_that_says_what_was_given(text: str) -> None:
    with pytest.raises(ValueError, match="is not a date"):
        periods.moment(text)
    with pytest.raises(ValueError, match="neither a duration"):
        periods.since(text, NOW)


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_a_date_time_whose_utc_is_outside_the_calendar_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="outside the calendar"):
        periods.moment(text)


def test_an_end_is_exclusive_and_stops_at_the_calendar_s_end() -> None:
    day = datetime(2026, 12, 6, tzinfo=UTC)
    assert periods.end_of(day, whole_day=True) == datetime(2026, 12, 7, tzinfo=UTC)
    assert periods.end_of(day, whole_day=False) == day + timedelta(microseconds=1)
    last_day = datetime(9999, 12, 31, tzinfo=UTC)
    assert periods.end_of(last_day, whole_day=True) == periods.LATEST
    assert periods.end_of(periods.LATEST, whole_day=False) == periods.LATEST
    assert periods.LATEST == datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "last"),
    [
        # A day, and a date-time at midnight UTC, which is how the SDKs send a date
        # (date_sent_before=date(2026, 12, 6) goes out as DateSent<=2026-12-06T00:00:00Z):
        # on and before that day, to its last microsecond.
        ("2026-12-06", datetime(2026, 12, 6, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-12-06T00:00:00Z", datetime(2026, 12, 6, 23, 59, 59, 999999, tzinfo=UTC)),
        ("Sun, 06 Dec 2026 00:00:00 +0000", datetime(2026, 12, 6, 23, 59, 59, 999999, tzinfo=UTC)),
        # Any other time is an instant, up to and including itself.
        ("2026-12-06T00:00:01Z", datetime(2026, 12, 6, 0, 0, 1, tzinfo=UTC)),
        ("2026-12-06T12:00:00Z", datetime(2026, 12, 6, 12, tzinfo=UTC)),
        ("2026-12-06T00:00:00+01:00", datetime(2026, 12, 5, 23, tzinfo=UTC)),
        # The calendar's last day runs to its last moment.
        ("9999-12-31", periods.LATEST),
        ("9999-12-31T00:00:00Z", periods.LATEST),
    ],
)
def test_an_inclusive_end_takes_a_day_or_midnight_as_the_whole_day(text: str, last: datetime) -> None:
    value, whole_day = periods.moment(text)
    assert periods.last_moment(value, whole_day=whole_day) == last


def test_an_inclusive_start_is_the_moment_itself() -> None:
    """The other side needs no rule: a day, or midnight, already starts that day."""
    assert (
        periods.moment("2026-12-06")[0]
        == periods.moment("2026-12-06T00:00:00Z")[0]
        == datetime(2026, 12, 6, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("10", 10.0), ("0.5", 0.5), (str(MAX_WINDOW_SECONDS), MAX_WINDOW_SECONDS)]
)
def test_a_duplicate_window_is_seconds_up_to_a_day(text: str, seconds: float) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize(
    "text", ["0", "-1", "86401", "1e20", "nan", "inf", "ten", "", "1e3", " 1.5 ", "1_0", "١٫٥", "+10", "10."]
)
def test_any_other_window_is_refused_with_the_range(text: str) -> None:
    with pytest.raises(ValueError, match="above 0 and at most 86400"):
        parse_window(text)
