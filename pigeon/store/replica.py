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

import contextlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
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
        """A read transaction on the replica, or on `primary` while the replica is out of reach
        (`engine.read` raises StoreUnavailable on entering when it cannot connect)."""
        from pigeon.store.engine import read  # that module builds the Database on this one

        with contextlib.ExitStack() as stack:
            try:
                conn = stack.enter_context(read(self.engine))
            except StoreUnavailable as exc:
                now = time.monotonic()
                if now - self._warned_at >= WARN_EVERY:
                    self._warned_at = now
                    log.warning("the read replica is out of reach (%s); reading history from the primary", exc)
                conn = stack.enter_context(read(primary))
            yield conn

    def lag(self) -> float | None:
        """Seconds the replica is behind the primary: 0 once it has replayed everything it
        received (an idle primary sends nothing, and the last replayed commit then only ages),
        else the age of its last replayed commit. None when it is not a standby at all.
        `StoreUnavailable` when it cannot be reached."""
        from pigeon.store.engine import read

        with read(self.engine) as conn:
            value = conn.execute(_LAG).scalar()
        return None if value is None else max(0.0, float(value))

    def warnings(self) -> list[str]:
        """What is wrong with the replica as configured, in words for the operator (at start)."""
        try:
            with self.engine.connect() as conn:
                standby = conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar()
        except Exception as exc:
            return [f"The read replica could not be reached ({exc}); history is read from the primary until it can be."]
        if standby:
            return []
        return [
            "PIGEON_DATABASE_REPLICA_URL names a database that is not a standby (pg_is_in_recovery() is false): "
            "history is read from it, but nothing keeps it up to date with the primary."
        ]


_LAG = sa.text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL"
    " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
    " ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) END"
)
