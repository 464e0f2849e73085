"""Moments and spans that people type into filters: "since 15m", "EndDate=2026-12-06".

The API, the console and the command line all take them, so the rules live here once:
- a duration back from now is digits and a unit: 90s, 15m, 2h, 3d;
- a moment is a day (YYYY-MM-DD, the whole GMT day), an ISO 8601 date-time, or an RFC 2822
  date (what Pigeon's own responses carry, so a client may echo one back); without a zone, UTC;
- a filter's end is exclusive: a day ends where the next begins, a date-time just after itself;
- an inclusive end (`<=`) that is a day, or a date-time at midnight UTC (how the SDKs send a
  date), takes in that whole day; a start needs no such rule, midnight already starts the day.

Every value a person can type either parses or raises ValueError with a sentence that says
what was wrong, including the ones at the edge of the calendar ("9999-12-31", "99999999d"),
whose arithmetic would otherwise overflow.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from pigeon.domain.integers import whole_number
from pigeon.domain.quoted import shown

__all__ = ["EARLIEST", "LATEST", "back_from", "end_of", "last_moment", "moment", "since"]

#: ASCII digits only (\d takes "١٠" too); how many is checked by pigeon.domain.integers.
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

#: The bounds of what a filter can name (Python's calendar: years 1 to 9999).
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def back_from(now: datetime, text: str) -> datetime | None:
    """The moment a duration (15m, 2h, 3d) before `now` names; None if `text` is no duration.
    A duration reaching back before year 1 is the earliest moment: everything is after it."""
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    amount = whole_number(match.group(1))
    if amount is None:  # more digits than a count needs: further back than the calendar goes
        return EARLIEST
    try:
        return now - timedelta(**{_UNITS[match.group(2)]: amount})
    except OverflowError:
        return EARLIEST


def moment(text: str) -> tuple[datetime, bool]:
    """(the moment, whether it names a whole day) of a day, an ISO 8601 date-time or an RFC
    2822 date. Raises ValueError for anything else."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC), True
        if value[:1].isalpha():
            parsed = parsedate_to_datetime(value)
        else:
            parsed = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except (ValueError, TypeError):
        raise ValueError(f"{shown(text)} is not a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC), False
    try:  # in UTC, as the store keeps times: 9999-12-31T23:00-05:00 is past the calendar's end
        return parsed.astimezone(UTC), False
    except OverflowError:
        raise ValueError(f"{shown(text)} is outside the calendar (years 1 to 9999, in UTC)") from None


def since(text: str, now: datetime) -> datetime:
    """A duration back from `now` or a moment (its start, for a day). Raises ValueError."""
    back = back_from(now, text)
    if back is not None:
        return back
    try:
        return moment(text)[0]
    except ValueError:
        raise ValueError(f"{shown(text)} is neither a duration (15m, 2h, 1d) nor an ISO 8601 date-time") from None


def last_moment(value: datetime, *, whole_day: bool) -> datetime:
    """The inclusive end of a filter that runs up to and including `value` (DateSent<).

    A day, and a date-time at midnight UTC, take in the whole day: the SDKs send every date as
    a date-time at midnight (date_sent_before=date(2026, 12, 7) goes out as
    DateSent<=2026-12-07T00:00:00Z) and document `<=YYYY-MM-DD` as "on and before that
    date"; read as the instant, it would leave out the very day asked for. Any other
    date-time is an instant. `value` is in UTC, as `moment` gives it."""
    midnight = value.hour == value.minute == value.second == value.microsecond == 0
    if not (whole_day or midnight):
        return value
    end = end_of(value, whole_day=True)
    return end if end == LATEST else end - timedelta(microseconds=1)


def end_of(value: datetime, *, whole_day: bool) -> datetime:
    """The exclusive end of a filter that runs up to `value`: the next day for a whole day,
    the next microsecond for a date-time; the last moment of the calendar past 9999-12-31."""
    try:
        return value + (timedelta(days=1) if whole_day else timedelta(microseconds=1))
    except OverflowError:
        return LATEST
