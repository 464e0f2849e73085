"""Waiting, in a test, until another PostgreSQL session waits for a lock: the moment a race
test lets the transaction that holds the lock go on."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from pigeon.store.engine import Database

_LOCK_WAITS = sa.text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def wait_for_a_lock_wait(db: Database, *, timeout: float = 10.0, done: Callable[[], bool] = lambda: False) -> bool:
    """Until a session of `db`'s database waits for a lock (True), or `done()` says there is
    nothing left to wait for, or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as watch:
        while time.monotonic() < deadline and not done():
            waiting = watch.execute(_LOCK_WAITS).scalar_one()
            watch.rollback()
            if waiting:
                return True
            time.sleep(0.01)
    return False
