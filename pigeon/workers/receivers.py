"""Keeping one slow receiver from taking every delivery slot of a webhook worker.

Deliveries go out in the order they fell due, whoever they are for. A receiver that accepts
connections and never answers (a load balancer in front of nothing is the usual case) holds
each request for the whole timeout, 15 s, so a backlog of its callbacks used to fill every
slot of the worker, and every other account's callbacks waited behind it: measured with
bench/callback_isolation.py, 300 messages for such a receiver delayed another receiver's
callbacks by 42-57 s.

So each receiver (an origin: scheme, host and port) gets a share of the slots until it has
shown that it is fast: a claimed delivery for a receiver that already has `share` deliveries
in hand (exchanging, or waiting for a slot) is not attempted but given back to the outbox.
- A receiver that has shown nothing yet (none of its exchanges is over here) has its extra
  deliveries given back as they were, due at once: a fast receiver answers within
  milliseconds, and the next claim takes them.
- A slow receiver (its exchanges typically take `slow_after` or longer, or one of them has
  been running that long) has them given back due a little later (`hold_for`): about one of
  its exchanges, so that the deliveries behind them come first.
- A fast receiver is never held back, whatever its volume: a single tenant's callbacks may
  use every slot, as before.

A delivery given back is not an attempt (no attempt row, the same attempt count, still first
in line for its message), so ordering and retries are as if the worker had not reached it
yet. What this costs in a store: one UPDATE per batch of deliveries given back, and those
deliveries are claimed again when due, so a slow receiver's backlog is read once per hold.
The state is this process's own, as the slots are.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pigeon.domain.urls import origin_of, url_for_log

log = logging.getLogger(__name__)

#: The shortest wait before a delivery given back is due again, in seconds.
LEAST_HOLD = 0.25
#: Origins remembered at most; past that, the ones with nothing in hand are forgotten.
MAX_REMEMBERED = 10_000


@dataclass
class _Receiver:
    unanswered: int = 0  # its claimed deliveries whose exchange is not over
    started: dict[int, float] = field(default_factory=dict)  # delivery id -> when its exchange began
    typical: float | None = None  # how long its exchanges take (a moving average), s
    holding: bool = False  # whether its deliveries are being given back (for the log)


class Receivers:
    def __init__(self, *, share: int, slow_after: float, longest_hold: float) -> None:
        self.share = max(1, share)
        self.slow_after = slow_after
        self.longest_hold = longest_hold
        self._known: dict[str, _Receiver] = {}

    def _of(self, url: str) -> _Receiver:
        origin = origin_of(url)
        receiver = self._known.get(origin)
        if receiver is None:
            if len(self._known) >= MAX_REMEMBERED:
                self._known = {k: r for k, r in self._known.items() if r.unanswered}
            receiver = self._known[origin] = _Receiver()
        return receiver

    def _slow(self, r: _Receiver, now: float) -> bool:
        if r.typical is not None and r.typical >= self.slow_after:
            return True
        oldest = next(iter(r.started.values()), None)  # exchanges begin in order
        return oldest is not None and now - oldest >= self.slow_after

    def admit(self, row: dict[str, Any], now: float) -> bool:
        """Whether to deliver a claimed row now (then it is counted until `ended`), or give it
        back (`hold_for` says until when)."""
        r = self._of(row["url"])
        if r.unanswered >= self.share and (r.typical is None or self._slow(r, now)):
            if not r.holding and self._slow(r, now):
                r.holding = True
                log.info(
                    "deliveries to %s are given back to the outbox while its receiver is slow",
                    url_for_log(origin_of(row["url"])),  # a URL that does not parse is its own origin
                    extra={"in_hand": r.unanswered, "typical_s": r.typical},
                )
            return False
        r.unanswered += 1
        return True

    def hold_for(self, row: dict[str, Any], now: float) -> float | None:
        """How long a row given back waits, in seconds: about one exchange of its slow receiver;
        None when its receiver has shown nothing yet (due again at once, as it was)."""
        r = self._of(row["url"])
        if not self._slow(r, now):
            return None
        typical = r.typical if r.typical is not None else self.slow_after
        return min(self.longest_hold, max(LEAST_HOLD, typical))

    def began(self, row: dict[str, Any], now: float) -> None:
        """An admitted row's exchange begins (it has a slot)."""
        self._of(row["url"]).started[row["id"]] = now

    def ended(self, row: dict[str, Any], now: float) -> None:
        """An admitted row is done with: its exchange is over, or it never began one."""
        r = self._of(row["url"])
        r.unanswered -= 1
        began = r.started.pop(row["id"], None)
        if began is not None:
            took = now - began
            r.typical = took if r.typical is None else 0.7 * r.typical + 0.3 * took
            if r.holding and not self._slow(r, now):
                r.holding = False
