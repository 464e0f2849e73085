"""Status callbacks: what Twilio POSTs on each status change, queued durably.

`enqueue_status_callback` runs in the transaction that changes a message's status, so the
change and its callback commit together (transactional outbox): a status that is in the store
always has its callback on the way. No callback is sent for the status a message is created
with; Twilio does the same (REFERENCE.md §a). `enqueue_status_callbacks` does the same for the
many messages a worker moves in one transaction. Both publish the change's Event Streams
events too (`pigeon.app.events`).

The callback goes to the message's own StatusCallback, else its Messaging Service's (Twilio's
precedence), with Twilio's parameters (`status_callback_params`). Its delivery, signed and
retried, is `pigeon.app.callback_delivery`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.events import publish_status_event, publish_status_events
from pigeon.domain.status import MessageStatus, pool_sender_unused
from pigeon.store import services as service_store
from pigeon.store import webhooks as outbox

__all__ = [
    "API_VERSION",
    "STATUS_CALLBACK",
    "enqueue_status_callback",
    "enqueue_status_callbacks",
    "status_callback_params",
    "status_callback_url",
]

API_VERSION = "2010-04-01"
#: webhook_deliveries.kind of a status callback.
STATUS_CALLBACK = "status_callback"

_WITH_ERROR_CODE = frozenset({MessageStatus.FAILED, MessageStatus.UNDELIVERED})
_WITH_DONE_DATE = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED})
#: Statuses a message is created with: they never produce a callback.
_INITIAL = frozenset({MessageStatus.ACCEPTED, MessageStatus.SCHEDULED, MessageStatus.RECEIVING})


def status_callback_params(
    message: Mapping[str, Any], *, raw_dlr_done_date: str | None = None
) -> list[tuple[str, str]]:
    """Twilio's status callback parameters for the message as it is now (REFERENCE.md §e)."""
    status = MessageStatus(message["status"])
    params = [
        ("MessageSid", message["sid"]),
        ("MessageStatus", str(status)),
        ("SmsSid", message["sid"]),
        ("SmsStatus", str(status)),
        ("AccountSid", message["account_sid"]),
        # Empty, as for a message without a sender, when its pool's choice was never used.
        ("From", "" if pool_sender_unused(message) else message.get("from_") or ""),
        ("To", message["to"]),
        ("ApiVersion", API_VERSION),
    ]
    if message.get("messaging_service_sid"):
        params.append(("MessagingServiceSid", message["messaging_service_sid"]))
    if status in _WITH_ERROR_CODE and message.get("error_code") is not None:
        params.append(("ErrorCode", str(message["error_code"])))
    if status in _WITH_DONE_DATE and raw_dlr_done_date:
        params.append(("RawDlrDoneDate", raw_dlr_done_date))
    return params


def status_callback_url(
    conn: Connection, message: Mapping[str, Any], *, service_callback: str | None = None
) -> str | None:
    """The message's own StatusCallback, else its Messaging Service's (Twilio's precedence)."""
    if message.get("status_callback"):
        return str(message["status_callback"])
    if service_callback:
        return service_callback
    service_sid = message.get("messaging_service_sid")
    if not service_sid:
        return None
    service = service_store.get_service(conn, service_sid, account_sid=message["account_sid"])
    return service["status_callback"] if service and service["status_callback"] else None


def enqueue_status_callback(
    conn: Connection,
    message: Mapping[str, Any],
    *,
    now: datetime,
    raw_dlr_done_date: str | None = None,
    service_callback: str | None = None,
) -> int | None:
    """Queue the callback for `message`'s current status; returns the delivery id, or None when
    there is no URL to call. `message` is the row as updated (`store.messages.transition` returns
    it); `service_callback` spares the service lookup when the caller already has it."""
    publish_status_event(conn, message, now=now, raw_dlr_done_date=raw_dlr_done_date)
    if MessageStatus(message["status"]) in _INITIAL:
        return None
    url = status_callback_url(conn, message, service_callback=service_callback)
    if url is None:
        return None
    return outbox.enqueue(
        conn,
        account_sid=message["account_sid"],
        message_sid=message["sid"],
        kind=STATUS_CALLBACK,
        url=url,
        method="POST",
        params=status_callback_params(message, raw_dlr_done_date=raw_dlr_done_date),
        now=now,
    )


def enqueue_status_callbacks(
    conn: Connection, changed: Sequence[tuple[Mapping[str, Any], str | None]], *, now: datetime
) -> None:
    """`enqueue_status_callback` for many messages at once: (the row as updated, its
    raw_dlr_done_date) in order. Same rules; one INSERT for all the callbacks, and each
    account's event subscriptions and each Messaging Service looked up once."""
    publish_status_events(conn, changed, now=now)
    services: dict[tuple[str, str], str | None] = {}
    rows = []
    for message, done in changed:
        if MessageStatus(message["status"]) in _INITIAL:
            continue
        url = message.get("status_callback") or None
        if url is None and message.get("messaging_service_sid"):
            key = (message["messaging_service_sid"], message["account_sid"])
            if key not in services:
                services[key] = status_callback_url(conn, message)
            url = services[key]
        if url is None:
            continue
        rows.append(
            outbox.new_delivery(
                account_sid=message["account_sid"],
                message_sid=message["sid"],
                kind=STATUS_CALLBACK,
                url=str(url),
                method="POST",
                params=status_callback_params(message, raw_dlr_done_date=done),
            )
        )
    outbox.enqueue_many(conn, rows, now=now)
