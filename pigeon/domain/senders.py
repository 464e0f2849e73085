"""Choosing a sender from a Messaging Service's pool for one recipient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pigeon.domain import numbers

#: Countries where an alphanumeric sender cannot be used (the networks require a number).
NO_ALPHA_COUNTRIES = frozenset({"US", "CA"})
NANP = frozenset({"US", "CA"})


def _area_code(e164: str) -> str | None:
    return e164[2:5] if e164.startswith("+1") and len(e164) == 12 else None


def choose_sender(
    candidates: Sequence[Mapping[str, Any]],
    recipient: str,
    *,
    sticky: str | None = None,
    alpha_senders: Sequence[str] = (),
    area_code_geomatch: bool = False,
    media: bool = False,
) -> str | None:
    """The pool sender for `recipient`, in Twilio's order of preference:

    1. the sticky sender (the one this recipient heard from before), if still in the pool;
    2. a short code of the recipient's country (fastest; short codes never cross borders);
    3. an alphanumeric sender, where the recipient's country accepts them;
    4. a long code of the recipient's country — with area-code geomatch, one with the
       recipient's area code first (US/CA);
    5. any long code that may send internationally.

    A message with `media` takes the first of these that can send MMS (a number with the
    capability; no alphanumeric sender can), the sticky sender only if it can; when none
    can, the same choice as a text, and the carrier says whether it takes the media.
    """
    if media:
        capable = [c for c in candidates if c.get("mms_capable")]
        names = {c["phone_number"] for c in capable}
        chosen = choose_sender(
            capable,
            recipient,
            sticky=sticky if sticky in names else None,
            area_code_geomatch=area_code_geomatch,
        )
        if chosen is not None:
            return chosen
    available = {c["phone_number"]: c for c in candidates}
    if sticky is not None and (sticky in available or sticky in alpha_senders):
        return sticky
    country = numbers.region_of(recipient)
    same_country = [c for c in candidates if c.get("iso_country") == country]
    short = [c for c in same_country if numbers.is_short_code(c["phone_number"])]
    if short:
        return str(short[0]["phone_number"])
    if alpha_senders and country is not None and country not in NO_ALPHA_COUNTRIES:
        return alpha_senders[0]
    long_same = [c for c in same_country if not numbers.is_short_code(c["phone_number"])]
    if long_same:
        if area_code_geomatch and country in NANP:
            wanted = _area_code(recipient)
            local = [c for c in long_same if _area_code(c["phone_number"]) == wanted]
            if local:
                return str(local[0]["phone_number"])
        return str(long_same[0]["phone_number"])
    long_codes = [c for c in candidates if not numbers.is_short_code(c["phone_number"])]
    return str(long_codes[0]["phone_number"]) if long_codes else None
