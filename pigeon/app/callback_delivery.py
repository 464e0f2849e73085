"""Delivering a callback: one attempt at one claimed delivery, signed, recorded, retried or failed.

`deliver_one` makes one attempt at one claimed delivery (a status callback, a usage trigger's
callback): sign the URL and parameters with the owning account's auth token
(X-Twilio-Signature), add I-Twilio-Idempotency-Token (the same on every retry, so the receiver
can drop duplicates), send, and record the attempt (`attempt_row`, `record_outcome`;
`callback_batch` records many attempts the same way). What is enqueued, and when, is
`pigeon.app.callbacks`'.

What counts, and what is retried:

    2xx                         delivered (any 2xx; the body is never inspected)
    408, 429, 5xx               11200, retried with backoff (the receiver is busy or broken
                                for now; Retry-After is honoured up to the policy's ceiling)
    timeouts, connection errors 11205, retried with backoff
    301, 302, 303, 307, 308     followed, as Twilio follows them (REFERENCE.md §e), each hop
                                signed for its own URL (`pigeon.app.webhook_requests`); the
                                last answer counts as above; more than five in a row 11215, a
                                redirect that cannot be followed 11216, failed at once
    any other 1xx/4xx           11200, failed after this one attempt: a 404 or 401 is the
                                receiver's configuration and repeating the request for an hour
                                cannot change it, it only delays the alert that tells the user

The final failure becomes an alert (the request and the response kept in it) and a
``callback_failed`` entry on the message's timeline; a success adds a ``callback`` entry, so
the timeline shows what the user's server was told and when. Every attempt, successful or not,
is a row in webhook_attempts, and so is each redirect it followed (with the ``location`` it
went to), as the incoming-message webhook records its own.

Store work runs in threads (`asyncio.to_thread`): the store is synchronous SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import STATUS_CALLBACK
from pigeon.app.usage_triggers import USAGE_TRIGGER
from pigeon.app.webhook_requests import Followed, build_request, follow
from pigeon.domain import storable
from pigeon.domain.errors import WebhookError
from pigeon.domain.redirects import is_redirect
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.urls import url_for_log
from pigeon.ports import Clock, WebhookResponse, WebhookSender
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox

__all__ = [
    "RESPONSE_EXCERPT_BYTES",
    "Attempt",
    "Outcome",
    "Transactions",
    "attempt_row",
    "attempt_rows",
    "build_request",
    "classify",
    "deliver_one",
    "follow_redirect",
    "record_outcome",
    "timeline_entry",
]

log = logging.getLogger(__name__)

#: How much of a receiver's answer an attempt keeps (the alert and the doctor show it).
RESPONSE_EXCERPT_BYTES = 1024
#: Timeline entry kinds for a delivery's success and final failure, by delivery kind.
_TIMELINE = {STATUS_CALLBACK: ("callback", "callback_failed")}
#: What an alert calls a delivery of each kind (any other: "Webhook"), and the parameter that
#: names the resource it is about when it is not a message.
_ALERT_NAMES = {STATUS_CALLBACK: "Status callback", USAGE_TRIGGER: "Usage trigger callback"}
_RESOURCE_PARAMS = {USAGE_TRIGGER: "UsageTriggerSid"}


class Transactions(Protocol):
    """The store as `deliver_one` needs it (a `pigeon.store.engine.Database`), without importing it."""

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    #: The lease ran out and another worker took the delivery over; its outcome stands.
    SUPERSEDED = "superseded"


def classify(response: WebhookResponse) -> WebhookError | None:
    """None for a 2xx; otherwise the failure, retryable when the receiver may recover by itself."""
    if 200 <= response.status < 300:
        return None
    retryable = response.status in (408, 429) or response.status >= 500
    return WebhookError(
        11200, f"the receiver answered HTTP {response.status}", retryable=retryable, status=response.status
    )


def _retry_after(response: WebhookResponse | None) -> float | None:
    if response is None or response.status not in (429, 503):
        return None
    value = {k.lower(): v for k, v in response.headers.items()}.get("retry-after", "").strip()
    return float(value) if value.isascii() and value.isdigit() else None


def _excerpt(response: WebhookResponse | None) -> str | None:
    if response is None:
        return None
    return storable.excerpt(response.body, RESPONSE_EXCERPT_BYTES)


#: Why a delivery is not sent, when its account cannot sign it: the account is gone, or closed
#: (its own, or its main account's), which ends its credentials and what they sign.
ACCOUNT_GONE = "the owning account no longer exists"
ACCOUNT_CLOSED = "the owning account is closed"


def signing_token(account: Mapping[str, Any] | None) -> str | WebhookError:
    """The auth token a delivery of `account` (a `store.accounts.get_account` row, None when
    it is gone) is signed with, or the failure it ends with, unsent, when there is none: a
    closed account's token signs nothing. A suspended account keeps its callbacks."""
    if account is None:
        return WebhookError(11200, ACCOUNT_GONE, retryable=False)
    status, parent = account["status"], account.get("parent_status")
    if status == "closed" or parent == "closed":
        return WebhookError(11200, ACCOUNT_CLOSED, retryable=False)
    return str(account["auth_token"])


def _auth_token(db: Transactions, account_sid: str) -> str | WebhookError:
    with db.read() as conn:
        return signing_token(account_store.get_account(conn, account_sid))


@dataclass(frozen=True)
class Attempt:
    """One attempt's facts, handed from the event loop to the recording thread."""

    delivery: Mapping[str, Any]
    at: datetime
    duration_ms: float
    response: WebhookResponse | None
    error: WebhookError | None
    #: The requests made, when the receiver answered with a redirect (`exchange`); `response`
    #: and `error` are then the last one's.
    followed: Followed | None = None

    @property
    def number(self) -> int:
        return int(self.delivery["attempts"]) + 1

    @property
    def status_code(self) -> int | None:
        return self.response.status if self.response else None


async def deliver_one(
    db: Transactions,
    sender: WebhookSender,
    clock: Clock,
    delivery: Mapping[str, Any],
    *,
    policy: RetryPolicy,
    timeout: float = 15.0,
    rand: Callable[[], float] = random.random,
    answered: Callable[[], None] | None = None,
) -> Outcome:
    """Make one attempt at a claimed delivery and record its outcome. `answered` is called
    once the exchange is over, before the outcome is recorded (a writer may wait for the store)."""
    token = await asyncio.to_thread(_auth_token, db, delivery["account_sid"])
    started = clock.now()
    response: WebhookResponse | None = None
    perf = time.perf_counter()
    followed: Followed | None = None
    if isinstance(token, WebhookError):
        error: WebhookError | None = token  # no token to sign with: fail without sending
    else:
        try:
            response = await sender.send(build_request(delivery, token, timeout=timeout))
            error = classify(response)
        except WebhookError as exc:
            error = exc
        if error is not None and response is not None and is_redirect(response.status):
            response, error, followed = await follow_redirect(sender, delivery, token, response, timeout=timeout)
    if answered is not None:
        answered()
    attempt = Attempt(
        delivery=delivery,
        at=started,
        duration_ms=response.elapsed_ms if response and followed is None else (time.perf_counter() - perf) * 1000,
        response=response,
        error=error,
        followed=followed,
    )
    return await asyncio.to_thread(_record, db, clock, attempt, policy, rand)


async def follow_redirect(
    sender: WebhookSender, delivery: Mapping[str, Any], token: str, answer: WebhookResponse, *, timeout: float
) -> tuple[WebhookResponse | None, WebhookError | None, Followed]:
    """Follow the redirect a delivery was answered with (`answer`, a 3xx), within what is left
    of `timeout`: (the last answer, the failure or None, the requests made). Only a 3xx comes
    here: an answer that is no redirect costs nothing more than its request."""
    left = max(0.0, timeout - answer.elapsed_ms / 1000)
    params = delivery["params"]
    done = await follow(sender, token, delivery, delivery["url"], delivery["method"], params, left, answer=answer)
    if done.error is None and done.response is not None:
        error = classify(done.response)
        if error is not None:  # say where: the answer is not the configured URL's
            answered_at = f"the receiver answered HTTP {done.response.status} at {url_for_log(done.url)}"
            error = WebhookError(error.error_code, answered_at, retryable=error.retryable, status=error.status)
        done.error = error
    return done.response, done.error, done


def _record(
    db: Transactions, clock: Clock, attempt: Attempt, policy: RetryPolicy, rand: Callable[[], float]
) -> Outcome:
    with db.write() as conn:
        for row in attempt_rows(attempt):
            outbox.record_attempt(conn, **row)
        return record_outcome(conn, attempt, clock.now(), policy, rand)


def attempt_rows(attempt: Attempt) -> list[dict[str, Any]]:
    """The webhook_attempts rows of one attempt: one, or, when it followed redirects, one for
    each request it made, with the ``location`` each redirect sent it to."""
    if attempt.followed is None:
        return [attempt_row(attempt)]
    d = attempt.delivery
    return [
        {
            "delivery_id": d["id"],
            "account_sid": d["account_sid"],
            "at": attempt.at,
            "url": url_for_log(r.url),
            "status_code": r.response.status if r.response else None,
            "error_code": r.error.error_code if r.error else None,
            "error": r.error.message if r.error else None,
            "duration_ms": r.elapsed_ms,
            "response_excerpt": _excerpt(r.response),
            "location": url_for_log(r.location) if r.location else None,
        }
        for r in attempt.followed.requests()
    ]


def attempt_row(attempt: Attempt) -> dict[str, Any]:
    """The webhook_attempts row of an attempt that followed no redirect."""
    d, error = attempt.delivery, attempt.error
    return {
        "delivery_id": d["id"],
        "account_sid": d["account_sid"],
        "at": attempt.at,
        "url": url_for_log(d["url"]),
        "status_code": attempt.status_code,
        "error_code": error.error_code if error else None,
        "error": error.message if error else None,
        "duration_ms": attempt.duration_ms,
        "response_excerpt": _excerpt(attempt.response),
    }


def record_outcome(
    conn: Connection, attempt: Attempt, now: datetime, policy: RetryPolicy, rand: Callable[[], float]
) -> Outcome:
    """After the attempt's row is written: settle the delivery (delivered, retry, failed)."""
    d, error = attempt.delivery, attempt.error
    lease = d.get("claimed_until")
    if error is None:
        assert attempt.status_code is not None
        if not outbox.mark_delivered(conn, d["id"], now=now, status_code=attempt.status_code, lease=lease):
            return Outcome.SUPERSEDED
        _timeline(conn, attempt, now, success=True)
        return Outcome.DELIVERED
    decision = policy.decide(attempt.number, error, rand=rand)
    if decision is not None:
        delay = decision.delay
        hinted = _retry_after(attempt.response)
        if hinted is not None:
            delay = min(max(delay, hinted), policy.max_delay)
        kept = outbox.schedule_retry(
            conn,
            d["id"],
            now=now,
            next_attempt_at=now + timedelta(seconds=delay),
            status_code=attempt.status_code,
            error=error.message,
            lease=lease,
        )
        return Outcome.RETRY if kept else Outcome.SUPERSEDED
    if not outbox.mark_failed(
        conn, d["id"], now=now, status_code=attempt.status_code, error=error.message, lease=lease
    ):
        return Outcome.SUPERSEDED
    alert_sid = _alert(conn, attempt, error, now)
    _timeline(conn, attempt, now, success=False, alert_sid=alert_sid)
    log.warning(
        "webhook delivery failed for good",
        extra={
            "delivery_id": d["id"],
            "url": url_for_log(d["url"]),
            "attempts": attempt.number,
            "error_code": error.error_code,
        },
    )
    return Outcome.FAILED


def _alert(conn: Connection, attempt: Attempt, error: WebhookError, now: datetime) -> str:
    d, response = attempt.delivery, attempt.response
    what = _ALERT_NAMES.get(d["kind"], "Webhook")
    resource = d.get("message_sid")
    if resource is None and d["kind"] in _RESOURCE_PARAMS:
        resource = dict(d["params"]).get(_RESOURCE_PARAMS[d["kind"]])
    tries = "attempt" if attempt.number == 1 else "attempts"
    return alert_store.add_alert(
        conn,
        account_sid=d["account_sid"],
        error_code=error.error_code,
        text=f"{what} to {url_for_log(d['url'])} failed after {attempt.number} {tries}: {error.message}",
        at=now,
        resource_sid=resource,
        request_method=d["method"],
        request_url=url_for_log(d["url"]),
        request_variables=dict(d["params"]),
        response_status=response.status if response else None,
        response_body=_excerpt(response),
        response_headers=dict(response.headers) if response else None,
    )


def _timeline(
    conn: Connection, attempt: Attempt, now: datetime, *, success: bool, alert_sid: str | None = None
) -> None:
    sid = attempt.delivery.get("message_sid")
    # A message deleted meanwhile keeps no timeline: adding to it would bring part of it back.
    if not sid or message_store.get_message(conn, sid) is None:
        return
    message_store.add_event(conn, **timeline_entry(attempt, now, success=success, alert_sid=alert_sid))


def timeline_entry(attempt: Attempt, now: datetime, *, success: bool, alert_sid: str | None = None) -> dict[str, Any]:
    """The timeline entry (`store.messages.add_event`'s arguments) for a delivery's success or
    final failure."""
    d = attempt.delivery
    ok_kind, failed_kind = _TIMELINE.get(d["kind"], ("webhook", "webhook_failed"))
    params = dict(d["params"])
    detail: dict[str, Any] = {
        "delivery_id": d["id"],
        "url": url_for_log(d["url"]),
        "attempts": attempt.number,
        "status_code": attempt.status_code,
        "duration_ms": round(attempt.duration_ms, 1),
    }
    if attempt.followed is not None and attempt.followed.redirected:
        detail["redirected_to"] = url_for_log(attempt.followed.url)
    if not success:
        assert attempt.error is not None
        detail |= {"error": attempt.error.message, "alert_sid": alert_sid}
    return {
        "message_sid": d["message_sid"],
        "account_sid": d["account_sid"],
        "at": now,
        "kind": ok_kind if success else failed_kind,
        "status": params.get("MessageStatus"),
        "error_code": None if success or attempt.error is None else attempt.error.error_code,
        "detail": detail,
    }
