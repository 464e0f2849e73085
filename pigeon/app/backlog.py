"""The pipeline's backlog, for GET /metrics (pigeon/store/backlog.py)."""

from __future__ import annotations

from pigeon.ports import Clock
from pigeon.store.backlog import Backlog, backlog
from pigeon.store.engine import Database

__all__ = ["Backlog", "read_backlog", "read_replica_lag"]


def read_replica_lag(db: Database) -> float | None:
    """The read replica's lag in seconds (None: not a standby). `StoreUnavailable` when it
    cannot be reached. Only for a Database with a replica."""
    assert db.replica is not None
    return db.replica.lag()


def read_backlog(db: Database, clock: Clock) -> Backlog:
    """One snapshot. `StoreUnavailable` when the store cannot be reached."""
    with db.read() as conn:
        return backlog(conn, now=clock.now())
