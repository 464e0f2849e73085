"""The incoming-message webhook: ask the application, follow its TwiML, send its replies.

One claimed `inbound` delivery is requested once (an application waiting for a text expects
an answer in seconds, not a retry an hour later), its HTTP redirects followed
(`pigeon.app.inbound_exchange`). When it fails — no connection (11205), an error status
(11200), redirects that loop (11215) or cannot be followed (11216), a document that does not
parse (12100), a content type that is not TwiML (12300), a bad verb or attribute (14xxx) — the
fallback URL is requested at once with ErrorCode and ErrorUrl added, and the failure is an
alert that keeps the request and the response (the fallback's own failure is a second one).
`<Redirect>` fetches more TwiML (at most 10 in a row; a URL that is no http(s) URL, 11100);
each `<Message>` becomes an `outbound-reply` (`pigeon.app.inbound_replies`), ten at most for
one text (the rest dropped with the warning 14109). A text whose account was closed (or its
main account) while it waited is not sent to the application at all (11200, `_unsent`).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callback_delivery import Transactions, signing_token
from pigeon.app.inbound_exchange import Exchange, fetch
from pigeon.app.inbound_replies import Reply, send_replies
from pigeon.domain import storable
from pigeon.domain.errors import WebhookError
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.twiml import MAX_MESSAGES
from pigeon.domain.urls import mask_credentials_in, resolve, url_for_log, without_credentials
from pigeon.ports import Clock, WebhookSender
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import messages as message_store
from pigeon.store import webhooks as outbox

log = logging.getLogger(__name__)

MAX_REDIRECTS = 10
#: A request is not started with less time than this left of the conversation's budget.
MIN_REQUEST_SECONDS = 1.0
#: Of the delivery's lease, the seconds kept back for recording the conversation.
RECORD_SECONDS = 5.0


@dataclass
class Conversation:
    delivery: Mapping[str, Any]
    exchanges: list[Exchange] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    #: The failure the conversation ended with (the primary URL's when the fallback answered).
    failure: Exchange | None = None
    #: The primary URL's failure, when the fallback was asked too: an alert of its own.
    primary_failure: Exchange | None = None
    #: Whether replies past the limit were already reported (14109).
    warned: bool = False
    #: The seconds the whole conversation may take, by `clock` from its start (no clock: no limit).
    budget: float = math.inf
    clock: Clock | None = None
    started: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.clock is not None:
            self.started = self.clock.now()

    def time_left(self) -> float:
        if self.clock is None or self.started is None:
            return math.inf
        return self.budget - (self.clock.now() - self.started).total_seconds()

    def failures(self) -> list[Exchange]:
        """Each failure to alert on, the primary URL's first: when the fallback fails too,
        both are problems to fix, and the primary's is the one to fix first."""
        found = [self.primary_failure] if self.primary_failure is not None else []
        if self.failure is not None and self.failure is not self.primary_failure:
            found.append(self.failure)
        return found


async def _follow(
    sender: WebhookSender,
    token: str,
    delivery: Mapping[str, Any],
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    timeout: float,
    convo: Conversation,
) -> bool:
    """Request `url`, then any Redirects; True when a usable TwiML answer came back."""
    for _ in range(MAX_REDIRECTS + 1):
        left = convo.time_left()
        if left < MIN_REQUEST_SECONDS:
            ex = Exchange(url=url, method=method, params=list(params))
            ex.error = WebhookError(
                11200,
                f"not requested: the conversation with the application had taken the {convo.budget:.0f} s "
                "its delivery may take (slow answers, redirects)",
                retryable=False,
            )
            convo.exchanges.append(ex)
            convo.failure = ex
            return False
        ex = await fetch(sender, token, delivery, url, method, params, min(timeout, left))
        convo.exchanges.append(ex)
        if ex.error is not None or ex.twiml is None:
            convo.failure = ex
            return False
        # The limit is per inbound message, not per document: redirects and the fallback add
        # up (else eleven documents of ten could send a hundred and ten replies). Past it the
        # first ten go and the rest do not, with a warning, as Twilio does; once is enough.
        kept = ex.twiml.messages[: MAX_MESSAGES - len(convo.replies)]
        convo.replies.extend(Reply(message, ex.url) for message in kept)  # ex.url: where the answer came from
        if len(kept) < len(ex.twiml.messages) + ex.twiml.dropped and not convo.warned:
            convo.warned = True
            ex.warning = WebhookError(
                14109,
                f"the answers asked for more than {MAX_MESSAGES} replies to one message: "
                f"the first {MAX_MESSAGES} are sent, the others are not",
                retryable=False,
            )
        if ex.twiml.redirect is None:
            return True
        # A relative URL ("/sms/next", "next") is read against the document that gave it, as a
        # browser reads a link. One that is no URL at all ends the conversation here, as the
        # document's failure (the Messages before it stand: Twilio runs the verbs in order).
        target = resolve(ex.url, ex.twiml.redirect.url)
        if target is None:
            ex.error = WebhookError(
                11100, f"the <Redirect> URL {ex.twiml.redirect.url!r} is not a valid http(s) URL", retryable=False
            )
            convo.failure = ex
            return False
        url, method = target, ex.twiml.redirect.method
    convo.failure = convo.exchanges[-1]
    convo.failure.error = WebhookError(14106, "more than 10 redirects in a row", retryable=False)
    return False


async def converse(
    sender: WebhookSender,
    token: str,
    delivery: Mapping[str, Any],
    *,
    timeout: float = 15.0,
    budget: float = math.inf,
    clock: Clock | None = None,
) -> Conversation:
    """The conversation with the application: the URL, its redirects, then the fallback's.
    `budget`: the seconds it may take in all, so that it is recorded while the delivery's lease
    holds. Past the lease another worker takes the delivery over and asks again; a conversation
    slower than the lease (redirects answered slowly) was then asked for ever, and its replies
    never sent."""
    convo = Conversation(delivery, budget=budget, clock=clock)
    params = list(delivery["params"])
    if await _follow(sender, token, delivery, delivery["url"], delivery["method"], params, timeout, convo):
        return convo
    fallback = delivery.get("fallback_url")
    if fallback:
        failed = convo.failure
        assert failed is not None and failed.error is not None
        # The fallback is often another host: it is told which URL failed, not its password.
        extra = [("ErrorCode", str(failed.error.error_code)), ("ErrorUrl", without_credentials(failed.url))]
        convo.primary_failure = failed
        if await _follow(
            sender, token, delivery, fallback, delivery.get("fallback_method") or "POST", params + extra, timeout, convo
        ):
            convo.failure = failed  # the primary still failed: it is still an alert
    return convo


def _lease_left(delivery: Mapping[str, Any], clock: Clock) -> float:
    """Seconds the conversation may take: until the delivery's lease runs out, less the time
    to record it (no lease known: no limit)."""
    until = delivery.get("claimed_until")  # aware UTC, as the store gives every datetime back
    if until is None:
        return math.inf
    return float((until - clock.now()).total_seconds()) - RECORD_SECONDS


def _alert_for(
    conn: Connection, delivery: Mapping[str, Any], ex: Exchange, problem: WebhookError, now: datetime
) -> None:
    resp = ex.response
    warning = problem is ex.warning
    what = "answered" if warning else "failed"
    alert_store.add_alert(
        conn,
        account_sid=delivery["account_sid"],
        error_code=problem.error_code,
        at=now,
        resource_sid=delivery["message_sid"],
        log_level="warning" if warning else "error",
        text=f"The incoming-message webhook {ex.method} {url_for_log(ex.url)} {what}: {problem.detail}",
        request_method=ex.method,
        request_url=url_for_log(ex.url),
        request_variables=mask_credentials_in(ex.params),
        response_status=resp.status if resp else None,
        response_body=storable.excerpt(resp.body, 4096) if resp else None,
        response_headers=dict(resp.headers) if resp else None,
    )


def record(conn: Connection, convo: Conversation, now: datetime, pacing: PacingPolicy) -> list[str]:
    """Record every exchange, the alerts and the replies; mark the delivery done. The mark
    comes first, guarded by the lease: a conversation that outlived its lease was taken over by
    another worker, which holds its own and records its replies, so this one records its
    exchanges alone (the replies twice would text the recipient twice)."""
    d = convo.delivery
    # Whether the text is still there, asked first (and its row held on PostgreSQL, as a
    # DELETE holds it before it takes the deliveries): the application may have deleted it
    # while it answered, and a timeline entry added now would bring part of it back.
    kept = bool(d["message_sid"]) and message_store.lock_message(conn, d["message_sid"])
    last = convo.exchanges[-1] if convo.exchanges else None
    ok = last is not None and (convo.failure is None or last.error is None)
    lease = d.get("claimed_until")
    status = last.response.status if last and last.response else None
    if ok:
        held = outbox.mark_delivered(conn, d["id"], now=now, status_code=status or 0, lease=lease)
    else:
        err = convo.failure.error.detail if convo.failure and convo.failure.error else "failed"
        held = outbox.mark_failed(conn, d["id"], now=now, status_code=status, error=err, lease=lease)
    for request in (r for ex in convo.exchanges for r in ex.requests()):
        outbox.record_attempt(
            conn,
            delivery_id=d["id"],
            account_sid=d["account_sid"],
            at=now,
            url=url_for_log(request.url),
            status_code=request.response.status if request.response else None,
            error_code=request.error.error_code if request.error else None,
            error=request.error.detail if request.error else None,
            duration_ms=request.elapsed_ms,
            response_excerpt=storable.excerpt(request.response.body, 1024) if request.response else None,
            location=url_for_log(request.location) if request.location else None,
        )
    if not held:
        log.warning("inbound webhook %s was taken over by another worker; its replies are that one's", d["id"])
        return []
    for ex in convo.exchanges:
        if ex.warning is not None:
            _alert_for(conn, d, ex, ex.warning, now)
    for failed in convo.failures():
        assert failed.error is not None
        _alert_for(conn, d, failed, failed.error, now)
    # Sent from what the delivery holds, the text deleted or not: the application asked for them.
    sids = send_replies(conn, d, convo.replies, now, pacing) if d["message_sid"] else []
    if kept:
        message_store.add_event(
            conn,
            message_sid=d["message_sid"],
            account_sid=d["account_sid"],
            at=now,
            kind="webhook" if ok else "webhook_failed",
            error_code=convo.failure.error.error_code if convo.failure and convo.failure.error else None,
            detail={
                "requests": [
                    {
                        "url": url_for_log(r.url),
                        "method": r.method,
                        "status": r.response.status if r.response else None,
                        "error_code": r.error.error_code if r.error else None,
                        "ms": round(r.elapsed_ms, 1),
                        **({"location": url_for_log(r.location)} if r.location else {}),
                    }
                    for ex in convo.exchanges
                    for r in ex.requests()
                ],
                "replies": sids,
            },
        )
    return sids


def _token(db: Transactions, account_sid: str) -> str | WebhookError | None:
    """The token to sign with; the failure the delivery ends with, unsent, when the account is
    closed (`signing_token`); None when the account is gone (nothing to alert or record on)."""
    with db.read() as conn:
        account = account_store.get_account(conn, account_sid)
    return signing_token(account) if account is not None else None


def _unsent(delivery: Mapping[str, Any], why: WebhookError) -> Conversation:
    """A conversation that never started: its one exchange, not requested, is the failure (an
    alert and a ``webhook_failed`` entry, as a status callback's ``callback_failed``); the
    fallback is not asked either, since it would be signed with the same token."""
    ex = Exchange(url=delivery["url"], method=delivery["method"], params=list(delivery["params"]), error=why)
    return Conversation(delivery, exchanges=[ex], failure=ex)


async def deliver_inbound(
    db: Transactions,
    sender: WebhookSender,
    clock: Clock,
    delivery: Mapping[str, Any],
    *,
    pacing: PacingPolicy | None = None,
    timeout: float = 15.0,
    answered: Callable[[], None] | None = None,
) -> list[str]:
    """Handle one claimed inbound delivery end to end; returns the reply SIDs. `answered` is
    called once the conversation with the application is over (its redirects and fallback
    included), before what it said is recorded."""
    token = await asyncio.to_thread(_token, db, delivery["account_sid"])
    if token is None:
        convo = Conversation(delivery)
    elif isinstance(token, WebhookError):
        convo = _unsent(delivery, token)
    else:
        convo = await converse(
            sender, token, delivery, timeout=timeout, budget=_lease_left(delivery, clock), clock=clock
        )
    if answered is not None:
        answered()

    def write() -> list[str]:
        with db.write() as conn:
            return record(conn, convo, clock.now(), pacing or PacingPolicy())

    return await asyncio.to_thread(write)
