"""Reads of history from a PostgreSQL read replica (`PIGEON_DATABASE_REPLICA_URL`).

What grows with history (message listings and exports, the request log, the error log, the
doctor's searches, the console's pages over time) can read from a streaming replica of the
primary, leaving the primary's CPU to the traffic. Everything else stays on the primary:
writes, authentication, the checks of a send, and the fetch of one record, which a client
expects to see right after it made it. A replica runs a moment behind the primary (its
lag), so a listing may miss the last second's messages, as Twilio's listings may.

When the replica cannot be reached, history is read from the primary (and a warning logged
at most once a minute): slower for the primary, but nobody's listing fails for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine

from pigeon.domain.errors import StoreUnavailable

log = logging.getLogger(__name__)

WARN_EVERY = 60.0  # seconds between two warnings that the replica is out of reach


class Replica:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._warned_at = -WARN_EVERY

    @contextmanager
    def read(self, primary: Engine) -> Iterator[Connection]:
        """A read transaction on the replica, or on `primary` while the replica is out of reach."""
        from pigeon.store.engine import _unavailable_when_lost, connect, read  # it builds on this module

        try:
            conn = connect(self.engine)
        except StoreUnavailable as exc:
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                log.warning("the read replica is out of reach (%s); reading history from the primary", exc)
            with read(primary) as fallback:
                yield fallback
            return
        with conn, _unavailable_when_lost(), conn.begin():
            yield conn
