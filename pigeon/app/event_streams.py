"""The Event Streams API's use cases: webhook sinks, their test and validation, subscriptions
and the event types they name (events.twilio.com/v1, REFERENCE.md §i).

Sinks. Pigeon streams to webhook sinks (``sink_type`` webhook; kinesis, segment and email are
refused with 91000). A webhook sink is ``active`` from the start, as Twilio's are. Test
publishes a test event carrying a ``test_id`` and sets the sink ``validating``; Validate with
that id (the latest test's: a newer test replaces it) sets it ``active`` again, another id is
91005. Events go to a sink whatever its status. A sink still used by a subscription cannot
be deleted (91007).

Subscriptions. ``Types`` is repeated, each a JSON object {"type": …, "schema_version": n}; at
least one (91103), each a type Pigeon publishes in an existing schema version (91104), none
twice (91101). The sink must be one of the account's (91001). Its types can also be managed
one by one as SubscribedEvents; the last one cannot be removed (91103).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.events import EVENT_PARAM, SINK_PARAM, enqueue_event
from pigeon.domain.errors import ApiError
from pigeon.domain.events import (
    EVENT_TYPES,
    SINK_TYPES,
    TEST_EVENT,
    EventType,
    InvalidSubscribedType,
    SinkConfigurationError,
    Subscribed,
    UnknownEventType,
    parse_sink_configuration,
    parse_subscribed_type,
    sink_test_event,
    subscribed,
)
from pigeon.domain.flags import flag
from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.domain.signatures import equal_secrets
from pigeon.store import events as store

Row = dict[str, Any]

MAX_DESCRIPTION = 255
SINK_STATUSES = frozenset({"initialized", "validating", "active", "failed"})


def not_found(path: str) -> ApiError:
    return ApiError(20404, f"The requested resource {path} was not found", status=404)


def _required(params: Mapping[str, str], name: str, code: int) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise ApiError(code, f"Missing required parameter {name} in the post body", status=400)
    return value


def _description(params: Mapping[str, str], code: int) -> str:
    value = _required(params, "Description", code)
    if len(value) > MAX_DESCRIPTION:
        raise ApiError(code, f"Description may be at most {MAX_DESCRIPTION} characters long.", status=400)
    return value


# -- sinks --------------------------------------------------------------------------------------


def create_sink(conn: Connection, account_sid: str, params: Mapping[str, str], now: datetime) -> Row:
    description = _description(params, 91000)
    sink_type = _required(params, "SinkType", 91000).lower()
    if sink_type not in SINK_TYPES:
        raise ApiError(91000, f"SinkType {sink_type!r} is not one of {', '.join(sorted(SINK_TYPES))}.", status=400)
    if sink_type != "webhook":
        raise ApiError(91000, f"Pigeon streams events to webhook sinks only, not {sink_type}.", status=400)
    try:
        config = parse_sink_configuration(_required(params, "SinkConfiguration", 91000))
    except SinkConfigurationError as exc:
        raise ApiError(91000, str(exc), status=400) from None
    return store.create_sink(
        conn,
        account_sid=account_sid,
        description=description,
        sink_type=sink_type,
        configuration=config.as_json(),
        status="active",
        now=now,
    )


def fetch_sink(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    row = store.get_sink(conn, sid, account_sid=account_sid) if is_sid(sid, Prefix.SINK) else None
    if row is None:
        raise not_found(path)
    return row


def _in_use_filter(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    value = flag(raw)
    if value is None:
        raise ApiError(20001, f"InUse must be true or false, not {raw[:40]!r}.", status=400)
    return value


def list_sinks(conn: Connection, account_sid: str, query: Mapping[str, str], *, offset: int, limit: int) -> list[Row]:
    status = query.get("Status") or None
    if status is not None and status not in SINK_STATUSES:
        raise ApiError(20001, f"Status {status!r} is not one of {', '.join(sorted(SINK_STATUSES))}.", status=400)
    return store.list_sinks(
        conn, account_sid, in_use=_in_use_filter(query.get("InUse")), status=status, offset=offset, limit=limit
    )


def update_sink(
    conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime
) -> Row:
    fetch_sink(conn, account_sid, sid, path)
    store.update_sink(conn, sid, now=now, description=_description(params, 20001))
    return fetch_sink(conn, account_sid, sid, path)


def delete_sink(conn: Connection, account_sid: str, sid: str, path: str) -> None:
    # Locked, as a subscription being made on it locks it: the check below then sees that
    # subscription once it commits, instead of deleting the sink from under it (PostgreSQL).
    if not is_sid(sid, Prefix.SINK) or store.get_sink(conn, sid, account_sid=account_sid, lock=True) is None:
        raise not_found(path)
    if store.sink_in_use(conn, sid):
        raise ApiError(91007, "Sink still in use: delete the subscriptions that use it first.", status=400)
    store.delete_sink(conn, sid)


def test_sink(conn: Connection, account_sid: str, sid: str, path: str, now: datetime) -> Row:
    """Publish a test event to the sink (through the outbox, like any event); the sink is
    ``validating`` until Validate is given its test_id."""
    sink = fetch_sink(conn, account_sid, sid, path)
    test_id = new_sid("TE")
    event = sink_test_event(event_id=new_sid(Prefix.EVENT), sink_sid=sid, test_id=test_id, at=now)
    url = sink["sink_configuration"]["destination"]
    enqueue_event(conn, account_sid=account_sid, message_sid=None, sink_sid=sid, url=url, event=event, now=now)
    store.update_sink(conn, sid, now=now, status="validating")
    return {"result": "submitted"}


def _latest_test_id(conn: Connection, sink: Row) -> str | None:
    url = sink["sink_configuration"]["destination"]
    for row in store.recent_test_events(conn, account_sid=sink["account_sid"], url=url):
        params = dict((str(k), str(v)) for k, v in row["params"])
        if params.get(SINK_PARAM) != sink["sid"]:
            continue
        event = json.loads(params.get(EVENT_PARAM, "{}"))
        if event.get("type") == TEST_EVENT:
            return str(event["data"]["test_id"])
    return None


def validate_sink(
    conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime
) -> Row:
    sink = fetch_sink(conn, account_sid, sid, path)
    given = _required(params, "TestId", 20001)
    expected = _latest_test_id(conn, sink)
    if expected is None:
        raise ApiError(91004, "This sink has no test event: create one with POST …/Test first.", status=400)
    if not equal_secrets(given, expected):
        raise ApiError(91005, "TestId is not the test_id of this sink's latest test event.", status=400)
    store.update_sink(conn, sid, now=now, status="active")
    return {"result": "valid"}


# -- subscriptions ------------------------------------------------------------------------------


def _types(raw: Sequence[str]) -> list[Subscribed]:
    if not [v for v in raw if v.strip()]:
        raise ApiError(91103, "Types is empty: name at least one event type.", status=400)
    parsed: list[Subscribed] = []
    for value in raw:
        if not value.strip():
            continue
        try:
            entry = parse_subscribed_type(value)
        except UnknownEventType as exc:
            raise ApiError(91104, str(exc), status=400) from None
        except InvalidSubscribedType as exc:
            raise ApiError(91101, str(exc), status=400) from None
        if any(p.type == entry.type for p in parsed):
            raise ApiError(91101, f"Event type {entry.type} is named twice.", status=400)
        parsed.append(entry)
    return parsed


def create_subscription(
    conn: Connection, account_sid: str, params: Mapping[str, str], types: Sequence[str], now: datetime
) -> Row:
    description = _description(params, 91101)
    sink_sid = _required(params, "SinkSid", 91101)
    if not is_sid(sink_sid, Prefix.SINK) or store.get_sink(conn, sink_sid, account_sid=account_sid, lock=True) is None:
        raise ApiError(91001, f"Sink {sink_sid} could not be found on this account.", status=400)
    return store.create_subscription(
        conn,
        account_sid=account_sid,
        sink_sid=sink_sid,
        description=description,
        types=[t.as_json() for t in _types(types)],
        now=now,
    )


def fetch_subscription(conn: Connection, account_sid: str, sid: str, path: str, *, for_update: bool = False) -> Row:
    row = (
        store.get_subscription(conn, sid, account_sid=account_sid, for_update=for_update)
        if is_sid(sid, Prefix.SUBSCRIPTION)
        else None
    )
    if row is None:
        raise not_found(path)
    return row


def list_subscriptions(
    conn: Connection, account_sid: str, query: Mapping[str, str], *, offset: int, limit: int
) -> list[Row]:
    return store.list_subscriptions(
        conn, account_sid, sink_sid=query.get("SinkSid") or None, offset=offset, limit=limit
    )


def update_subscription(
    conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime
) -> Row:
    fetch_subscription(conn, account_sid, sid, path)
    if "Description" in params:
        store.update_subscription(conn, sid, now=now, description=_description(params, 20001))
    return fetch_subscription(conn, account_sid, sid, path)


def delete_subscription(conn: Connection, account_sid: str, sid: str, path: str) -> None:
    fetch_subscription(conn, account_sid, sid, path)
    store.delete_subscription(conn, sid)


# -- subscribed events (a subscription's types, one by one) --------------------------------------


def subscribed_event(subscription: Row, type_: str, path: str) -> Row:
    for entry in subscription["types"]:
        if entry["type"] == type_:
            return dict(entry)
    raise not_found(path)


def _checked(type_: str, version: str | None) -> Subscribed:
    try:
        return subscribed(type_, version)
    except UnknownEventType as exc:
        raise ApiError(91104, str(exc), status=400) from None
    except InvalidSubscribedType as exc:
        raise ApiError(91101, str(exc), status=400) from None


def add_subscribed_event(
    conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime
) -> Row:
    subscription = fetch_subscription(conn, account_sid, sid, path, for_update=True)
    entry = _checked(_required(params, "Type", 20001), params.get("SchemaVersion"))
    if any(t["type"] == entry.type for t in subscription["types"]):
        raise ApiError(91101, f"The subscription already has event type {entry.type}.", status=400)
    store.update_subscription(conn, sid, now=now, types=[*subscription["types"], entry.as_json()])
    return entry.as_json()


def update_subscribed_event(
    conn: Connection, account_sid: str, sid: str, type_: str, path: str, params: Mapping[str, str], now: datetime
) -> Row:
    subscription = fetch_subscription(conn, account_sid, sid, path, for_update=True)
    subscribed_event(subscription, type_, path)
    entry = _checked(type_, params.get("SchemaVersion"))
    types = [entry.as_json() if t["type"] == type_ else t for t in subscription["types"]]
    store.update_subscription(conn, sid, now=now, types=types)
    return entry.as_json()


def remove_subscribed_event(conn: Connection, account_sid: str, sid: str, type_: str, path: str, now: datetime) -> None:
    subscription = fetch_subscription(conn, account_sid, sid, path, for_update=True)
    subscribed_event(subscription, type_, path)
    rest = [t for t in subscription["types"] if t["type"] != type_]
    if not rest:
        raise ApiError(91103, "A subscription keeps at least one event type: delete the subscription instead.")
    store.update_subscription(conn, sid, now=now, types=rest)


# -- event types and their schemas ---------------------------------------------------------------


def event_types(schema_id: str | None = None) -> list[EventType]:
    return [t for t in EVENT_TYPES.values() if schema_id is None or t.schema_id == schema_id]


def event_type(type_: str, path: str) -> EventType:
    found = EVENT_TYPES.get(type_)
    if found is None:
        raise not_found(path)
    return found


def schema(schema_id: str, path: str) -> EventType:
    """The newest type of a schema, which carries the schema's latest version."""
    for t in EVENT_TYPES.values():
        if t.schema_id == schema_id:
            return t
    raise not_found(path)
