"""Usage Triggers: a threshold on an account's usage that calls a URL once it is reached.

A trigger watches one usage category (pigeon.domain.usage) by one field of its usage record:
`count` (messages), `usage` (segments) or `price` (the unit charged). A recurring trigger
measures its period only, in UTC, and fires at most once a period: `daily` today, `monthly`
this month, `yearly` this year; `alltime` and a trigger without Recurring measure all time
and fire once, ever. TriggerValue may be an offset such as "+30", counted from the value at
creation (as Twilio takes it).

Pure: values in, decisions out; "today" is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pigeon.domain.decimals import decimal_number
from pigeon.domain.quoted import shown
from pigeon.domain.usage import TOTAL_PRICE

__all__ = [
    "RECURRING",
    "TRIGGER_BY",
    "TriggerValue",
    "TriggerValueError",
    "compared_field",
    "parse_trigger_value",
    "period_key",
    "period_range",
    "value_of",
    "value_text",
]

#: Recurring values, and the Usage Records subresource each one's current value comes from.
RECURRING = {"daily": "Today", "monthly": "ThisMonth", "yearly": "Yearly", "alltime": "AllTime"}
#: TriggerBy values: the field of a usage record a trigger compares.
TRIGGER_BY = ("count", "usage", "price")
DEFAULT_TRIGGER_BY = "usage"

#: The largest threshold taken: beyond any usage a store could count, and small enough that
#: every database keeps it exactly.
MAX_VALUE = Decimal("1e15")
#: The finest threshold: a millionth of the unit a price is charged in (what the store keeps).
MAX_DECIMALS = 6


class TriggerValueError(ValueError):
    """A TriggerValue that is not a positive number (or an offset such as +30)."""


@dataclass(frozen=True)
class TriggerValue:
    amount: Decimal
    offset: bool  # "+30": thirty more than the value now


def parse_trigger_value(raw: str, *, trigger_by: str) -> TriggerValue:
    """A TriggerValue as given: a positive number, or "+N" for N more than the value now.
    Counts (messages, segments) are whole; a price may have up to six decimals."""
    # A leading "+" is the offset, not a sign: the number after it is read unsigned.
    offset = raw.startswith("+")
    amount = decimal_number(raw[1:] if offset else raw)
    if amount is None:
        raise TriggerValueError(f"TriggerValue must be a positive number such as 100 or +30, not {shown(raw)}.")
    if len(raw.partition(".")[2]) > MAX_DECIMALS:
        raise TriggerValueError(f"TriggerValue has at most {MAX_DECIMALS} decimals, not {shown(raw)}.")
    if amount <= 0:
        raise TriggerValueError(f"TriggerValue must be more than 0, not {shown(raw)}.")
    if amount >= MAX_VALUE:
        raise TriggerValueError(f"TriggerValue {shown(raw)} is too large.")
    if trigger_by != "price" and amount != amount.to_integral_value():
        unit = "messages" if trigger_by == "count" else "segments"
        raise TriggerValueError(
            f"TriggerValue counts {unit} when TriggerBy is {trigger_by}: {shown(raw)} is not whole."
        )
    return TriggerValue(amount, offset)


def period_key(recurring: str | None, today: date) -> str:
    """The period a trigger fires once in, as a key: a trigger fired in a period with this key
    does not fire again until the key changes."""
    if recurring == "daily":
        return today.isoformat()
    if recurring == "monthly":
        return today.strftime("%Y-%m")
    if recurring == "yearly":
        return str(today.year)
    return "all"


def period_range(recurring: str | None, today: date) -> tuple[date | None, date]:
    """The days a trigger's current value covers, first and last included (None: from the
    first day there is)."""
    if recurring == "daily":
        return today, today
    if recurring == "monthly":
        return today.replace(day=1), today
    if recurring == "yearly":
        return today.replace(month=1, day=1), today
    return None, today


def compared_field(category: str, trigger_by: str) -> str:
    """The usage record field a trigger compares: its TriggerBy, except that totalprice's usage
    is its price (as its record says), so a usage threshold there is money."""
    return "price" if category == TOTAL_PRICE and trigger_by == "usage" else trigger_by


def value_of(trigger_by: str, *, messages: int, segments: int, price_micros: int) -> Decimal:
    """The watched field of a usage record: messages, segments, or the price in units."""
    if trigger_by == "count":
        return Decimal(messages)
    if trigger_by == "usage":
        return Decimal(segments)
    return Decimal(price_micros) / 1_000_000


def value_text(value: Decimal) -> str:
    """A value as the API writes it: "100", "12.5", "0.0079"."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
