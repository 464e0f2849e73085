"""Event Streams' pure rules: event types, the CloudEvents envelope and its data, sink
configuration, subscribed types and the routing of an event to sinks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pigeon.domain.events import (
    EVENT_STREAMS,
    EVENT_TYPES,
    INBOUND_RECEIVED,
    TEST_EVENT,
    InvalidSubscribedType,
    SinkConfigurationError,
    Subscribed,
    UnknownEventType,
    WebhookSinkConfig,
    cloud_event,
    inbound_message_data,
    iso_millis,
    message_source,
    message_status_data,
    parse_sink_configuration,
    parse_subscribed_type,
    route,
    sink_test_event,
    status_event_type,
    subscribed,
)
from pigeon.domain.status import MessageStatus

AC, SM, MG = "AC" + "a" * 32, "SM" + "b" * 32, "MG" + "c" * 32
AT = datetime(2026, 1, 15, 12, 0, 1, 234567, tzinfo=UTC)
DELIVERED = "com.twilio.messaging.message.delivered"


def message(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sid": SM,
        "account_sid": AC,
        "messaging_service_sid": None,
        "from_": "+14155550100",
        "to": "+14155552671",
        "body": "hello",
        "status": "delivered",
        "error_code": None,
        "status_callback": None,
        "num_segments": 1,
        "num_media": 0,
        "date_updated": AT,
    }
    return row | values


# -- types -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (MessageStatus.QUEUED, "com.twilio.messaging.message.queued"),
        (MessageStatus.SENT, "com.twilio.messaging.message.sent"),
        (MessageStatus.DELIVERED, DELIVERED),
        (MessageStatus.UNDELIVERED, "com.twilio.messaging.message.undelivered"),
        (MessageStatus.FAILED, "com.twilio.messaging.message.failed"),
        (MessageStatus.READ, "com.twilio.messaging.message.read"),
        (MessageStatus.SENDING, None),
        (MessageStatus.ACCEPTED, None),
        (MessageStatus.SCHEDULED, None),
        (MessageStatus.CANCELED, None),
        (MessageStatus.RECEIVED, None),
    ],
)
def test_status_event_types(status: MessageStatus, expected: str | None) -> None:
    assert status_event_type(str(status)) == expected
    if expected is not None:
        assert EVENT_TYPES[expected].schema_id == "Messaging.MessageStatus"


def test_catalogue_has_twilio_messaging_types_and_schemas() -> None:
    assert set(EVENT_TYPES) == {
        "com.twilio.messaging.message.queued",
        "com.twilio.messaging.message.sent",
        DELIVERED,
        "com.twilio.messaging.message.undelivered",
        "com.twilio.messaging.message.failed",
        "com.twilio.messaging.message.read",
        INBOUND_RECEIVED,
    }
    assert EVENT_TYPES[INBOUND_RECEIVED].schema_id == "Messaging.InboundMessageV1"


# -- envelope ----------------------------------------------------------------------------------


def test_iso_millis_is_utc_with_milliseconds_and_z() -> None:
    assert iso_millis(AT) == "2026-01-15T12:00:01.234Z"
    assert iso_millis(datetime(2026, 1, 15, 13, 0, tzinfo=timezone(timedelta(hours=1)))) == "2026-01-15T12:00:00.000Z"


def test_cloud_event_envelope() -> None:
    data = {"messageSid": SM}
    event = cloud_event(
        event_id="EZ" + "1" * 32, type_=DELIVERED, source=message_source(AC, SM), at=AT, data=data, schema_version=1
    )
    assert list(event) == ["specversion", "type", "source", "id", "dataschema", "datacontenttype", "time", "data"]
    assert event == {
        "specversion": "1.0",
        "type": DELIVERED,
        "source": f"/2010-04-01/Accounts/{AC}/Messages/{SM}.json",
        "id": "EZ" + "1" * 32,
        "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/1",
        "datacontenttype": "application/json",
        "time": "2026-01-15T12:00:01.234Z",
        "data": data,
    }
    assert json.loads(json.dumps(event)) == event


def test_cloud_event_schema_defaults_to_latest_version() -> None:
    event = cloud_event(event_id="EZ1", type_=INBOUND_RECEIVED, source="/x", at=AT, data={})
    assert event["dataschema"] == "https://events-schemas.twilio.com/Messaging.InboundMessageV1/6"


def test_test_event_has_no_schema() -> None:
    event = sink_test_event(event_id="EZ2", sink_sid="DG" + "d" * 32, test_id="TE1", at=AT)
    assert event["type"] == TEST_EVENT and "dataschema" not in event
    assert event["source"] == "/v1/Sinks/DG" + "d" * 32 and event["data"] == {"test_id": "TE1"}


# -- data --------------------------------------------------------------------------------------


def test_message_status_data_delivered() -> None:
    data = message_status_data(message(status_callback="https://cb.example/s"), at=AT, raw_dlr_done_date="2601151200")
    assert data == {
        "messageSid": SM,
        "timestamp": "2026-01-15T12:00:01.234Z",
        "accountSid": AC,
        "eventName": DELIVERED,
        "apiVersion": "2010-04-01",
        "from": "+14155550100",
        "to": "+14155552671",
        "messageStatus": "DELIVERED",
        "body": "hello",
        "statusCallBackUrl": "https://cb.example/s",
        "rawDlrDoneDate": "2601151200",
        "numberOfSegments": 1,
        "dateUpdated": "2026-01-15T12:00:01.234Z",
    }


def test_message_status_data_failed_keeps_error_code_and_service() -> None:
    data = message_status_data(
        message(status="undelivered", error_code=30003, messaging_service_sid=MG, date_updated=None), at=AT
    )
    assert data["messageStatus"] == "UNDELIVERED" and data["errorCode"] == 30003
    assert data["messagingServiceSid"] == MG
    # Values Pigeon does not have are left out, never sent as null.
    assert "rawDlrDoneDate" not in data and "dateUpdated" not in data and "statusCallBackUrl" not in data
    assert None not in data.values()


def test_message_status_data_tells_a_sink_the_callback_url_without_its_password() -> None:
    """A sink is another receiver: the callback's user:password are the callback's alone."""
    data = message_status_data(message(status="sent", status_callback="https://app:s3cret@cb.example/s#rc=2"), at=AT)
    assert data["statusCallBackUrl"] == "https://cb.example/s"


def test_message_status_data_without_sender_yet() -> None:
    assert message_status_data(message(status="queued", from_=None), at=AT)["from"] == ""


@pytest.mark.parametrize(("status", "error_code"), [("failed", 21704), ("failed", 21701), ("failed", 21703)])
def test_message_status_data_of_a_pool_message_failed_for_want_of_a_sender_has_no_sender(
    status: str, error_code: int
) -> None:
    """Its callback says so too (`pigeon.domain.status.pool_sender_unused`): the pool's provisional
    pick was never used."""
    row = message(status=status, error_code=error_code, messaging_service_sid=MG, sender_from_pool=True)
    assert message_status_data(row, at=AT)["from"] == ""
    assert message_status_data(row | {"sender_from_pool": False}, at=AT)["from"] == "+14155550100"


def test_inbound_message_data() -> None:
    row = message(status="received", from_="+447700900123", to="+14155550100", body="STOP", num_media=2, num_segments=3)
    data = inbound_message_data(row, at=AT, opt_out_type="STOP")
    assert data == {
        "messageSid": SM,
        "timestamp": "2026-01-15T12:00:01.234Z",
        "accountSid": AC,
        "eventName": INBOUND_RECEIVED,
        "from": "+447700900123",
        "to": "+14155550100",
        "numMedia": 2,
        "numSegments": 3,
        "body": "STOP",
        "toCountry": "US",
        "toState": "",
        "toCity": "",
        "toZip": "",
        "fromCountry": "GB",
        "fromState": "",
        "fromCity": "",
        "fromZip": "",
        "recipients": ["+14155550100"],
        "optOutType": "STOP",
    }


def test_inbound_message_data_defaults() -> None:
    row = message(from_="Alpha", body=None, num_media=None, num_segments=None, messaging_service_sid=MG)
    data = inbound_message_data(row, at=AT)
    assert data["from"] == "Alpha" and data["fromCountry"] == ""
    assert data["numMedia"] == 0 and data["numSegments"] == 1 and data["body"] == ""
    assert data["messagingServiceSid"] == MG and "optOutType" not in data


# -- sink configuration ------------------------------------------------------------------------


def test_webhook_sink_configuration() -> None:
    config = parse_sink_configuration('{"destination": " https://hooks.example/events?x=1 ", "method": "post"}')
    assert config == WebhookSinkConfig("https://hooks.example/events?x=1", "POST", False)
    assert config.as_json() == {
        "destination": "https://hooks.example/events?x=1",
        "method": "POST",
        "batch_events": False,
    }
    assert parse_sink_configuration('{"destination": "http://h.example/", "batch_events": true}').batch_events
    assert parse_sink_configuration('{"destination": "http://h.example/", "batch_events": "TRUE"}').batch_events
    assert not parse_sink_configuration('{"destination": "http://h.example/", "batch_events": "false"}').batch_events


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("not json", "JSON object"),
        ('["https://h.example/"]', "JSON object"),
        ("{}", "not a valid http"),
        ('{"destination": 7}', "not a valid http"),
        ('{"destination": "ftp://h.example/"}', "not a valid http"),
        ('{"destination": "https://h.example/", "method": "GET"}', "must be POST"),
        ('{"destination": "https://h.example/", "method": 1}', "must be POST"),
        ('{"destination": "https://h.example/", "batch_events": "yes"}', "true or false"),
        ('{"destination": "https://h.example/", "batch_events": 1}', "true or false"),
        # A lone surrogate, which JSON can spell and UTF-8 cannot hold (found by fuzzing: a 500).
        ('{"destination": "https://h.example/\\ud800"}', "lone surrogate"),
        ('{"destination": "https://h.example/", "note": "\\udfff"}', "lone surrogate"),
    ],
)
def test_bad_sink_configuration(raw: str, words: str) -> None:
    with pytest.raises(SinkConfigurationError, match=words):
        parse_sink_configuration(raw)


# -- subscribed types --------------------------------------------------------------------------


def test_subscribed_versions() -> None:
    assert subscribed(DELIVERED) == Subscribed(DELIVERED, 7)
    assert subscribed(DELIVERED, "") == Subscribed(DELIVERED, 7)
    assert subscribed(DELIVERED, "2") == Subscribed(DELIVERED, 2)
    assert subscribed(INBOUND_RECEIVED, 6).as_json() == {"type": INBOUND_RECEIVED, "schema_version": 6}


def test_a_types_entry_with_a_lone_surrogate_is_not_json() -> None:
    with pytest.raises(InvalidSubscribedType, match="is not JSON"):
        parse_subscribed_type('{"type": "\\ud800"}')


@pytest.mark.parametrize("version", [True, 1.5, [1], {"v": 1}, "x"])
def test_subscribed_version_must_be_a_whole_number(version: Any) -> None:
    with pytest.raises(InvalidSubscribedType, match="whole number") as caught:
        subscribed(DELIVERED, version)
    assert not isinstance(caught.value, UnknownEventType)


@pytest.mark.parametrize(("type_", "version"), [("com.twilio.voice.call.ended", 1), (DELIVERED, 0), (DELIVERED, 8)])
def test_unknown_type_or_version(type_: str, version: int) -> None:
    with pytest.raises(UnknownEventType):
        subscribed(type_, version)


def test_parse_subscribed_type() -> None:
    assert parse_subscribed_type(json.dumps({"type": DELIVERED, "schema_version": 1})) == Subscribed(DELIVERED, 1)
    assert parse_subscribed_type(json.dumps({"type": DELIVERED})) == Subscribed(DELIVERED, 7)
    for raw in ("{", "[1]", '{"schema_version": 1}', '{"type": 5}'):
        with pytest.raises(InvalidSubscribedType):
            parse_subscribed_type(raw)


def test_route_one_event_per_sink_highest_version_wins() -> None:
    sink_a, sink_b, sink_c = "DG" + "a" * 32, "DG" + "b" * 32, "DG" + "c" * 32
    subscriptions: list[tuple[str, list[dict[str, Any]]]] = [
        (sink_a, [{"type": DELIVERED, "schema_version": 1}, {"type": INBOUND_RECEIVED, "schema_version": 2}]),
        (sink_a, [{"type": DELIVERED, "schema_version": 3}]),
        (sink_b, [{"type": DELIVERED}]),
        (sink_c, [{"type": "com.twilio.messaging.message.sent", "schema_version": 1}]),
    ]
    assert route(subscriptions, DELIVERED) == {sink_a: 3, sink_b: 7}
    assert route(subscriptions, INBOUND_RECEIVED) == {sink_a: 2}
    assert route(subscriptions, "com.twilio.messaging.message.failed") == {}
    assert route([], DELIVERED) == {}


def test_event_streams_retry_for_about_four_hours() -> None:
    hours = EVENT_STREAMS.total_delay() / 3600
    assert 3.5 <= hours <= 4.5
    assert EVENT_STREAMS.max_delay == 600.0
