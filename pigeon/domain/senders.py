"""Choosing a sender from a Messaging Service's pool for one recipient."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pigeon.domain import numbers


def choose_sender(candidates: Sequence[Mapping[str, Any]], recipient: str, *, sticky: str | None = None) -> str | None:
    """The pool sender for `recipient`: the sticky sender if it is still in the pool, else a
    sender from the recipient's country (a short code first: it is fastest), else any long
    code that may send internationally. Short codes never cross their country."""
    available = {c["phone_number"]: c for c in candidates}
    if sticky is not None and sticky in available:
        return sticky
    country = numbers.region_of(recipient)
    same_country = [c for c in candidates if c.get("iso_country") == country]
    short = [c for c in same_country if numbers.is_short_code(c["phone_number"])]
    if short:
        return str(short[0]["phone_number"])
    if same_country:
        return str(same_country[0]["phone_number"])
    long_codes = [c for c in candidates if not numbers.is_short_code(c["phone_number"])]
    return str(long_codes[0]["phone_number"]) if long_codes else None
