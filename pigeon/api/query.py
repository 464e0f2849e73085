"""Query parameters that carry numbers and times, parsed once for every list and search.

Each refuses what it cannot use with 20422 and a sentence naming the parameter, before any
read: a value that parses but that the store cannot hold (an ErrorCode past 32 bits, an
EndDate of 9999-12-31 whose next day is past the calendar) used to reach the store and come
back as a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pigeon.domain import periods
from pigeon.domain.errors import ApiError
from pigeon.store.tables import LARGEST_COLUMN_INTEGER

#: What an Integer column holds on both stores (the filters' columns: status and error codes).
COLUMN_INTEGER = (-LARGEST_COLUMN_INTEGER - 1, LARGEST_COLUMN_INTEGER)


def whole_number(
    params: Mapping[str, str], name: str, *, low: int | None = COLUMN_INTEGER[0], high: int | None = COLUMN_INTEGER[1]
) -> int | None:
    """The parameter as an integer from `low` to `high` (None: unbounded, for a caller that
    checks the range itself), or None when it is absent or empty."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(20422, f"{name} must be a whole number, not {raw!r}.") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ApiError(20422, f"{name} {value} is out of range ({low} to {high}).")
    return value


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
