"""Usage: the ledger written as messages are priced or received, and Twilio's Usage Records
read from it (pigeon.domain.usage says what counts, and when)."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import usage as rules
from pigeon.domain.errors import ApiError
from pigeon.domain.flags import read_flag
from pigeon.store import accounts as account_store
from pigeon.store import usage as store

Row = dict[str, Any]


@dataclass(frozen=True)
class Counted:
    """One message for the ledger."""

    account_sid: str
    outbound: bool
    media: bool  # went (or came) as MMS
    segments: int
    price: str | None


def count(conn: Connection, messages: Iterable[Counted], *, now: datetime) -> None:
    """Add messages to today's (UTC) usage, in the caller's transaction."""
    day = now.date().isoformat()
    store.add_usage(conn, _totals((day, m) for m in messages))


def withdraw(conn: Connection, messages: Iterable[tuple[date, Counted]]) -> None:
    """Take messages counted before back out of the usage of the (UTC) day each was counted
    on, in the caller's transaction: that day's sums hold them, so none goes below zero, and
    a later day's (which a daily trigger watches) is not lowered for them."""
    store.take_usage(conn, _totals(((day.isoformat(), m) for day, m in messages)))


def _totals(messages: Iterable[tuple[str, Counted]]) -> dict[tuple[str, str, str], tuple[int, int, int]]:
    totals: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for day, m in messages:
        entry = totals[(m.account_sid, day, rules.category_of(outbound=m.outbound, media=m.media))]
        entry[0] += 1
        entry[1] += m.segments
        entry[2] += rules.price_micros(m.price)
    return {key: (a, b, c) for key, (a, b, c) in totals.items()}


@dataclass(frozen=True)
class UsageRecord:
    account_sid: str
    category: str
    start: date
    end: date
    messages: int
    segments: int
    price_micros: int


def usage_records(
    conn: Connection,
    account_sid: str,
    period: rules.Period,
    params: Mapping[str, str],
    *,
    today: date,
) -> list[UsageRecord]:
    """The records of Usage/Records/{period}.json: for each range the period cuts the query's
    days into, one record per category (those with nothing included), oldest range first."""
    category = params.get("Category")
    if category is not None and category not in rules.CATEGORIES:
        known = ", ".join(rules.CATEGORIES)
        raise ApiError(20422, f"Category {category!r} is not one Pigeon reports; it reports {known}.")
    include = read_flag("IncludeSubaccounts", params.get("IncludeSubaccounts")) is not False
    accounts = (
        [a["sid"] for a in account_store.list_accounts(conn, visible_to=account_sid)] if include else [account_sid]
    )
    known_first = store.first_day(conn, accounts)
    try:
        first, last = rules.resolve_range(
            period,
            start=params.get("StartDate") or None,
            end=params.get("EndDate") or None,
            today=today,
            first_day=date.fromisoformat(known_first) if known_first else today,
        )
    except rules.UsageError as exc:
        raise ApiError(20422, str(exc)) from None
    categories = [rules.CATEGORIES[category]] if category else list(rules.CATEGORIES.values())
    leaves = sorted({leaf for c in categories for leaf in c.leaves})
    days = store.usage_by_day(conn, accounts, first=first.isoformat(), last=last.isoformat(), categories=leaves)
    ranges = rules.periods(period, first, last)
    starts = [start.isoformat() for start, _ in ranges]
    by_range: dict[int, list[Row]] = defaultdict(list)
    for d in days:  # each day falls in the last range that starts on or before it
        by_range[bisect.bisect_right(starts, d["day"]) - 1].append(d)
    records = []
    for n, (start, end) in enumerate(ranges):
        within = by_range.get(n, [])
        for c in categories:
            rows = [d for d in within if d["category"] in c.leaves]
            records.append(
                UsageRecord(
                    account_sid=account_sid,
                    category=c.name,
                    start=start,
                    end=end,
                    messages=sum(r["messages"] for r in rows),
                    segments=sum(r["segments"] for r in rows),
                    price_micros=sum(r["price_micros"] for r in rows),
                )
            )
    return records


def price_text(micros: int) -> str:
    """Millionths of the unit as Twilio writes a usage price: "0.0237", "12", "0"."""
    text = f"{Decimal(micros) / 1_000_000:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def totals_by_account(conn: Connection, *, first: date, last: date, account_sid: str | None = None) -> list[Row]:
    """Each account's usage by category over the days (one account's, if given), for `pigeon usage`."""
    return store.totals_by_account(conn, first=first.isoformat(), last=last.isoformat(), account_sid=account_sid)
