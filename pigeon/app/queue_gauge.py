"""How many segments wait for a sender, for the 21611 queue limit, without a sum per send.

The exact figure adds up every waiting message of the sender, which costs in proportion to
its queue: on every create that would make the API slow down exactly when a queue is long.
The gauge reads the figure at most once per `max_age` per sender and adds the segments this
process accepted since. Between reads it does not see what other processes accepted or what
the dispatcher sent. That is enough for this rule: the limit stands for ten hours of traffic
and exists to stop a runaway sender, so being off by a second of traffic changes nothing that
matters. Nothing here is state: it is rebuilt from the store after `max_age`.

Readings are kept by queue (`domain.pacing.queue_key`), as the dispatcher paces: a number's,
or one account's alphanumeric sender ID.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Connection

from pigeon.domain.pacing import queue_key
from pigeon.store.dispatch import queued_segments


class QueueGauge:
    def __init__(self, *, max_age: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._monotonic = monotonic
        self._lock = threading.Lock()  # PostgreSQL validates in several threads
        self._readings: dict[str, tuple[float, int]] = {}  # sender -> (read at, segments)

    def queued(self, conn: Connection, sender: str, *, account_sid: str) -> int:
        """Segments waiting in the queue of `sender` as `account_sid` sends from it, including
        those this process accepted lately."""
        now = self._monotonic()
        key = queue_key(account_sid, sender)
        with self._lock:
            reading = self._readings.get(key)
        if reading is not None and now - reading[0] < self.max_age:
            return reading[1]
        value = queued_segments(conn, sender, account_sid=account_sid)
        with self._lock:
            self._readings[key] = (now, value)
            if len(self._readings) > 10_000:  # senders come and go: forget the stale ones
                self._readings = {s: r for s, r in self._readings.items() if now - r[0] < self.max_age}
        return value

    def accepted(self, sender: str, segments: int, *, account_sid: str) -> None:
        """Count segments `account_sid` accepted for `sender` since its queue's last reading."""
        key = queue_key(account_sid, sender)
        with self._lock:
            reading = self._readings.get(key)
            if reading is not None:
                self._readings[key] = (reading[0], reading[1] + segments)
