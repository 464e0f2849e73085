"""The debugger's store on SQLite and PostgreSQL: request-log queries, the background writer,
retention, Idempotency-Keys deciding a race in the message's own transaction, and the
duplicate check's index."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import export, send_guard
from pigeon.app.send import SendRequest, prepare_message
from pigeon.bootstrap import ensure_first_account
from pigeon.domain.errors import ApiError, IdempotencyKeyTaken
from pigeon.domain.idempotency import DUPLICATE_WARNING, request_hash
from pigeon.domain.sids import Prefix, new_sid
from pigeon.store import diagnosis as diagnosis_store
from pigeon.store.accept import AcceptWriter
from pigeon.store.alerts import add_alert, list_alerts
from pigeon.store.engine import Database
from pigeon.store.idempotency import get_key, purge_idempotency_keys
from pigeon.store.messages import MessageFilter, NewMessage, insert_messages, list_messages
from pigeon.store.request_log import (
    RequestFilter,
    RequestLogWriter,
    get_request,
    insert_requests,
    list_requests,
    purge_request_log,
)
from pigeon.store.settings import content_key
from pigeon.store.tables import idempotency_keys, messages, request_log
from pigeon.testing import FrozenClock
from tests.integration.locked_sqlite import locked_sqlite
from tests.integration.pipeline import Pipeline

TO = "+14155552671"


def _request(at: datetime, account: str | None, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sid": new_sid(Prefix.REQUEST),
        "account_sid": account,
        "at": at,
        "method": "POST",
        "path": f"/2010-04-01/Accounts/{account}/Messages.json",
        "status": 201,
        "error_code": None,
        "resource_sid": None,
        "source_ip": "127.0.0.1",
        "user_agent": "test",
        "idempotency_key": None,
        "duration_ms": 1.5,
        "to": TO,
        "from_": "+14155550000",
        "content_hash": "0" * 64,
    }
    row.update(over)
    return row


def _setup(db: Database, clock: FrozenClock) -> tuple[str, str]:
    first = ensure_first_account(db, clock)
    assert first is not None
    return first.account["sid"], first.numbers[0]["phone_number"]


def _count(db: Database, table: sa.Table, *where: Any) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


# -- the request log ---------------------------------------------------------------------------


def test_request_log_filters_and_keyset_paging(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    t0 = clock.now()
    rows = [_request(t0 + timedelta(seconds=i), account) for i in range(5)]
    rows.append(_request(t0 + timedelta(seconds=6), account, status=400, error_code=21211, to="+14155559999"))
    rows.append(_request(t0 + timedelta(seconds=7), None, status=401, error_code=20003, to=None))
    with db.write() as conn:
        insert_requests(conn, rows)
    with db.read() as conn:
        mine = list_requests(conn, RequestFilter(account_sid=account), limit=50)
        assert [r["sid"] for r in mine] == [r["sid"] for r in reversed(rows[:6])]  # newest first
        refused = list_requests(conn, RequestFilter(account_sid=account, status=400), limit=50)
        assert [(r["error_code"], r["to"]) for r in refused] == [(21211, "+14155559999")]
        assert list_requests(conn, RequestFilter(error_code=20003), limit=5)[0]["account_sid"] is None
        window = RequestFilter(
            account_sid=account, to=TO, since=t0 + timedelta(seconds=1), until=t0 + timedelta(seconds=3)
        )
        assert [r["sid"] for r in list_requests(conn, window, limit=50)] == [rows[2]["sid"], rows[1]["sid"]]
        page1 = list_requests(conn, RequestFilter(account_sid=account), limit=2)
        last = get_request(conn, page1[-1]["sid"], account_sid=account)
        assert last is not None
        page2 = list_requests(conn, RequestFilter(account_sid=account), limit=2, after=(last["at"], last["id"]))
        assert [r["sid"] for r in page2] == [rows[3]["sid"], rows[2]["sid"]]
        first = get_request(conn, page2[0]["sid"])
        assert first is not None
        back = list_requests(conn, RequestFilter(account_sid=account), limit=2, before=(first["at"], first["id"]))
        assert [r["sid"] for r in back] == [r["sid"] for r in page1]
        assert get_request(conn, rows[0]["sid"], account_sid=new_sid(Prefix.ACCOUNT)) is None


def test_values_too_long_for_their_column_are_cut_not_fatal(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    row = _request(clock.now(), account, idempotency_key="k" * 400, method="VERYLONGMETHOD", source_ip="f" * 100)
    with db.write() as conn:
        insert_requests(conn, [row])
    with db.read() as conn:
        stored = get_request(conn, row["sid"])
    assert stored is not None
    assert (len(stored["idempotency_key"]), stored["method"], len(stored["source_ip"])) == (255, "VERYLONG", 64)


def test_purge_keeps_what_is_inside_the_retention(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    now = clock.now()
    old = [_request(now - timedelta(days=40, seconds=i), account) for i in range(7)]
    fresh = [_request(now - timedelta(days=1), account)]
    with db.write() as conn:
        insert_requests(conn, [*old, *fresh])
    with db.write() as conn:
        assert purge_request_log(conn, now - timedelta(days=30), limit=5) == 5  # the oldest first
    with db.write() as conn:
        assert purge_request_log(conn, now - timedelta(days=30)) == 2
    with db.read() as conn:
        assert [r["sid"] for r in list_requests(conn, RequestFilter(), limit=10)] == [fresh[0]["sid"]]


def test_writer_batches_in_the_background_and_purges(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    with db.write() as conn:
        insert_requests(conn, [_request(clock.now() - timedelta(days=31), account)])
        conn.execute(
            idempotency_keys.insert().values(
                account_sid=account, key="old", request_hash="h", message_sid="SM" + "0" * 32,
                date_created=clock.now() - timedelta(hours=25),
            )
        )  # fmt: skip
    writer = RequestLogWriter(db.engine, max_wait=0.01, retention=timedelta(days=30), now=clock.now)
    writer.start()
    try:
        for i in range(120):
            assert writer.submit(_request(clock.now() + timedelta(milliseconds=i), account))
        assert writer.flush(timeout=10)
        assert writer.purge() == 1
    finally:
        writer.stop()
    assert (writer.written, writer.dropped, writer.failed) == (120, 0, 0)
    assert _count(db, request_log) == 120
    assert _count(db, idempotency_keys) == 0


def test_writer_drops_and_counts_when_its_queue_is_full(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    writer = RequestLogWriter(db.engine, max_queue=3)  # not started: nothing drains the queue
    accepted = [writer.submit(_request(clock.now(), account)) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert writer.dropped == 2
    writer.start()
    writer.stop()  # writes what was queued
    assert _count(db, request_log) == 3


def test_a_bad_row_does_not_lose_its_batch(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    good = _request(clock.now(), account)
    clash = _request(clock.now(), account, sid=good["sid"])  # the request sid is unique
    writer = RequestLogWriter(db.engine, max_wait=0.05)
    writer.start()
    try:
        writer.submit(good)
        writer.submit(clash)
        writer.submit(_request(clock.now(), account))
        assert writer.flush(timeout=10)
    finally:
        writer.stop()
    assert (writer.written, writer.failed) == (2, 1)


def test_writer_holds_its_batch_while_the_store_is_out_of_reach(tmp_path: Path, clock: FrozenClock) -> None:
    db, other = locked_sqlite(tmp_path, busy_ms=50)
    writer = RequestLogWriter(db.engine, max_wait=0.01, max_pause=0.05)
    writer.start()
    try:
        for _ in range(5):
            assert writer.submit(_request(clock.now(), None, status=503, error_code=20503))
        time.sleep(0.5)  # several tries, each refused
        assert (writer.written, writer.failed, _count(db, request_log)) == (0, 0, 0)
        other.execute("ROLLBACK")  # the store is back
        assert writer.flush(timeout=10)
    finally:
        writer.stop()
        other.close()
    assert (writer.written, writer.dropped, writer.failed) == (5, 0, 0)
    assert _count(db, request_log, request_log.c.error_code == 20503) == 5
    db.dispose()


def test_a_writer_holding_a_batch_gives_up_when_stopped(tmp_path: Path, clock: FrozenClock) -> None:
    db, other = locked_sqlite(tmp_path, busy_ms=50)
    writer = RequestLogWriter(db.engine, max_wait=0.01, max_pause=10.0)
    writer.start()
    try:
        writer.submit(_request(clock.now(), None))
        time.sleep(0.3)
        started = time.monotonic()
        writer.stop(timeout=5)
        assert time.monotonic() - started < 2  # not one more pause of up to 10 s
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (writer.written, writer.failed) == (0, 1)
    db.dispose()


# -- idempotency keys --------------------------------------------------------------------------


def _keyed(db: Database, account: str, sender: str, clock: FrozenClock, key: str, body: str = "hi") -> NewMessage:
    fields = [("To", TO), ("From", sender), ("Body", body)]
    with db.read() as conn:
        new = prepare_message(conn, account, SendRequest(to=TO, from_=sender, body=body), clock.now())
        fingerprint = request_hash(fields, key=content_key(conn))
        send_guard.guard(conn, new, key=key, request_hash=fingerprint, now=clock.now(), path="/x")
    return new


def test_a_key_taken_by_a_committed_message_fails_the_second_transaction(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)
    first, second = _keyed(db, account, sender, clock, "k1"), _keyed(db, account, sender, clock, "k1")
    with db.write() as conn:
        insert_messages(conn, [first])
    with pytest.raises(IdempotencyKeyTaken), db.write() as conn:
        insert_messages(conn, [second])
    assert _count(db, messages, messages.c.account_sid == account) == 1
    with db.read() as conn:
        used = get_key(conn, account, "k1")
        assert used is not None and used["message_sid"] == first.message["sid"]
        replay = send_guard.find_replay(
            conn, account, "k1", [("To", TO), ("From", sender), ("Body", "hi")], clock.now()
        )
        assert replay is not None and replay["sid"] == first.message["sid"]
        with pytest.raises(ApiError) as refused:
            send_guard.find_replay(conn, account, "k1", [("To", TO), ("From", sender), ("Body", "ho")], clock.now())
    assert refused.value.code == 20409 and refused.value.status == 409


def test_concurrent_transactions_with_one_key_make_one_message(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)
    news = [_keyed(db, account, sender, clock, "race") for _ in range(6)]
    barrier = threading.Barrier(len(news))
    outcomes: list[str] = []

    def attempt(new: NewMessage) -> None:
        barrier.wait()
        try:
            with db.write() as conn:
                insert_messages(conn, [new])
            outcomes.append("won")
        except IdempotencyKeyTaken:
            outcomes.append("lost")

    threads = [threading.Thread(target=attempt, args=(n,)) for n in news]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["lost"] * 5 + ["won"]
    assert _count(db, messages, messages.c.account_sid == account) == 1


def test_one_key_twice_in_one_group_commit_batch(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)
    news = [_keyed(db, account, sender, clock, "batch") for _ in range(3)]
    other = _keyed(db, account, sender, clock, "another", body="different")
    writer = AcceptWriter(db.engine, max_batch=10, max_wait=0.05)
    writer.start()

    async def run() -> list[object]:
        return await asyncio.gather(*(writer.write(n) for n in [*news, other]), return_exceptions=True)

    try:
        results = asyncio.run(run())
    finally:
        writer.stop()
    assert results[0] is None and results[3] is None
    assert all(isinstance(r, IdempotencyKeyTaken) for r in results[1:3])
    assert _count(db, messages, messages.c.account_sid == account) == 2


def test_an_expired_key_may_be_used_again(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)
    with db.write() as conn:
        insert_messages(conn, [_keyed(db, account, sender, clock, "daily")])
    clock.advance(24 * 3600 + 1)
    with db.read() as conn:
        assert send_guard.find_replay(conn, account, "daily", [], clock.now()) is None
    again = _keyed(db, account, sender, clock, "daily", body="tomorrow's")
    with db.write() as conn:
        insert_messages(conn, [again])
    with db.read() as conn:
        used = get_key(conn, account, "daily")
    assert used is not None and used["message_sid"] == again.message["sid"]
    with db.write() as conn:
        assert purge_idempotency_keys(conn, clock.now() - timedelta(hours=24)) == 0


# -- duplicate warnings ------------------------------------------------------------------------


def test_same_content_within_the_window_carries_a_warning(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)

    def send(body: str) -> NewMessage:
        with db.read() as conn:
            new = prepare_message(conn, account, SendRequest(to=TO, from_=sender, body=body), clock.now())
            send_guard.guard(conn, new, key=None, request_hash=None, now=clock.now(), path="/p")
        with db.write() as conn:
            insert_messages(conn, [new])
        return new

    first = send("Your code is 1234")
    clock.advance(3)
    second = send("Your code is 1234")
    other = send("Your code is 9999")
    clock.advance(11)
    late = send("Your code is 1234")
    assert first.alerts == [] and other.alerts == [] and late.alerts == []
    [warning] = second.alerts
    assert (warning["error_code"], warning["log_level"], warning["resource_sid"]) == (
        DUPLICATE_WARNING,
        "warning",
        second.message["sid"],
    )
    assert (
        first.message["sid"] in warning["alert_text"] and f"pigeon doctor duplicates --to {TO}" in warning["alert_text"]
    )
    with db.read() as conn:
        [stored] = list_alerts(conn, account_sid=account, error_code=DUPLICATE_WARNING)
        assert stored["sid"] == warning["sid"]
        assert len(list_messages(conn, MessageFilter(account_sid=account), limit=10)) == 4  # every one was sent


def test_the_duplicate_check_reads_an_index(db: Database, clock: FrozenClock) -> None:
    query = (
        sa.select(messages.c.sid)
        .where(
            messages.c.account_sid == "AC" + "0" * 32,
            messages.c.to == TO,
            messages.c.date_created >= datetime(2024, 1, 1, tzinfo=UTC),
            messages.c.content_hash == "0" * 64,
        )
        .limit(1)
    )
    with db.read() as conn:
        if db.is_sqlite:
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "ix_messages_account_sid_to_date_created" in plan and "SCAN" not in plan.replace("SEARCH", "")
        else:  # an empty table: make the planner show the index it can use rather than a free scan
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "ix_messages_account_sid_to_date_created" in plan


def test_the_doctor_reads_a_recipients_messages_on_their_index(db: Database) -> None:
    """What was made in the window, and what was made before it (to find what changed in it or
    is still open): both read the (account_sid, to, date_created) index, on a store with no
    statistics; no index of their own, which every status change would have to write."""
    explained: list[str] = []

    def explain(conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().startswith("SELECT messages.sid") and "EXPLAIN" not in statement:
            prefix = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(prefix + statement, parameters).all()
            explained.append(" ".join(str(r[-1] if db.is_sqlite else r[0]) for r in rows))

    with db.read() as conn:
        if not db.is_sqlite:  # an empty table: make the planner show the index it can use
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        sa.event.listen(db.engine, "before_cursor_execute", explain)
        try:
            diagnosis_store.outbound_to(
                conn, account_sid="AC" + "0" * 32, to=[TO, TO[1:]], since=datetime(2024, 1, 1, tzinfo=UTC), limit=5
            )
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", explain)
    assert len(explained) == 4  # two reads for each spelling
    for plan in explained:
        assert "ix_messages_account_sid_to_date_created" in plan, plan
        assert "SCAN" not in plan.replace("SEARCH", "") and "Seq Scan" not in plan, plan


# -- alerts and export -------------------------------------------------------------------------


def test_alert_filters(db: Database, clock: FrozenClock) -> None:
    account, _ = _setup(db, clock)
    t0 = clock.now()
    with db.write() as conn:
        a = add_alert(conn, account_sid=account, error_code=30007, text="filtered", at=t0)
        b = add_alert(
            conn, account_sid=account, error_code=79001, text="dup", at=t0 + timedelta(seconds=5), log_level="warning"
        )
    with db.read() as conn:
        assert [r["sid"] for r in list_alerts(conn, account_sid=account, log_level="WARNING")] == [b]
        assert [r["sid"] for r in list_alerts(conn, account_sid=account, until=t0 + timedelta(seconds=1))] == [a]
        assert [r["sid"] for r in list_alerts(conn, account_sid=account, since=t0 + timedelta(seconds=1))] == [b]


def test_export_reads_every_match_with_its_timeline(db: Database, clock: FrozenClock) -> None:
    account, sender = _setup(db, clock)
    sids = []
    for i in range(7):
        with db.write() as conn:
            new = prepare_message(conn, account, SendRequest(to=TO, from_=sender, body=f"m{i}"), clock.now())
            insert_messages(conn, [new])
        sids.append(new.message["sid"])
        clock.advance(1)
    f = MessageFilter(account_sid=account, to=TO)
    with db.read() as conn:
        records = list(export.export_all(conn, f))
        batch, cursor = export.export_batch(conn, f, after=None, size=3)
        capped = list(export.export_all(conn, f, limit=4))
    assert [r["sid"] for r in records] == list(reversed(sids))
    assert all([e["kind"] for e in r["events"]] == ["created"] for r in records)
    assert len(batch) == 3 and cursor is not None
    assert [r["sid"] for r in capped] == list(reversed(sids))[:4]


def test_the_export_carries_each_messages_price_and_unit(pipe: Pipeline) -> None:
    """API, console and CLI export through `pigeon.app.export`: billing needs what each message
    cost, as its resource shows it (a sent one's charge, null for one never sent)."""
    sent = pipe.send(body="x" * 400)  # three segments
    refused = pipe.send(to="+14155550105")  # the network refuses it: no price
    pipe.dispatch()
    pipe.clock.advance(5)
    pipe.dispatch()
    assert pipe.message(sent)["price"] == "-0.02370"
    with pipe.db.read() as conn:
        records = list(export.export_all(conn, MessageFilter(account_sid=pipe.account_sid)))
    by_sid = {r["sid"]: r for r in records}
    assert (by_sid[sent]["price"], by_sid[sent]["price_unit"]) == ("-0.02370", "USD")
    assert (by_sid[refused]["price"], by_sid[refused]["price_unit"]) == (None, "USD")
    text = "".join(export.render("csv", records, exported_at=pipe.clock.now(), filters={}))
    rows = {row["sid"]: row for row in csv.DictReader(io.StringIO(text))}
    assert (rows[sent]["price"], rows[sent]["price_unit"]) == ("-0.02370", "USD")  # a number, no apostrophe
    assert rows[refused]["price"] == ""
