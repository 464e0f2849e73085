"""Rules for the inventory of numbers free to buy (AvailablePhoneNumbers).

`Contains` is Twilio's number pattern: 2 to 16 characters of digits and letters, where a
letter stands for its telephone-keypad digit (ABC=2 ... WXYZ=9), ``*`` for any one digit,
``%`` for any run of digits (empty too), a leading ``+`` anchors the pattern to the start
of the number (its country code) and a trailing ``$`` to its end. Without anchors the
pattern may match anywhere. At least two characters must be digits or letters.

A pattern is matched against the E.164 number without its "+", so "+1415" finds numbers
in the 415 area code and "5$" the numbers ending in 5.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pigeon.domain.decimals import decimal_number

KEYPAD = {
    **dict.fromkeys("ABC", "2"),
    **dict.fromkeys("DEF", "3"),
    **dict.fromkeys("GHI", "4"),
    **dict.fromkeys("JKL", "5"),
    **dict.fromkeys("MNO", "6"),
    **dict.fromkeys("PQRS", "7"),
    **dict.fromkeys("TUV", "8"),
    **dict.fromkeys("WXYZ", "9"),
}

NUMBER_TYPES = ("local", "toll_free", "mobile")
ADDRESS_REQUIREMENTS = ("none", "any", "local", "foreign")

_PATTERN_CHARS = re.compile(r"[0-9A-Za-z*%+$]+")
_AREA_CODE = re.compile(r"[2-9][0-9]{2}")


class InvalidPattern(ValueError):
    """A Contains pattern that breaks Twilio's rules; the message says which."""


@dataclass(frozen=True)
class ContainsPattern:
    """A checked Contains pattern: digits with `*` (one digit) and `%` (a run)."""

    body: str
    anchored_start: bool
    anchored_end: bool

    @property
    def like(self) -> str:
        """SQL LIKE pattern over the number's digits (the E.164 number without its "+")."""
        core = self.body.replace("*", "_")
        return ("" if self.anchored_start else "%") + core + ("" if self.anchored_end else "%")

    @property
    def regex(self) -> re.Pattern[str]:
        """The same pattern as a regular expression over the number's digits."""
        core = "".join({"*": r"\d", "%": r"\d*"}.get(c, c) for c in self.body)
        return re.compile(("^" if self.anchored_start else "") + core + ("$" if self.anchored_end else ""))

    def matches(self, e164: str) -> bool:
        return self.regex.search(e164.lstrip("+")) is not None


def parse_contains(raw: str) -> ContainsPattern:
    """Check a Contains pattern and turn its letters into keypad digits."""
    text = raw.strip()
    if not 2 <= len(text) <= 16:
        raise InvalidPattern("Contains must be 2 to 16 characters long.")
    if _PATTERN_CHARS.fullmatch(text) is None:
        raise InvalidPattern("Contains may hold only digits, letters and the characters * % + $.")
    start, end = text.startswith("+"), text.endswith("$")
    body = text[1 if start else 0 : len(text) - 1 if end else len(text)]
    if "+" in body or "$" in body:
        raise InvalidPattern("In Contains, + may only come first and $ only last.")
    if sum(c.isalnum() for c in body) < 2:
        raise InvalidPattern("Contains needs at least two digits or letters besides * and %.")
    digits = "".join(KEYPAD.get(c.upper(), c) for c in body)
    return ContainsPattern(body=digits, anchored_start=start, anchored_end=end)


def is_area_code(raw: str) -> bool:
    """A North American area code: three digits, the first 2-9."""
    return _AREA_CODE.fullmatch(raw) is not None


def friendly_name(e164: str) -> str:
    """How Twilio writes an available number: "(415) 555-0100" in North America, else E.164."""
    digits = e164.lstrip("+")
    if digits.startswith("1") and len(digits) == 11:
        return f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return e164


def parse_flag(raw: str) -> bool | None:
    """A CSV or query flag: true/false, yes/no, 1/0, y/n (any case); None if it is none of them."""
    value = raw.strip().lower()
    if value in {"true", "1", "yes", "y"}:
        return True
    if value in {"false", "0", "no", "n"}:
        return False
    return None


def parse_coordinate(raw: str, limit: float) -> float | None:
    """A latitude (limit 90) or longitude (limit 180) in decimal degrees, or None if invalid
    (pigeon.domain.decimals: no exponent, NaN, spaces or non-ASCII digits)."""
    value = decimal_number(raw, signed=True)
    return float(value) if value is not None and -limit <= value <= limit else None


def distance_miles(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points, in miles."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 3958.8 * math.asin(math.sqrt(h))


#: The countries numbers are sold in (Twilio's AvailablePhoneNumbers countries): a search
#: there is answered, with an empty list when the inventory has none. Any other country is
#: a 404, as Twilio answers one it does not serve, unless an operator stocked numbers there.
COUNTRY_NAMES = {
    "AR": "Argentina",
    "AT": "Austria",
    "AU": "Australia",
    "BE": "Belgium",
    "BR": "Brazil",
    "CA": "Canada",
    "CH": "Switzerland",
    "CL": "Chile",
    "CO": "Colombia",
    "CZ": "Czech Republic",
    "DE": "Germany",
    "DK": "Denmark",
    "EE": "Estonia",
    "ES": "Spain",
    "FI": "Finland",
    "FR": "France",
    "GB": "United Kingdom",
    "GR": "Greece",
    "HK": "Hong Kong",
    "HU": "Hungary",
    "IE": "Ireland",
    "IL": "Israel",
    "IN": "India",
    "IT": "Italy",
    "JP": "Japan",
    "KR": "South Korea",
    "LT": "Lithuania",
    "LU": "Luxembourg",
    "MX": "Mexico",
    "NL": "Netherlands",
    "NO": "Norway",
    "NZ": "New Zealand",
    "PH": "Philippines",
    "PL": "Poland",
    "PR": "Puerto Rico",
    "PT": "Portugal",
    "RO": "Romania",
    "SE": "Sweden",
    "SG": "Singapore",
    "SK": "Slovakia",
    "US": "United States",
    "ZA": "South Africa",
}


def country_name(iso: str) -> str:
    return COUNTRY_NAMES.get(iso.upper(), iso.upper())
