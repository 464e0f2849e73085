"""Retention on both stores: messages at rest go with everything that hangs off them once past
`PIGEON_MESSAGE_DAYS`; in-flight ones, ones with webhooks still to deliver and recent ones
stay. The error log (alerts, unmatched receipts, inbound messages for unknown numbers) goes
after `PIGEON_ERROR_LOG_DAYS`."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app.retention import rules
from pigeon.store import alerts as alert_store
from pigeon.store.dispatch import park_unmatched
from pigeon.store.engine import Database
from pigeon.store.inbound import keep_unroutable
from pigeon.store.retention import purge_messages, remove_messages
from pigeon.store.tables import (
    alerts,
    carrier_refs,
    message_events,
    messages,
    opt_outs,
    unmatched_receipts,
    unroutable_inbound,
    webhook_attempts,
    webhook_deliveries,
)
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.retention import RetentionPurger
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.integration.plans import postgresql_plans
from tests.integration.receipt_race import alongside_a_receipt, orphans, sent, subscribe_to_deliveries
from tests.integration.test_webhook_outbox import run_once, worker

DAY = 86400.0


def purger(pipe: Pipeline, *, messages: float = 0, error_log: float = 0, chunk: int = 1000) -> RetentionPurger:
    kept = rules(message_days=messages, webhook_history_days=0, error_log_days=error_log)
    return RetentionPurger(pipe.db, pipe.clock, kept, chunk=chunk)


def rows(pipe: Pipeline, table: sa.Table, **where: Any) -> int:
    q = sa.select(sa.func.count()).select_from(table)
    for column, value in where.items():
        q = q.where(table.c[column] == value)
    with pipe.db.read() as conn:
        return int(conn.execute(q).scalar_one())


def delivered(pipe: Pipeline, **kw: Any) -> str:
    """A message taken all the way: submitted, delivered, its three callbacks answered."""
    sid = pipe.send(**kw)
    assert pipe.dispatch() == 1
    pipe.receipts(advance=10)
    assert pipe.status(sid) == "delivered"
    w = worker(pipe.db, RecordingWebhookSender(), pipe.clock)
    while run_once(w):
        pass
    return sid


def test_messages_at_rest_go_with_everything_that_hangs_off_them(pipe: Pipeline) -> None:
    old = delivered(pipe)
    assert rows(pipe, carrier_refs, message_sid=old) == 1
    assert rows(pipe, webhook_deliveries, message_sid=old) == 3
    assert rows(pipe, message_events, message_sid=old) >= 5
    # Kept however old: a message still queued, and one whose callback's receiver is down.
    waiting = pipe.send(to="+14155552673")
    assert pipe.dispatch() == 1
    pipe.receipts(advance=10)
    down = worker(pipe.db, RecordingWebhookSender(lambda r: 503), pipe.clock)
    run_once(down)
    assert pipe.status(waiting) == "delivered"
    sending = pipe.send(to="+14155552672")
    with pipe.db.write() as conn:  # in a carrier's hands for as long as the test runs
        conn.execute(
            messages.update()
            .where(messages.c.sid == sending)
            .values(status="sending", claimed_by="elsewhere", claimed_until=pipe.clock.now() + timedelta(days=90))
        )
    assert rows(pipe, webhook_deliveries, message_sid=waiting, status="pending") == 1
    with pipe.db.write() as conn:  # its next try is far off (a receiver down for long)
        conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.message_sid == waiting, webhook_deliveries.c.status == "pending")
            .values(next_attempt_at=pipe.clock.now() + timedelta(days=90))
        )
    pipe.clock.advance(20 * DAY)
    recent = delivered(pipe, to="+14155552674")
    keeper = purger(pipe, messages=30, chunk=2)

    pipe.clock.advance(9 * DAY)
    assert asyncio.run(keeper.purge_all()) == 0  # 29 days: all kept
    pipe.clock.advance(2 * DAY)
    assert asyncio.run(keeper.purge_all()) == 1
    with pipe.db.read() as conn:
        left = set(conn.execute(sa.select(messages.c.sid)).scalars())
    assert left == {sending, waiting, recent}
    for table in (carrier_refs, webhook_deliveries, message_events):
        assert rows(pipe, table, message_sid=old) == 0, table.name
    with pipe.db.read() as conn:
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.not_in(sa.select(webhook_deliveries.c.id)))
        ).scalar_one()
    assert orphans == 0  # the attempts went with their deliveries
    assert rows(pipe, carrier_refs, message_sid=recent) == 1  # the recent one has all it had
    assert keeper.purged["messages"] == 1


def test_messages_another_process_removed_first_are_not_counted(pipe: Pipeline) -> None:
    """Two worker processes may pick the same messages; the one that comes second removes and
    counts none of them, and so stops its purge until its next turn."""
    sid = delivered(pipe)
    with pipe.db.write() as conn:
        assert remove_messages(conn, [sid]) == 1
    with pipe.db.write() as conn:
        assert remove_messages(conn, [sid]) == 0


def test_a_message_changed_since_the_cut_off_stays(pipe: Pipeline) -> None:
    sid = delivered(pipe)
    pipe.clock.advance(40 * DAY)
    with pipe.db.write() as conn:  # redacted just now: its last change is recent
        conn.execute(messages.update().where(messages.c.sid == sid).values(date_updated=pipe.clock.now()))
    assert asyncio.run(purger(pipe, messages=30).purge_all()) == 0
    pipe.clock.advance(31 * DAY)
    assert asyncio.run(purger(pipe, messages=30).purge_all()) == 1


@pytest.mark.postgres
def test_a_message_whose_receipt_commits_alongside_stays(pg: Database, clock: FrozenClock) -> None:
    """On PostgreSQL a receipt can change an old message between the purge's finding it at
    rest and its removal: it stays, with the callback, the event and the timeline row the
    receipt adds, rather than leaving them behind without it."""
    pipe = make_pipeline(pg, clock)
    try:
        subscribe_to_deliveries(pipe)
        sid = sent(pipe)
        clock.advance(3 * DAY)

        def purge() -> int:
            with pg.write() as conn:
                return purge_messages(conn, before=clock.now() - timedelta(days=1), limit=100)

        assert alongside_a_receipt(pipe, sid, purge) == 0
        assert orphans(pg) == {} and pipe.status(sid) == "delivered"
        assert rows(pipe, webhook_deliveries, message_sid=sid, status="pending") == 2
    finally:
        pipe.spool.stop()


def test_every_account_is_purged_in_chunks(pipe: Pipeline) -> None:
    mine = [delivered(pipe, to=f"+1415555267{i}") for i in range(3)]
    with pipe.db.write() as conn:
        other = account_use.create_account(conn, friendly_name="other", now=pipe.clock.now())
        # An old opt-out naming one of the messages: the opt-out stays when its message goes.
        conn.execute(
            opt_outs.insert().values(
                account_sid=pipe.account_sid,
                sender="+14155550100",
                recipient="+14155552670",
                scope="number",
                keyword="STOP",
                inbound_message_sid=mine[0],
                date_created=pipe.clock.now(),
            )
        )
    with pipe.db.write() as conn:
        conn.execute(messages.update().where(messages.c.sid == mine[2]).values(account_sid=other["sid"]))
    pipe.clock.advance(31 * DAY)
    keeper = purger(pipe, messages=30, chunk=2)
    assert asyncio.run(keeper.purge_all()) == 3
    assert rows(pipe, messages) == 0
    assert rows(pipe, opt_outs) == 1


def test_the_error_log_goes_after_its_days(pipe: Pipeline) -> None:
    def log_some() -> None:
        with pipe.db.write() as conn:
            alert_store.add_alert(
                conn, account_sid=pipe.account_sid, error_code=11200, text="receiver down", at=pipe.clock.now()
            )
            park_unmatched(
                conn,
                {
                    "carrier": "acme",
                    "carrier_message_id": "abc",
                    "stat": "DELIVRD",
                    "err": "000",
                    "done_date": None,
                    "raw": "id:abc stat:DELIVRD",
                    "received_at": pipe.clock.now(),
                },
            )
            keep_unroutable(
                conn,
                from_="+14155552671",
                to="+14155559999",
                body="hello?",
                carrier="acme",
                reason="no account holds the number",
                now=pipe.clock.now(),
            )

    log_some()
    pipe.clock.advance(10 * DAY)
    log_some()
    keeper = purger(pipe, messages=0, error_log=7, chunk=2)
    assert asyncio.run(keeper.purge_all()) == 3  # the older of each, in two chunks
    for table in (alerts, unmatched_receipts, unroutable_inbound):
        assert rows(pipe, table) == 1, table.name
    pipe.clock.advance(8 * DAY)
    assert asyncio.run(keeper.purge_all()) == 3
    assert keeper.purged == {"error log entries": 6}


@pytest.mark.postgres
def test_the_message_purge_reads_the_accounts_date_index_on_a_store_never_analysed(pg: Database) -> None:
    """Found per account in (account_sid, date_created) order, not through the status index
    (every delivered message) nor by reading the table, however stale the statistics."""
    now = datetime.now(UTC)
    with pg.write() as conn:
        account = account_use.create_account(conn, friendly_name="plans", now=now)
        conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
        conn.execute(
            sa.text(
                'INSERT INTO messages (sid, account_sid, direction, "to", from_, body, status, date_created,'
                " date_updated) SELECT 'SM' || lpad(to_hex(g), 32, '0'), :account, 'outbound-api',"
                " '+1415555' || g, '+14155550100', 'hi', CASE WHEN g % 10 = 0 THEN 'sent' ELSE 'delivered' END,"
                " :now - make_interval(secs => g), :now - make_interval(secs => g)"
                " FROM generate_series(1, 30000) AS g"
            ),
            {"account": account["sid"], "now": now},
        )

    def on_messages(statement: str) -> bool:
        return statement.lstrip().startswith(("SELECT messages.sid", "DELETE FROM messages"))

    with postgresql_plans(pg.engine, on_messages) as plans, pg.write() as conn:
        assert purge_messages(conn, before=now - timedelta(seconds=20000), limit=500) == 500
    [(_, find), (_, lock), (_, check), (_, remove)] = plans
    assert "Index Scan using ix_messages_account_sid_date_created_sid" in find, find
    assert "Seq Scan" not in find and "Sort" not in find, find
    assert "Index Scan using ix_webhook_deliveries_message_sid" in find, find  # the anti join, per message
    for by_key in (lock, check, remove):  # locked, checked again and removed by key
        assert "pk_messages" in by_key and "Seq Scan" not in by_key, by_key
    assert "Index Scan using ix_webhook_deliveries_message_sid" in check, check


def test_the_message_purge_finds_its_rows_by_message_on_sqlite(pipe: Pipeline) -> None:
    """Each DELETE goes to its rows through the message SID, never through a status index
    (every delivered message, every finished delivery): without statistics SQLite rated
    (status, next_attempt_at) the better way into the outbox, and each chunk of a hundred
    messages read every finished delivery (32 ms a chunk at 20,000 messages, 8 ms by SID)."""
    if not pipe.db.is_sqlite:
        pytest.skip("query plans are checked on SQLite")
    for i in range(6):
        delivered(pipe, to=f"+1415555268{i}")
    deletes: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append((statement, parameters))

    pipe.clock.advance(31 * DAY)
    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        assert asyncio.run(purger(pipe, messages=30).purge_all()) == 6
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)
    assert len(deletes) == 6  # attempts, deliveries, carrier ids, media, timeline, messages
    with pipe.db.read() as conn:
        for statement, parameters in deletes:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(parameters))]
            assert not [step for step in plan if "status" in step or step.startswith("SCAN")], (statement, plan)


def test_a_purge_goes_through_the_accounts_once_not_once_a_chunk(pipe: Pipeline) -> None:
    """With many accounts, each chunk starts from the account the chunk before stopped at:
    a store with thousands of subaccounts is not asked account by account for every chunk."""
    first, last = delivered(pipe, to="+14155552681"), delivered(pipe, to="+14155552682")
    with pipe.db.write() as conn:
        made = [
            account_use.create_account(conn, friendly_name=f"a{i}", now=pipe.clock.now())["sid"] for i in range(150)
        ]
        conn.execute(messages.update().where(messages.c.sid == last).values(account_sid=sorted(made)[-1]))
    asked: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("SELECT messages.sid") and "messages.account_sid =" in statement:
            asked.append(statement)  # an account asked (not the found messages locked and checked again)

    pipe.clock.advance(31 * DAY)
    sa.event.listen(pipe.db.engine, "before_cursor_execute", count)
    try:
        assert asyncio.run(purger(pipe, messages=30, chunk=1).purge_all()) == 2
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", count)
    assert rows(pipe, messages, sid=first) == rows(pipe, messages, sid=last) == 0
    # 151 accounts: the first chunk stops at the first account, the second goes through the
    # rest (over two pages of accounts), the third finds the last one empty. Asking every
    # account for every chunk would be 1 + 151 + 151.
    assert len(asked) <= 151 + 3, len(asked)
