"""Prepared statements read and write exactly what Connection.execute does (types included),
inside the caller's transaction, on SQLite and PostgreSQL; and the SQLite checkpointer copies
the write-ahead log into the database file."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import pigeon.store.engine as engine_module
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.store import message_batch
from pigeon.store.engine import Database, WalCheckpointer
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.schema import upgrade
from pigeon.store.tables import accounts, carrier_refs, message_events, messages, phone_numbers

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


# -- the workers' writes: multi-row INSERTs and statements with lists, on the cursor (SQLite) ----

_EVENTS_OF = (
    sa.select(message_events).where(message_events.c.message_sid == sa.bindparam("sid")).order_by(message_events.c.id)
)


def _event(sid: str, n: int, detail: dict[str, object] | None) -> dict[str, object]:
    return message_batch.event(
        message_sid=sid,
        account_sid=ACCOUNT,
        at=NOW + timedelta(microseconds=n),
        kind="status",
        status="sent" if n % 2 else None,
        error_code=30003 if n % 3 == 0 else None,
        detail=detail,
    )


def _without_ids(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def _seed(db: Database) -> list[str]:
    """An account and three queued messages; their SIDs."""
    with db.write() as conn:
        conn.execute(
            accounts.insert(),
            {"sid": ACCOUNT, "owner_account_sid": ACCOUNT, "friendly_name": "p", "auth_token": "t" * 32}
            | {"date_created": NOW, "date_updated": NOW},
        )
        sids = [f"SM{n:032x}" for n in range(3)]
        conn.execute(
            messages.insert(),
            [
                {"sid": sid, "account_sid": ACCOUNT, "direction": "outbound-api", "from_": "+14155550100"}
                | {"to": "+14155552000", "status": "queued", "date_created": NOW, "date_updated": NOW}
                for sid in sids
            ],
        )
    return sids


ACCOUNT = "AC" + "a" * 32


def test_insert_many_writes_what_an_executemany_writes(db: Database) -> None:
    a, b, _ = _seed(db)
    details: list[dict[str, object] | None] = [None, {"carrier": "sim", "ids": ["1", "2"]}, {"reason": "é ✓"}, {}]
    with db.write() as conn:
        insert_many(conn, message_events, [_event(a, n, d) for n, d in enumerate(details)])
        conn.execute(message_events.insert(), [_event(b, n, d) for n, d in enumerate(details)])
    with db.read() as conn:
        ours = [dict(r) for r in conn.execute(_EVENTS_OF, {"sid": a}).mappings()]
        theirs = [dict(r) for r in conn.execute(_EVENTS_OF, {"sid": b}).mappings()]
        assert _without_ids(ours) == [r | {"message_sid": a} for r in _without_ids(theirs)]
        assert [r["at"] for r in ours] == [NOW + timedelta(microseconds=n) for n in range(4)]  # in the order given
        if db.is_sqlite:  # the very same stored text, JSON null included
            raw = "SELECT at, detail FROM message_events WHERE message_sid = ? ORDER BY id"
            assert conn.exec_driver_sql(raw, (a,)).all() == conn.exec_driver_sql(raw, (b,)).all()


def test_insert_many_pages_a_large_batch_and_keeps_its_order(db: Database) -> None:
    a, _, _ = _seed(db)
    rows = [_event(a, n, {"n": n}) for n in range(2500)]  # more than one statement's worth
    with db.write() as conn:
        insert_many(conn, message_events, rows)
    with db.read() as conn:
        got = [r["detail"]["n"] for r in conn.execute(_EVENTS_OF, {"sid": a}).mappings()]
    assert got == list(range(2500))


def test_insert_many_reports_errors_as_sqlalchemy_does(db: Database) -> None:
    a, _, _ = _seed(db)
    with pytest.raises(sa.exc.IntegrityError), db.write() as conn:
        insert_many(conn, message_events, [_event(a, 0, None)])
        again = {"sid": a, "account_sid": ACCOUNT, "direction": "outbound-api", "to": "+14155552000"}
        insert_many(conn, messages, [again | {"status": "queued", "date_created": NOW, "date_updated": NOW}])
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), db.write() as conn:
        insert_many(conn, message_events, [_event(a, 0, None) | {"at": datetime(2026, 3, 1, 12, 0)}])
    with db.read() as conn:
        assert conn.execute(_EVENTS_OF, {"sid": a}).all() == []  # nothing of either was written


def test_insert_many_replaces_the_rows_whose_key_is_taken(db: Database) -> None:
    a, b, _ = _seed(db)

    def ref(cid: str, sid: str, stat: str | None = None) -> dict[str, Any]:
        return {
            "carrier": "acme",
            "carrier_message_id": cid,
            "message_sid": sid,
            "account_sid": ACCOUNT,
            "part_index": 0,
            "part_count": 1,
            "submitted_at": NOW,
            "receipt_stat": stat,
        }

    key = ("carrier", "carrier_message_id")
    with db.write() as conn:
        insert_many(conn, carrier_refs, [ref("1", a, "DELIVRD"), ref("2", a)], replace_on=key)
        insert_many(conn, carrier_refs, [ref("1", b), ref("3", b)], replace_on=key)
        with pytest.raises(sa.exc.IntegrityError):  # without replace_on, a taken key is an error
            with conn.begin_nested():
                insert_many(conn, carrier_refs, [ref("3", a)])
    with db.read() as conn:
        got = conn.execute(sa.select(carrier_refs).order_by(carrier_refs.c.carrier_message_id)).mappings().all()
    assert [(r["carrier_message_id"], r["message_sid"], r["receipt_stat"]) for r in got] == [
        ("1", b, None),  # replaced whole: its receipt belonged to the part that had it before
        ("2", a, None),
        ("3", b, None),
    ]


def test_insert_many_takes_rows_with_differing_keys_as_sqlalchemy_does(db: Database) -> None:
    a, _, _ = _seed(db)
    short = {k: v for k, v in _event(a, 1, None).items() if k not in ("status", "error_code")}
    with db.write() as conn:
        insert_many(conn, message_events, [_event(a, 0, {"x": 1}), short | {"status": None, "error_code": None}])
        reordered = dict(reversed(list(_event(a, 2, None).items())))  # the same keys in another order
        insert_many(conn, message_events, [_event(a, 3, None), reordered])
    with db.read() as conn:
        got = [(r["at"], r["detail"]) for r in conn.execute(_EVENTS_OF, {"sid": a}).mappings()]
    assert got == [(NOW + timedelta(microseconds=n), d) for n, d in [(0, {"x": 1}), (1, None), (3, None), (2, None)]]


def test_statements_with_lists_match_connection_execute(db: Database) -> None:
    sids = _seed(db)
    moved = Prepared(
        messages.update()
        .where(messages.c.sid.in_(sa.bindparam("sids", expanding=True)), messages.c.status.in_(("queued", "sending")))
        .values(status=sa.bindparam("b_to"), date_updated=sa.bindparam("b_at"))
        .returning(messages.c.sid, messages.c.status, messages.c.date_updated, messages.c.smart_encoded)
    )
    count = Prepared(
        sa.select(messages.c.sid).where(
            messages.c.sid.in_(sa.bindparam("sids", expanding=True)),
            messages.c.status == sa.bindparam("status"),
        )
    )
    later = NOW + timedelta(seconds=1)
    with db.write() as conn:
        got = moved.all(conn, {"sids": sids[:2], "b_to": "sending", "b_at": later})
        assert sorted(got, key=lambda r: r["sid"]) == [
            {"sid": sid, "status": "sending", "date_updated": later, "smart_encoded": False} for sid in sids[:2]
        ]
        assert isinstance(got[0]["smart_encoded"], bool)  # the column's result processing applies
        assert moved.all(conn, {"sids": [], "b_to": "sent", "b_at": later}) == []  # an empty list matches nothing
        assert {r["sid"] for r in count.all(conn, {"sids": sids, "status": "sending"})} == set(sids[:2])
        assert count.all(conn, {"sids": sids[2:], "status": "sending"}) == []
        # the same statement with another list length: its own SQL, the same answers
        assert len(count.all(conn, {"sids": sids[1:], "status": "queued"})) == 1
    with db.read() as conn:
        statuses = dict(conn.execute(sa.select(messages.c.sid, messages.c.status)).all())
    assert statuses == {sids[0]: "sending", sids[1]: "sending", sids[2]: "queued"}


def test_run_reports_the_rows_it_changed(db: Database) -> None:
    sids = _seed(db)
    cancel = Prepared(
        messages.update()
        .where(messages.c.sid.in_(sa.bindparam("sids", expanding=True)), messages.c.status == "queued")
        .values(status="canceled")
    )
    with db.write() as conn:
        assert cancel.run(conn, {"sids": sids}) == 3
        assert cancel.run(conn, {"sids": sids}) == 0
        assert cancel.run(conn, {"sids": []}) == 0


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


def test_postgres_statements_keep_one_text_whatever_the_lengths(db: Database) -> None:
    """PostgreSQL: a list goes as one array parameter and a batch of rows as one array per
    column, so a statement's text does not change with their lengths. psycopg converts a
    text's placeholders in Python only the first time, and prepares it on the server after
    five runs: neither happens for a text it keeps seeing new."""
    if db.is_sqlite:
        pytest.skip("PostgreSQL's statement texts")
    sids = _seed(db)
    texts: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        texts.append(statement)

    outside = Prepared(
        sa.select(messages.c.sid).where(
            messages.c.sid.notin_(sa.bindparam("sids", expanding=True)), messages.c.status == "queued"
        )
    )
    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        with db.write() as conn:
            answers = [{r["sid"] for r in outside.all(conn, {"sids": sids[:n]})} for n in (0, 1, 3)]
            for n in (1, 7):
                insert_many(conn, message_events, [_event(sids[0], i, {"i": i}) for i in range(n)])
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    assert answers == [set(sids), set(sids[1:]), set()]  # NOT IN of nothing keeps every row
    selects = [t for t in texts if t.startswith("SELECT")]
    inserts = [t for t in texts if t.startswith("INSERT")]
    assert len(selects) == 3 and len(set(selects)) == 1
    assert len(inserts) == 2 and len(set(inserts)) == 1
    with db.read() as conn:
        assert [r["detail"] for r in conn.execute(_EVENTS_OF, {"sid": sids[0]}).mappings()] == [
            {"i": 0},
            *[{"i": i} for i in range(7)],
        ]


def test_a_list_of_tuples_matches_connection_execute(db: Database) -> None:
    sids = _seed(db)
    pairs = Prepared(
        sa.select(messages.c.sid)
        .where(sa.tuple_(messages.c.sid, messages.c.status).in_(sa.bindparam("pairs", expanding=True)))
        .order_by(messages.c.sid)
    )
    wanted = [(sids[0], "queued"), (sids[1], "sent"), (sids[2], "queued")]
    with db.read() as conn:
        assert [r["sid"] for r in pairs.all(conn, {"pairs": wanted})] == [sids[0], sids[2]]
        assert [r["sid"] for r in conn.execute(pairs.stmt, {"pairs": wanted}).mappings()] == [sids[0], sids[2]]
