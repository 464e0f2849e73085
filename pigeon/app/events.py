"""Event Streams, publishing: message events queued durably for every subscribed sink.

`publish_status_event` runs inside the transaction of every status change (it is called from
`enqueue_status_callback`), `publish_inbound_event` inside the one that records an inbound
message. For each sink whose subscriptions name the event's type, one row of kind ``event``
goes into the webhook outbox (webhook_deliveries) holding the finished CloudEvent, so the
change and its events commit together and a crash loses none. An account without
subscriptions pays one indexed query per status change; `publish_status_events` takes a
batch of changes (the batched dispatch and receipt paths) and reads each account's
subscriptions once for the whole batch.

The row: ``url`` is the sink's destination, ``message_sid`` the message (None for a sink's
test event), ``params`` two pairs, ``sink_sid`` and ``cloudevent`` (the event as JSON text,
so every retry sends the same bytes and the same ``id``). `pigeon.app.event_delivery`
sends it.

A message created ``queued`` (sent with a From number) is not a status change:
`publish_queued_events` queues its ``queued`` event with its creation, in the transaction of
the group-commit writer's batch (`pigeon.app.accept_batch`), reading the subscriptions of all
the batch's accounts in one query. A message sent through a Messaging Service is created
``accepted`` and emits ``queued`` when the dispatcher moves it on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain.events import (
    INBOUND_RECEIVED,
    cloud_event,
    inbound_message_data,
    message_source,
    message_status_data,
    route,
    status_event_type,
)
from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import MessageStatus
from pigeon.store import events as store
from pigeon.store import webhooks as outbox

__all__ = [
    "EVENT",
    "EVENT_PARAM",
    "SINK_PARAM",
    "enqueue_event",
    "publish_inbound_event",
    "publish_queued_events",
    "publish_status_event",
    "publish_status_events",
]

#: webhook_deliveries.kind of an Event Streams delivery.
EVENT = store.EVENT
#: The outbox row's params: which sink, and the CloudEvent as its JSON text.
SINK_PARAM, EVENT_PARAM = "sink_sid", "cloudevent"
QUEUED = str(MessageStatus.QUEUED)


def event_text(event: Mapping[str, Any]) -> str:
    """A CloudEvent as the outbox keeps it (EVENT_PARAM) and its sink receives it."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def enqueue_event(
    conn: Connection,
    *,
    account_sid: str,
    message_sid: str | None,
    sink_sid: str,
    url: str,
    event: Mapping[str, Any],
    now: datetime,
) -> int:
    """Queue one CloudEvent for one sink; returns the delivery id."""
    text = event_text(event)
    return outbox.enqueue(
        conn,
        account_sid=account_sid,
        message_sid=message_sid,
        kind=EVENT,
        url=url,
        method="POST",
        params=[(SINK_PARAM, sink_sid), (EVENT_PARAM, text)],
        now=now,
    )


def _publish(
    conn: Connection,
    routes: Sequence[Mapping[str, Any]],
    message: Mapping[str, Any],
    event_type: str,
    data: Callable[[], Mapping[str, Any]],
    now: datetime,
) -> list[int]:
    """One event per sink that `routes` (the account's subscriptions) send `event_type` to."""
    sinks = route(((r["sink_sid"], r["types"]) for r in routes), event_type) if routes else {}
    if not sinks:
        return []
    destinations = {r["sink_sid"]: r["sink_configuration"]["destination"] for r in routes}
    payload, source = data(), message_source(message["account_sid"], message["sid"])
    ids = []
    for sink_sid, version in sinks.items():
        event = cloud_event(
            event_id=new_sid(Prefix.EVENT),
            type_=event_type,
            source=source,
            at=now,
            data=payload,
            schema_version=version,
        )
        ids.append(
            enqueue_event(
                conn,
                account_sid=message["account_sid"],
                message_sid=message["sid"],
                sink_sid=sink_sid,
                url=destinations[sink_sid],
                event=event,
                now=now,
            )
        )
    return ids


def publish_status_event(
    conn: Connection, message: Mapping[str, Any], *, now: datetime, raw_dlr_done_date: str | None = None
) -> list[int]:
    """Queue the event for `message`'s new status (the row as updated) to every subscribed
    sink; returns the delivery ids. Statuses without an event type (sending, canceled …) and
    accounts without subscriptions queue nothing."""
    return publish_status_events(conn, [(message, raw_dlr_done_date)], now=now)


def publish_status_events(
    conn: Connection, changed: Iterable[tuple[Mapping[str, Any], str | None]], *, now: datetime
) -> list[int]:
    """`publish_status_event` for many status changes in one transaction: (the row as updated,
    its raw_dlr_done_date) in order. Each account's subscriptions are read once."""
    routes: dict[str, list[dict[str, Any]]] = {}
    ids: list[int] = []
    for message, done in changed:
        if status_event_type(message["status"]) is None:
            continue
        account = message["account_sid"]
        if account not in routes:
            routes[account] = store.routes(conn, account)
        ids += _publish_status(conn, routes[account], message, done, now)
    return ids


def _publish_status(
    conn: Connection, routes: Sequence[Mapping[str, Any]], message: Mapping[str, Any], done: str | None, now: datetime
) -> list[int]:
    event_type = status_event_type(message["status"])
    if event_type is None:
        return []

    def data() -> Mapping[str, Any]:
        return message_status_data(message, at=now, raw_dlr_done_date=done)

    return _publish(conn, routes, message, event_type, data, now)


def publish_inbound_event(
    conn: Connection, message: Mapping[str, Any], *, now: datetime, opt_out_type: str | None = None
) -> list[int]:
    """Queue com.twilio.messaging.inbound-message.received for a message just received, with
    the OptOutType its webhook gets (`pigeon.app.inbound_keywords.opt_out_type`)."""

    def data() -> Mapping[str, Any]:
        return inbound_message_data(message, at=now, opt_out_type=opt_out_type)

    return _publish(conn, store.routes(conn, message["account_sid"]), message, INBOUND_RECEIVED, data, now)


def publish_queued_events(conn: Connection, created: Sequence[Mapping[str, Any]]) -> list[int]:
    """Queue com.twilio.messaging.message.queued for the messages of `created` (rows being
    inserted) that are created ``queued``, each at its creation time. One query reads the
    subscriptions of every account among them (none when no message is queued); the accounts
    that stream nothing cost that query's index probe and nothing more."""
    queued = [m for m in created if m["status"] == QUEUED]
    if not queued:
        return []
    routes = store.routes_of(conn, {m["account_sid"] for m in queued})
    ids: list[int] = []
    for message in queued:
        subscribed = routes.get(message["account_sid"])
        if subscribed:
            ids += _publish_status(conn, subscribed, message, None, message["date_created"])
    return ids
