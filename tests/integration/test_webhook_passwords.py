"""A webhook URL's password (``https://user:password@host/path``, Twilio's documented way to
protect a callback) goes to that URL and nowhere else, on each store: not into alerts, message
timelines or webhook attempts, whichever delivery wrote them (status callback, inbound webhook
and its fallback, Event Streams sink), and rows stored before their writers masked it are
masked on the way out (alerts, timelines, attempts, the doctor's reads, exports)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import event_streams as sink_use
from pigeon.app import export
from pigeon.app import numbers as number_use
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.event_delivery import deliver_event
from pigeon.app.events import EVENT
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.ports import InboundSms, WebhookResponse
from pigeon.store import alerts as alert_store
from pigeon.store import diagnosis as diagnosis_store
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter
from pigeon.store.tables import alerts, message_events, webhook_attempts
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker

NUMBER, HANDSET = "+14155550191", "+14155557191"
FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)
SECRET = "s3cret"


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        sid = str(account_use.create_account(conn, friendly_name="passwords", now=clock.now())["sid"])
        number_use.provision(
            conn,
            account_sid=sid,
            phone_number=NUMBER,
            now=clock.now(),
            settings={
                "sms_url": f"https://app:{SECRET}@app.example.com/sms",
                "sms_fallback_url": f"https://fb:{SECRET}@fallback.example.com/sms",
            },
        )
    return sid


def stored(db: Database) -> str:
    """Everything the alerts, the timelines and the webhook attempts hold, as text."""
    with db.read() as conn:
        return json.dumps(
            [
                [dict(r) for r in conn.execute(sa.select(t)).mappings()]
                for t in (alerts, message_events, webhook_attempts)
            ],
            default=str,
        )


def new_message(db: Database, clock: FrozenClock, account: str, callback: str | None) -> str:
    with db.write() as conn:
        req = SendRequest(to="+14155552671", from_=NUMBER, body="hi", status_callback=callback)
        new = prepare_message(conn, account, req, clock.now())
        message_store.insert_messages(conn, [new])
        row = message_store.transition(conn, new.message["sid"], MessageStatus.SENDING, at=clock.now())
        enqueue_status_callback(conn, row, now=clock.now())
    return str(new.message["sid"])


def test_a_status_callback_s_password_is_sent_but_not_kept(db: Database, clock: FrozenClock, account: str) -> None:
    failing = new_message(db, clock, account, f"https://cb:{SECRET}@hooks.example.com/gone")
    answered = new_message(db, clock, account, f"https://cb:{SECRET}@hooks.example.com/status")
    sender = RecordingWebhookSender(lambda r: 404 if r.url.endswith("/gone") else 200)
    assert asyncio.run(WebhookWorker(db, sender, clock, policy=FAST, concurrency=10).run_once()) == 2
    assert all(SECRET in r.url for r in sender.requests)  # the receiver gets its credentials
    assert SECRET not in stored(db)
    with db.read() as conn:
        [alert] = alert_store.list_alerts(conn, account_sid=account)
        kinds = {e["kind"]: e for sid in (failing, answered) for e in message_store.list_events(conn, sid)}
        [attempt] = outbox.list_attempts(conn, message_sid=failing)
    assert alert["request_url"] == "https://cb:***@hooks.example.com/gone"
    assert "https://cb:***@hooks.example.com/gone" in alert["alert_text"]
    assert kinds["callback_failed"]["detail"]["url"] == "https://cb:***@hooks.example.com/gone"
    assert kinds["callback"]["detail"]["url"] == "https://cb:***@hooks.example.com/status"
    assert attempt["url"] == "https://cb:***@hooks.example.com/gone"


def test_an_inbound_webhook_s_and_its_fallback_s_passwords_are_sent_but_not_kept(
    db: Database, clock: FrozenClock, account: str
) -> None:
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.write() as conn:
        [row] = [
            r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == "inbound"
        ]
    sender = RecordingWebhookSender([500, 502])
    asyncio.run(deliver_inbound(db, sender, clock, row))
    primary, fallback = sender.requests
    assert SECRET in primary.url and SECRET in fallback.url
    # The fallback, often another host, is told which URL failed, not its password.
    assert dict(fallback.params)["ErrorUrl"] == "https://app.example.com/sms"
    assert SECRET not in stored(db)
    with db.read() as conn:
        shown = alert_store.list_alerts(conn, account_sid=account)
        [failed] = [e for e in message_store.list_events(conn, row["message_sid"]) if e["kind"] == "webhook_failed"]
    assert sorted(a["request_url"] for a in shown) == [
        "https://app:***@app.example.com/sms",
        "https://fb:***@fallback.example.com/sms",
    ]
    [told] = [a for a in shown if a["request_url"].startswith("https://fb:")]
    assert dict(told["request_variables"])["ErrorUrl"] == "https://app.example.com/sms"
    assert [r["url"] for r in failed["detail"]["requests"]] == [
        "https://app:***@app.example.com/sms",
        "https://fb:***@fallback.example.com/sms",
    ]


def test_an_event_sink_s_password_is_sent_but_not_kept(db: Database, clock: FrozenClock, account: str) -> None:
    config = json.dumps({"destination": f"https://sink:{SECRET}@sink.example.com/e", "method": "POST"})
    with db.write() as conn:
        sink = sink_use.create_sink(
            conn, account, {"Description": "s", "SinkType": "webhook", "SinkConfiguration": config}, clock.now()
        )
        sink_use.create_subscription(
            conn,
            account,
            {"Description": "sub", "SinkSid": sink["sid"]},
            [json.dumps({"type": "com.twilio.messaging.message.sent", "schema_version": 1})],
            clock.now(),
        )
    sid = new_message(db, clock, account, None)
    with db.write() as conn:
        row = message_store.transition(conn, sid, MessageStatus.SENT, at=clock.now())
        enqueue_status_callback(conn, row, now=clock.now())
    with db.write() as conn:
        [event] = [r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == EVENT]
    sender = RecordingWebhookSender([WebhookResponse(400, {}, b"no", 1.0)])
    asyncio.run(deliver_event(db, sender, clock, event, policy=FAST, rand=lambda: 0.0))
    assert SECRET in sender.requests[0].url
    assert SECRET not in stored(db)
    with db.read() as conn:
        [alert] = alert_store.list_alerts(conn, account_sid=account)
    assert alert["request_url"].startswith("https://sink:***@sink.example.com/e")


def test_rows_stored_before_the_writers_masked_passwords_are_masked_on_the_way_out(
    db: Database, clock: FrozenClock, account: str
) -> None:
    url = f"https://cb:{SECRET}@hooks.example.com/status"
    sid = new_message(db, clock, account, url)
    with db.write() as conn:
        inbound = receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        ).message_sid
        assert inbound is not None
        [delivery] = outbox.list_deliveries(conn, message_sid=sid)
        outbox.record_attempt(
            conn, delivery_id=delivery["id"], account_sid=account, at=clock.now(), url=url, status_code=404
        )
        for about in (sid, inbound):
            alert_store.add_alert(
                conn,
                account_sid=account,
                error_code=11200,
                text=f"Status callback to {url} failed after 1 attempt: the receiver answered HTTP 404",
                at=clock.now(),
                resource_sid=about,
                request_method="POST",
                request_url=url,
                request_variables=[["ErrorUrl", url]],
            )
            message_store.add_event(
                conn,
                message_sid=about,
                account_sid=account,
                at=clock.now(),
                kind="webhook_failed",
                error_code=11200,
                detail={"url": url, "requests": [{"url": url, "status": 404}]},
            )
    assert SECRET in stored(db)
    since = clock.now().replace(year=2000)
    with db.read() as conn:
        reads: list[Any] = [
            alert_store.list_alerts(conn, account_sid=account),
            [alert_store.get_alert(conn, a["sid"]) for a in alert_store.list_alerts(conn)],
            message_store.list_events(conn, sid),
            message_store.events_for_messages(conn, [sid, inbound]),
            outbox.list_attempts(conn, message_sid=sid),
            outbox.list_attempts(conn, delivery_id=delivery["id"]),
            diagnosis_store.inbound_alerts(conn, account_sid=account, number=NUMBER, since=since, codes=[11200]),
            diagnosis_store.inbound_events(
                conn, account_sid=account, number=NUMBER, since=since, kind="webhook_failed"
            ),
            list(export.export_all(conn, MessageFilter(account_sid=account))),
        ]
    text = json.dumps(reads, default=str)
    assert SECRET not in text
    assert text.count("https://cb:***@hooks.example.com/status") >= 9
