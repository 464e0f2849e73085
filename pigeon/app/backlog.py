"""The pipeline's backlog, for GET /metrics (pigeon/store/backlog.py)."""

from __future__ import annotations

from pigeon.ports import Clock
from pigeon.store.backlog import Backlog, backlog
from pigeon.store.engine import Database

__all__ = ["Backlog", "read_backlog"]


def read_backlog(db: Database, clock: Clock) -> Backlog:
    """One snapshot. `StoreUnavailable` when the store cannot be reached."""
    with db.read() as conn:
        return backlog(conn, now=clock.now())
