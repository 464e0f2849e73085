"""`pigeon db backup`: a whole, checked copy of a SQLite store while it is being written, never
a partial file at the target, and a clear refusal for PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pigeon.app import accounts as account_use
from pigeon.cli import app
from pigeon.domain.sids import Prefix, new_sid
from pigeon.store import backup as backup_module
from pigeon.store.backup import BackupError, backup_sqlite
from pigeon.store.engine import Database
from pigeon.store.schema import current_revision, upgrade
from pigeon.store.tables import messages


@pytest.fixture
def store(tmp_path: Path) -> Database:
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    upgrade(db.engine)
    return db


def message(account: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "sid": new_sid(Prefix.SMS),
        "account_sid": account,
        "direction": "outbound-api",
        "from_": "+14155550100",
        "to": "+14155552671",
        "body": "hello " * 20,
        "status": "delivered",
        "date_created": now,
        "date_updated": now,
    }


def test_a_backup_taken_while_writers_commit_is_one_whole_snapshot(store: Database, tmp_path: Path) -> None:
    with store.write() as conn:
        account = account_use.create_account(conn, friendly_name="backup", now=datetime.now(UTC))["sid"]
        conn.execute(messages.insert(), [message(account) for _ in range(5000)])
    stop = threading.Event()
    written = [0]

    def writer() -> None:  # the server's commits, ten messages each, going on throughout
        while not stop.is_set():
            with store.write() as conn:
                conn.execute(messages.insert(), [message(account) for _ in range(10)])
            written[0] += 10

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        made = backup_sqlite(store.engine, tmp_path / "copy.db")
    finally:
        stop.set()
        thread.join()
    assert written[0] > 0  # the writer went on while the copy was taken
    assert 5000 <= made.messages <= 5000 + written[0]
    assert made.messages % 10 == 0  # whole commits only: no torn transaction
    assert made.revision == current_revision(store.engine)
    copy = Database.from_url(f"sqlite:///{made.path}")
    try:
        with copy.read() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar_one() == made.messages
    finally:
        copy.dispose()
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_backup_never_overwrites_and_leaves_nothing_when_it_fails(
    store: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "copy.db"
    target.write_bytes(b"yesterday's backup")
    with pytest.raises(BackupError, match="exists already"):
        backup_sqlite(store.engine, target)
    assert target.read_bytes() == b"yesterday's backup"
    with pytest.raises(BackupError, match="no directory"):
        backup_sqlite(store.engine, tmp_path / "missing" / "copy.db")
    # A copy that fails its check never takes the target's name, nor stays half-written.

    def torn(path: Path) -> tuple[str | None, int]:
        assert path.exists() and path.name.startswith(".other.db.partial-")
        raise BackupError("the copy failed SQLite's integrity check: page 7 is never used")

    monkeypatch.setattr(backup_module, "_check", torn)
    with pytest.raises(BackupError, match="integrity check"):
        backup_sqlite(store.engine, tmp_path / "other.db")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.db", "pigeon.db", "pigeon.db-shm", "pigeon.db-wal"]


def test_the_command(store: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGEON_DATABASE_URL", str(store.engine.url))
    done = CliRunner().invoke(app, ["db", "backup", str(tmp_path / "nightly.db")])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # as Rich wraps it on a narrow terminal
    assert "backed up to" in said and "0 messages" in said
    again = CliRunner().invoke(app, ["db", "backup", str(tmp_path / "nightly.db")])
    assert again.exit_code == 1 and "exists already" in " ".join(again.output.split())


@pytest.mark.postgres
def test_the_command_points_postgresql_to_its_own_tools(pg: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIGEON_DATABASE_URL", str(pg.engine.url.render_as_string(hide_password=False)))
    done = CliRunner().invoke(app, ["db", "backup", "/tmp/never-written.db"])
    assert done.exit_code == 2 and "pg_dump" in done.output
    assert not Path("/tmp/never-written.db").exists()
