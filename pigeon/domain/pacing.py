"""Per-sender pacing, in message segments per second, as carriers and Twilio's queue apply it.

A sender may start a new segment every 1/rate seconds. Each dispatcher reserves the next
slot of a sender in the store (``sender_pacing``), so processes on several hosts share one
sender's rate. A sender's queue may hold at most `QUEUE_HOURS` of traffic at its rate; a
create beyond that fails with 21611.

Whose sender. A number or short code belongs to one account, and its queue and pace are the
number's, whatever account sends from it (only its holder can, and a number moved between
accounts keeps its pace). An alphanumeric sender ID belongs to no one: unrelated accounts
send as "INFO" alike, each through its own carrier registration, so each account's "INFO"
has a queue and a pace of its own (`queue_key`): one account's backlog must not fill another's
queue (21611) nor hold its traffic back. The rate is the sender's, [pacing.senders] included,
for each account apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pigeon.domain.numbers import SenderKind, classify_sender, is_number_sender

QUEUE_HOURS = 10

DEFAULT_RATES: Mapping[SenderKind, float] = {
    SenderKind.LONG_CODE: 1.0,
    SenderKind.TOLL_FREE: 3.0,
    SenderKind.SHORT_CODE: 100.0,
    SenderKind.ALPHANUMERIC: 10.0,
}


@dataclass(frozen=True)
class PacingPolicy:
    rates: Mapping[SenderKind, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    #: Rates for individual senders (a number with a raised limit), segments per second.
    overrides: Mapping[str, float] = field(default_factory=dict)

    def rate(self, sender: str) -> float:
        if sender in self.overrides:
            return self.overrides[sender]
        kind = classify_sender(sender) or SenderKind.LONG_CODE
        return self.rates.get(kind, DEFAULT_RATES[kind])

    def duration(self, sender: str, segments: int) -> timedelta:
        """How long `segments` occupy the sender."""
        return timedelta(seconds=max(segments, 1) / self.rate(sender))

    def queue_capacity(self, sender: str) -> int:
        """Segments a sender may have waiting before new creates fail with 21611."""
        return int(self.rate(sender) * QUEUE_HOURS * 3600)


def queue_key(account_sid: str, sender: str) -> str:
    """Whose queue and pace a message takes (module docstring): a number's or short code's own,
    or, for an alphanumeric sender ID, the account's "<account SID>:<sender>" (the
    ``sender_pacing`` key; a number starts with "+" or a digit, an account SID with "AC")."""
    return sender if is_number_sender(sender) else f"{account_sid}:{sender}"


def reserve(next_free: datetime | None, now: datetime, occupies: timedelta) -> tuple[datetime, datetime]:
    """(slot, new next_free): the earliest start for a message and when the sender frees up."""
    slot = max(now, next_free) if next_free is not None else now
    return slot, slot + occupies


def pacing_policy(section: Mapping[str, Any]) -> PacingPolicy:
    """The [pacing] table of the configuration file (a rate per sender kind, and
    [pacing.senders] for single senders), checked: ValueError naming the entry that cannot be
    used. A rate of 0 would otherwise divide every send by zero, and one that is not a number
    would stop the workers at start."""
    kinds = {str(k): k for k in SenderKind}
    rates = dict(DEFAULT_RATES)
    for key, raw in section.items():
        if key == "senders":
            continue
        if key not in kinds:
            raise ValueError(f"[pacing] {key}: not a sender kind (one of {', '.join(sorted(kinds))}) nor senders")
        rates[kinds[key]] = _rate(f"[pacing] {key}", raw)
    senders = section.get("senders", {})
    if not isinstance(senders, Mapping):
        raise ValueError("[pacing.senders] must be a table of sender = segments per second")
    overrides = {str(sender): _rate(f"[pacing.senders] {sender}", raw) for sender, raw in senders.items()}
    return PacingPolicy(rates=rates, overrides=overrides)


def _rate(where: str, raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
        return float(raw)
    raise ValueError(f"{where} = {raw!r}: a rate is a number of segments per second above 0")
