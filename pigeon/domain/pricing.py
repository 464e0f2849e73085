"""What a sent message costs: a price per segment by destination country and sender kind.

Prices are negative decimal strings in the account's currency, as Twilio reports charges
("-0.00790"). Messages refused before they reach a carrier cost nothing (price stays null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from pigeon.domain.numbers import SenderKind, classify_sender, region_of

#: Default per-segment prices (USD), close to public list prices; operators replace them.
DEFAULT_PRICES: Mapping[str, Mapping[str, str]] = {
    "US": {"long_code": "0.0079", "toll_free": "0.0079", "short_code": "0.0079", "alphanumeric": "0.0079"},
    "CA": {"long_code": "0.0079", "toll_free": "0.0079", "short_code": "0.0079"},
    "GB": {"long_code": "0.0400", "alphanumeric": "0.0400", "short_code": "0.0400"},
    "*": {"long_code": "0.0500", "toll_free": "0.0500", "short_code": "0.0500", "alphanumeric": "0.0500"},
}


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: DEFAULT_PRICES)
    unit: str = "USD"

    def per_segment(self, recipient: str, sender: str) -> Decimal | None:
        country = region_of(recipient) or "*"
        kind = str(classify_sender(sender) or SenderKind.LONG_CODE)
        for key in (country, "*"):
            table = self.prices.get(key)
            if table and kind in table:
                return Decimal(table[kind])
        return None

    def price(self, recipient: str, sender: str, segments: int) -> str | None:
        """The charge for a sent message as Twilio shows it, e.g. "-0.01580"; None if unpriced."""
        each = self.per_segment(recipient, sender)
        if each is None:
            return None
        total = (each * max(segments, 1)).quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP)
        return f"{-total:.5f}"


#: The highest price per segment a table may give: a total must fit the store's price column.
MAX_PER_SEGMENT = Decimal(10_000)


def price_table(section: Mapping[str, Any]) -> PriceTable:
    """The [prices] table of the configuration file (country, or "*", -> sender kind -> price
    per segment), checked: ValueError naming the entry that cannot be used. Checked when the
    file is read, since a price that does not parse would otherwise fail every send."""
    kinds = {str(k) for k in SenderKind}
    prices: dict[str, dict[str, str]] = {}
    for country, table in section.items():
        if country != "*" and not (len(country) == 2 and country.isalpha() and country.isupper()):
            raise ValueError(f'[prices.{country}]: a country is two capital letters (US, GB), or "*" for the rest')
        if not isinstance(table, Mapping):
            raise ValueError(f"[prices.{country}] must be a table of sender kinds")
        prices[country] = {}
        for kind, raw in table.items():
            if kind not in kinds:
                raise ValueError(f"[prices.{country}] {kind}: not a sender kind (one of {', '.join(sorted(kinds))})")
            try:
                value = Decimal(str(raw)) if isinstance(raw, str | int | float) and not isinstance(raw, bool) else None
            except InvalidOperation:
                value = None
            if value is None or not value.is_finite() or not 0 <= value < MAX_PER_SEGMENT:
                raise ValueError(
                    f"[prices.{country}] {kind} = {raw!r}: a price per segment is a number from 0 to "
                    f'{MAX_PER_SEGMENT} ("0.0079")'
                )
            prices[country][kind] = str(value)
    return PriceTable(prices=prices)
