"""A SQLite store and its backups hold auth tokens and message bodies: Pigeon makes them
readable by their owner only, whatever the umask, and leaves an existing store's permissions
as the operator set them, with a warning when other users can read it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.store.backup import backup_sqlite
from pigeon.store.engine import Database, configuration_warnings
from pigeon.store.schema import upgrade


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_a_new_store_its_log_and_its_backup_are_the_owners_only(tmp_path: Path) -> None:
    path = tmp_path / "pigeon.db"
    db = Database.from_url(f"sqlite:///{path}")
    try:
        upgrade(db.engine)
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        assert {mode(path), mode(Path(f"{path}-wal")), mode(Path(f"{path}-shm"))} == {0o600}
        assert configuration_warnings(db.engine) == []
        copy = backup_sqlite(db.engine, tmp_path / "backup.db")
    finally:
        db.dispose()
    assert mode(copy.path) == 0o600


@pytest.mark.usefixtures("usual_umask")
def test_an_existing_store_keeps_its_mode_and_is_warned_of(tmp_path: Path) -> None:
    path = tmp_path / "pigeon.db"
    made = Database.from_url(f"sqlite:///{path}")
    upgrade(made.engine)
    made.dispose()
    os.chmod(path, 0o640)  # opened to a group on purpose, say
    db = Database.from_url(f"sqlite:///{path}")
    try:
        with db.write() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        [warning] = configuration_warnings(db.engine)
    finally:
        db.dispose()
    assert mode(path) == 0o640
    assert f"{path} (0640)" in warning and "chmod 600" in warning
