"""Event Streams on both stores: sinks and subscriptions, events published in the status
change's transaction, delivered signed as JSON, retried, dropped, alerted, kept in order.

Everything runs through the real store and the real use cases (`publish_*`, `deliver_event`,
the WebhookWorker with the ``event`` handler); only the HTTP side is the RecordingWebhookSender.
Signatures are checked with the twilio SDK's RequestValidator, on its JSON-body path.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from twilio.request_validator import RequestValidator

from pigeon.app import accounts as account_use
from pigeon.app import event_streams as use
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.callback_delivery import Outcome
from pigeon.app.callbacks import STATUS_CALLBACK, enqueue_status_callback
from pigeon.app.event_delivery import CONTENT_TYPE, SINK_UNREACHABLE, deliver_event
from pigeon.app.events import EVENT, publish_status_event, publish_status_events
from pigeon.app.inbound import receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError, WebhookError
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.ports import InboundSms, WebhookRequest, WebhookResponse
from pigeon.store import events as store_events
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages, list_events, transition
from pigeon.testing import FrozenClock, RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.worker_runs import sent_while_recording

S = MessageStatus
SINK_URL = "https://sink.example.com/events?tenant=7"
CALLBACK = "https://hooks.example.com/status"
FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)
SENT, DELIVERED = "com.twilio.messaging.message.sent", "com.twilio.messaging.message.delivered"
RECEIVED = "com.twilio.messaging.inbound-message.received"


@dataclass
class Account:
    sid: str
    token: str
    number: str


def types(*names: str, version: int | None = 1) -> list[str]:
    return [json.dumps({"type": n} | ({"schema_version": version} if version else {})) for n in names]


def make_account(db: Database, clock: FrozenClock, number: str = "+14155550100") -> Account:
    with db.write() as conn:
        row = account_use.create_account(conn, friendly_name="events", now=clock.now())
        pn = number_use.provision(conn, account_sid=row["sid"], phone_number=number, now=clock.now())
    return Account(row["sid"], row["auth_token"], pn["phone_number"])


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> Account:
    return make_account(db, clock)


def add_sink(db: Database, clock: FrozenClock, acct: Account, url: str = SINK_URL) -> str:
    config = json.dumps({"destination": url, "method": "POST", "batch_events": False})
    with db.write() as conn:
        row = use.create_sink(
            conn, acct.sid, {"Description": "sink", "SinkType": "webhook", "SinkConfiguration": config}, clock.now()
        )
    return str(row["sid"])


def subscribe(db: Database, clock: FrozenClock, acct: Account, sink: str, *names: str, version: int = 1) -> str:
    with db.write() as conn:
        row = use.create_subscription(
            conn, acct.sid, {"Description": "sub", "SinkSid": sink}, types(*names, version=version), clock.now()
        )
    return str(row["sid"])


def new_message(db: Database, clock: FrozenClock, acct: Account, *, callback: str | None = CALLBACK) -> str:
    with db.write() as conn:
        req = SendRequest(to="+14155552671", from_=acct.number, body="hi", status_callback=callback)
        new = prepare_message(conn, acct.sid, req, clock.now())
        insert_messages(conn, [new])
    return str(new.message["sid"])


def move(db: Database, clock: FrozenClock, sid: str, *statuses: MessageStatus, **values: Any) -> None:
    """Each status change in its own transaction, through the callbacks' choke point."""
    for status in statuses:
        with db.write() as conn:
            row = transition(conn, sid, status, at=clock.now(), **values)
            enqueue_status_callback(conn, row, now=clock.now(), raw_dlr_done_date="2601151200")


def rows(db: Database, sid: str, kind: str = EVENT) -> list[dict[str, Any]]:
    with db.read() as conn:
        return [r for r in outbox.list_deliveries(conn, message_sid=sid) if r["kind"] == kind]


def event_of(row: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(dict(row["params"])["cloudevent"])
    return value


def claim(db: Database, clock: FrozenClock) -> list[dict[str, Any]]:
    with db.write() as conn:
        return outbox.claim_due(conn, now=clock.now(), limit=100, lease_seconds=60)


def deliver(db: Database, sender: RecordingWebhookSender, clock: FrozenClock, row: dict[str, Any]) -> Outcome:
    return asyncio.run(deliver_event(db, sender, clock, row, policy=FAST, rand=lambda: 0.0))


def claim_events(db: Database, clock: FrozenClock) -> list[dict[str, Any]]:
    return [r for r in claim(db, clock) if r["kind"] == EVENT]


def validate(acct: Account, request: WebhookRequest) -> bool:
    assert request.body is not None
    return bool(
        RequestValidator(acct.token).validate(request.url, request.body.decode(), request.headers["X-Twilio-Signature"])
    )


# -- publish ----------------------------------------------------------------------------------


def test_status_changes_publish_cloudevents_to_subscribed_sinks(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT, DELIVERED)
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT)
    clock.advance(1.5)
    move(db, clock, sid, S.DELIVERED)
    events = rows(db, sid)
    assert [event_of(r)["type"] for r in events] == [SENT, DELIVERED]  # nothing for "sending"
    assert all(r["url"] == SINK_URL and r["method"] == "POST" and dict(r["params"])["sink_sid"] == sink for r in events)
    delivered = event_of(events[1])
    assert delivered["id"].startswith("EZ") and len(delivered["id"]) == 34
    assert delivered["source"] == f"/2010-04-01/Accounts/{account.sid}/Messages/{sid}.json"
    assert delivered["dataschema"] == "https://events-schemas.twilio.com/Messaging.MessageStatus/1"
    assert delivered["time"] == "2026-01-15T12:00:01.500Z"
    data = delivered["data"]
    assert data["messageSid"] == sid and data["messageStatus"] == "DELIVERED" and data["accountSid"] == account.sid
    assert data["rawDlrDoneDate"] == "2601151200" and data["statusCallBackUrl"] == CALLBACK
    assert data["from"] == account.number and data["to"] == "+14155552671" and data["numberOfSegments"] == 1
    # Status callbacks still go out beside the events, each with its own sequence.
    assert len(rows(db, sid, STATUS_CALLBACK)) == 3


def test_failed_event_carries_the_error_code(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, "com.twilio.messaging.message.undelivered", version=7)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    move(db, clock, sid, S.UNDELIVERED, error_code=30003)
    [row] = rows(db, sid)
    event = event_of(row)
    assert event["dataschema"].endswith("/Messaging.MessageStatus/7")
    assert event["data"]["messageStatus"] == "UNDELIVERED" and event["data"]["errorCode"] == 30003


def test_one_event_per_sink_and_only_the_accounts_own(db: Database, clock: FrozenClock, account: Account) -> None:
    sink_a = add_sink(db, clock, account)
    sink_b = add_sink(db, clock, account, "https://other.example.com/in")
    subscribe(db, clock, account, sink_a, SENT)
    subscribe(db, clock, account, sink_a, SENT, DELIVERED)  # the same sink twice: one event
    subscribe(db, clock, account, sink_b, DELIVERED)
    stranger = make_account(db, clock, "+14155550199")
    subscribe(db, clock, stranger, add_sink(db, clock, stranger, "https://stranger.example.com/"), SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT, S.DELIVERED)
    got = [(dict(r["params"])["sink_sid"], event_of(r)["type"]) for r in rows(db, sid)]
    assert got[0] == (sink_a, SENT)
    assert sorted(got[1:]) == sorted([(sink_a, DELIVERED), (sink_b, DELIVERED)])
    assert len({event_of(r)["id"] for r in rows(db, sid)}) == 3


def test_no_subscription_no_event(db: Database, clock: FrozenClock, account: Account) -> None:
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    assert rows(db, sid) == []
    with db.write() as conn:  # statuses without an event type publish nothing, whatever the subscriptions
        row = transition(conn, sid, S.DELIVERED, at=clock.now())
        assert publish_status_event(conn, row | {"status": "sending"}, now=clock.now()) == []


def test_a_batch_of_changes_reads_each_accounts_subscriptions_once(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    subscribe(db, clock, account, add_sink(db, clock, account), SENT, DELIVERED)
    quiet = make_account(db, clock, "+14155550188")
    mine = [new_message(db, clock, account, callback=None) for _ in range(3)]
    theirs = new_message(db, clock, quiet, callback=None)
    queries: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "event_subscriptions" in statement:
            queries.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.write() as conn:
            changed: list[tuple[dict[str, Any], str | None]] = []
            for sid in [*mine, theirs]:
                transition(conn, sid, S.SENDING, at=clock.now())
                changed.append((transition(conn, sid, S.SENT, at=clock.now()), None))
            changed.append((transition(conn, mine[0], S.DELIVERED, at=clock.now()), "2601151200"))
            ids = publish_status_events(conn, changed, now=clock.now())
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len(queries) == 2  # one per account, not one per change
    assert len(ids) == 4
    assert [event_of(r)["type"] for r in rows(db, mine[0])] == [SENT, DELIVERED]
    assert event_of(rows(db, mine[0])[1])["data"]["rawDlrDoneDate"] == "2601151200"
    assert rows(db, theirs) == []


def test_inbound_message_publishes_received(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, RECEIVED, version=6)
    with db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender="+447700900123", recipient=account.number, body="stop"),
            now=clock.now(),
            base_url="http://pigeon.test",
        )
    assert intake.message_sid is not None
    [row] = rows(db, intake.message_sid)
    event = event_of(row)
    assert event["type"] == RECEIVED
    assert event["dataschema"] == "https://events-schemas.twilio.com/Messaging.InboundMessageV1/6"
    data = event["data"]
    assert data["messageSid"] == intake.message_sid and data["from"] == "+447700900123"
    assert data["to"] == account.number and data["body"] == "stop"
    # As its webhook's OptOutType: Twilio names the keyword for a Messaging Service's senders
    # only (test_inbound_intake_http), and this number is in none.
    assert "optOutType" not in data
    assert data["fromCountry"] == "GB" and data["toCountry"] == "US" and data["numSegments"] == 1


def test_a_stop_to_a_number_of_a_service_names_its_opt_out_type(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, RECEIVED, version=6)
    with db.write() as conn:
        service = service_use.create(conn, account.sid, {"FriendlyName": "pool"}, clock.now())
        [pn] = number_use.list_for_account(
            conn, account.sid, phone_number=account.number, friendly_name=None, offset=0, limit=1
        )
        service_use.add_number(
            conn, account.sid, service["sid"], pn["sid"], short_code=False, path="/p", now=clock.now()
        )
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender="+447700900123", recipient=account.number, body="stop"),
            now=clock.now(),
            base_url="http://pigeon.test",
        )
    assert intake.message_sid is not None
    [row] = rows(db, intake.message_sid)
    assert event_of(row)["data"]["optOutType"] == "STOP"


# -- deliver ----------------------------------------------------------------------------------


def test_delivery_is_a_signed_json_array_of_one_event(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    [row] = claim_events(db, clock)
    sender = RecordingWebhookSender([204])
    assert deliver(db, sender, clock, row) is Outcome.DELIVERED
    [request] = sender.requests
    assert request.method == "POST" and request.params == () and request.content_type == CONTENT_TYPE
    assert request.url.startswith(SINK_URL + "&bodySHA256=")
    assert request.body is not None
    body = json.loads(request.body)
    assert isinstance(body, list) and body == [event_of(row)]
    assert validate(account, request)
    assert not RequestValidator("wrong-token").validate(
        request.url, request.body.decode(), request.headers["X-Twilio-Signature"]
    )
    assert request.headers["I-Twilio-Idempotency-Token"] == row["idempotency_token"]
    [done] = rows(db, sid)
    assert done["status"] == "delivered" and done["attempts"] == 1 and done["last_status_code"] == 204
    with db.read() as conn:
        [attempt] = outbox.list_attempts(conn, delivery_id=row["id"])
        timeline = [(e["kind"], e["status"]) for e in list_events(conn, sid)]
    assert attempt["status_code"] == 204 and attempt["url"] == SINK_URL
    assert ("event", "sent") in timeline


def test_non_ascii_bodies_hash_and_sign_as_utf8(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, RECEIVED)
    with db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender="+14155552671", recipient=account.number, body="café ✓ 🐦"),
            now=clock.now(),
            base_url="http://pigeon.test",
        )
    [row] = claim_events(db, clock)
    sender = RecordingWebhookSender()
    assert deliver(db, sender, clock, row) is Outcome.DELIVERED
    [request] = sender.requests
    assert request.body is not None and "🐦".encode() in request.body  # UTF-8, not \u escapes
    assert json.loads(request.body)[0]["data"]["body"] == "café ✓ 🐦"
    assert json.loads(request.body)[0]["data"]["messageSid"] == intake.message_sid
    assert validate(account, request)


@pytest.mark.parametrize(
    "answer",
    [500, 503, 429, 408, WebhookError(11205, "no answer in time", retryable=True)],
    ids=["500", "503", "429", "408", "timeout"],
)
def test_retryable_answers_are_retried_with_the_same_bytes(
    db: Database, clock: FrozenClock, account: Account, answer: Any
) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    sender = RecordingWebhookSender([answer], default=200)
    [row] = claim_events(db, clock)
    assert deliver(db, sender, clock, row) is Outcome.RETRY
    [pending] = rows(db, sid)
    assert pending["status"] == "pending" and pending["next_attempt_at"] == clock.now() + timedelta(seconds=1)
    assert claim_events(db, clock) == []
    clock.advance(1)
    [again] = claim_events(db, clock)
    assert deliver(db, sender, clock, again) is Outcome.DELIVERED
    first, second = sender.requests
    assert first.body == second.body and first.url == second.url
    assert first.headers == second.headers  # same signature, same idempotency token
    with db.read() as conn:
        assert len(outbox.list_attempts(conn, delivery_id=row["id"])) == 2


def test_retry_after_is_honoured(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    busy = WebhookResponse(status=429, headers={"Retry-After": "7"}, body=b"slow down", elapsed_ms=1.0)
    [row] = claim_events(db, clock)
    assert deliver(db, RecordingWebhookSender([busy]), clock, row) is Outcome.RETRY
    assert rows(db, sid)[0]["next_attempt_at"] == clock.now() + timedelta(seconds=7)


def test_400_drops_the_event_with_an_alert(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    refused = WebhookResponse(status=400, headers={"Content-Type": "text/plain"}, body=b"bad event", elapsed_ms=2.0)
    [row] = claim_events(db, clock)
    assert deliver(db, RecordingWebhookSender([refused]), clock, row) is Outcome.FAILED
    [failed] = rows(db, sid)
    assert failed["status"] == "failed" and failed["attempts"] == 1
    with db.read() as conn:
        [alert] = list_alerts(conn, resource_sid=sid)
        timeline = [e for e in list_events(conn, sid) if e["kind"] == "event_failed"]
    assert alert["error_code"] == SINK_UNREACHABLE and alert["response_status"] == 400
    assert alert["response_body"] == "bad event" and sink in alert["alert_text"]
    assert alert["request_variables"]["type"] == SENT
    assert timeline and timeline[0]["detail"]["alert_sid"] == alert["sid"]


def test_retries_run_out_then_alert(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    sender = RecordingWebhookSender(default=500)
    outcomes = []
    for _ in range(FAST.max_attempts):
        [row] = claim_events(db, clock)
        outcomes.append(deliver(db, sender, clock, row))
        clock.advance(60)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    with db.read() as conn:
        [alert] = list_alerts(conn, resource_sid=sid)
    assert alert["error_code"] == SINK_UNREACHABLE and "3 attempts" in alert["alert_text"]


def test_a_deleted_sinks_events_are_dropped_quietly(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    sub = subscribe(db, clock, account, sink, SENT)
    sid = new_message(db, clock, account, callback=None)
    move(db, clock, sid, S.SENDING, S.SENT)
    with db.write() as conn:
        with pytest.raises(ApiError) as caught:
            use.delete_sink(conn, account.sid, sink, "/v1/Sinks/x")
        assert caught.value.code == 91007
    with db.write() as conn:
        use.delete_subscription(conn, account.sid, sub, "/v1/Subscriptions/x")
        use.delete_sink(conn, account.sid, sink, "/v1/Sinks/x")
    sender = RecordingWebhookSender()
    [row] = claim_events(db, clock)
    assert deliver(db, sender, clock, row) is Outcome.FAILED
    assert sender.requests == []
    with db.read() as conn:
        assert list_alerts(conn, resource_sid=sid) == []
        assert outbox.list_attempts(conn, delivery_id=row["id"]) == []


def test_a_sink_retrying_holds_back_that_messages_later_events_only(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT, DELIVERED)
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT, S.DELIVERED)
    worker = WebhookWorker(
        db,
        sender := RecordingWebhookSender(lambda r: 503 if r.body is not None and b'"SENT"' in r.body else 200),
        clock,
        policy=FAST,
        handlers={
            EVENT: lambda row, answered: deliver_event(
                db, sender, clock, row, policy=FAST, rand=lambda: 0.0, answered=answered
            )
        },
    )
    while asyncio.run(worker.run_once()):
        pass
    # The sent event failed and waits for its retry; its delivered event waits behind it,
    # while the status callbacks (another URL) all went out.
    kinds = {(r["kind"], r["status"]) for r in rows(db, sid, STATUS_CALLBACK)}
    assert kinds == {(STATUS_CALLBACK, "delivered")}
    assert [(event_of(r)["type"], r["status"], r["attempts"]) for r in rows(db, sid)] == [
        (SENT, "pending", 1),
        (DELIVERED, "waiting", 0),
    ]
    events_sent = [json.loads(r.body)[0]["type"] for r in sender.requests if r.body is not None]
    assert events_sent == [SENT]


def test_worker_delivers_callbacks_and_events_in_order(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT, DELIVERED)
    sid = new_message(db, clock, account)
    move(db, clock, sid, S.SENDING, S.SENT, S.DELIVERED)
    sender = RecordingWebhookSender()

    async def event(row: dict[str, Any], answered: Callable[[], None]) -> None:
        await deliver_event(db, sender, clock, row, policy=FAST, answered=answered)

    worker = WebhookWorker(db, sender, clock, policy=FAST, handlers={EVENT: event})
    while asyncio.run(worker.run_once()):
        pass
    events = [json.loads(r.body)[0] for r in sender.requests if r.body is not None]
    assert [e["type"] for e in events] == [SENT, DELIVERED]
    assert all(validate(account, r) for r in sender.requests if r.body is not None)
    assert [sender.params(i)["MessageStatus"] for i, r in enumerate(sender.requests) if r.body is None] == [
        "sending",
        "sent",
        "delivered",
    ]


# -- sinks and subscriptions ------------------------------------------------------------------


def test_sink_test_and_validate(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    with db.write() as conn:
        assert use.fetch_sink(conn, account.sid, sink, "p")["status"] == "active"
        with pytest.raises(ApiError) as none_yet:
            use.validate_sink(conn, account.sid, sink, "p", {"TestId": "TE1"}, clock.now())
        assert none_yet.value.code == 91004
        assert use.test_sink(conn, account.sid, sink, "p", clock.now()) == {"result": "submitted"}
        assert use.fetch_sink(conn, account.sid, sink, "p")["status"] == "validating"
    [row] = claim_events(db, clock)
    sender = RecordingWebhookSender()
    assert deliver(db, sender, clock, row) is Outcome.DELIVERED
    assert sender.requests[0].body is not None
    [event] = json.loads(sender.requests[0].body)
    assert event["type"] == "com.twilio.eventstreams.test-event" and validate(account, sender.requests[0])
    test_id = event["data"]["test_id"]
    with db.write() as conn:
        with pytest.raises(ApiError) as wrong:
            use.validate_sink(conn, account.sid, sink, "p", {"TestId": "TE" + "0" * 32}, clock.now())
        assert wrong.value.code == 91005
        # Found by fuzzing: text beyond ASCII made the comparison raise (a 500).
        with pytest.raises(ApiError) as accented:
            use.validate_sink(conn, account.sid, sink, "p", {"TestId": "é" * 20}, clock.now())
        assert accented.value.code == 91005
    with db.write() as conn:
        assert use.validate_sink(conn, account.sid, sink, "p", {"TestId": test_id}, clock.now()) == {"result": "valid"}
        assert use.fetch_sink(conn, account.sid, sink, "p")["status"] == "active"


def test_sink_and_subscription_rules(db: Database, clock: FrozenClock, account: Account) -> None:
    sink = add_sink(db, clock, account)
    config = json.dumps({"destination": SINK_URL})

    def refused(fn: Any, *args: Any) -> int:
        with db.write() as conn, pytest.raises(ApiError) as caught:
            fn(conn, *args)
        return caught.value.code

    now = clock.now()
    assert refused(use.create_sink, account.sid, {"SinkType": "webhook", "SinkConfiguration": config}, now) == 91000
    kinesis = {"Description": "k", "SinkType": "kinesis", "SinkConfiguration": "{}"}
    assert refused(use.create_sink, account.sid, kinesis, now) == 91000
    bad_url = {"Description": "w", "SinkType": "webhook", "SinkConfiguration": '{"destination": "nope"}'}
    assert refused(use.create_sink, account.sid, bad_url, now) == 91000
    base = {"Description": "s", "SinkSid": sink}
    assert refused(use.create_subscription, account.sid, base, [], now) == 91103
    assert refused(use.create_subscription, account.sid, base, types("com.twilio.voice.x"), now) == 91104
    assert refused(use.create_subscription, account.sid, base, types(SENT, SENT), now) == 91101
    assert refused(use.create_subscription, account.sid, base, ["{oops"], now) == 91101
    missing = {"Description": "s", "SinkSid": "DG" + "0" * 32}
    assert refused(use.create_subscription, account.sid, missing, types(SENT), now) == 91001
    other = make_account(db, clock, "+14155550177")
    assert refused(use.create_subscription, other.sid, base, types(SENT), now) == 91001  # not their sink

    sub = subscribe(db, clock, account, sink, SENT)
    with db.write() as conn:
        assert [s["sid"] for s in use.list_subscriptions(conn, account.sid, {"SinkSid": sink}, offset=0, limit=5)] == [
            sub
        ]
        assert use.list_subscriptions(conn, account.sid, {"SinkSid": "DG" + "9" * 32}, offset=0, limit=5) == []
        unused = add_sink_in(conn, account, now)
        in_use = use.list_sinks(conn, account.sid, {"InUse": "true"}, offset=0, limit=5)
        not_used = use.list_sinks(conn, account.sid, {"InUse": "false"}, offset=0, limit=5)
        assert [s["sid"] for s in in_use] == [sink] and [s["sid"] for s in not_used] == [unused]
        assert len(use.list_sinks(conn, account.sid, {"Status": "active"}, offset=0, limit=5)) == 2
        assert use.list_sinks(conn, other.sid, {}, offset=0, limit=5) == []
        use.add_subscribed_event(conn, account.sid, sub, "p", {"Type": DELIVERED, "SchemaVersion": "2"}, now)
        use.update_subscribed_event(conn, account.sid, sub, SENT, "p", {"SchemaVersion": "3"}, now)
        assert use.fetch_subscription(conn, account.sid, sub, "p")["types"] == [
            {"type": SENT, "schema_version": 3},
            {"type": DELIVERED, "schema_version": 2},
        ]
        use.remove_subscribed_event(conn, account.sid, sub, SENT, "p", now)
    assert refused(use.remove_subscribed_event, account.sid, sub, DELIVERED, "p", now) == 91103
    assert refused(use.add_subscribed_event, account.sid, sub, "p", {"Type": DELIVERED}, now) == 91101
    assert refused(use.fetch_subscription, other.sid, sub, "p") == 20404


def add_sink_in(conn: Any, acct: Account, now: Any) -> str:
    config = json.dumps({"destination": "https://unused.example.com/"})
    row = use.create_sink(conn, acct.sid, {"Description": "u", "SinkType": "webhook", "SinkConfiguration": config}, now)
    return str(row["sid"])


class _SlowWrites:
    """The store, with every write transaction held until `hold` is set: a writer waiting for
    the lock."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.hold = threading.Event()
        self.first_write_done = threading.Event()

    def read(self) -> Any:
        return self._db.read()

    @contextmanager
    def write(self) -> Iterator[Any]:
        self.hold.wait(30)
        with self._db.write() as conn:
            yield conn
        self.first_write_done.set()


def test_an_event_frees_its_slot_when_the_sink_answers_not_when_it_is_recorded(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """As status callbacks do: while recording outcomes waits for the store, the worker keeps
    sending, within its cap of claimed rows (`max_claimed`), not within its two slots."""
    sink = add_sink(db, clock, account)
    subscribe(db, clock, account, sink, SENT)
    sids = [new_message(db, clock, account, callback=None) for _ in range(8)]
    for sid in sids:
        move(db, clock, sid, S.SENDING, S.SENT)
    sender = RecordingWebhookSender()
    slow = _SlowWrites(db)

    async def event(row: dict[str, Any], answered: Callable[[], None]) -> None:
        await deliver_event(slow, sender, clock, row, policy=FAST, answered=answered)

    worker = WebhookWorker(
        db, sender, clock, policy=FAST, handlers={EVENT: event}, concurrency=2, max_claimed=5, poll_interval=0.01
    )
    sent = sent_while_recording(
        worker, sender, hold=slow.hold, recorded=slow.first_write_done.is_set, total=8, expect=5
    )
    assert sent == 5  # two slots, five claimed rows
    assert len(sender.requests) == 8
    for sid in sids:
        assert [(event_of(r)["type"], r["status"]) for r in rows(db, sid)] == [(SENT, "delivered")]


def test_a_sink_is_not_deleted_under_a_subscription_being_made_on_it(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    """PostgreSQL: DELETE /v1/Sinks/DG… while a subscription's POST on that sink is in flight.
    Each checked the other's row before it committed: both succeeded, and the subscription
    pointed at no sink, its events sent nowhere. The sink's row is locked by both, so the
    delete waits, then sees the subscription and refuses (91007)."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    sink = add_sink(db, clock, account)
    refused: list[ApiError] = []

    def delete() -> None:
        try:
            with db.write() as conn:
                use.delete_sink(conn, account.sid, sink, f"/v1/Sinks/{sink}")
        except ApiError as exc:
            refused.append(exc)

    with db.engine.connect() as conn:
        tx = conn.begin()
        use.create_subscription(
            conn,
            account.sid,
            {"Description": "sub", "SinkSid": sink},
            types("com.twilio.messaging.message.delivered"),
            clock.now(),
        )
        other = threading.Thread(target=delete)
        other.start()
        other.join(0.5)  # without the lock the delete commits here, beside this transaction
        tx.commit()
    other.join()
    assert [e.code for e in refused] == [91007]
    with db.read() as conn:
        assert store_events.get_sink(conn, sink) is not None
