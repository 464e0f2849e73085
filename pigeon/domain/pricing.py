"""What a message costs: a price per segment by country and sender kind.

An MMS is priced per message, as carriers and Twilio charge it: from the `mms` table (country
-> sender kind -> price per message) when it names the route, else as one segment of the SMS
table, so that a file written before the `mms` table existed charges what it did. An MMS sent
as a text with links is a text, priced by its segments.

A sent message is priced by its destination's country and its sender's kind; a received one
by the country and kind of the number that received it (the `inbound` table, empty unless the
operator fills it: received messages cost nothing by default, so that an upgrade does not
start charging for them). Prices are negative decimal strings in the account's currency, as
Twilio reports charges ("-0.00790"). Messages refused before they reach a carrier cost nothing
(price stays null); one a carrier took and then reported failed is not charged either (its
price becomes `FREE`: `pigeon.app.failed_charges`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pigeon.domain.geo import country_problem
from pigeon.domain.numbers import SenderKind, classify_sender, region_of

#: Default per-segment prices (USD), close to public list prices; operators replace them.
DEFAULT_PRICES: Mapping[str, Mapping[str, str]] = {
    "US": {"long_code": "0.0079", "toll_free": "0.0079", "short_code": "0.0079", "alphanumeric": "0.0079"},
    "CA": {"long_code": "0.0079", "toll_free": "0.0079", "short_code": "0.0079"},
    "GB": {"long_code": "0.0400", "alphanumeric": "0.0400", "short_code": "0.0400"},
    "*": {"long_code": "0.0500", "toll_free": "0.0500", "short_code": "0.0500", "alphanumeric": "0.0500"},
}


#: Default prices of an MMS (USD, per message, whatever its length); the US and Canada only:
#: elsewhere an MMS usually goes as a text with links.
DEFAULT_MMS_PRICES: Mapping[str, Mapping[str, str]] = {
    "US": {"long_code": "0.0200", "toll_free": "0.0200", "short_code": "0.0200"},
    "CA": {"long_code": "0.0200", "toll_free": "0.0200", "short_code": "0.0200"},
}

Prices = Mapping[str, Mapping[str, str]]


def _per_segment(prices: Prices, country: str | None, kind: str) -> Decimal | None:
    for key in (country or "*", "*"):
        table = prices.get(key)
        if table and kind in table:
            return Decimal(table[kind])
    return None


#: The price of a message that costs nothing, written as a charged one is ("-0.00790").
FREE = "0.00000"


def _charge(each: Decimal | None, segments: int) -> str | None:
    if each is None:
        return None
    total = (each * max(segments, 1)).quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
    return f"{-total:.5f}"


@dataclass(frozen=True)
class PriceTable:
    prices: Prices = field(default_factory=lambda: DEFAULT_PRICES)
    unit: str = "USD"
    #: Received messages: the receiving number's country -> its kind -> price per segment.
    inbound: Prices = field(default_factory=dict)
    #: MMS sent: the destination's country -> the sender's kind -> price per message.
    mms: Prices = field(default_factory=lambda: DEFAULT_MMS_PRICES)

    def per_segment(self, recipient: str, sender: str) -> Decimal | None:
        return _per_segment(self.prices, region_of(recipient), str(classify_sender(sender) or SenderKind.LONG_CODE))

    def price(self, recipient: str, sender: str, segments: int, *, free: bool = False, mms: bool = False) -> str | None:
        """The charge for a sent message as Twilio shows it, e.g. "-0.01580"; None if unpriced.
        `free`: a message Twilio does not charge (the automatic reply to STOP/START/HELP);
        `mms`: a message sent with its media, priced once (see the module's docstring)."""
        if free:
            return FREE
        if mms:
            kind = str(classify_sender(sender) or SenderKind.LONG_CODE)
            each = _per_segment(self.mms, region_of(recipient), kind)
            if each is not None:
                return _charge(each, 1)
            return _charge(self.per_segment(recipient, sender), 1)
        return _charge(self.per_segment(recipient, sender), segments)

    def unpriced_kinds(self) -> list[str]:
        """Sender kinds the "*" table does not price: a message from one of them to a country
        the table does not name goes out with no price (null), counted in usage at a price of 0."""
        rest = self.prices.get("*", {})
        return [str(kind) for kind in SenderKind if str(kind) not in rest]

    def inbound_price(self, number: str, segments: int, *, country: str | None = None) -> str | None:
        """The charge for a message received on our `number` (a short code's `country` is its
        record's: the digits do not tell); None if received messages are not priced there."""
        if not self.inbound:
            return None
        kind = str(classify_sender(number) or SenderKind.LONG_CODE)
        return _charge(_per_segment(self.inbound, country or region_of(number), kind), segments)


#: The highest price per segment a table may give: a total must fit the store's price column.
MAX_PER_SEGMENT = Decimal(10_000)


def price_table(section: Mapping[str, Any]) -> PriceTable:
    """The [prices] table of the configuration file (country, or "*", -> sender kind -> price
    per segment; `[prices.inbound.<country>]` the same for received messages, and
    `[prices.mms.<country>]` per MMS sent), checked: ValueError naming the entry that cannot be
    used. Checked when the file is read, since a price that does not parse would otherwise fail
    every send. Outbound countries given replace the defaults, MMS prices included (an MMS is
    then priced as one segment unless `[prices.mms]` says otherwise); a file that gives only
    inbound or MMS prices keeps the default outbound ones."""
    outbound = {k: v for k, v in section.items() if k not in ("inbound", "mms")}
    inbound, mms = section.get("inbound", {}), section.get("mms")
    for name, table in (("inbound", inbound), ("mms", mms)):
        if table is not None and not isinstance(table, Mapping):
            raise ValueError(f"[prices.{name}] must be a table of countries")
    return PriceTable(
        prices=_prices(outbound, "prices") if outbound else DEFAULT_PRICES,
        inbound=_prices(inbound, "prices.inbound"),
        mms=_prices(mms, "prices.mms") if mms is not None else ({} if outbound else DEFAULT_MMS_PRICES),
    )


def _unit(name: str) -> str:
    return "per message" if name == "prices.mms" else "per segment"


def _prices(section: Mapping[str, Any], name: str) -> dict[str, dict[str, str]]:
    kinds = {str(k) for k in SenderKind}
    prices: dict[str, dict[str, str]] = {}
    for country, table in section.items():
        if country != "*" and not (len(country) == 2 and country.isalpha() and country.isupper()):
            raise ValueError(f'[{name}.{country}]: a country is two capital letters (US, GB), or "*" for the rest')
        problem = country_problem(country) if country != "*" else None
        if problem is not None:
            raise ValueError(f"[{name}.{country}]: {problem}")
        if not isinstance(table, Mapping):
            raise ValueError(f"[{name}.{country}] must be a table of sender kinds")
        prices[country] = {}
        for kind, raw in table.items():
            if kind not in kinds:
                raise ValueError(f"[{name}.{country}] {kind}: not a sender kind (one of {', '.join(sorted(kinds))})")
            try:
                value = Decimal(str(raw)) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite() or not 0 <= value < MAX_PER_SEGMENT:
                raise ValueError(
                    f"[{name}.{country}] {kind} = {raw!r}: a price {_unit(name)} is a number from 0 to "
                    f'{MAX_PER_SEGMENT} ("0.0079")'
                )
            prices[country][kind] = str(value)
    return prices
