"""Keeping the webhook outbox's history to its retention (pigeon/store/webhook_history.py)."""

from __future__ import annotations

from datetime import datetime

from pigeon.store import webhook_history
from pigeon.store.engine import Database


def purge_chunk(db: Database, *, before: datetime, limit: int) -> int:
    """One short transaction: at most `limit` finished deliveries older than `before` go."""
    with db.write() as conn:
        return webhook_history.purge_finished(conn, before=before, limit=limit)
