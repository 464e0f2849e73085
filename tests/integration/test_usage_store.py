"""The usage ledger on each store: counts add up across shards and calls, the dispatcher and
the intake write it, and migration 0015 fills it from the messages already there."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from pigeon.app import usage
from pigeon.app.inbound import receive
from pigeon.domain.pricing import PriceTable, price_table
from pigeon.domain.usage import price_micros
from pigeon.ports import InboundSms
from pigeon.store import usage as store
from pigeon.store.accounts import create_account
from pigeon.store.engine import Database
from pigeon.store.schema import alembic_config
from pigeon.store.tables import messages, usage_daily
from tests.integration.pipeline import SENDER, Pipeline

ACCOUNT = "AC" + "a" * 32


def test_counts_add_up_across_calls_and_shards(db: Database) -> None:
    for _ in range(20):  # twenty transactions, on shards picked at random
        with db.write() as conn:
            store.add_usage(
                conn,
                {
                    (ACCOUNT, "2026-12-07", "sms-outbound"): (2, 3, 15800),
                    (ACCOUNT, "2026-12-06", "sms-inbound"): (1, 1, 0),
                },
            )
    with db.read() as conn:
        rows = store.usage_by_day(
            conn, [ACCOUNT], first="2026-12-01", last="2026-12-31", categories=["sms-outbound", "sms-inbound"]
        )
        assert rows == [
            {"day": "2026-12-06", "category": "sms-inbound", "messages": 20, "segments": 20, "price_micros": 0},
            {"day": "2026-12-07", "category": "sms-outbound", "messages": 40, "segments": 60, "price_micros": 316000},
        ]
        assert store.first_day(conn, [ACCOUNT]) == "2026-12-06"
        assert store.first_day(conn, ["AC" + "b" * 32]) is None
        assert (
            store.usage_by_day(conn, [ACCOUNT], first="2026-12-07", last="2026-12-07", categories=["mms-outbound"])
            == []
        )


def test_counts_taken_back_come_off_a_shard_that_holds_them(db: Database) -> None:
    """`take_usage` (a failed message's charge withdrawn): no row goes below zero when one
    shard holds what is taken; when none does alone, the day's sum is still right."""
    key = (ACCOUNT, "2026-12-07", "sms-outbound")
    for _ in range(6):
        with db.write() as conn:
            store.add_usage(conn, {key: (1, 2, 7900)})
    with db.write() as conn:
        store.take_usage(conn, {key: (1, 2, 7900)})
    with db.read() as conn:
        rows = conn.execute(sa.select(usage_daily)).mappings().all()
        assert min(r["messages"] for r in rows) >= 0 and min(r["price_micros"] for r in rows) >= 0
        [day] = store.usage_by_day(conn, [ACCOUNT], first="2026-12-07", last="2026-12-07", categories=[key[2]])
        assert (day["messages"], day["segments"], day["price_micros"]) == (5, 10, 39500)
    with db.write() as conn:
        store.take_usage(conn, {key: (5, 10, 39500)})  # more than any one shard may hold
    with db.read() as conn:
        assert store.totals_by_category(conn, [ACCOUNT], first=None, last="2026-12-31") == {"sms-outbound": (0, 0, 0)}


def test_the_dispatcher_counts_what_the_carrier_took_and_the_intake_what_came_in(pipe: Pipeline) -> None:
    sent = pipe.send(body="x" * 200)  # two segments
    refused = pipe.send(to="+14155550105")  # the network refuses it (30008): it costs nothing
    pipe.dispatch()
    pipe.clock.advance(2)
    pipe.dispatch()
    assert pipe.status(sent) == "sent"
    sms = InboundSms(carrier="simulator", sender="+14155559999", recipient=SENDER, body="hello")
    with pipe.db.write() as conn:
        assert receive(conn, sms, now=pipe.clock.now(), base_url="http://pigeon.test").message_sid
    with pipe.db.read() as conn:
        records = usage.usage_records(conn, pipe.account_sid, "Records", {}, today=pipe.clock.now().date())
    got = {r.category: (r.messages, r.segments, r.price_micros) for r in records}
    assert (pipe.status(refused), pipe.message(refused)["price"]) == ("failed", None)
    price = price_micros(pipe.message(sent)["price"])
    assert got["sms-outbound"] == (1, 2, price) and price > 0
    assert got["sms-inbound"] == (1, 1, 0)
    assert got["mms"] == (0, 0, 0)


def test_a_message_the_price_table_leaves_unpriced_is_counted_at_no_price(pipe: Pipeline) -> None:
    """README ([prices]): a route the table does not price, not even under "*", goes out with
    no price and still counts as sent: one message, its segments, at 0. Migration 0015 filled
    the ledger with priced messages only; what was sent since counts these too."""
    prices = price_table({"US": {"long_code": "0.0079"}})  # no "*": the UK is unpriced
    unpriced = pipe.send(to="+447700900123", body="x" * 200)  # two segments
    priced = pipe.send()
    pipe.dispatch(prices=prices)
    pipe.clock.advance(2)
    pipe.dispatch(prices=prices)
    assert (pipe.status(unpriced), pipe.message(unpriced)["price"]) == ("sent", None)
    assert pipe.message(priced)["price"] == "-0.00790"
    with pipe.db.read() as conn:
        records = usage.usage_records(conn, pipe.account_sid, "Records", {}, today=pipe.clock.now().date())
    got = {r.category: (r.messages, r.segments, r.price_micros) for r in records}
    assert got["sms-outbound"] == (2, 3, 7900)


def test_the_automatic_replies_to_stop_help_and_start_cost_nothing_and_are_not_billed(pipe: Pipeline) -> None:
    """Twilio does not charge the confirmation it sends for a keyword (REFERENCE.md §f); they
    were priced and counted in sms-outbound like any text."""
    replies: list[str] = []
    for word in ("STOP", "HELP", "START"):
        sms = InboundSms(carrier="simulator", sender="+14155559999", recipient=SENDER, body=word)
        with pipe.db.write() as conn:
            replies += receive(conn, sms, now=pipe.clock.now(), base_url="http://pigeon.test").reply_sids
        pipe.clock.advance(1)
    assert len(replies) == 3
    paid = pipe.send()
    for _ in range(5):  # one a second from one long code
        pipe.dispatch()
        pipe.clock.advance(1)
    assert {pipe.status(sid) for sid in [*replies, paid]} == {"sent"}
    assert {(pipe.message(sid)["price"], pipe.message(sid)["price_unit"]) for sid in replies} == {("0.00000", "USD")}
    with pipe.db.read() as conn:
        records = usage.usage_records(conn, pipe.account_sid, "Records", {}, today=pipe.clock.now().date())
    got = {r.category: (r.messages, r.segments, r.price_micros) for r in records}
    price = price_micros(pipe.message(paid)["price"])
    assert got["sms-outbound"] == (1, 1, price) and price > 0
    assert got["sms-inbound"] == (3, 3, 0)
    assert got["totalprice"][2] == price


def test_received_messages_are_priced_by_the_inbound_table_when_it_has_one(pipe: Pipeline) -> None:
    prices = PriceTable(inbound={"US": {"long_code": "0.0079"}}, unit="USD")
    with pipe.db.write() as conn:
        long_text = InboundSms(
            carrier="simulator", sender="+14155559999", recipient=SENDER, body="x" * 200, num_segments=2
        )
        priced = receive(conn, long_text, now=pipe.clock.now(), base_url="http://pigeon.test", prices=prices)
        free = receive(
            conn,
            InboundSms(carrier="simulator", sender="+14155559998", recipient=SENDER, body="hi"),
            now=pipe.clock.now(),
            base_url="http://pigeon.test",
        )
    assert priced.message_sid and free.message_sid
    assert (pipe.message(priced.message_sid)["price"], pipe.message(priced.message_sid)["price_unit"]) == (
        "-0.01580",
        "USD",
    )
    assert pipe.message(free.message_sid)["price"] is None
    with pipe.db.read() as conn:
        records = usage.usage_records(conn, pipe.account_sid, "Records", {}, today=pipe.clock.now().date())
    assert {r.category: (r.messages, r.segments, r.price_micros) for r in records}["sms-inbound"] == (2, 3, 15800)


def test_0015_fills_the_ledger_from_the_messages_already_priced_or_received(db: Database) -> None:
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0014")
    at = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
    with db.write() as conn:
        account = create_account(conn, friendly_name="old", now=at)["sid"]

        def message(n: int, **fields: object) -> dict[str, object]:
            return {
                "sid": f"SM{n:032x}",
                "account_sid": account,
                "direction": "outbound-api",
                "to": "+14155552671",
                "status": "delivered",
                "num_segments": 1,
                "num_media": 0,
                "price": "-0.00790",
                "date_created": at,
                "date_updated": at,
                "date_sent": at,
                **fields,
            }

        conn.execute(
            messages.insert(),
            [
                message(1),
                message(2, num_segments=3, price="-0.02370"),
                message(3, num_media=1, price="-0.02000"),
                message(4, direction="inbound", status="received", price=None),
                message(5, status="failed", price=None, date_sent=None),  # refused before a carrier
                message(6, status="queued", price=None, date_sent=None),
                message(7, date_sent=datetime(2026, 12, 1, 0, 1, tzinfo=UTC)),
            ],
        )
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with db.read() as conn:
        q = sa.select(
            usage_daily.c.day,
            usage_daily.c.category,
            usage_daily.c.messages,
            usage_daily.c.segments,
            usage_daily.c.price_micros,
        )
        rows = sorted(tuple(r) for r in conn.execute(q))
    assert rows == [
        ("2026-11-30", "mms-outbound", 1, 1, 20000),
        ("2026-11-30", "sms-inbound", 1, 1, 0),
        ("2026-11-30", "sms-outbound", 2, 4, 31600),
        ("2026-12-01", "sms-outbound", 1, 1, 7900),
    ]


@pytest.mark.postgres
def test_writers_listing_the_same_rows_in_any_order_do_not_deadlock(pg: Database) -> None:
    """Dispatchers recording batches at once add to the same (account, day, category) rows:
    listed in different orders, they locked them in different orders and PostgreSQL aborted
    one transaction (a batch's record lost, its messages sent again after their lease)."""
    day = "2026-12-07"
    keys = [
        ("AC" + "a" * 32, day, "sms-outbound"),
        ("AC" + "b" * 32, day, "sms-outbound"),
        ("AC" + "a" * 32, day, "mms-outbound"),
    ]
    errors: list[str] = []

    def work(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(150):
            shuffled = keys[:]
            rnd.shuffle(shuffled)
            try:
                with pg.engine.begin() as conn:
                    store.add_usage(conn, {k: (1, 1, 7900) for k in shuffled})
            except sa.exc.DBAPIError as exc:
                errors.append(type(exc.orig).__name__)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg.read() as conn:
        assert conn.execute(sa.select(sa.func.sum(usage_daily.c.messages))).scalar_one() == 5 * 150 * 3
