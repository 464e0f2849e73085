"""Accepting a message: validate a create request and build the rows that make it durable.

`prepare_message` reads what it needs (sender ownership, opt-outs, the service) and either
raises the Twilio error for the request or returns a `NewMessage` for the group-commit
writer. Nothing is written here: a rejected request changes nothing.

The request's own checks are in `pigeon.app.send_request`, the sender's in
`pigeon.app.send_sender`; here, the account's geo permissions, the Messaging Service, the
sender's queue, and the rows. `SendRequest` is importable from here, as its callers do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.accounts import sendable_countries
from pigeon.app.queue_gauge import QueueGauge
from pigeon.app.send_request import (
    SendRequest,
    check_content,
    content_hash,
    recipient_of,
    schedule,
    service_named_in_from,
    validity_period,
)
from pigeon.app.send_sender import resolve_sender
from pigeon.domain import flags, geo, numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.media import content_type_of
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.segments import plan_segments
from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.domain.status import MessageStatus
from pigeon.domain.urls import ascii_url
from pigeon.store import services as service_store
from pigeon.store.accounts import get_account
from pigeon.store.dispatch import queued_segments
from pigeon.store.messages import NewMessage
from pigeon.store.settings import content_key

__all__ = ["SendRequest", "prepare_message"]


def _check_destination(conn: Connection, account_sid: str, to: str, account: Mapping[str, Any] | None) -> None:
    """21408 when the account's geo permissions leave out the country of `to`."""
    if account is None or account["sid"] != account_sid:
        account = get_account(conn, account_sid)
        if account is None:
            return  # no such account: the caller's own checks answer for it
    allowed = sendable_countries(conn, account)
    problem = geo.refusal(to, numbers.region_of(to), allowed) if allowed is not None else None
    if problem is not None:
        raise ApiError(21408, problem)


class _Queues:
    """Whether senders' queues take one message of `account_sid`, each sender's queue read once
    per send: the pool's choice (which passes a full queue over) and the check of the sender
    chosen share the reading. A sender's queue holds at most ten hours of its traffic
    (Twilio's rule); an alphanumeric sender's is the account's own, as the dispatcher paces it
    (`domain.pacing.queue_key`)."""

    def __init__(
        self, conn: Connection, account_sid: str, segments: int, pacing: PacingPolicy, gauge: QueueGauge | None
    ) -> None:
        self.conn, self.account_sid, self.segments, self.pacing, self.gauge = conn, account_sid, segments, pacing, gauge
        self._room: dict[str, bool] = {}

    def has_room(self, sender: str) -> bool:
        if sender not in self._room:
            if self.gauge is not None:
                queued = self.gauge.queued(self.conn, sender, account_sid=self.account_sid)
            else:
                queued = queued_segments(self.conn, sender, account_sid=self.account_sid)
            self._room[sender] = queued + self.segments <= self.pacing.queue_capacity(sender)
        return self._room[sender]

    def check(self, sender: str, *, service: bool) -> int | None:
        """Past a full queue, a create from a number fails at once (21611) instead of waiting
        hours to go out; one through a Messaging Service (whose pool had no other sender as
        good with room) is accepted, and fails with 30001 (queue overflow) when the dispatcher
        takes it: the code returned, to keep on the message (None: there is room)."""
        if self.has_room(sender):
            return None
        if service:
            return 30001
        raise ApiError(
            21611,
            f"The queue of {sender} is full: it already holds {self.pacing.queue_capacity(sender)} segments, "
            f"ten hours of traffic at {self.pacing.rate(sender):g} segments per second.",
        )


def prepare_message(
    conn: Connection,
    account_sid: str,
    req: SendRequest,
    now: datetime,
    *,
    pacing: PacingPolicy | None = None,
    queue_gauge: QueueGauge | None = None,
    account: Mapping[str, Any] | None = None,
    duplicates_since: datetime | None = None,
) -> NewMessage:
    """Validate `req` for `account_sid`; return the rows to commit, or raise ApiError.

    `queue_gauge`: where a busy caller (the API) reads queue lengths; without it, each call
    adds up the sender's queue. The caller tells the gauge once the message is committed.
    `account`: the account's row, when the caller has read it already (the API has).
    `duplicates_since`: look for a message with the same content created since then, and keep
    it in the result's `duplicate_of` (the API's duplicate warning; `send_guard.guard`)."""
    req = service_named_in_from(req)
    to = recipient_of(req)
    if not req.from_ and not req.messaging_service_sid:
        raise ApiError(21603, "A 'From' phone number or a MessagingServiceSid is required.")
    _check_destination(conn, account_sid, to, account)
    body = check_content(req)
    if req.media_urls:
        # Kept as a client requests them, non-ASCII percent-encoded: the media's content URL
        # redirects to one in a Location header (ASCII only), and the content fingerprint and
        # a scheduled message's, computed from the stored URLs, must agree.
        req = dataclasses.replace(req, media_urls=tuple(ascii_url(url) for url in req.media_urls))
    validity = validity_period(req.validity_period)

    service: dict[str, Any] | None = None
    if req.messaging_service_sid:
        if not is_sid(req.messaging_service_sid, Prefix.SERVICE):
            raise ApiError(21705, f"The MessagingServiceSid {req.messaging_service_sid} is not valid.")
        service = service_store.get_service(conn, req.messaging_service_sid, account_sid=account_sid)
        if service is None:
            raise ApiError(21701, f"The Messaging Service {req.messaging_service_sid} does not exist on this account.")
    send_at = schedule(req, now, service)

    asked = flags.read_flag("SmartEncoded", req.smart_encoded)
    smart = asked if asked is not None else bool(service and service["smart_encoding"])
    plan = plan_segments(body, smart_encoding=smart)
    # An MMS is one message, however long its text: not segmented, and charged once. (Sent
    # as an SMS with links instead, the dispatcher counts that text's segments then.)
    segments = 1 if req.media_urls else plan.num_segments
    # A scheduled message joins its sender's queue at its SendAt, not now. The automatic reply
    # to a keyword joins no queue: it goes out at once, outside the sender's pace
    # (`app.dispatch_claim._goes_at_once`), so a full queue does not refuse it, and the
    # person who texted STOP still gets the confirmation.
    waits = send_at is None and not req.keyword_reply
    queues = _Queues(conn, account_sid, segments, pacing or PacingPolicy(), queue_gauge) if waits else None
    sender, opted_out, duplicate = resolve_sender(
        conn, account_sid, req, to, service, plan.body, duplicates_since, now, queues.has_room if queues else None
    )
    if opted_out and not req.keyword_reply:
        raise ApiError(21610, f"Attempt to send to unsubscribed recipient {to}.")

    fail_code = queues.check(sender, service=service is not None) if queues else None
    sid = new_sid(Prefix.MMS if req.media_urls else Prefix.SMS)
    if send_at is not None:
        status = MessageStatus.SCHEDULED
    elif service is not None:
        status = MessageStatus.ACCEPTED
    else:
        status = MessageStatus.QUEUED
    if validity is None and service is not None:
        validity = service["validity_period"]
    row: dict[str, Any] = {
        "sid": sid,
        "account_sid": account_sid,
        "messaging_service_sid": service["sid"] if service else None,
        "direction": str(req.direction),
        "from_": sender,
        "to": to,
        "body": plan.body,
        "status": str(status),
        "encoding": plan.encoding,
        "num_segments": segments,
        "num_media": len(req.media_urls),
        "error_code": None,
        "error_message": None,
        "price": None,
        "price_unit": "USD",
        # Kept as it goes on the wire (non-ASCII percent-encoded), which the signature covers.
        "status_callback": ascii_url(req.status_callback) if req.status_callback else None,
        "validity_period": validity,
        "send_at": send_at,
        "fail_code": fail_code,
        "smart_encoded": smart,
        "keyword_reply": req.keyword_reply,
        "sender_from_pool": service is not None and not req.from_,
        "content_hash": content_hash(sender, to, plan.body, req.media_urls, key=content_key(conn)),
        "attempts": 0,
        "next_attempt_at": send_at or now,
        "claimed_by": None,
        "claimed_until": None,
        "date_created": now,
        "date_updated": now,
        "date_sent": None,
    }
    media_rows = [
        {
            "sid": new_sid(Prefix.MEDIA),
            "account_sid": account_sid,
            "message_sid": sid,
            "position": i,
            "url": url,
            "content_type": content_type_of(url),
            "date_created": now,
            "date_updated": now,
        }
        for i, url in enumerate(req.media_urls)
    ]
    event = {
        "message_sid": sid,
        "account_sid": account_sid,
        "at": now,
        "kind": "created",
        "status": str(status),
        "error_code": None,
        "detail": {
            "num_segments": segments,
            "encoding": plan.encoding,
            "num_media": len(req.media_urls),
            **({"send_at": send_at.isoformat()} if send_at else {}),
            **({"validity_period": validity} if validity else {}),
        },
    }
    new = NewMessage(message=row, media=media_rows, events=[event])
    if duplicates_since is not None:
        new.duplicates_since, new.duplicate_of = duplicates_since, duplicate
    return new
