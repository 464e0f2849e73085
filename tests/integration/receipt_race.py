"""A receipt's transaction held open on PostgreSQL while something else runs alongside: for the
removals (`pigeon erase`, the retention) that must not take a message whose status is changing
under them, with the callbacks, the Event Streams event and the timeline row that come with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.app import event_streams
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.domain.status import MessageStatus
from pigeon.store.engine import Database
from pigeon.store.messages import transition
from pigeon.store.tables import carrier_refs, media, message_events, messages, webhook_deliveries
from pigeon.testing import RecordingWebhookSender
from tests.integration.lock_waits import while_held
from tests.integration.pipeline import Pipeline
from tests.integration.test_webhook_outbox import run_once, worker


def subscribe_to_deliveries(pipe: Pipeline) -> None:
    """An Event Streams sink for the account's `delivered` events: a receipt enqueues one."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        sink = event_streams.create_sink(
            conn,
            pipe.account_sid,
            {
                "Description": "sink",
                "SinkType": "webhook",
                "SinkConfiguration": json.dumps({"destination": "https://sink.example.com/events"}),
            },
            now,
        )
        event_streams.create_subscription(
            conn,
            pipe.account_sid,
            {"Description": "delivered", "SinkSid": sink["sid"]},
            [json.dumps({"type": "com.twilio.messaging.message.delivered"})],
            now,
        )


def sent(pipe: Pipeline, **kw: Any) -> str:
    """A message the carrier took (`sent`, at rest), its callbacks answered: its receipt is due."""
    sid = pipe.send(**kw)
    assert pipe.dispatch() == 1
    answer_webhooks(pipe)
    assert pipe.status(sid) == "sent"
    return sid


def answer_webhooks(pipe: Pipeline) -> None:
    w = worker(pipe.db, RecordingWebhookSender(), pipe.clock)
    while run_once(w):
        pass


def alongside_a_receipt(pipe: Pipeline, sid: str, removal: Callable[[], object]) -> object:
    """Run `removal` in a thread while a receipt's transaction (`sid` delivered, its callback
    and event enqueued, its timeline row added) is open; commit the receipt once `removal` is
    done or waits for a row lock. Returns what `removal` returned."""

    def receipt(conn: Connection) -> None:
        row = transition(conn, sid, MessageStatus.DELIVERED, at=pipe.clock.now(), kind="receipt")
        enqueue_status_callback(conn, row, now=pipe.clock.now())

    return while_held(pipe.db, receipt, removal)


def orphans(db: Database) -> dict[str, int]:
    """Rows that name a message that is gone, by table."""
    found = {}
    with db.read() as conn:
        for table in (webhook_deliveries, message_events, carrier_refs, media):
            column = table.c.message_sid
            gone = ~sa.exists().where(messages.c.sid == column)
            count = conn.execute(sa.select(sa.func.count()).where(column.is_not(None), gone)).scalar_one()
            if count:
                found[table.name] = int(count)
    return found
