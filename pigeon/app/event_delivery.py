"""Event Streams, delivery: one signed JSON POST per queued event, retried for about four hours.

`deliver_event` makes one attempt at one claimed outbox row of kind ``event`` (queued by
`pigeon.app.events`); the webhook worker calls it through its ``handlers``:

    POST <destination>?bodySHA256=<hex sha256 of the body>
    Content-Type: application/json; charset=utf-8
    X-Twilio-Signature: HMAC-SHA1 of that URL (no parameters), with the account's auth token
    I-Twilio-Idempotency-Token: the same on every retry of this delivery
    body: [<one CloudEvent>]

The receiver checks it with twilio's ``RequestValidator(auth_token).validate(url, body, sig)``
(the JSON-body path: the body must match bodySHA256, the URL its signature).

Batching. The body is always a JSON array, and each event is its own delivery, acknowledged,
retried and recorded on its own. With ``batch_events`` false that is Twilio's shape; with
``batch_events`` true every request is a batch of one, which any batch reader takes.

    2xx                         delivered
    408, 429, 5xx               retried with backoff (EVENT_STREAMS: about four hours;
                                Retry-After honoured up to the policy's ceiling)
    timeouts, connection errors retried the same way
    400 and any other 1xx/3xx/4xx
                                dropped after this attempt (failed)

Order. Events of one message go to one sink in the order they were published (the outbox
holds a later one back while an earlier one is being retried): a receiver sees ``sent``
before ``delivered``. Twilio promises no order; Pigeon keeps it, and each event's ``id``
still lets a receiver drop the duplicates that at-least-once delivery can bring.

Every attempt is a webhook_attempts row. A final failure raises alert 93101 (unable to
deliver events to sink) and, for a message's event, an ``event_failed`` timeline entry; a
success adds an ``event`` entry. An event whose sink was deleted meanwhile is dropped without
a request, an attempt or an alert. One whose account was closed meanwhile (or its main
account) fails unsent at once, as its status callbacks do (`callback_delivery.signing_token`):
closing ends the account's credentials, and its auth token signs nothing any more.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callback_delivery import RESPONSE_EXCERPT_BYTES, Outcome, Transactions, classify, signing_token
from pigeon.app.events import EVENT_PARAM, SINK_PARAM
from pigeon.domain import storable
from pigeon.domain.errors import WebhookError
from pigeon.domain.events import EVENT_STREAMS, SINK_TIMEOUT
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.signatures import compute_signature, json_request_url
from pigeon.domain.urls import url_for_log
from pigeon.ports import Clock, WebhookRequest, WebhookResponse, WebhookSender
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import events as store
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox

__all__ = ["CONTENT_TYPE", "EVENT_STREAMS", "SINK_UNREACHABLE", "build_event_request", "deliver_event", "event_body"]

#: Twilio's "Unable to deliver events to sink": the alert of a delivery that failed for good.
SINK_UNREACHABLE = 93101
CONTENT_TYPE = "application/json; charset=utf-8"


def _params(delivery: Mapping[str, Any]) -> dict[str, str]:
    return {str(name): str(value) for name, value in delivery["params"]}


def event_body(delivery: Mapping[str, Any]) -> bytes:
    """The request body of a delivery: a JSON array of its one event, byte-identical on retries."""
    return b"[" + _params(delivery)[EVENT_PARAM].encode("utf-8") + b"]"


def build_event_request(
    delivery: Mapping[str, Any], auth_token: str, *, timeout: float = SINK_TIMEOUT
) -> WebhookRequest:
    """The signed request: the URL carries bodySHA256 and is signed alone (no parameters)."""
    body = event_body(delivery)
    url = json_request_url(delivery["url"], body)
    return WebhookRequest(
        url=url,
        method="POST",
        params=(),
        headers={
            "X-Twilio-Signature": compute_signature(url, (), auth_token),
            "I-Twilio-Idempotency-Token": delivery["idempotency_token"],
        },
        timeout=timeout,
        body=body,
        content_type=CONTENT_TYPE,
    )


@dataclass(frozen=True)
class _Attempt:
    delivery: Mapping[str, Any]
    at: datetime
    duration_ms: float
    response: WebhookResponse | None
    error: WebhookError | None
    #: Nothing was sent because the sink is gone: drop quietly.
    sink_deleted: bool = False

    @property
    def number(self) -> int:
        return int(self.delivery["attempts"]) + 1

    @property
    def status_code(self) -> int | None:
        return self.response.status if self.response else None

    @property
    def sink_sid(self) -> str:
        return _params(self.delivery).get(SINK_PARAM, "")

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(_params(self.delivery)[EVENT_PARAM])
        return value


def _lookup(db: Transactions, delivery: Mapping[str, Any]) -> tuple[str | WebhookError, bool]:
    """(the owning account's auth token, or why there is none to sign with: the account is
    gone or closed, `signing_token`; whether the sink still exists)."""
    sink_sid = _params(delivery).get(SINK_PARAM, "")
    with db.read() as conn:
        account = account_store.get_account(conn, delivery["account_sid"])
        sink = store.get_sink(conn, sink_sid) if sink_sid else None
    return signing_token(account), sink is not None


async def deliver_event(
    db: Transactions,
    sender: WebhookSender,
    clock: Clock,
    delivery: Mapping[str, Any],
    *,
    policy: RetryPolicy = EVENT_STREAMS,
    timeout: float = SINK_TIMEOUT,
    rand: Callable[[], float] = random.random,
    answered: Callable[[], None] | None = None,
) -> Outcome:
    """Make one attempt at a claimed event delivery and record its outcome. `answered` is
    called once the exchange is over, before the outcome is recorded."""
    token, sink_exists = await asyncio.to_thread(_lookup, db, delivery)
    started, perf = clock.now(), time.perf_counter()
    response: WebhookResponse | None = None
    error: WebhookError | None = None
    if not sink_exists:
        error = WebhookError(11200, "the sink was deleted before the event went out", retryable=False)
    elif isinstance(token, WebhookError):
        error = token  # gone or closed: its token signs nothing, the event ends unsent
    else:
        try:
            response = await sender.send(build_event_request(delivery, token, timeout=timeout))
            error = classify(response)
        except WebhookError as exc:
            error = exc
    if answered is not None:
        answered()
    attempt = _Attempt(
        delivery=delivery,
        at=started,
        duration_ms=response.elapsed_ms if response else (time.perf_counter() - perf) * 1000,
        response=response,
        error=error,
        sink_deleted=not sink_exists,
    )
    return await asyncio.to_thread(_record, db, clock, attempt, policy, rand)


def _retry_delay(attempt: _Attempt, delay: float, policy: RetryPolicy) -> float:
    response = attempt.response
    if response is None or response.status not in (429, 503):
        return delay
    hinted = {k.lower(): v for k, v in response.headers.items()}.get("retry-after", "").strip()
    return min(max(delay, float(hinted)), policy.max_delay) if hinted.isascii() and hinted.isdigit() else delay


def _excerpt(response: WebhookResponse | None) -> str | None:
    return storable.excerpt(response.body, RESPONSE_EXCERPT_BYTES) if response else None


def _record(
    db: Transactions, clock: Clock, attempt: _Attempt, policy: RetryPolicy, rand: Callable[[], float]
) -> Outcome:
    d, error, now = attempt.delivery, attempt.error, clock.now()
    lease = d.get("claimed_until")
    with db.write() as conn:
        if not attempt.sink_deleted:
            outbox.record_attempt(
                conn,
                delivery_id=d["id"],
                account_sid=d["account_sid"],
                at=attempt.at,
                url=url_for_log(d["url"]),
                status_code=attempt.status_code,
                error_code=error.error_code if error else None,
                error=error.message if error else None,
                duration_ms=attempt.duration_ms,
                response_excerpt=_excerpt(attempt.response),
            )
        if error is None:
            assert attempt.status_code is not None
            if not outbox.mark_delivered(conn, d["id"], now=now, status_code=attempt.status_code, lease=lease):
                return Outcome.SUPERSEDED
            _timeline(conn, attempt, now)
            return Outcome.DELIVERED
        decision = policy.decide(attempt.number, error, rand=rand)
        if decision is not None:
            kept = outbox.schedule_retry(
                conn,
                d["id"],
                now=now,
                next_attempt_at=now + timedelta(seconds=_retry_delay(attempt, decision.delay, policy)),
                status_code=attempt.status_code,
                error=error.message,
                lease=lease,
            )
            return Outcome.RETRY if kept else Outcome.SUPERSEDED
        if not outbox.mark_failed(
            conn, d["id"], now=now, status_code=attempt.status_code, error=error.message, lease=lease
        ):
            return Outcome.SUPERSEDED
        if not attempt.sink_deleted:
            alert_sid = _alert(conn, attempt, error, now)
            _timeline(conn, attempt, now, alert_sid=alert_sid)
        return Outcome.FAILED


def _alert(conn: Connection, attempt: _Attempt, error: WebhookError, now: datetime) -> str:
    d, response, event = attempt.delivery, attempt.response, attempt.event
    tries = "attempt" if attempt.number == 1 else "attempts"
    return alert_store.add_alert(
        conn,
        account_sid=d["account_sid"],
        error_code=SINK_UNREACHABLE,
        text=f"Event Streams sink {attempt.sink_sid} at {url_for_log(d['url'])} did not take event {event['type']} "
        f"({event['id']}) after {attempt.number} {tries}: {error.message}",
        at=now,
        resource_sid=d.get("message_sid") or attempt.sink_sid,
        request_method="POST",
        request_url=url_for_log(d["url"]),
        request_variables={"sink_sid": attempt.sink_sid, "type": event["type"], "id": event["id"]},
        response_status=response.status if response else None,
        response_body=_excerpt(response),
        response_headers=dict(response.headers) if response else None,
    )


def _timeline(conn: Connection, attempt: _Attempt, now: datetime, *, alert_sid: str | None = None) -> None:
    d, error = attempt.delivery, attempt.error
    sid = d.get("message_sid")
    # Test events belong to no message; a message deleted meanwhile keeps no timeline.
    if not sid or message_store.get_message(conn, sid) is None:
        return
    event = attempt.event
    detail: dict[str, Any] = {
        "delivery_id": d["id"],
        "sink_sid": attempt.sink_sid,
        "url": url_for_log(d["url"]),
        "type": event["type"],
        "event_id": event["id"],
        "attempts": attempt.number,
        "status_code": attempt.status_code,
        "duration_ms": round(attempt.duration_ms, 1),
    }
    if error is not None:
        detail |= {"error": error.message, "alert_sid": alert_sid}
    status = event["data"].get("messageStatus")
    message_store.add_event(
        conn,
        message_sid=sid,
        account_sid=d["account_sid"],
        at=now,
        kind="event" if error is None else "event_failed",
        status=status.lower() if isinstance(status, str) else None,
        error_code=error.error_code if error else None,
        detail=detail,
    )
