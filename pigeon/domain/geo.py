"""Geo permissions: the countries an account may send to (Twilio's 21408 when it may not).

A platform that sends one-time codes is a target for SMS pumping: someone makes it send
thousands of texts to premium ranges in far-away countries and shares the termination fee.
The usual defence is a list of destination countries per account. An account's list is
stored as text (`store`): ISO 3166 codes separated by commas, or `*` for any country.

An account without a list of its own follows its parent's (a subaccount made for a customer
sends where its parent may), and a top-level account without one may send anywhere, as
Pigeon always allowed. A list admits only numbers with a country: the non-geographic ranges
(+800 freephone, +881-+883 satellite and international networks, the classic pumping
destinations) are refused whenever a list is set.
"""

from __future__ import annotations

import re

import phonenumbers

#: Stored for "any country", which a subaccount needs to send beyond its parent's list.
ANY = "*"

_SEPARATORS = re.compile(r"[\s,;]+")


def parse_countries(text: str) -> str:
    """The stored form of a list given by a person ("us, CA gb" -> "CA,GB,US"; "*" stays),
    or ValueError naming what is not a country."""
    codes = {c.upper() for c in _SEPARATORS.split(text.strip()) if c}
    if not codes:
        raise ValueError("no country given: name at least one ISO 3166 code, such as US, or * for any")
    if codes == {ANY}:
        return ANY
    unknown = sorted(c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS)
    if unknown:
        raise ValueError(f"not a country code known to the numbering plans: {', '.join(unknown)}")
    return ",".join(sorted(codes))


#: Codes people write that are not ISO 3166's, and the one they mean.
_ALIASES = {"UK": "GB", "EL": "GR"}


def country_problem(code: str) -> str | None:
    """Why `code` is not a country a phone number can be in (None: it is one): not an ISO
    3166 alpha-2 code the numbering plans know, with the code meant when it is a common
    alias ("UK" for GB). Routes and prices by country use it, so that one that could never
    match is refused at load instead of routing nothing."""
    if code in phonenumbers.SUPPORTED_REGIONS:
        return None
    meant = _ALIASES.get(code.upper())
    hint = f"did you mean {meant!r}?" if meant else "use an ISO 3166 alpha-2 code such as 'GB'"
    return f"{code!r} is not a country code known to the numbering plans; {hint}"


def effective(own: str | None, parent: str | None) -> frozenset[str] | None:
    """The countries an account may send to (None: any), from its own stored list and its
    parent's (None for a top-level account, or a parent with no list)."""
    chosen = own if own is not None else parent
    if chosen is None or chosen == ANY:
        return None
    return frozenset(chosen.split(","))


def refusal(to: str, country: str | None, allowed: frozenset[str] | None) -> str | None:
    """Why `to` (in `country`, None when it has none) may not be sent to, or None if it may."""
    if allowed is None or (country is not None and country in allowed):
        return None
    where = f"is in {country}" if country else "belongs to no country (a non-geographic range)"
    return (
        f"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: "
        f"{to} {where}, and this account may send to {', '.join(sorted(allowed))} only."
    )
