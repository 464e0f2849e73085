"""Status callbacks whose receiver answers with an HTTP redirect, on both stores.

Twilio follows 301/302/307 (REFERENCE.md §e, "Twilio as HTTP client"); Pigeon follows them as
it does for the incoming-message webhook: each hop signed for its own URL, five at most in a
row (11215), one that cannot be followed 11216, each hop an attempt row with its Location.
Before, a 3xx was a final 11200 on the first attempt, and the receiver that moved to https
lost every callback. Deliveries go through the real worker (`CallbackBatch`) and through
`deliver_one`; only the HTTP side is the RecordingWebhookSender.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from pigeon.app.callback_delivery import Outcome, deliver_one
from pigeon.domain.retry import RetryPolicy
from pigeon.ports import WebhookRequest, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.pipeline import Pipeline

FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)
HTTP = "http://hooks.example.com/status?app=1"
HTTPS = "https://hooks.example.com/status?app=1"


def moved(status: int, location: str | None) -> WebhookResponse:
    headers = {"Location": location} if location is not None else {}
    return WebhookResponse(status=status, headers=headers, body=b"", elapsed_ms=1.0)


def run_worker(pipe: Pipeline, sender: RecordingWebhookSender, rounds: int = 3) -> None:
    """`rounds` claims: a message's callbacks to one URL go one after the other."""
    worker = WebhookWorker(pipe.db, sender, pipe.clock, policy=FAST, concurrency=10)
    for _ in range(rounds):
        asyncio.run(worker.run_once())


def delivered_message(pipe: Pipeline, url: str = HTTP) -> str:
    sid = pipe.send(callback=url)
    pipe.dispatch()
    pipe.receipts(advance=1)
    return sid


def attempts(pipe: Pipeline, sid: str) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        return outbox.list_attempts(conn, message_sid=sid)


def deliveries(pipe: Pipeline, sid: str) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        return outbox.list_deliveries(conn, message_sid=sid)


def check_signed(pipe: Pipeline, requests: list[WebhookRequest]) -> None:
    """Each request passes RequestValidator at the URL it was sent to."""
    validator = RequestValidator(pipe.auth_token)
    for req in requests:
        assert validator.validate(req.url, dict(req.params), req.headers["X-Twilio-Signature"]), req.url


def test_a_move_to_https_is_followed_and_every_callback_arrives(pipe: Pipeline) -> None:
    sid = delivered_message(pipe)
    sender = RecordingWebhookSender(lambda req: moved(301, HTTPS) if req.url.startswith("http:") else 204)
    run_worker(pipe, sender)
    landed = [dict(r.params)["MessageStatus"] for r in sender.requests if r.url == HTTPS]
    assert landed == ["sending", "sent", "delivered"]
    check_signed(pipe, sender.requests)
    # Both requests of one callback carry its idempotency token: it is one callback.
    tokens = {d["idempotency_token"] for d in deliveries(pipe, sid)}
    assert {r.headers["I-Twilio-Idempotency-Token"] for r in sender.requests} == tokens
    assert [(d["status"], d["attempts"]) for d in deliveries(pipe, sid)] == [("delivered", 1)] * 3
    assert pipe.alerts(sid) == []
    # Each hop is an attempt row of its own, with the Location it followed.
    rows = [(a["url"], a["status_code"], a["location"], a["error_code"]) for a in attempts(pipe, sid)]
    assert rows == [(HTTP, 301, HTTPS, None), (HTTPS, 204, None, None)] * 3
    told = pipe.events(sid, "callback")
    assert [e["status"] for e in told] == ["sending", "sent", "delivered"]
    assert all(e["detail"]["redirected_to"] == HTTPS and e["detail"]["url"] == HTTP for e in told)


def test_a_303_is_fetched_by_get_without_the_parameters(pipe: Pipeline) -> None:
    sid = delivered_message(pipe)
    sender = RecordingWebhookSender(lambda req: moved(303, "/thanks") if req.method == "POST" else 200)
    run_worker(pipe, sender)
    gets = [r for r in sender.requests if r.method == "GET"]
    assert [r.url for r in gets] == ["http://hooks.example.com/thanks"] * 3 and all(not r.params for r in gets)
    check_signed(pipe, sender.requests)
    assert [d["status"] for d in deliveries(pipe, sid)] == ["delivered"] * 3


def test_an_answer_with_no_redirect_is_recorded_as_before(pipe: Pipeline) -> None:
    """The path of nearly every callback: one request, one attempt row, no location."""
    sid = delivered_message(pipe)
    sender = RecordingWebhookSender(default=204)
    run_worker(pipe, sender)
    assert len(sender.requests) == 3
    assert [(a["url"], a["status_code"], a["location"]) for a in attempts(pipe, sid)] == [(HTTP, 204, None)] * 3
    assert all("redirected_to" not in e["detail"] for e in pipe.events(sid, "callback"))


def test_redirects_in_a_loop_end_with_11215(pipe: Pipeline) -> None:
    sid = pipe.send(callback=HTTP)
    pipe.dispatch()
    sender = RecordingWebhookSender(lambda req: moved(302, req.url))
    run_worker(pipe, sender, rounds=1)
    assert len(sender.requests) == 6  # the request and five redirects, then no more
    delivery = deliveries(pipe, sid)[0]  # `sending`; `sent` waits behind it
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 11215
    rows = attempts(pipe, sid)
    assert [a["location"] for a in rows] == [HTTP] * 6 and rows[-1]["error_code"] == 11215


@pytest.mark.parametrize(("answer", "location"), [(moved(302, None), None), (moved(301, "ftp://x/y"), "ftp://x/y")])
def test_a_redirect_that_cannot_be_followed_is_11216(
    pipe: Pipeline, answer: WebhookResponse, location: str | None
) -> None:
    sid = pipe.send(callback=HTTP)
    pipe.dispatch()
    sender = RecordingWebhookSender(lambda req: answer)
    run_worker(pipe, sender, rounds=1)
    assert len(sender.requests) == 1
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 11216
    [row] = attempts(pipe, sid)
    assert (row["status_code"], row["error_code"], row["location"]) == (answer.status, 11216, location)


def test_a_redirect_to_a_receiver_that_is_down_is_retried_from_the_start(pipe: Pipeline) -> None:
    sid = pipe.send(callback=HTTP)
    pipe.dispatch()
    down = [True]
    sender = RecordingWebhookSender(lambda req: moved(307, HTTPS) if req.url == HTTP else (503 if down[0] else 204))
    run_worker(pipe, sender, rounds=1)
    delivery = deliveries(pipe, sid)[0]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    down[0] = False
    pipe.clock.advance(30)
    run_worker(pipe, sender, rounds=1)
    assert [r.url for r in sender.requests] == [HTTP, HTTPS, HTTP, HTTPS]
    delivery = deliveries(pipe, sid)[0]
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    rows = [(a["url"], a["status_code"], a["error_code"]) for a in attempts(pipe, sid)]
    assert rows == [(HTTP, 307, None), (HTTPS, 503, 11200), (HTTP, 307, None), (HTTPS, 204, None)]
    assert "at https://hooks.example.com/status" in attempts(pipe, sid)[1]["error"]


def test_deliver_one_follows_redirects_too(pipe: Pipeline) -> None:
    """The path of usage trigger callbacks (and of status callbacks outside the worker's batch)."""
    sid = pipe.send(callback=HTTP)
    pipe.dispatch()
    with pipe.db.write() as conn:
        [row] = outbox.claim_due(conn, now=pipe.clock.now(), limit=10, lease_seconds=60)  # `sending`
    sender = RecordingWebhookSender(lambda req: moved(308, HTTPS) if req.url == HTTP else 200)
    outcome = asyncio.run(deliver_one(pipe.db, sender, pipe.clock, row, policy=FAST))
    assert outcome is Outcome.DELIVERED
    check_signed(pipe, sender.requests)
    rows = [(a["url"], a["status_code"], a["location"]) for a in attempts(pipe, sid)]
    assert rows == [(HTTP, 308, HTTPS), (HTTPS, 200, None)]
