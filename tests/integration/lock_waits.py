"""Waiting, in a test, until another PostgreSQL session waits for a lock: the moment a race
test lets the transaction that holds the lock go on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.engine import Database

R = TypeVar("R")

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


def while_held(db: Database, hold: Callable[[Connection], object], other: Callable[[], R]) -> R:
    """Run `hold` in a transaction left open, then `other` in a thread; commit `hold`'s
    transaction once `other` is done or waits for a lock (a race, made to happen in one order).
    Returns what `other` returned, or raises what it raised."""
    outcome: list[R] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(other())
        except BaseException as exc:
            errors.append(exc)

    with db.engine.connect() as conn:
        held = conn.begin()
        hold(conn)
        thread = threading.Thread(target=run)
        thread.start()
        wait_for_a_lock_wait(db, done=lambda: not thread.is_alive())
        held.commit()
        thread.join(10)
    assert not thread.is_alive(), "the other side is still waiting"
    if errors:
        raise errors[0]
    return outcome[0]
