"""Query parameters that carry numbers and times, parsed once for every list and search, and
the check that a query string is UTF-8 (`query_not_utf8`, run for every route by
pigeon.api.text_guard).

Each refuses what it cannot use with 20422 and a sentence naming the parameter, before any
read: a value that parses but that the store cannot hold (an ErrorCode past 32 bits, an
EndDate of 9999-12-31 whose next day is past the calendar) used to reach the store and come
back as a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from pigeon.api.forms import not_utf8
from pigeon.domain import flags, integers, periods
from pigeon.domain.errors import ApiError
from pigeon.domain.quoted import shown
from pigeon.store.tables import LARGEST_COLUMN_INTEGER

#: What an Integer column holds on both stores (the filters' columns: status and error codes).
COLUMN_INTEGER = (-LARGEST_COLUMN_INTEGER - 1, LARGEST_COLUMN_INTEGER)


def query_not_utf8(raw: bytes) -> ApiError | None:
    """The 20422 naming the first parameter of the query string `raw` whose percent escapes are
    not UTF-8 (pigeon.api.forms.not_utf8), or None. Read as Starlette reads a query (Latin-1,
    then each name and value unquoted on its own), but with errors="strict" where Starlette
    puts U+FFFD."""
    try:
        parse_qsl(raw.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return not_utf8(raw)
    return None


def whole_number(
    params: Mapping[str, str], name: str, *, low: int | None = COLUMN_INTEGER[0], high: int | None = COLUMN_INTEGER[1]
) -> int | None:
    """The parameter as an integer from `low` to `high` (None: unbounded, for a caller that
    checks the range itself), or None when it is absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    value = integers.whole_number(raw, signed=low is None or low < 0)
    if value is None:
        raise ApiError(20422, f"{name} must be a whole number (digits 0-9), not {shown(raw)}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(20422, f"{name} {value} is out of range ({low} to {high}).")
    return value


def flag_param(params: Mapping[str, str], name: str, *, default: bool) -> bool:
    """A true/false parameter (pigeon.domain.flags); `default` when absent or empty."""
    value = flags.read_flag(name, params.get(name))
    return default if value is None else value


def moment(name: str, raw: str) -> tuple[datetime, bool]:
    """(value, is_whole_day) of a day, an ISO 8601 date-time (the SDKs send those) or an RFC
    2822 date (what our responses carry)."""
    try:
        return periods.moment(raw)
    except ValueError as exc:
        raise ApiError(20422, f"{name}: {exc}.") from None


def since(name: str, raw: str, now: datetime) -> datetime:
    """A duration back from `now` (15m, 2h, 1d) or a moment."""
    try:
        return periods.since(raw, now)
    except ValueError as exc:
        raise ApiError(20422, f"{name}: {exc}.") from None


@dataclass(frozen=True)
class DateFilter:
    """What a list's `Name`, `Name<` and `Name>` parameters ask of one date column."""

    on: tuple[datetime, datetime] | None = None  # [start, end): a GMT day
    after: datetime | None = None  # inclusive
    before: datetime | None = None  # inclusive
    #: The parameters as given, in that order, for the paging URIs to carry along.
    kept: tuple[tuple[str, str], ...] = ()


def date_filter(params: Mapping[str, str], name: str) -> DateFilter:
    """`Name` (DateSent, DateCreated) names a GMT day. The SDKs send every date as a
    date-time at midnight (date_sent=date(2024, 1, 2) goes out as DateSent=2024-01-02T00:00:00Z),
    so a time narrows nothing: matching that exact second would find nothing for SDK users.
    `Name>` is on or after its moment; `Name<` on or before it, to the end of the day for a day
    or midnight (`periods.last_moment`). 20422 for a value that is no date."""
    on = after = before = None
    kept: list[tuple[str, str]] = []
    if raw := params.get(name):
        day = moment(name, raw)[0].replace(hour=0, minute=0, second=0, microsecond=0)
        on = (day, periods.end_of(day, whole_day=True))
        kept.append((name, raw))
    if raw := params.get(f"{name}>"):
        after = moment(f"{name}>", raw)[0]
        kept.append((f"{name}>", raw))
    if raw := params.get(f"{name}<"):
        value, whole = moment(f"{name}<", raw)
        before = periods.last_moment(value, whole_day=whole)
        kept.append((f"{name}<", raw))
    return DateFilter(on=on, after=after, before=before, kept=tuple(kept))
