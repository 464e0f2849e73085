"""Per-sender pacing, in message segments per second, as carriers and Twilio's queue apply it.

A sender may start a new segment every 1/rate seconds. Each dispatcher reserves the next
slot of a sender in the store (``sender_pacing``), so processes on several hosts share one
sender's rate. A sender's queue may hold at most `QUEUE_HOURS` of traffic at its rate; a
create beyond that fails with 21611.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pigeon.domain.numbers import SenderKind, classify_sender

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


def reserve(next_free: datetime | None, now: datetime, occupies: timedelta) -> tuple[datetime, datetime]:
    """(slot, new next_free): the earliest start for a message and when the sender frees up."""
    slot = max(now, next_free) if next_free is not None else now
    return slot, slot + occupies
