"""A callback URL with characters outside ASCII in its path or query, on both stores: kept
percent-encoded as UTF-8 when it is set (a message's StatusCallback, a usage trigger's
CallbackUrl), and one kept raw before that is encoded when it is sent, in the request and in
the signature alike. Before, the request line carried raw UTF-8 (receivers answer 400, final
11200) and the signature covered the unescaped URL, which RequestValidator refuses."""

from __future__ import annotations

import asyncio

from twilio.request_validator import RequestValidator

from pigeon.app import usage_triggers
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.signatures import wire_url
from pigeon.store.tables import messages
from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.pipeline import Pipeline

RAW = "https://hooks.example.com/status/café?q=ü&x=%2F"
ENCODED = "https://hooks.example.com/status/caf%C3%A9?q=%C3%BC&x=%2F"
FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)


def _deliver(pipe: Pipeline) -> RecordingWebhookSender:
    sender = RecordingWebhookSender(default=204)
    worker = WebhookWorker(pipe.db, sender, pipe.clock, policy=FAST, concurrency=10)
    for _ in range(3):
        asyncio.run(worker.run_once())
    return sender


def test_a_status_callback_is_kept_and_sent_percent_encoded(pipe: Pipeline) -> None:
    sid = pipe.send(callback=RAW)
    assert pipe.message(sid)["status_callback"] == ENCODED
    pipe.dispatch()
    pipe.receipts(advance=1)
    assert pipe.callback_urls(sid) == [ENCODED] * 3
    sender = _deliver(pipe)
    assert [r.url for r in sender.requests] == [ENCODED] * 3
    validator = RequestValidator(pipe.auth_token)
    assert all(validator.validate(ENCODED, dict(r.params), r.headers["X-Twilio-Signature"]) for r in sender.requests)
    assert pipe.alerts(sid) == []


def test_a_status_callback_stored_raw_before_is_signed_as_it_goes_out(pipe: Pipeline) -> None:
    sid = pipe.send()
    with pipe.db.write() as conn:  # as a row written before the setters encoded it
        conn.execute(messages.update().where(messages.c.sid == sid).values(status_callback=RAW))
    pipe.dispatch()
    assert pipe.callback_urls(sid)[0] == RAW
    sender = _deliver(pipe)
    [first, *_] = sender.requests
    assert wire_url(first.url) == ENCODED  # what the sender puts on the request line
    validator = RequestValidator(pipe.auth_token)
    assert validator.validate(ENCODED, dict(first.params), first.headers["X-Twilio-Signature"])


def test_a_usage_triggers_callback_url_is_kept_encoded(pipe: Pipeline) -> None:
    params = {"CallbackUrl": RAW, "UsageCategory": "sms", "TriggerValue": "10"}
    with pipe.db.write() as conn:
        trigger = usage_triggers.create(conn, pipe.account_sid, params, pipe.clock.now())
    assert trigger["callback_url"] == ENCODED
