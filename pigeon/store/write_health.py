"""Whether this process's writes reach the store, for GET /healthz.

A health check that only connects (``SELECT 1``) says nothing of writes: on SQLite it never
even touches the file, and a store locked by another program past the busy timeout, or on a
full disk, answered healthy while every send got 503. Trying a write at each check would
cost a write transaction per poll (load balancers poll every few seconds), queued with the
group commit's. Instead every write transaction (`pigeon.store.engine.write`) reports its
outcome here, and the store counts as unable to take writes while the last one to end failed
for want of the store (`StoreUnavailable`) less than `FAILED_WRITE_COUNTS_FOR` seconds ago.
A process that writes nothing for that long is given the benefit of the doubt again: its
next write finds out.
"""

from __future__ import annotations

import time
import weakref

from sqlalchemy.engine import Engine

#: Seconds a write that failed for want of the store keeps the store unhealthy, unless a
#: write succeeds meanwhile. The workers and the request log write every few seconds.
FAILED_WRITE_COUNTS_FOR = 30.0


class WriteHealth:
    def __init__(self) -> None:
        self._failed_at: float | None = None
        self.reason = ""

    def succeeded(self) -> None:
        self._failed_at = None

    def failed(self, reason: str) -> None:
        self._failed_at, self.reason = time.monotonic(), reason

    def failing(self) -> bool:
        """Whether the last write to end failed for want of the store, recently."""
        at = self._failed_at
        return at is not None and time.monotonic() - at < FAILED_WRITE_COUNTS_FOR


_HEALTH: weakref.WeakKeyDictionary[Engine, WriteHealth] = weakref.WeakKeyDictionary()


def of(engine: Engine) -> WriteHealth:
    """The write outcomes of `engine` in this process."""
    health = _HEALTH.get(engine)
    if health is None:
        health = _HEALTH.setdefault(engine, WriteHealth())
    return health
