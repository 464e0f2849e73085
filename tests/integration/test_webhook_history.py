"""The webhook outbox's history on both stores: finished deliveries and their attempts go once
older than the retention, in chunks; unfinished ones never do; the message's timeline keeps
each callback's outcome."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pigeon.app.retention import rules
from pigeon.domain.status import MessageStatus
from pigeon.store.engine import Database
from pigeon.store.messages import list_events
from pigeon.store.tables import webhook_attempts, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.retention import RetentionPurger
from tests.integration import test_webhook_outbox
from tests.integration.test_webhook_outbox import Account, deliveries, move, new_message, run_once, worker

account = test_webhook_outbox.account  # the fixture: an account with a number
S = MessageStatus
KEEP = timedelta(days=30)


def counts(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts)).scalar_one(),
        )


def purger_for(db: Database, clock: FrozenClock, **kw: Any) -> RetentionPurger:
    """A purger with the webhook history's rule alone, kept for KEEP."""
    return RetentionPurger(db, clock, rules(message_days=0, webhook_history_days=KEEP.days, error_log_days=0), **kw)


def purge(purger: RetentionPurger) -> int:
    return asyncio.run(purger.purge_all())


def test_finished_deliveries_go_with_their_attempts_once_past_the_retention(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    old_ok, old_failed, unfinished = (new_message(db, clock, account) for _ in range(3))
    move(db, clock, old_ok, S.SENDING, S.SENT)
    move(db, clock, old_failed, S.SENDING)
    move(db, clock, unfinished, S.SENDING)
    # Every callback of old_ok answers; old_failed's runs out of tries (FAST: 3); unfinished's
    # receiver is down for now and keeps being retried.
    sender = RecordingWebhookSender(lambda r: 500 if dict(r.params)["MessageSid"] != old_ok else 204)
    w = worker(db, sender, clock)
    for _ in range(6):
        run_once(w)
        clock.advance(10)
    assert [d["status"] for d in deliveries(db, old_ok)] == ["delivered", "delivered"]
    assert [d["status"] for d in deliveries(db, old_failed)] == ["failed"]
    # The unfinished one: a retry is due again (made pending, as a later attempt would find it).
    with db.write() as conn:
        conn.execute(
            webhook_deliveries.update()
            .where(webhook_deliveries.c.message_sid == unfinished)
            .values(status="pending", next_attempt_at=clock.now() + timedelta(days=60))
        )
    assert counts(db) == (4, 2 + 3 + 3)

    purger = purger_for(db, clock, chunk=2)
    clock.advance(29 * 86400)
    assert purge(purger) == 0  # 29 days: all kept
    clock.advance(2 * 86400)
    assert purge(purger) == 3  # in two chunks of at most two
    assert counts(db) == (1, 3)  # the unfinished delivery and its three attempts stay
    assert [d["message_sid"] for d in deliveries(db, unfinished)] == [unfinished]
    assert deliveries(db, old_ok) == deliveries(db, old_failed) == []
    with db.read() as conn:
        kinds = [e["kind"] for e in list_events(conn, old_ok)]
        failed_kinds = [e["kind"] for e in list_events(conn, old_failed)]
    assert kinds.count("callback") == 2  # the timeline still says both were delivered
    assert "callback_failed" in failed_kinds
    assert purger.purged == {"finished webhook deliveries": 3}


def test_a_delivery_changed_since_the_cut_off_stays(db: Database, clock: FrozenClock, account: Account) -> None:
    """A delivery whose last attempt was due long ago but which finished only now is kept:
    both its due time and its last change must be past the retention."""
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    clock.advance(40 * 86400)
    w = worker(db, RecordingWebhookSender(), clock)
    assert run_once(w) == 1  # due 40 days ago, delivered now
    purger = purger_for(db, clock)
    assert purge(purger) == 0
    assert [d["status"] for d in deliveries(db, sid)] == ["delivered"]


def test_run_purges_after_its_first_wait_and_stops(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING)
    run_once(worker(db, RecordingWebhookSender(), clock))
    clock.advance(31 * 86400)
    purger = purger_for(db, clock, first_after=0.01, every=3600)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(purger.run(stop))
        for _ in range(200):
            if sum(purger.purged.values()):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert purger.purged["finished webhook deliveries"] == 1 and deliveries(db, sid) == []
