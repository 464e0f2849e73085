"""Phone number and sender-ID rules (DESIGN.md §6 "phone numbers").

Built on ``phonenumbers`` as shipped by *phonenumberslite*: the metadata for
parsing and number types only.  Never import ``phonenumbers.geocoder`` or
``phonenumbers.carrier`` here: their data costs ~0.6 s and ~100 MiB per process.

Two deliberate departures from "just call is_valid_number":

* We accept numbers that are merely *possible* (right length for a known
  country).  A self-hosted platform must route fictional and test ranges
  (US 555-01XX, Twilio's +1500555XXXX magic numbers, Ofcom's +447700900XXX drama
  range) that the library's metadata calls invalid.  A truly unassigned number
  is then refused by the carrier with 30005/30006, as on Twilio.
* The library says US numbers are FIXED_LINE_OR_MOBILE, so it cannot tell a
  landline; that answer comes from carrier lookups or a table, not from here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, TypeVar, cast

import phonenumbers
from phonenumbers import PhoneNumber, PhoneNumberType, ValidationResult

NumberType = Literal["mobile", "landline", "fixed_line_or_mobile", "toll_free", "voip", "unknown"]

# phonenumbers' "region" for non-geographic entities (+800, +882, ...) and for "no region".
_NON_GEOGRAPHIC = "001"
_UNKNOWN_REGION = "ZZ"

# Digits and the punctuation people type between them; "+" only in front.
_DIALABLE_RE = re.compile(r"\+?[0-9 ().\-]+")
_SHORT_CODE_RE = re.compile(r"[0-9]{3,8}")
# Twilio: up to 11 of A-Z a-z 0-9 space - + _ & . , and not all digits.
_ALPHANUMERIC_RE = re.compile(r"[A-Za-z0-9 \-+_&.,]{1,11}")
_HAS_LETTER_RE = re.compile(r"[A-Za-z]")

_TYPE_NAMES: dict[int, NumberType] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.VOIP: "voip",
}


class SenderKind(StrEnum):
    """What a ``From`` is; decides throughput, country rules and reply-ability."""

    LONG_CODE = "long_code"
    TOLL_FREE = "toll_free"
    SHORT_CODE = "short_code"
    ALPHANUMERIC = "alphanumeric"


def _parse(raw: str, default_region: str | None = None) -> PhoneNumber | None:
    """Parse to a dialable number, or None; see the module docstring for the acceptance rule."""
    text = raw.strip()
    if _DIALABLE_RE.fullmatch(text) is None:
        return None  # no vanity letters, extensions or tel: URIs: a number sends as it is written
    if not text.startswith("+") and default_region is None:
        return None  # a bare digit string is ambiguous (short code? national?) without a region
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    country_code = number.country_code
    if country_code is None or phonenumbers.region_code_for_country_code(country_code) == _UNKNOWN_REGION:
        return None
    # IS_POSSIBLE only: IS_POSSIBLE_LOCAL_ONLY (e.g. a 7-digit US number) is not dialable from abroad.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    if number.country_code == 1 and not _nanp_shape_ok(number):
        return None
    return number


def _nanp_shape_ok(number: PhoneNumber) -> bool:
    """NANP area codes and exchanges start with 2-9.

    ``is_possible_number`` checks only the length, so without this "+10005550100"
    would pass; every carrier (and Twilio, with 21211) refuses such a number.
    """
    national = phonenumbers.national_significant_number(number)
    return len(national) == 10 and national[0] in "23456789" and national[3] in "23456789"


#: The longest text read as a phone number or a sender: a number written with spaces, dashes
#: and brackets is well within it. Longer text is none of them, and is not cached: an
#: anonymous client sending a long junk To on every request would otherwise fill the caches
#: below with it (65,536 entries of whatever size it sent).
MAX_NUMBER_TEXT = 64

_F = TypeVar("_F", bound=Callable[..., Any])


def _cached(fallback: object) -> Callable[[_F], _F]:
    """lru_cache for text short enough to be a number; `fallback` for anything longer."""

    def wrap(fn: _F) -> _F:
        cached = lru_cache(maxsize=65536)(fn)

        @functools.wraps(fn)
        def bounded(text: str, *args: Any, **kwargs: Any) -> Any:
            return fallback if len(text) > MAX_NUMBER_TEXT else cached(text, *args, **kwargs)

        return cast(_F, bounded)

    return wrap


# Parsing a number with phonenumbers costs tens of microseconds and every send parses its To
# and From; the answers are pure functions of the text, so recent ones are kept.
@_cached(None)
def to_e164(raw: str, default_region: str | None = None) -> str | None:
    """Normalise a user-supplied number to E.164 ("+1 (415) 555-0100" -> "+14155550100").

    Numbers without a leading "+" are accepted only when ``default_region`` (ISO
    3166 alpha-2, e.g. "US") says how to read them.  Returns None when the input
    is not a dialable number.
    """
    number = _parse(raw, default_region)
    if number is None:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def in_country_of(raw: str, sender: str) -> str | None:
    """A TwiML `<Message to>` in E.164. Twilio reads a `to` without '+' in the country of the
    number it is sent from, local formats included ("(415) 555-1212" from a US number,
    "07400123456" from a UK one); the REST API's To has no such sender to read it by, and stays
    E.164 only (`to_e164` without a region). None when `raw` is no number, or has no '+' and
    `sender` no country (a short code, an alphanumeric ID)."""
    return to_e164(raw, region_of(sender))


def sender_as_keyed(sender: str, region: str | None) -> str:
    """An inbound sender as opt-outs are keyed: in E.164, as sends to it are written. A carrier
    may write it as people write it at home (SMPP TON 0: "07700900123"); that is read in
    `region`, the country of the number it texted, as a TwiML `<Message to>` is read in the
    country of its sender (`in_country_of`). A short code, an alphanumeric sender, and digits
    that make no number there stay as written: no country is guessed."""
    e164 = to_e164(sender)
    if e164 is not None:
        return e164
    if region is None or is_short_code(sender):
        return sender
    return to_e164(sender, region) or sender


def with_country_code(digits: str) -> str | None:
    """A number written in E.164 without its '+' ("14155552671", or " 14155552671" from a form
    that read an unencoded '+' as a space), in E.164; None unless the digits, read after a '+',
    make a *valid* number (not merely a possible one, as `to_e164` accepts): a US national
    "2025550123" would otherwise read as Egypt's +20 25550123."""
    text = digits.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    e164 = to_e164("+" + text)
    if e164 is None or not phonenumbers.is_valid_number(phonenumbers.parse(e164)):
        return None
    return e164


def national_in(raw: str, regions: Sequence[str]) -> tuple[str, str] | None:
    """A number written as people write it at home ("07700 900123", "(415) 555-2671"), read in
    the one of `regions` (ISO countries) where it makes a number: (E.164, that country). Read
    as `to_e164` with a region reads it, possible numbers included (Ofcom's drama range is no
    *valid* number). When it makes a number in several, a valid one is preferred (a US
    "(415) 555-2671" is also a possible, invalid UK number); still several, it is none: the
    country is not guessed."""
    readings: dict[str, str] = {}
    for region in regions:
        e164 = to_e164(raw, region)
        if e164 is not None:
            readings.setdefault(e164, region)
    if len(readings) > 1:
        readings = {e: r for e, r in readings.items() if phonenumbers.is_valid_number(phonenumbers.parse(e))}
    if len(readings) != 1:
        return None
    [(e164, region)] = readings.items()
    return e164, region


@_cached(None)
def region_of(e164: str) -> str | None:
    """ISO country code of a number ("US", "GB", ...), or None if unknown or non-geographic.

    For numbers the metadata does not recognise (fictional ranges) we fall back to
    the main country of the calling code, so +1 fictional numbers read as "US".
    """
    number = _parse(e164)
    if number is None:
        return None
    region = phonenumbers.region_code_for_number(number)
    if region is None and number.country_code is not None:
        region = phonenumbers.region_code_for_country_code(number.country_code)
    if region in (_NON_GEOGRAPHIC, _UNKNOWN_REGION):
        return None
    return region


def iso_country(raw: str) -> str | None:
    """An ISO 3166 alpha-2 country as stored ("us" -> "US"), or None unless it is two letters
    that the numbering plan knows ("USA", "U.S." and "XX" are none)."""
    code = raw.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        return None
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


def in_country(e164: str, country: str) -> bool:
    """Whether the number can be one of `country`'s (ISO, upper case): a number the plan places
    must be placed there; one it does not (a fictional range) must at least share the
    country's calling code (+1 555 numbers may be American or Canadian)."""
    number = _parse(e164)
    if number is None:
        return False
    if phonenumbers.is_valid_number(number):
        return phonenumbers.region_code_for_number(number) == country
    return number.country_code == phonenumbers.country_code_for_region(country)


def is_short_code(s: str) -> bool:
    """3-8 ASCII digits, no "+": the shape of a short code (which is country-bound)."""
    return _SHORT_CODE_RE.fullmatch(s) is not None


def number_or_short_code(raw: str) -> str | None:
    """A number as stored: a short code as it is, any other number in E.164; None if neither."""
    return raw if is_short_code(raw) else to_e164(raw)


def is_number_sender(stored: str) -> bool:
    """Whether a message's From, as stored (`number_or_short_code`, or an alphanumeric sender
    ID as given), is a number: E.164 or a short code, which only the account holding it may
    send from. An alphanumeric sender ID is no one's number (it always has a letter, and
    never starts with "+")."""
    return stored.startswith("+") or is_short_code(stored)


def is_alphanumeric_sender(s: str) -> bool:
    """Twilio's alphanumeric sender-ID rule: 1-11 allowed characters, at least one letter.

    The letter requirement is what keeps an all-digit string from posing as a
    number that recipients would try to reply to.
    """
    return _ALPHANUMERIC_RE.fullmatch(s) is not None and _HAS_LETTER_RE.search(s) is not None


@_cached("unknown")
def number_type(e164: str) -> NumberType:
    """Line type from the library metadata; "unknown" for invalid input and rarer types.

    US/CA numbers come back "fixed_line_or_mobile" (the plan does not separate
    them), so this cannot be used to detect landlines there.
    """
    number = _parse(e164)
    if number is None:
        return "unknown"
    return _TYPE_NAMES.get(phonenumbers.number_type(number), "unknown")


@_cached(None)
def classify_sender(s: str) -> SenderKind | None:
    """Kind of a ``From`` value, or None if it cannot be a sender at all.

    ``s`` is expected stripped (whitespace policy belongs to the API layer).
    Checked in this order: short code (digits only), E.164 number (toll-free by
    metadata, e.g. US 800/833/844/855/866/877/888, otherwise long code), then
    alphanumeric ID, so "+Shop" is still an alphanumeric ID while "+1415" (a "+"
    and digits but no valid number) is nothing.
    """
    if is_short_code(s):
        return SenderKind.SHORT_CODE
    e164 = to_e164(s) if s.startswith("+") else None
    if e164 is not None:
        return SenderKind.TOLL_FREE if number_type(e164) == "toll_free" else SenderKind.LONG_CODE
    if is_alphanumeric_sender(s):
        return SenderKind.ALPHANUMERIC
    return None
