"""Choosing a sender from a Messaging Service's pool for one recipient.

Among senders that are equally good for a recipient (the short codes of its country, or its
country's long codes, or those with its area code under geomatch), the recipient decides: a
stable hash of its number picks where to start in the sorted list of them. New recipients
spread evenly over the pool without reading anything, and a recipient keeps getting the same
sender while the pool stays the same (sticky sender or not). The senders after the first are
what a send falls back on when the first one's queue is full.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from pigeon.domain import numbers

#: Countries where an alphanumeric sender cannot be used (the networks require a number).
NO_ALPHA_COUNTRIES = frozenset({"US", "CA"})
NANP = frozenset({"US", "CA"})


def _area_code(e164: str) -> str | None:
    return e164[2:5] if e164.startswith("+1") and len(e164) == 12 else None


def spread(senders: Sequence[str], recipient: str) -> list[str]:
    """`senders`, sorted, starting at the one `recipient` hashes to and going round: the same
    order for the same recipient and senders, in any process (not Python's salted `hash`)."""
    ordered = sorted(senders)
    if len(ordered) < 2:
        return ordered
    digest = hashlib.blake2b(recipient.encode(), digest_size=8).digest()
    start = int.from_bytes(digest, "big") % len(ordered)
    return ordered[start:] + ordered[:start]


def _best_senders(
    candidates: Sequence[Mapping[str, Any]],
    recipient: str,
    alpha_senders: Sequence[str],
    area_code_geomatch: bool,
) -> list[str]:
    """The senders of the first of Twilio's tiers that has any for `recipient` (a short code
    of its country; an alphanumeric sender; a long code of its country, of its area code
    first under geomatch; any long code), the first of them the one to use."""
    country = numbers.region_of(recipient)
    same_country = [c["phone_number"] for c in candidates if c.get("iso_country") == country]
    short = [n for n in same_country if numbers.is_short_code(n)]
    if short:
        return spread(short, recipient)
    if alpha_senders and country is not None and country not in NO_ALPHA_COUNTRIES:
        # One per service; a pool holding several from before that rule uses its oldest first.
        return list(alpha_senders)
    long_same = [n for n in same_country if not numbers.is_short_code(n)]
    if long_same:
        if area_code_geomatch and country in NANP:
            wanted = _area_code(recipient)
            local = [n for n in long_same if _area_code(n) == wanted]
            if local:
                return spread(local, recipient)
        return spread(long_same, recipient)
    return spread([c["phone_number"] for c in candidates if not numbers.is_short_code(c["phone_number"])], recipient)


def sender_choices(
    candidates: Sequence[Mapping[str, Any]],
    recipient: str,
    *,
    sticky: str | None = None,
    alpha_senders: Sequence[str] = (),
    area_code_geomatch: bool = False,
    media: bool = False,
) -> list[str]:
    """The pool senders for `recipient`, the one to use first, in Twilio's order of preference:

    1. the sticky sender (the one this recipient heard from before), if still in the pool;
    2. a short code of the recipient's country (fastest; short codes never cross borders);
    3. an alphanumeric sender, where the recipient's country accepts them;
    4. a long code of the recipient's country — with area-code geomatch, one with the
       recipient's area code first (US/CA);
    5. any long code that may send internationally.

    After the first come the other senders of its tier, as `spread` orders them: just as
    good, for when the first one's queue is full. After a sticky sender come those a new
    recipient would be given. Empty when the pool has nothing for `recipient`.

    A message with `media` takes a sender that can send MMS (a number with the capability; no
    short code here, nor any alphanumeric sender, can), the sticky sender first if it can, but
    never from further down this order than the text would go: when the text goes from a
    sender of the recipient's country (2-4), one of that country's numbers; when it goes from
    any long code (5), one of those. When there is none, the same choice as a text, and the
    MMS converter or the carrier decides what becomes of the media: a US recipient of a pool
    with a US short code and a GB number that can send MMS is not texted from abroad.
    """
    best = _best_senders(candidates, recipient, alpha_senders, area_code_geomatch)
    available = {c["phone_number"] for c in candidates}
    if media:
        chosen = _mms_senders(candidates, recipient, alpha_senders, area_code_geomatch)
        capable = {c["phone_number"] for c in candidates if c.get("mms_capable")}
        if sticky is not None and sticky in capable:
            return [sticky, *(s for s in chosen if s != sticky)]
        if chosen:
            return chosen
    if sticky is not None and (sticky in available or sticky in alpha_senders):
        return [sticky, *(s for s in best if s != sticky)]
    return best


def _mms_senders(
    candidates: Sequence[Mapping[str, Any]],
    recipient: str,
    alpha_senders: Sequence[str],
    area_code_geomatch: bool,
) -> list[str]:
    """The senders that can send MMS among those the text's tier allows (`sender_choices`):
    the recipient's country's numbers when the pool has a sender of its country (or an
    alphanumeric sender it takes), any long code only when the text would go from one."""
    country = numbers.region_of(recipient)
    home = [c for c in candidates if c.get("iso_country") == country]
    alpha_tier = bool(alpha_senders) and country is not None and country not in NO_ALPHA_COUNTRIES
    allowed = home if home or alpha_tier else candidates
    capable = [c for c in allowed if c.get("mms_capable")]
    return _best_senders(capable, recipient, (), area_code_geomatch)


def choose_sender(
    candidates: Sequence[Mapping[str, Any]],
    recipient: str,
    *,
    sticky: str | None = None,
    alpha_senders: Sequence[str] = (),
    area_code_geomatch: bool = False,
    media: bool = False,
) -> str | None:
    """The first of `sender_choices`: the pool sender for `recipient`, or None."""
    choices = sender_choices(
        candidates,
        recipient,
        sticky=sticky,
        alpha_senders=alpha_senders,
        area_code_geomatch=area_code_geomatch,
        media=media,
    )
    return choices[0] if choices else None
