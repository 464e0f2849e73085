"""A redacted or deleted message's text is nowhere in the store afterwards, on both stores.

The text of an inbound message is copied into its incoming-message webhook (`Body`), into the
alert when that webhook fails, and into an Event Streams event (`data.body`). Redaction empties
every copy; a delete removes the message with its finished deliveries and their attempts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import messages as message_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.ports import InboundSms
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.tables import message_events, messages, phone_numbers, webhook_attempts, webhook_deliveries
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration import test_event_streams
from tests.integration.pipeline import make_pipeline
from tests.integration.receipt_race import alongside_a_receipt, orphans, sent
from tests.integration.test_event_streams import RECEIVED, Account, add_sink, claim, event_of, subscribe

account = test_event_streams.account  # the fixture: an account with a number
TEXT = "my card number is 4111 1111 1111 1111"


def received(db: Database, clock: FrozenClock, acct: Account) -> str:
    """An inbound message whose webhook failed once (an alert) and whose event waits for its sink."""
    sink = add_sink(db, clock, acct)
    subscribe(db, clock, acct, sink, RECEIVED, version=6)
    with db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == acct.number)
            .values(sms_url="https://app.example.com/sms", sms_method="POST")
        )
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender="+14155559999", recipient=acct.number, body=TEXT),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert intake.message_sid is not None
    [inbound] = [r for r in claim(db, clock) if r["kind"] == "inbound"]
    asyncio.run(deliver_inbound(db, RecordingWebhookSender(lambda r: 500), clock, inbound))
    return intake.message_sid


def copies_of_the_text(db: Database) -> list[str]:
    """Every stored value that holds the text, wherever it is."""
    found = []
    with db.read() as conn:
        for table in (messages, webhook_deliveries, webhook_attempts, message_events):
            for row in conn.execute(sa.select(table)).mappings():
                found += [f"{table.name}.{k}" for k, v in row.items() if TEXT in str(v)]
        for alert in list_alerts(conn, limit=1000):
            found += [f"alerts.{k}" for k, v in alert.items() if TEXT in str(v)]
    return found


def test_redaction_empties_every_copy_of_the_text(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = received(db, clock, account)
    assert sorted(set(copies_of_the_text(db))) == [
        "alerts.request_variables",
        "messages.body",
        "webhook_deliveries.params",
    ]
    with db.write() as conn:
        row = message_use.redact(conn, account.sid, sid, "/path", clock.now())
    assert row["body"] == ""
    assert copies_of_the_text(db) == []
    with db.read() as conn:
        deliveries = {d["kind"]: d for d in outbox.list_deliveries(conn, message_sid=sid)}
        [alert] = list_alerts(conn, resource_sid=sid)
    params: dict[str, Any] = dict(deliveries["inbound"]["params"])
    assert params["Body"] == "" and params["From"] == "+14155559999"  # the rest as it was
    event = event_of(deliveries["event"])
    assert event["data"]["body"] == "" and event["data"]["from"] == "+14155559999"
    assert dict(alert["request_variables"])["Body"] == ""
    assert dict(alert["request_variables"])["MessageSid"] == sid


def test_delete_takes_finished_deliveries_and_leaves_those_still_to_go(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sid = received(db, clock, account)
    with db.write() as conn:
        conn.execute(  # the inbound webhook gave up; the event still waits for its sink
            webhook_deliveries.update()
            .where(webhook_deliveries.c.message_sid == sid, webhook_deliveries.c.kind == "inbound")
            .values(status="failed")
        )
        message_use.delete(conn, account.sid, sid, "/path")
    with db.read() as conn:
        left = outbox.list_deliveries(conn, message_sid=sid)
        attempts = conn.execute(sa.select(sa.func.count()).select_from(webhook_attempts)).scalar_one()
        timeline = conn.execute(sa.select(sa.func.count()).select_from(message_events)).scalar_one()
    assert [d["kind"] for d in left] == ["event"]  # goes out as it was, then with the history
    assert attempts == 0 and timeline == 0


@pytest.mark.postgres
def test_a_delete_waits_for_a_receipt_committing_alongside(pg: Database, clock: FrozenClock) -> None:
    """On PostgreSQL a receipt can move a `sent` message on while the API deletes it: the delete
    waits for it and then takes its timeline row too, rather than leaving the row behind."""
    pipe = make_pipeline(pg, clock)
    try:
        sid = sent(pipe)

        def delete() -> None:
            with pg.write() as conn:
                message_use.delete(conn, pipe.account_sid, sid, "/path")

        alongside_a_receipt(pipe, sid, delete)
        with pg.read() as conn:
            assert conn.execute(sa.select(messages.c.sid).where(messages.c.sid == sid)).first() is None
        assert "message_events" not in orphans(pg)
    finally:
        pipe.spool.stop()
