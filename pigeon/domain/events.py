"""Event Streams, the pure part: Twilio's messaging event types, their CloudEvents 1.0
envelope and data, sink configuration and subscription matching (REFERENCE.md §i).

An event is one CloudEvent (structured mode) ::

    {"specversion": "1.0", "type": "com.twilio.messaging.message.delivered",
     "source": "/2010-04-01/Accounts/AC…/Messages/SM….json", "id": "EZ…",
     "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/1",
     "datacontenttype": "application/json", "time": "2026-01-15T12:00:00.000Z",
     "data": {"messageSid": "SM…", "messageStatus": "DELIVERED", …}}

`id` is the receiver's dedupe key: it is made once, when the event is published, and every
retry carries the same one. Data keys are camelCase as Twilio's schemas spell them; an
optional field Pigeon has no value for (``mnc``, ``mcc``, ``tags``) is left out rather than
sent as null, since the schemas type them as strings and objects.

Schema versions. A subscription names the version it wants per type (``schema_version``,
the latest when omitted); the event's ``dataschema`` names that version. Pigeon sends one
data shape for every version: the fields it has, which are those of version 1 plus the later
additions (``numberOfSegments``, ``rawDlrDoneDate``, ``dateUpdated``; ``optOutType`` inbound).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pigeon.domain.integers import whole_number
from pigeon.domain.numbers import region_of
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus, pool_sender_unused
from pigeon.domain.urls import ascii_url, is_valid_http_url, without_credentials

__all__ = [
    "EVENT_STREAMS",
    "EVENT_TYPES",
    "INBOUND_RECEIVED",
    "SINK_TYPES",
    "TEST_EVENT",
    "EventType",
    "InvalidSubscribedType",
    "SinkConfigurationError",
    "Subscribed",
    "UnknownEventType",
    "WebhookSinkConfig",
    "cloud_event",
    "inbound_message_data",
    "iso_millis",
    "message_source",
    "message_status_data",
    "parse_sink_configuration",
    "parse_subscribed_type",
    "route",
    "sink_test_event",
    "status_event_type",
    "subscribed",
]

SCHEMAS_URL = "https://events-schemas.twilio.com"
MESSAGE_STATUS = "Messaging.MessageStatus"
INBOUND_MESSAGE = "Messaging.InboundMessageV1"
API_VERSION = "2010-04-01"
#: When the catalogue of types was published (the Types resource's date_created).
CATALOGUE_DATE = datetime(2020, 8, 13, 13, 28, 20, tzinfo=UTC)

#: Event Streams deliveries: 33 attempts over about four hours (1, 2, 4 … 512 s, then every
#: 10 minutes), Twilio's retry window for sinks (REFERENCE.md §i).
EVENT_STREAMS = RetryPolicy(max_attempts=33, base_delay=1.0, max_delay=600.0, multiplier=2.0, jitter=0.2)
#: Twilio gives a webhook sink five seconds to answer.
SINK_TIMEOUT = 5.0


@dataclass(frozen=True)
class EventType:
    type: str
    schema_id: str
    #: Versions 1..latest_version exist for the schema.
    latest_version: int
    description: str


def _types(*entries: EventType) -> dict[str, EventType]:
    return {e.type: e for e in entries}


_MESSAGE = "com.twilio.messaging.message."
EVENT_TYPES: Mapping[str, EventType] = _types(
    EventType(_MESSAGE + "queued", MESSAGE_STATUS, 7, "Messaging- message queued"),
    EventType(_MESSAGE + "sent", MESSAGE_STATUS, 7, "Messaging- message sent"),
    EventType(_MESSAGE + "delivered", MESSAGE_STATUS, 7, "Messaging- delivered message"),
    EventType(_MESSAGE + "undelivered", MESSAGE_STATUS, 7, "Messaging- undelivered message"),
    EventType(_MESSAGE + "failed", MESSAGE_STATUS, 7, "Messaging- failed message"),
    EventType(_MESSAGE + "read", MESSAGE_STATUS, 7, "Messaging- message read"),
    EventType("com.twilio.messaging.inbound-message.received", INBOUND_MESSAGE, 6, "Messaging- inbound message"),
)
INBOUND_RECEIVED = "com.twilio.messaging.inbound-message.received"
#: What POST /v1/Sinks/{Sid}/Test sends; not a type anyone subscribes to.
TEST_EVENT = "com.twilio.eventstreams.test-event"

_STATUS_TYPES = {
    MessageStatus.QUEUED: _MESSAGE + "queued",
    MessageStatus.SENT: _MESSAGE + "sent",
    MessageStatus.DELIVERED: _MESSAGE + "delivered",
    MessageStatus.UNDELIVERED: _MESSAGE + "undelivered",
    MessageStatus.FAILED: _MESSAGE + "failed",
    MessageStatus.READ: _MESSAGE + "read",
}

#: Twilio's sink types; Pigeon streams to webhooks.
SINK_TYPES = frozenset({"kinesis", "webhook", "segment", "email"})


def status_event_type(status: str) -> str | None:
    """The event a message entering `status` emits, or None (sending, canceled, … emit none)."""
    return _STATUS_TYPES.get(MessageStatus(status))


def iso_millis(at: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z: ``2026-01-15T12:00:00.000Z``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def message_source(account_sid: str, message_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message_sid}.json"


def cloud_event(
    *,
    event_id: str,
    type_: str,
    source: str,
    at: datetime,
    data: Mapping[str, Any],
    schema_version: int | None = None,
) -> dict[str, Any]:
    """The CloudEvents 1.0 envelope; ``dataschema`` comes from the type's schema and version."""
    event: dict[str, Any] = {"specversion": "1.0", "type": type_, "source": source, "id": event_id}
    known = EVENT_TYPES.get(type_)
    if known is not None:
        event["dataschema"] = f"{SCHEMAS_URL}/{known.schema_id}/{schema_version or known.latest_version}"
    event |= {"datacontenttype": "application/json", "time": iso_millis(at), "data": dict(data)}
    return event


def _present(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def message_status_data(
    message: Mapping[str, Any], *, at: datetime, raw_dlr_done_date: str | None = None
) -> dict[str, Any]:
    """Messaging.MessageStatus data for a message as it is now (its status after the change)."""
    status = MessageStatus(message["status"])
    event_type = _STATUS_TYPES[status]
    updated = message.get("date_updated")
    callback = message.get("status_callback")
    return _present(
        {
            "messageSid": message["sid"],
            "timestamp": iso_millis(at),
            "accountSid": message["account_sid"],
            "eventName": event_type,
            "apiVersion": API_VERSION,
            "from": "" if pool_sender_unused(message) else message.get("from_") or "",
            "to": message["to"],
            "messageStatus": str(status).upper(),
            "messagingServiceSid": message.get("messaging_service_sid"),
            "errorCode": message.get("error_code"),
            "body": message.get("body"),
            # Without its user:password: those are the callback's own credentials, and a sink
            # is another receiver, often another company's (as the fallback's ErrorUrl).
            "statusCallBackUrl": callback and without_credentials(callback),
            "rawDlrDoneDate": raw_dlr_done_date,
            "numberOfSegments": message.get("num_segments"),
            "dateUpdated": iso_millis(updated) if isinstance(updated, datetime) else None,
        }
    )


def inbound_message_data(
    message: Mapping[str, Any], *, at: datetime, opt_out_type: str | None = None
) -> dict[str, Any]:
    """Messaging.InboundMessageV1 data for a received message. Cities, states and zips are
    empty: Pigeon has no geographic lookup beyond the country."""
    sender, recipient = message.get("from_") or "", message["to"]
    return _present(
        {
            "messageSid": message["sid"],
            "timestamp": iso_millis(at),
            "accountSid": message["account_sid"],
            "eventName": INBOUND_RECEIVED,
            "from": sender,
            "to": recipient,
            "numMedia": int(message.get("num_media") or 0),
            "numSegments": int(message.get("num_segments") or 1),
            "body": message.get("body") or "",
            "toCountry": region_of(recipient) or "",
            "toState": "",
            "toCity": "",
            "toZip": "",
            "fromCountry": region_of(sender) or "",
            "fromState": "",
            "fromCity": "",
            "fromZip": "",
            "messagingServiceSid": message.get("messaging_service_sid"),
            "recipients": [recipient],
            "optOutType": opt_out_type,
        }
    )


def sink_test_event(*, event_id: str, sink_sid: str, test_id: str, at: datetime) -> dict[str, Any]:
    """The event POST /v1/Sinks/{Sid}/Test publishes: its ``test_id`` validates the sink."""
    return cloud_event(
        event_id=event_id, type_=TEST_EVENT, source=f"/v1/Sinks/{sink_sid}", at=at, data={"test_id": test_id}
    )


# -- sink configuration -------------------------------------------------------------------------


class SinkConfigurationError(ValueError):
    """The SinkConfiguration cannot be used."""


@dataclass(frozen=True)
class WebhookSinkConfig:
    destination: str
    method: str = "POST"
    batch_events: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"destination": self.destination, "method": self.method, "batch_events": self.batch_events}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise SinkConfigurationError(f"batch_events must be true or false, not {value!r}.")


def _load_json(raw: str) -> Any:
    """json.loads, refusing lone surrogates: JSON may spell one (a \\ud800 escape), but UTF-8
    cannot hold it, so neither the store nor a webhook's body could. UnicodeEncodeError is a
    ValueError, as json.loads' own errors are."""
    value = json.loads(raw)
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    return value


def parse_sink_configuration(raw: str) -> WebhookSinkConfig:
    """A webhook sink's configuration from the SinkConfiguration parameter (a JSON object)."""
    try:
        value = _load_json(raw)
    except UnicodeEncodeError:
        raise SinkConfigurationError(
            "SinkConfiguration holds a lone surrogate (a \\ud800-\\udfff escape), which no UTF-8 text can carry."
        ) from None
    except ValueError:
        raise SinkConfigurationError("SinkConfiguration must be a JSON object.") from None
    if not isinstance(value, dict):
        raise SinkConfigurationError("SinkConfiguration must be a JSON object.")
    destination = value.get("destination")
    if not isinstance(destination, str) or not is_valid_http_url(destination.strip()):
        raise SinkConfigurationError(f"SinkConfiguration destination {destination!r} is not a valid http or https URL.")
    method = value.get("method", "POST")
    if not isinstance(method, str) or method.strip().upper() != "POST":
        raise SinkConfigurationError(
            f"SinkConfiguration method {method!r} is not supported: events are POSTed as JSON, so it must be POST."
        )
    return WebhookSinkConfig(ascii_url(destination.strip()), "POST", _flag(value.get("batch_events", False)))


# -- subscriptions --------------------------------------------------------------------------------


class InvalidSubscribedType(ValueError):
    """A Types entry is not a JSON object with a "type" and an optional "schema_version"."""


class UnknownEventType(InvalidSubscribedType):
    """The event type, or the schema version asked of it, does not exist."""


@dataclass(frozen=True)
class Subscribed:
    type: str
    schema_version: int

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "schema_version": self.schema_version}


def subscribed(type_: str, schema_version: Any = None) -> Subscribed:
    """A checked (type, schema_version); the version defaults to the type's latest."""
    known = EVENT_TYPES.get(type_)
    if known is None:
        raise UnknownEventType(f"Event type {type_!r} is not one Pigeon publishes.")
    if schema_version is None or schema_version == "":
        return Subscribed(type_, known.latest_version)
    if isinstance(schema_version, bool | float | list | dict):
        raise InvalidSubscribedType(f"schema_version must be a whole number, not {schema_version!r}.")
    version = schema_version if isinstance(schema_version, int) else whole_number(str(schema_version))
    if version is None:
        raise InvalidSubscribedType(f"schema_version must be a whole number, not {str(schema_version)[:40]!r}.")
    if not 1 <= version <= known.latest_version:
        raise UnknownEventType(
            f"{known.schema_id} has versions 1 to {known.latest_version}; there is no version {schema_version!r}."
        )
    return Subscribed(type_, version)


def parse_subscribed_type(raw: str) -> Subscribed:
    """One Types value: a JSON object such as {"type": "com.twilio.messaging.message.sent",
    "schema_version": 1}."""
    try:
        value = _load_json(raw)
    except ValueError:
        raise InvalidSubscribedType(f"Types entry {raw!r} is not JSON.") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise InvalidSubscribedType(f'Types entry {raw!r} must be a JSON object with a "type".')
    return subscribed(value["type"], value.get("schema_version"))


def route(subscriptions: Iterable[tuple[str, Sequence[Mapping[str, Any]]]], event_type: str) -> dict[str, int]:
    """Which sinks get an event of `event_type`, and in which schema version: sink SID ->
    version. `subscriptions` are (sink SID, subscribed types) pairs. A sink gets each event
    once even when several of its subscriptions name the type (the highest version wins)."""
    sinks: dict[str, int] = {}
    for sink_sid, types in subscriptions:
        for entry in types:
            if entry.get("type") == event_type:
                version = int(entry.get("schema_version") or EVENT_TYPES[event_type].latest_version)
                sinks[sink_sid] = max(version, sinks.get(sink_sid, 0))
    return sinks
