"""The outbox's order per message and URL on both stores: deliveries queued behind an unfinished
one are ``waiting``, finishing one promotes the next, and the claim reads pending rows only.
On PostgreSQL, with real concurrent transactions: an enqueue racing a finish can leave a
delivery waiting behind nothing, and the worker's sweep releases it.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app.accounts import create_account
from pigeon.domain.retry import STATUS_CALLBACKS
from pigeon.store import webhook_lines
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.tables import messages, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.lock_waits import wait_for_a_lock_wait
from tests.integration.plans import postgresql_plans

ACCOUNT = "AC" + "0" * 32
HOOK = "https://hooks.example.com/status"
SINK = "https://sink.example.com/events"


def sid(n: int) -> str:
    return f"SM{n:032x}"


def enqueue(conn: sa.Connection, now: datetime, message_sid: str | None, url: str = HOOK, n: int = 0) -> int:
    return outbox.enqueue(
        conn,
        account_sid=ACCOUNT,
        message_sid=message_sid,
        kind="status_callback",
        url=url,
        method="POST",
        params=[("n", str(n))],
        now=now,
    )


def batch_row(message_sid: str | None, url: str = HOOK) -> dict[str, Any]:
    return outbox.new_delivery(
        account_sid=ACCOUNT, message_sid=message_sid, kind="status_callback", url=url, method="POST", params=[]
    )


def statuses(db: Database, message_sid: str, url: str | None = None) -> list[str]:
    with db.read() as conn:
        rows = outbox.list_deliveries(conn, message_sid=message_sid)
    return [r["status"] for r in rows if url is None or r["url"] == url]


def claim(db: Database, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    with db.write() as conn:
        return outbox.claim_due(conn, now=now, limit=limit, lease_seconds=60)


def deliver(db: Database, row: dict[str, Any], now: datetime) -> None:
    with db.write() as conn:
        assert outbox.mark_delivered(conn, row["id"], now=now, status_code=200, lease=row["claimed_until"])


def assert_in_line(db: Database) -> None:
    """Every message and URL with unfinished deliveries has exactly one pending, its first
    unfinished; the rest are waiting. (A waiting row with nothing pending ahead waits forever.)"""
    with db.read() as conn:
        rows = conn.execute(
            sa.select(webhook_deliveries)
            .where(webhook_deliveries.c.message_sid.is_not(None))
            .order_by(webhook_deliveries.c.message_sid, webhook_deliveries.c.url, webhook_deliveries.c.sequence)
        ).mappings()
        for (message_sid, url), group in groupby(rows, key=lambda r: (r["message_sid"], r["url"])):
            unfinished = [r["status"] for r in group if r["status"] in webhook_lines.UNFINISHED]
            expected = ["pending"] + ["waiting"] * (len(unfinished) - 1) if unfinished else []
            assert unfinished == expected, (message_sid, url, unfinished)


# -- enqueue ----------------------------------------------------------------------------------


def test_a_delivery_behind_an_unfinished_one_is_written_waiting(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        enqueue(conn, now, sid(1))
        enqueue(conn, now, sid(1))
        enqueue(conn, now, sid(1), url=SINK)  # another URL: first in its own line
        enqueue(conn, now, None)
        enqueue(conn, now, None)  # no message, no order
    assert statuses(db, sid(1), HOOK) == ["pending", "waiting"]
    assert statuses(db, sid(1), SINK) == ["pending"]
    with db.read() as conn:
        loose = conn.execute(
            sa.select(webhook_deliveries.c.status).where(webhook_deliveries.c.message_sid.is_(None))
        ).scalars()
        assert list(loose) == ["pending", "pending"]


def test_enqueue_many_queues_behind_the_store_and_behind_its_own_batch(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        enqueue(conn, now, sid(1))  # unfinished: what sid(1)'s batch rows queue behind
        finished = enqueue(conn, now, sid(2))
    [row] = [r for r in claim(db, now) if r["id"] == finished]
    deliver(db, row, now)
    with db.write() as conn:
        outbox.enqueue_many(
            conn,
            [batch_row(sid(1)), batch_row(sid(2)), batch_row(sid(2)), batch_row(sid(3), SINK), batch_row(sid(3))],
            now=now,
        )
    assert statuses(db, sid(1)) == ["pending", "waiting"]
    assert statuses(db, sid(2)) == ["delivered", "pending", "waiting"]
    assert statuses(db, sid(3)) == ["pending", "pending"]  # one per URL
    with db.read() as conn:
        assert [r["sequence"] for r in outbox.list_deliveries(conn, message_sid=sid(2))] == [0, 1, 2]


# -- finishing promotes the next ---------------------------------------------------------------


def test_order_is_kept_through_retries_and_a_failure_promotes_the_next(db: Database, clock: FrozenClock) -> None:
    start = clock.now()
    with db.write() as conn:
        first, second, third = (enqueue(conn, clock.now(), sid(1), n=i) for i in range(3))
    [row] = claim(db, clock.now())
    assert row["id"] == first
    with db.write() as conn:  # a retry keeps it first in line: nothing is promoted
        assert outbox.schedule_retry(
            conn,
            first,
            now=clock.now(),
            next_attempt_at=clock.now() + timedelta(seconds=30),
            status_code=503,
            error="busy",
            lease=row["claimed_until"],
        )
    assert statuses(db, sid(1)) == ["pending", "waiting", "waiting"]
    clock.advance(10)
    assert claim(db, clock.now()) == []  # the first is backing off, the others wait behind it
    clock.advance(25)
    [row] = claim(db, clock.now())
    assert row["id"] == first
    clock.advance(1)
    with db.write() as conn:
        assert outbox.mark_failed(
            conn,
            first,
            now=clock.now(),
            status_code=503,
            error="still busy",
            lease=row["claimed_until"],
        )
    assert statuses(db, sid(1)) == ["failed", "pending", "waiting"]
    with db.read() as conn:
        promoted = outbox.get_delivery(conn, second)
    # due at once, in its place: as old as when it was written, not behind later deliveries
    assert promoted is not None and promoted["next_attempt_at"] == start
    [row] = claim(db, clock.now())
    assert row["id"] == second
    deliver(db, row, clock.now())
    [row] = claim(db, clock.now())
    assert row["id"] == third
    deliver(db, row, clock.now())
    assert statuses(db, sid(1)) == ["failed", "delivered", "delivered"]


def test_a_promoted_delivery_goes_before_deliveries_written_after_it(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        enqueue(conn, clock.now(), sid(1))  # "sending"
        follower = enqueue(conn, clock.now(), sid(1), n=1)  # "sent", waiting behind it
    clock.advance(1)
    with db.write() as conn:
        newer = [enqueue(conn, clock.now(), sid(n)) for n in range(2, 6)]  # newer messages' first callbacks
    [head] = claim(db, clock.now(), limit=1)
    clock.advance(1)
    deliver(db, head, clock.now())
    # Under load, the next claim takes the oldest due: the follower, not the newer messages
    assert [r["id"] for r in claim(db, clock.now(), limit=1)] == [follower]
    assert [r["id"] for r in claim(db, clock.now())] == newer


def test_a_lost_lease_finishes_nothing_and_promotes_nothing(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        enqueue(conn, clock.now(), sid(1))
        enqueue(conn, clock.now(), sid(1))
    [stale] = claim(db, clock.now())
    clock.advance(61)
    [fresh] = claim(db, clock.now())
    with db.write() as conn:
        assert not outbox.mark_delivered(
            conn, stale["id"], now=clock.now(), status_code=200, lease=stale["claimed_until"]
        )
    assert statuses(db, sid(1)) == ["pending", "waiting"]
    deliver(db, fresh, clock.now())
    assert statuses(db, sid(1)) == ["delivered", "pending"]


def test_mark_many_delivered_promotes_each_line_once(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        for n in range(1, 4):
            enqueue(conn, now, sid(n))
            enqueue(conn, now, sid(n))
            enqueue(conn, now, sid(n))
        enqueue(conn, now, sid(1), url=SINK)
    claimed = claim(db, now)
    assert {(r["message_sid"], r["url"]) for r in claimed} == {(sid(n), HOOK) for n in range(1, 4)} | {(sid(1), SINK)}
    with db.write() as conn:
        held = outbox.mark_many_delivered(conn, [(r["id"], r["claimed_until"], 204) for r in claimed], now=now)
    assert held == {r["id"] for r in claimed}
    for n in range(1, 4):
        assert statuses(db, sid(n), HOOK) == ["delivered", "pending", "waiting"]
    assert statuses(db, sid(1), SINK) == ["delivered"]
    assert_in_line(db)


# -- claims -----------------------------------------------------------------------------------


def test_the_claim_finds_unblocked_rows_behind_many_older_blocked_ones(db: Database, clock: FrozenClock) -> None:
    start = clock.now()
    with db.write() as conn:  # 200 messages whose receiver is down: first in line backing off
        outbox.enqueue_many(conn, [batch_row(sid(n)) for n in range(200) for _ in range(3)], now=start)
    heads = claim(db, start, limit=500)
    assert len(heads) == 200
    with db.write() as conn:
        for row in heads:
            outbox.schedule_retry(
                conn,
                row["id"],
                now=start,
                next_attempt_at=start + timedelta(hours=1),
                status_code=None,
                error="connection refused",
                lease=row["claimed_until"],
            )
    clock.advance(5)
    with db.write() as conn:
        fresh = enqueue(conn, clock.now(), sid(1000))
    # 400 waiting rows are older in due order; none is a candidate
    [row] = claim(db, clock.now(), limit=1)
    assert row["id"] == fresh
    assert claim(db, clock.now(), limit=10) == []


def test_urls_of_one_message_do_not_hold_each_other_back(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        sink = [enqueue(conn, now, sid(1), url=SINK, n=i) for i in range(2)]
        hook = [enqueue(conn, now, sid(1), url=HOOK, n=i) for i in range(2)]
    first = claim(db, now)
    assert {r["id"] for r in first} == {sink[0], hook[0]}
    # the sink is down; the status callbacks go on without it
    deliver(db, next(r for r in first if r["id"] == hook[0]), now)
    [row] = claim(db, now)
    assert row["id"] == hook[1]
    deliver(db, row, now)
    assert statuses(db, sid(1), HOOK) == ["delivered", "delivered"]
    assert statuses(db, sid(1), SINK) == ["pending", "waiting"]


# -- stranded deliveries: the sweep ---------------------------------------------------------------


def strand(db: Database, now: datetime, message_sid: str) -> int:
    """A waiting delivery with nothing unfinished ahead of it, as the PostgreSQL race leaves one."""
    with db.write() as conn:
        first = enqueue(conn, now, message_sid)
        second = enqueue(conn, now, message_sid, n=1)
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == first).values(status="delivered"))
    return second


def test_the_sweep_releases_a_stranded_delivery_and_nothing_else(db: Database, clock: FrozenClock) -> None:
    start = clock.now()
    stranded = strand(db, start, sid(1))
    with db.write() as conn:  # a healthy line: one pending, one waiting behind it
        enqueue(conn, start, sid(2))
        enqueue(conn, start, sid(2), n=1)
    assert [r["id"] for r in claim(db, start) if r["message_sid"] == sid(1)] == []
    clock.advance(120)
    with db.read() as conn:  # the recent sweep looks only at the last minute's rows ...
        assert webhook_lines.find_orphans(conn, since=clock.now() - timedelta(seconds=60)) == []
        found = webhook_lines.find_orphans(conn, since=None)  # ... the full one at every waiting row
    assert found == [stranded]
    with db.write() as conn:
        assert webhook_lines.promote_orphans(conn, found, now=clock.now()) == 1
        assert webhook_lines.promote_orphans(conn, found, now=clock.now()) == 0  # only while still stranded
    assert statuses(db, sid(1)) == ["delivered", "pending"]
    assert statuses(db, sid(2)) == ["pending", "waiting"]
    assert [r["id"] for r in claim(db, clock.now()) if r["message_sid"] == sid(1)] == [stranded]
    assert_in_line(db)


def test_a_sweep_passes_over_a_row_another_transaction_holds(pg: Database, clock: FrozenClock) -> None:
    """Two workers' sweeps over the same stranded rows deadlocked when each UPDATE locked them in
    its own plan's order: a sweep now takes the rows it can at once, in id order, and leaves
    the others to whoever holds them (or to its next sweep), never waiting on them."""
    now = clock.now()
    held, free = strand(pg, now, sid(1)), strand(pg, now, sid(2))
    with pg.engine.connect() as other:
        other.execute(sa.text("BEGIN"))
        other.execute(sa.select(webhook_deliveries.c.id).where(webhook_deliveries.c.id == held).with_for_update())
        started = time.monotonic()
        with pg.write() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # waiting would fail the test, not hang it
            assert webhook_lines.promote_orphans(conn, [held, free], now=now) == 1
        assert time.monotonic() - started < 2
        other.execute(sa.text("ROLLBACK"))
    assert statuses(pg, sid(1)) == ["delivered", "waiting"] and statuses(pg, sid(2)) == ["delivered", "pending"]
    with pg.write() as conn:
        assert webhook_lines.promote_orphans(conn, [held, free], now=now) == 1  # the next sweep takes it
    assert statuses(pg, sid(1)) == ["delivered", "pending"]


def test_the_webhook_worker_sweeps_at_start_then_the_recent_rows(db: Database, clock: FrozenClock) -> None:
    strand(db, clock.now(), sid(1))
    clock.advance(600)
    worker = WebhookWorker(db, RecordingWebhookSender(), clock, policy=STATUS_CALLBACKS, full_sweep_interval=3600)
    assert worker._sweep() == 1  # the first sweep is a full one: old rows too
    strand(db, clock.now(), sid(2))
    clock.advance(5)
    assert worker._sweep() == 1  # later ones: the last seconds
    strand(db, clock.now() - timedelta(seconds=600), sid(3))  # written long before the last sweep
    clock.advance(600)
    assert worker._sweep() == 0  # too old for a recent sweep; the next full one takes it
    assert_in_line_except(db, {sid(3)})


def test_a_recent_sweep_looks_at_a_row_since_the_last_sweep_and_once_more_later(
    db: Database, clock: FrozenClock
) -> None:
    """Each waiting row is looked at by the sweeps that follow its writing (with a second's
    overlap), then once more when it is `sweep_recent` old, for a finish that committed late;
    not at every sweep in between."""
    worker = WebhookWorker(db, RecordingWebhookSender(), clock, policy=STATUS_CALLBACKS, full_sweep_interval=3600)
    assert worker._sweep() == 0  # the full one, at start
    start = clock.now()
    with db.write() as conn:  # a healthy line: the second waits behind the first
        first = enqueue(conn, start, sid(1))
        enqueue(conn, start, sid(1), n=1)
    for _ in range(4):
        clock.advance(1.5)
        assert worker._sweep() == 0  # waiting behind something: rightly
    # The first finishes without releasing the second (a finish that ran alongside the
    # second's enqueue, and committed late): the sweeps of fresh rows no longer look at it...
    with db.write() as conn:
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == first).values(status="delivered"))
    clock.advance(1.5)
    assert worker._sweep() == 0
    # ...the one that finds it `sweep_recent` (10 s) old does.
    clock.advance(3.5)
    assert worker._sweep() == 1
    assert statuses(db, sid(1)) == ["delivered", "pending"]


def assert_in_line_except(db: Database, stranded: set[str]) -> None:
    for message_sid in (sid(1), sid(2)):
        assert statuses(db, message_sid) == ["delivered", "pending"]
    for message_sid in stranded:
        assert statuses(db, message_sid) == ["delivered", "waiting"]


def _in_thread(target: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.postgres
def test_an_enqueue_racing_a_finish_is_released_by_the_sweep(pg: Database, clock: FrozenClock) -> None:
    """The window the module docstring describes, opened on purpose: the enqueue reads the head
    as pending and writes its row waiting; the finish commits first without seeing that row."""
    now = clock.now()
    with pg.write() as conn:
        enqueue(conn, now, sid(1))
    [head] = claim(pg, now)
    enqueued, commit = threading.Event(), threading.Event()

    def enqueuer() -> None:
        with pg.write() as conn:
            enqueue(conn, now, sid(1), n=1)
            enqueued.set()
            assert commit.wait(10)

    e_thread, e_errors = _in_thread(enqueuer)
    assert enqueued.wait(10)
    deliver(pg, head, now)  # does not wait for the enqueue, and cannot see its row
    commit.set()
    e_thread.join(10)
    assert not e_errors
    assert statuses(pg, sid(1)) == ["delivered", "waiting"]  # stranded
    with pg.read() as conn:
        found = webhook_lines.find_orphans(conn, since=now - timedelta(seconds=10))
    with pg.write() as conn:
        assert webhook_lines.promote_orphans(conn, found, now=now) == 1
    assert statuses(pg, sid(1)) == ["delivered", "pending"]


def _wait_for_a_lock_wait(db: Database) -> None:
    """Until a session of this database waits for a row lock (10 s at most)."""
    assert wait_for_a_lock_wait(db), "no session came to wait for the row lock"


@pytest.mark.postgres
@pytest.mark.parametrize("promoter", ["the sweep", "the finish of the one ahead"])
def test_a_promotion_that_waited_for_the_row_leaves_it_if_it_moved_on(
    pg: Database, clock: FrozenClock, promoter: str
) -> None:
    """Two promotions of one waiting row can overlap on PostgreSQL, e.g. the sweep's and the
    finish of the delivery ahead of it. The later one reads the row as waiting, then waits for
    its lock while the row moves on: promoted by the other, claimed, delivered (here, in one
    step). READ COMMITTED then rechecks the UPDATE's conditions on the row's new version, and
    only those on the row itself: a delivered row made pending again would be sent twice.
    (The sweep no longer waits for a row another transaction holds; it leaves it alone.)"""
    now = clock.now()
    with pg.write() as conn:
        head = enqueue(conn, now, sid(1))
        behind = enqueue(conn, now, sid(1), n=1)
    if promoter == "the sweep":  # stranded: nothing unfinished ahead of it
        with pg.write() as conn:
            conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == head).values(status="delivered"))
    else:
        [claimed] = claim(pg, now)
        assert claimed["id"] == head
    moved, release = threading.Event(), threading.Event()

    def move_on() -> None:
        with pg.write() as conn:
            conn.execute(
                webhook_deliveries.update().where(webhook_deliveries.c.id == behind).values(status="delivered")
            )
            moved.set()
            assert release.wait(10)

    promoted: list[int] = []

    def promote() -> None:
        with pg.write() as conn:
            if promoter == "the sweep":
                promoted.append(webhook_lines.promote_orphans(conn, [behind], now=now))
            else:
                assert outbox.mark_many_delivered(conn, [(head, claimed["claimed_until"], 200)], now=now) == {head}

    m_thread, m_errors = _in_thread(move_on)
    assert moved.wait(10)
    p_thread, p_errors = _in_thread(promote)
    if promoter == "the sweep":
        # The sweep does not wait for the row: it passes over rows another transaction holds
        # (test_a_sweep_passes_over_a_row_another_transaction_holds).
        p_thread.join(10)
        assert promoted == [0]
    else:
        _wait_for_a_lock_wait(pg)  # the promotion read the row as waiting and waits for its lock
    release.set()
    m_thread.join(10)
    p_thread.join(10)
    assert not m_errors and not p_errors
    assert statuses(pg, sid(1)) == ["delivered", "delivered"]
    assert promoted in ([], [0])


def settle(conn: sa.Connection, rows: list[dict[str, Any]], rnd: random.Random, now: datetime) -> None:
    """What the callback worker's group commit does: deliver most in one go, fail or retry the
    rest one by one."""
    delivered = [r for r in rows if rnd.random() < 0.7]
    outbox.mark_many_delivered(conn, [(r["id"], r["claimed_until"], 200) for r in delivered], now=now)
    for r in rows:
        if r in delivered:
            continue
        lease = r["claimed_until"]
        if rnd.random() < 0.5:
            outbox.mark_failed(conn, r["id"], now=now, status_code=500, error="x", lease=lease)
        else:  # retried at once, so it stays claimable
            outbox.schedule_retry(conn, r["id"], now=now, next_attempt_at=now, status_code=500, error="x", lease=lease)


@pytest.mark.postgres
def test_enqueuers_and_finishers_in_many_threads_lose_no_delivery(pg: Database, clock: FrozenClock) -> None:
    """Enqueuers and finishers side by side, with no lock between them: no deadlock, and once the
    sweep has run, every line is in order and drains."""
    now = clock.now()
    sids = [sid(n) for n in range(12)]
    with pg.write() as conn:
        account = create_account(conn, friendly_name="race", now=now)["sid"]
        conn.execute(
            messages.insert(),
            [
                {
                    "sid": s,
                    "account_sid": account,
                    "direction": "outbound-api",
                    "status": "queued",
                    "to": "+14155552671",
                    "from_": "+14155550100",
                    "body": "hi",
                    "num_segments": 1,
                    "date_created": now,
                    "date_updated": now,
                }
                for s in sids
            ],
        )
    stop = time.monotonic() + 2.0

    def enqueuer(seed: int) -> None:
        # Each enqueuer has messages of its own (a dispatcher moves the messages it holds the
        # claim of): two transactions updating the same rows in opposite orders would deadlock
        # on those rows whatever the outbox did.
        rnd = random.Random(seed)
        mine = sids[seed::3]
        while time.monotonic() < stop:
            with pg.write() as conn:
                for s in rnd.sample(mine, 3):
                    conn.execute(messages.update().where(messages.c.sid == s).values(date_updated=now))
                    if rnd.random() < 0.5:
                        enqueue(conn, now, s, url=rnd.choice([HOOK, SINK]))
                    else:
                        outbox.enqueue_many(conn, [batch_row(s, HOOK), batch_row(s, SINK)], now=now)

    def finisher(seed: int) -> None:
        rnd = random.Random(seed)
        while time.monotonic() < stop:
            rows = claim(pg, now, limit=8)
            if rows:
                with pg.write() as conn:
                    settle(conn, rows, rnd, now)

    threads = [_in_thread(lambda i=i: enqueuer(i)) for i in range(3)]
    threads += [_in_thread(lambda i=i: finisher(100 + i)) for i in range(3)]
    for thread, _ in threads:
        thread.join(30)
    assert [e for _, errors in threads for e in errors] == []
    with pg.read() as conn:
        found = webhook_lines.find_orphans(conn, since=None)
    with pg.write() as conn:
        webhook_lines.promote_orphans(conn, found, now=now)
    assert_in_line(pg)
    for _ in range(1000):  # and the lines drain: every delivery gets out
        rows = claim(pg, now)
        if not rows:
            break
        for row in rows:
            deliver(pg, row, now)
    with pg.read() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).where(webhook_deliveries.c.status.in_(webhook_lines.UNFINISHED))
        ).scalar_one()
    assert left == 0


@pytest.mark.postgres
def test_the_outbox_statements_use_their_indexes_when_the_statistics_are_stale(
    pg: Database, clock: FrozenClock
) -> None:
    """A queue grows faster than PostgreSQL re-analyses it. Statistics taken when the outbox
    held two messages, then 30,000 rows more: the claim still reads the due index in order (no
    sort), and the lookups by message SID (the enqueue's, the promote after a batch of outcomes)
    still go through its index, in nested loops, never through the whole table."""
    now = clock.now()
    insert = sa.text(
        "INSERT INTO webhook_deliveries (idempotency_token, account_sid, message_sid, kind, url, method,"
        " params, sequence, status, attempts, next_attempt_at, date_created, date_updated)"
        " SELECT 'tok-' || :first + g, :account, 'SM' || lpad(to_hex(:first + g / :per_message), 32, '0'),"
        " 'status_callback', :url, 'POST', '[]', g % :per_message,"
        " (ARRAY['delivered', 'pending', 'waiting'])[least(g % :per_message, 2) + 1], 0, :now, :now, :now"
        " FROM generate_series(0, :count - 1) AS g"
    )
    rows = {"account": ACCOUNT, "url": HOOK, "now": now - timedelta(seconds=5)}
    with pg.write() as conn:
        conn.exec_driver_sql("ALTER TABLE webhook_deliveries SET (autovacuum_enabled = false)")
        # Statistics of an outbox that held two messages with 200 deliveries each, so that a
        # message SID seems to stand for half the table ...
        conn.execute(insert, {**rows, "first": 0, "per_message": 200, "count": 400})
    with pg.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE webhook_deliveries")
    with pg.write() as conn:
        # ... then 10,000 messages, each with a delivered, a pending and a waiting callback.
        conn.execute(insert, {**rows, "first": 1000, "per_message": 3, "count": 30000})

    def wanted(statement: str) -> bool:
        return "webhook_deliveries" in statement and not statement.lstrip().startswith("INSERT")

    with postgresql_plans(pg.engine, wanted) as plans:
        sids = [f"SM{1000 + n:032x}" for n in range(100)]
        with pg.write() as conn:
            claimed = outbox.claim_due(conn, now=now, limit=100, lease_seconds=60)
            outbox.enqueue_many(
                conn,
                [
                    outbox.new_delivery(
                        account_sid=ACCOUNT, message_sid=s, kind="status_callback", url=HOOK, method="POST", params=[]
                    )
                    for s in sids
                ],
                now=now,
            )
            outbox.mark_many_delivered(conn, [(r["id"], r["claimed_until"], 200) for r in claimed], now=now)

    assert len(claimed) == 100
    # The claim, the enqueue's lookup, the mark, and its promote: the lines of the finished
    # deliveries' messages, then the update of their heads.
    assert len(plans) == 5, [s[:60] for s, _ in plans]
    lines_plan = plans[3][1]
    # One probe of the message_sid index per message: not the whole table through the primary
    # key, nor every unfinished delivery compared with every other (a materialised scan).
    assert "Function Scan on unnest" in lines_plan and "ix_webhook_deliveries_message_sid" in lines_plan, lines_plan
    assert "Materialize" not in lines_plan and "pk_webhook_deliveries" not in lines_plan, lines_plan
    for statement, plan in plans:
        assert "Seq Scan on webhook_deliveries" not in plan, f"{statement}\n{plan}"
        # Nor the whole table read through an index into a hash or merge join.
        assert "Hash Anti Join" not in plan and "Hash Join" not in plan and "Merge" not in plan, f"{statement}\n{plan}"
    claim_plan = plans[0][1]
    assert "Sort" not in claim_plan and "Index Scan using ix_webhook_deliveries_status_next_attempt_at" in claim_plan
