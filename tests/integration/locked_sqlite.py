"""A SQLite store whose write lock another program holds (the sqlite3 shell, a backup tool):
Pigeon's writes are `StoreUnavailable` once a short busy timeout runs out."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pigeon.store.engine import Database
from pigeon.store.schema import upgrade


def locked_sqlite(tmp_path: Path, *, busy_ms: int = 100) -> tuple[Database, sqlite3.Connection]:
    """(the store, the other program's connection holding its write lock: ROLLBACK lets go)."""
    path = tmp_path / "pigeon.db"
    db = Database.from_url(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()

    @sa.event.listens_for(db.engine, "connect")
    def _impatient(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={busy_ms}")

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return db, other
