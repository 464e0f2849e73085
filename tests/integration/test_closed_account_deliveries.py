"""Event Streams deliveries and incoming-message webhooks of an account closed (or whose main
account was closed) while they waited, on both stores: they end unsent, as its status
callbacks do (`callback_delivery.signing_token`), a failure on the message's timeline with its
alert, since closing ends the account's credentials and its auth token signs nothing any more.
Before, they went out signed with that token. A suspended account's still go out."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pigeon.app import account_status
from pigeon.app import accounts as account_use
from pigeon.app import event_streams as streams
from pigeon.app import numbers as number_use
from pigeon.app.callback_delivery import Outcome
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.event_delivery import SINK_UNREACHABLE, deliver_event
from pigeon.app.events import EVENT
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.ports import InboundSms
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages, list_events, transition
from pigeon.testing import FrozenClock, RecordingWebhookSender

NUMBER, HANDSET = "+14155550191", "+14155557191"
APP = "https://app.example.com/sms"
SINK_URL = "https://sink.example.com/events"
SENT = "com.twilio.messaging.message.sent"
FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)


def _accounts(db: Database, clock: FrozenClock) -> tuple[str, str]:
    """(a main account, its subaccount holding NUMBER, with an SMS URL and an event sink)."""
    with db.write() as conn:
        main = str(account_use.create_account(conn, friendly_name="main", now=clock.now())["sid"])
        sub = str(account_use.create_account(conn, friendly_name="sub", now=clock.now(), owner_sid=main)["sid"])
        number_use.provision(conn, account_sid=sub, phone_number=NUMBER, now=clock.now(), settings={"sms_url": APP})
        config = json.dumps({"destination": SINK_URL, "method": "POST", "batch_events": False})
        sink = streams.create_sink(
            conn, sub, {"Description": "s", "SinkType": "webhook", "SinkConfiguration": config}, clock.now()
        )
        streams.create_subscription(
            conn, sub, {"Description": "s", "SinkSid": sink["sid"]}, [json.dumps({"type": SENT})], clock.now()
        )
    return main, sub


def _set_status(db: Database, clock: FrozenClock, account_sid: str, status: str) -> None:
    with db.write() as conn:
        account_status.set_status(conn, account_sid, status, now=clock.now(), with_subaccounts=False)


def _claimed(db: Database, clock: FrozenClock, kind: str) -> dict[str, Any]:
    with db.write() as conn:
        [row] = [r for r in outbox.claim_due(conn, now=clock.now(), limit=100, lease_seconds=60) if r["kind"] == kind]
    return row


def _event_queued(db: Database, clock: FrozenClock, account_sid: str) -> str:
    """A message of the account, sent: its Event Streams event waits in the outbox."""
    with db.write() as conn:
        new = prepare_message(conn, account_sid, SendRequest(to="+14155552671", from_=NUMBER, body="hi"), clock.now())
        insert_messages(conn, [new])
    sid = str(new.message["sid"])
    for status in (MessageStatus.SENDING, MessageStatus.SENT):
        with db.write() as conn:  # the event is queued in the status change's transaction
            enqueue_status_callback(conn, transition(conn, sid, status, at=clock.now()), now=clock.now())
    return sid


def _text_in(db: Database, clock: FrozenClock) -> None:
    """A text to NUMBER: its webhook delivery waits in the outbox."""
    with db.write() as conn:
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )


def _timeline(db: Database, sid: str, kind: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [e for e in list_events(conn, sid) if e["kind"] == kind]


def _alert_codes(db: Database, account_sid: str) -> list[int]:
    with db.read() as conn:
        return [a["error_code"] for a in list_alerts(conn, account_sid=account_sid)]


@pytest.mark.parametrize("closed", ["subaccount", "main account"])
def test_a_closed_accounts_waiting_event_ends_unsent(db: Database, clock: FrozenClock, closed: str) -> None:
    main, sub = _accounts(db, clock)
    sid = _event_queued(db, clock, sub)
    _set_status(db, clock, sub if closed == "subaccount" else main, "closed")
    sender = RecordingWebhookSender()
    row = _claimed(db, clock, EVENT)
    assert asyncio.run(deliver_event(db, sender, clock, row, policy=FAST)) is Outcome.FAILED
    assert sender.requests == []
    with db.read() as conn:
        done = outbox.get_delivery(conn, row["id"])
    assert done is not None and done["status"] == "failed" and "closed" in done["last_error"]
    [failed] = _timeline(db, sid, "event_failed")
    assert failed["error_code"] == 11200 and "closed" in failed["detail"]["error"]
    assert _alert_codes(db, sub) == [SINK_UNREACHABLE]


@pytest.mark.parametrize("closed", ["subaccount", "main account"])
def test_a_closed_accounts_waiting_inbound_webhook_ends_unsent(db: Database, clock: FrozenClock, closed: str) -> None:
    main, sub = _accounts(db, clock)
    _text_in(db, clock)
    _set_status(db, clock, sub if closed == "subaccount" else main, "closed")
    sender = RecordingWebhookSender()
    row = _claimed(db, clock, "inbound")
    sid = row["message_sid"]
    assert asyncio.run(deliver_inbound(db, sender, clock, row)) == []
    assert sender.requests == []
    with db.read() as conn:
        done = outbox.get_delivery(conn, row["id"])
    assert done is not None and done["status"] == "failed" and "closed" in done["last_error"]
    [failed] = _timeline(db, sid, "webhook_failed")
    assert failed["error_code"] == 11200
    assert _alert_codes(db, sub) == [11200]


def test_a_suspended_accounts_event_and_inbound_webhook_still_go_out(db: Database, clock: FrozenClock) -> None:
    main, sub = _accounts(db, clock)
    _event_queued(db, clock, sub)
    _text_in(db, clock)
    _set_status(db, clock, main, "suspended")
    sender = RecordingWebhookSender()
    with db.write() as conn:
        claimed = {r["kind"]: r for r in outbox.claim_due(conn, now=clock.now(), limit=100, lease_seconds=60)}
    assert asyncio.run(deliver_event(db, sender, clock, claimed[EVENT], policy=FAST)) is Outcome.DELIVERED
    asyncio.run(deliver_inbound(db, sender, clock, claimed["inbound"]))
    assert [r.url.split("?")[0] for r in sender.requests] == [SINK_URL, APP]
