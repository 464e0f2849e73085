"""Prepared statements read exactly what Connection.execute reads (types included), inside
the caller's transaction, on SQLite and PostgreSQL; and the SQLite checkpointer copies the
write-ahead log into the database file."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

import pigeon.store.engine as engine_module
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.store.engine import Database, WalCheckpointer
from pigeon.store.prepared import Prepared
from pigeon.store.schema import upgrade
from pigeon.store.tables import accounts, phone_numbers

NOW = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

_NUMBER_SINCE = Prepared(
    sa.select(phone_numbers)
    .where(
        phone_numbers.c.account_sid == sa.bindparam("b_account"),
        phone_numbers.c.date_created >= sa.bindparam("b_since"),
    )
    .order_by(phone_numbers.c.phone_number)
    .limit(1)
)


def test_rows_match_connection_execute(db: Database) -> None:
    with db.write() as conn:
        acc = account_use.create_account(conn, friendly_name="prepared", now=NOW)
        number_use.provision(conn, account_sid=acc["sid"], phone_number="+14155550142", now=NOW)
    with db.read() as conn:
        expected = dict(
            conn.execute(sa.select(phone_numbers).where(phone_numbers.c.account_sid == acc["sid"])).mappings().one()
        )
        got = _NUMBER_SINCE.first(conn, {"b_account": acc["sid"], "b_since": NOW - timedelta(seconds=1)})
        assert got == expected
        assert got["date_created"] == NOW and got["date_created"].tzinfo is not None  # aware UTC, as elsewhere
        assert isinstance(got["sms_capable"], bool)
        # The datetime parameter goes through the column type's bind processing too.
        assert _NUMBER_SINCE.first(conn, {"b_account": acc["sid"], "b_since": NOW + timedelta(seconds=1)}) is None
        assert _NUMBER_SINCE.first(conn, {"b_account": "AC" + "0" * 32, "b_since": NOW}) is None


def test_reads_inside_the_callers_transaction(db: Database) -> None:
    by_sid = Prepared(sa.select(accounts.c.friendly_name).where(accounts.c.sid == sa.bindparam("b_sid")))
    with db.write() as conn:
        acc = account_use.create_account(conn, friendly_name="before", now=NOW)
    with db.write() as conn:
        conn.execute(accounts.update().where(accounts.c.sid == acc["sid"]).values(friendly_name="uncommitted"))
        assert by_sid.first(conn, {"b_sid": acc["sid"]}) == {"friendly_name": "uncommitted"}
        conn.rollback()
    with db.read() as conn:
        assert by_sid.first(conn, {"b_sid": acc["sid"]}) == {"friendly_name": "before"}


def test_checkpointer_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database.from_url(f"sqlite:///{path}")
    upgrade(db.engine)
    with sqlite3.connect(path) as c:  # the schema into the file, so only the row below is in the log
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reader = db.engine.connect()  # an open connection keeps the log from being folded in on close
    try:
        with db.write() as conn:
            account_use.create_account(conn, friendly_name="in the log", now=NOW)

        def in_main_file() -> bool:
            copy = tmp_path / "copy.db"  # the database file alone, without its -wal
            shutil.copyfile(path, copy)
            with sqlite3.connect(copy) as c:
                return bool(c.execute("SELECT count(*) FROM accounts WHERE friendly_name='in the log'").fetchone()[0])

        assert not in_main_file()  # committed, but only in the write-ahead log so far
        checkpointer = WalCheckpointer(db.engine, interval=0.05)
        checkpointer.start()
        try:
            deadline = time.monotonic() + 5
            while not in_main_file() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert in_main_file()
        finally:
            checkpointer.stop()
    finally:
        reader.close()
        db.dispose()


# -- lookups: SQLite keeps one connection per thread, outside any transaction -------------------


def test_lookups_see_each_commit_and_leave_no_transaction_open(db: Database) -> None:
    with db.write() as conn:
        acc = account_use.create_account(conn, friendly_name="lookups", now=NOW)
    for n in range(3):
        with db.write() as conn:
            number_use.provision(conn, account_sid=acc["sid"], phone_number=f"+1415555014{n}", now=NOW)
        with db.lookup() as conn:
            # a statement through SQLAlchemy begins a transaction on the connection ...
            count = conn.execute(
                sa.select(sa.func.count()).select_from(phone_numbers).where(phone_numbers.c.account_sid == acc["sid"])
            ).scalar_one()
            assert count == n + 1  # ... and the next lookup sees the newest commit
        assert not conn.in_transaction()  # ended when the lookup was over
    # a writer is never held up by a lookup connection left between lookups
    with db.write() as conn:
        number_use.provision(conn, account_sid=acc["sid"], phone_number="+14155550149", now=NOW)


def test_a_lookup_that_raises_leaves_a_usable_connection(db: Database) -> None:
    with db.write() as conn:
        acc = account_use.create_account(conn, friendly_name="lookups", now=NOW)
    try:
        with db.lookup() as conn:
            conn.execute(sa.select(accounts.c.sid)).all()
            raise LookupError("a validation error, say")
    except LookupError:
        pass
    assert not conn.in_transaction()
    with db.lookup() as again:
        assert again.execute(sa.select(accounts.c.sid).where(accounts.c.sid == acc["sid"])).scalar_one() == acc["sid"]


def test_dispose_closes_every_threads_lookup_connection(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'lookups.db'}")
    upgrade(db.engine)
    seen = []

    def use() -> None:
        with db.lookup() as conn:
            conn.execute(sa.select(accounts.c.sid)).all()
            seen.append(conn)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    use()
    assert len({id(c) for c in seen}) == 4  # one per thread
    db.dispose()
    assert all(c.closed for c in seen)


def test_a_lookup_on_a_connection_checked_after_idling(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL: a pooled connection idle for a while is checked with a query before use.
    The check must leave no transaction open, or the lookup cannot switch it to autocommit."""
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE", 0.0)  # every checkout is "after idling"
    with db.write() as conn:
        acc = account_use.create_account(conn, friendly_name="idle", now=NOW)
    for _ in range(3):
        with db.lookup() as conn:
            assert (
                conn.execute(sa.select(accounts.c.sid).where(accounts.c.sid == acc["sid"])).scalar_one() == acc["sid"]
            )
