"""A SQLite store that holds data goes down every migration to an empty schema and back up.

SQLite cannot alter most of a table in place, so Alembic's batch mode copies a table to a new
one, drops the old and renames the new. With foreign keys enforced, dropping `accounts`
(which other tables refer to) failed with "FOREIGN KEY constraint failed" (migrations 0017,
0013 and 0012 going down) once the store held an account."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from pigeon.bootstrap import ensure_first_account
from pigeon.store.engine import Database
from pigeon.store.schema import ForeignKeysBroken, alembic_config, current_revision, downgrade, upgrade
from pigeon.store.tables import accounts, available_numbers, phone_numbers
from pigeon.testing import FrozenClock


def _counts(db: Database) -> tuple[int, int, int]:
    with db.read() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (accounts, phone_numbers, available_numbers)
        )


def test_a_populated_store_downgrades_to_base_and_upgrades_back(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    try:
        upgrade(db.engine)
        assert ensure_first_account(db, FrozenClock()) is not None
        head = ScriptDirectory.from_config(alembic_config(db.engine)).get_current_head()
        for target in ("0016", "0011"):  # past the migrations that rebuild `accounts`, data still there
            downgrade(db.engine, target)
            assert current_revision(db.engine) == target
            assert _counts(db)[:2] == (1, 2)
        downgrade(db.engine, "base")
        assert current_revision(db.engine) is None
        upgrade(db.engine)
        assert current_revision(db.engine) == head
        with db.write() as conn:  # foreign keys are enforced again afterwards
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        db.dispose()


def test_a_migration_that_leaves_dangling_rows_is_undone(tmp_path: Path) -> None:
    """With foreign keys off while migrations run, what they leave is checked before commit."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    try:
        upgrade(db.engine)
        assert ensure_first_account(db, FrozenClock()) is not None
        head = current_revision(db.engine)
        downgrade(db.engine, "0018")
        # Rows whose account is not there (made with a connection that does not check).
        with contextlib.closing(sqlite3.connect(tmp_path / "pigeon.db", isolation_level=None)) as raw:
            raw.execute("UPDATE phone_numbers SET account_sid = 'AC" + "f" * 32 + "'")
        with pytest.raises(ForeignKeysBroken, match="phone_numbers"):
            upgrade(db.engine)
        assert current_revision(db.engine) == "0018" != head
    finally:
        db.dispose()
