"""Usage: what an account sent and received, by day and category, and the periods that
Twilio's Usage Records resources report it over.

A message counts once, on the day it counts for: an outbound message when the carrier took it
(the day it was `sent` and priced; a message refused before it reached a carrier costs
nothing and is not usage), an inbound one when it was received. One that a carrier took and
then reported failed is taken back out of the day it counted on (`pigeon.app.failed_charges`):
a failed message is not charged. Counts are kept in a ledger
of their own, written in the transaction that prices or receives the message, so that usage
stays when messages are deleted, redacted, erased or past PIGEON_MESSAGE_DAYS.

Pure: dates in, dates out; "today" is given.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

__all__ = [
    "CATEGORIES",
    "TOTAL_PRICE",
    "Category",
    "Period",
    "UsageError",
    "category_of",
    "parse_date",
    "periods",
    "price_micros",
    "resolve_range",
]

#: A category's name (Twilio's), what it holds, and which ledger categories make it up.
#: The ledger keeps the four leaves; "sms" and "mms" add up both directions, "totalprice"
#: everything (its record's usage is the price, as on Twilio: what billing scripts read).
TOTAL_PRICE = "totalprice"
CATEGORY_DESCRIPTIONS = {
    "sms": "SMS messages sent and received",
    "sms-outbound": "SMS messages sent",
    "sms-inbound": "SMS messages received",
    "mms": "MMS messages sent and received",
    "mms-outbound": "MMS messages sent",
    "mms-inbound": "MMS messages received",
    TOTAL_PRICE: "Total price of all usage",
}
LEAVES = ("sms-outbound", "sms-inbound", "mms-outbound", "mms-inbound")


@dataclass(frozen=True)
class Category:
    name: str
    description: str
    leaves: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    name: Category(
        name,
        text,
        LEAVES
        if name == TOTAL_PRICE
        else tuple(leaf for leaf in LEAVES if leaf == name or leaf.startswith(name + "-")),
    )
    for name, text in CATEGORY_DESCRIPTIONS.items()
}


class UsageError(ValueError):
    """A Usage Records query that cannot be answered; the message says which parameter."""


def category_of(*, outbound: bool, media: bool) -> str:
    """The ledger category of a message: an MMS whose media went as links in an SMS is an SMS."""
    return f"{'mms' if media else 'sms'}-{'outbound' if outbound else 'inbound'}"


def price_micros(price: str | None) -> int:
    """A message's price (Twilio's negative string, "-0.00790") as millionths of the unit charged."""
    if not price:
        return 0
    return abs(int((Decimal(price) * 1_000_000).to_integral_value()))


# --- periods ---------------------------------------------------------------------------------

#: A subresource of Usage/Records (Records, Daily, Monthly, Yearly, AllTime, Today, Yesterday,
#: ThisMonth, LastMonth): how a range is cut into records, and its default range.
Period = str

_OFFSET = re.compile(r"([+-])([0-9]{1,5})days")  # ASCII digits: \d takes "١٢" too


def parse_date(value: str, *, today: date, name: str) -> date:
    """YYYY-MM-DD, or an offset from today such as "-30days" or "+1days" (as Twilio takes)."""
    offset = _OFFSET.fullmatch(value)
    if offset is not None:
        days = int(offset[2])
        return today + timedelta(days=days if offset[1] == "+" else -days)
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name} must be a date as YYYY-MM-DD or an offset such as -30days, not {value!r}.") from None


def resolve_range(
    period: Period, *, start: str | None, end: str | None, today: date, first_day: date
) -> tuple[date, date]:
    """The days a query covers, first and last included. `first_day`: the account's first day,
    where an open range starts. The fixed periods (Today … LastMonth) ignore StartDate and EndDate."""
    if period == "Today":
        return today, today
    if period == "Yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if period == "ThisMonth":
        return today.replace(day=1), today
    if period == "LastMonth":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    first = parse_date(start, today=today, name="StartDate") if start else min(first_day, today)
    last = parse_date(end, today=today, name="EndDate") if end else today
    if last < first:
        raise UsageError(f"EndDate {last.isoformat()} is before StartDate {first.isoformat()}.")
    if (last - first).days > 366 * 20:
        raise UsageError("StartDate and EndDate are more than twenty years apart.")
    return first, last


def periods(period: Period, first: date, last: date) -> list[tuple[date, date]]:
    """The ranges a query's records cover, oldest first: one per day, month or year of the
    range (cut to it), or the whole range."""
    if period == "Daily":
        return [(day, day) for day in (first + timedelta(days=n) for n in range((last - first).days + 1))]
    if period == "Monthly":
        cuts = []
        month = first.replace(day=1)
        while True:
            end = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            cuts.append((max(month, first), min(end, last)))
            if end >= last:  # stop before stepping past it: after December 9999 is past date.max
                return cuts
            month = end + timedelta(days=1)
    if period == "Yearly":
        return [
            (max(date(year, 1, 1), first), min(date(year, 12, 31), last)) for year in range(first.year, last.year + 1)
        ]
    return [(first, last)]
