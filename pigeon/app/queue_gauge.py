"""How many segments wait for a sender, for the 21611 queue limit, without a sum per send.

The exact figure adds up every waiting message of the sender, which costs in proportion to
its queue: on every create that would make the API slow down exactly when a queue is long.
The gauge reads the figure at most once per `max_age` per sender and adds the segments this
process accepted since. Between reads it does not see what other processes accepted or what
the dispatcher sent. That is enough for this rule: the limit stands for ten hours of traffic
and exists to stop a runaway sender, so being off by a second of traffic changes nothing that
matters. Nothing here is state: it is rebuilt from the store after `max_age`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection

from pigeon.store.dispatch import queued_segments


class QueueGauge:
    def __init__(self, *, max_age: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._monotonic = monotonic
        self._lock = threading.Lock()  # PostgreSQL validates in several threads
        self._readings: dict[str, tuple[float, int]] = {}  # sender -> (read at, segments)

    def queued(self, conn: Connection, sender: str) -> int:
        """Segments waiting for `sender`, including those this process accepted lately."""
        now = self._monotonic()
        with self._lock:
            reading = self._readings.get(sender)
        if reading is not None and now - reading[0] < self.max_age:
            return reading[1]
        value = queued_segments(conn, sender)
        with self._lock:
            self._readings[sender] = (now, value)
            if len(self._readings) > 10_000:  # senders come and go: forget the stale ones
                self._readings = {s: r for s, r in self._readings.items() if now - r[0] < self.max_age}
        return value

    def accepted(self, sender: str, segments: int) -> None:
        """Count segments accepted for `sender` since its last reading."""
        with self._lock:
            reading = self._readings.get(sender)
            if reading is not None:
                self._readings[sender] = (reading[0], reading[1] + segments)
