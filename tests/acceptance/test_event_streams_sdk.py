"""Event Streams end to end: the real `twilio` SDK makes a webhook sink and a subscription on a
running `pigeon serve`; a message sent through the built-in network and a text from a handset
reach a local receiver as CloudEvents, each request signed so that twilio's RequestValidator
(its JSON-body path, bodySHA256) accepts it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from tests.acceptance.conftest import Server

SENT, DELIVERED = "com.twilio.messaging.message.sent", "com.twilio.messaging.message.delivered"
RECEIVED = "com.twilio.messaging.inbound-message.received"
TEST_EVENT = "com.twilio.eventstreams.test-event"
HANDSET = "+14155552690"


@dataclass
class Hit:
    url: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """A customer's Event Streams endpoint: records each request and answers 200."""

    hits: list[Hit] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
                receiver.hits.append(Hit(receiver.base + self.path, dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self) -> list[dict[str, Any]]:
        return [event for hit in list(self.hits) for event in json.loads(hit.body)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    assert r.server is not None
    r.server.shutdown()


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def of_type(receiver: Receiver, type_: str) -> list[dict[str, Any]]:
    return [e for e in receiver.events() if e["type"] == type_]


def test_sdk_sink_and_subscription_stream_message_events(server: Server, receiver: Receiver) -> None:
    client = server.client()
    destination = receiver.base + "/events?app=acceptance"
    sink = client.events.v1.sinks.create(
        description="acceptance sink",
        sink_configuration={"destination": destination, "method": "POST", "batch_events": False},
        sink_type="webhook",
    )
    assert sink.sid is not None and sink.sid.startswith("DG") and sink.status == "active"
    assert sink.sink_type == "webhook" and sink.description == "acceptance sink"
    assert sink.sink_configuration == {"destination": destination, "method": "POST", "batch_events": False}
    assert sink.url == f"{server.base_url}/v1/Sinks/{sink.sid}" and sink.date_created is not None
    assert sink.links == {"sink_test": f"{sink.url}/Test", "sink_validate": f"{sink.url}/Validate"}
    subscription = client.events.v1.subscriptions.create(
        description="message events",
        sink_sid=sink.sid,
        types=[
            {"type": SENT, "schema_version": 1},
            {"type": DELIVERED, "schema_version": 1},
            {"type": RECEIVED, "schema_version": 1},
        ],
    )
    assert subscription.sid is not None and subscription.sid.startswith("DF")
    assert subscription.sink_sid == sink.sid and subscription.account_sid == server.account_sid

    message = client.messages.create(to=HANDSET, from_=server.numbers[0], body="streamed")
    wait_for(lambda: of_type(receiver, DELIVERED))
    # At-least-once: a receiver too slow for the 5 s budget gets a retry with the same id.
    sent, delivered = of_type(receiver, SENT), of_type(receiver, DELIVERED)
    assert len({e["id"] for e in sent}) == 1 and len({e["id"] for e in delivered}) == 1
    assert sent[0]["data"]["messageSid"] == message.sid and sent[0]["data"]["messageStatus"] == "SENT"
    order = [e["type"] for e in receiver.events()]
    assert order.index(SENT) < order.index(DELIVERED)  # in order, per message and sink
    event = delivered[0]
    assert event["specversion"] == "1.0" and event["id"].startswith("EZ")
    assert event["source"] == f"/2010-04-01/Accounts/{server.account_sid}/Messages/{message.sid}.json"
    assert event["dataschema"] == "https://events-schemas.twilio.com/Messaging.MessageStatus/1"
    assert event["datacontenttype"] == "application/json" and event["time"].endswith("Z")
    data = event["data"]
    assert data["messageSid"] == message.sid and data["messageStatus"] == "DELIVERED"
    assert data["from"] == server.numbers[0] and data["to"] == HANDSET and data["body"] == "streamed"

    r = httpx.post(
        server.base_url + "/simulator/inbound",
        data={"From": HANDSET, "To": server.numbers[0], "Body": "hello back"},
        auth=(server.account_sid, server.auth_token),
    )
    assert r.status_code == 201, r.text
    [inbound] = wait_for(lambda: of_type(receiver, RECEIVED))
    assert inbound["data"]["messageSid"] == r.json()["message_sid"] and inbound["data"]["body"] == "hello back"
    assert inbound["dataschema"] == "https://events-schemas.twilio.com/Messaging.InboundMessageV1/1"

    validator = RequestValidator(server.auth_token)
    for hit in receiver.hits:
        assert "bodySHA256=" in hit.url and hit.headers["Content-Type"].startswith("application/json")
        assert validator.validate(hit.url, hit.body, hit.headers["X-Twilio-Signature"]), hit.url
        assert not validator.validate(hit.url, hit.body + " ", hit.headers["X-Twilio-Signature"])


def test_sdk_manages_sinks_subscriptions_and_types(sqlite_server: Server, receiver: Receiver) -> None:
    client = sqlite_server.client()
    events = client.events.v1
    sinks = [
        events.sinks.create(
            description=f"sink {i}",
            sink_configuration={"destination": f"{receiver.base}/s{i}", "method": "POST", "batch_events": True},
            sink_type="webhook",
        )
        for i in range(3)
    ]
    assert [s.sid for s in events.sinks.list(page_size=2)] == [s.sid for s in sinks]  # follows next_page_url
    assert events.sinks(sinks[0].sid).update(description="renamed").description == "renamed"
    assert events.sinks(sinks[0].sid).fetch().description == "renamed"

    sub = events.subscriptions.create(
        description="sent only", sink_sid=sinks[0].sid, types=[{"type": SENT, "schema_version": 1}]
    )
    assert [s.sid for s in events.sinks.list(in_use=True)] == [sinks[0].sid]
    assert {s.sid for s in events.sinks.list(in_use=False)} == {sinks[1].sid, sinks[2].sid}
    assert [s.sid for s in events.subscriptions.list(sink_sid=sinks[0].sid)] == [sub.sid]
    assert events.subscriptions(sub.sid).update(description="more").description == "more"
    added = events.subscriptions(sub.sid).subscribed_events.create(type=DELIVERED, schema_version=2)
    assert (added.type, added.schema_version, added.subscription_sid) == (DELIVERED, 2, sub.sid)
    listed = events.subscriptions(sub.sid).subscribed_events.list()
    assert [(e.type, e.schema_version) for e in listed] == [(SENT, 1), (DELIVERED, 2)]
    assert events.subscriptions(sub.sid).subscribed_events(DELIVERED).update(schema_version=3).schema_version == 3
    assert events.subscriptions(sub.sid).subscribed_events(SENT).delete()
    assert [e.type for e in events.subscriptions(sub.sid).subscribed_events.list()] == [DELIVERED]

    types = events.event_types.list()
    assert {t.type for t in types} >= {SENT, DELIVERED, RECEIVED, "com.twilio.messaging.message.queued"}
    assert all(
        t.schema_id == "Messaging.InboundMessageV1"
        for t in events.event_types.list(schema_id="Messaging.InboundMessageV1")
    )
    assert events.event_types(DELIVERED).fetch().schema_id == "Messaging.MessageStatus"
    assert events.schemas("Messaging.MessageStatus").fetch().latest_version == 7

    with pytest.raises(TwilioRestException) as in_use:
        events.sinks(sinks[0].sid).delete()
    assert in_use.value.status == 400 and in_use.value.code == 91007
    with pytest.raises(TwilioRestException) as unknown_type:
        events.subscriptions.create(description="x", sink_sid=sinks[1].sid, types=[{"type": "com.twilio.nope"}])
    assert unknown_type.value.code == 91104
    with pytest.raises(TwilioRestException) as bad_url:
        events.sinks.create(description="x", sink_configuration={"destination": "not a url"}, sink_type="webhook")
    assert bad_url.value.code == 91000
    assert events.subscriptions(sub.sid).delete() and events.sinks(sinks[0].sid).delete()
    with pytest.raises(TwilioRestException) as gone:
        events.sinks(sinks[0].sid).fetch()
    assert gone.value.status == 404 and gone.value.code == 20404

    # Test and Validate: the test event reaches the destination, signed; its test_id validates.
    assert events.sinks(sinks[1].sid).sink_test.create().result == "submitted"
    assert events.sinks(sinks[1].sid).fetch().status == "validating"
    [test] = wait_for(lambda: of_type(receiver, TEST_EVENT))
    hit = receiver.hits[-1]
    assert RequestValidator(sqlite_server.auth_token).validate(hit.url, hit.body, hit.headers["X-Twilio-Signature"])
    assert events.sinks(sinks[1].sid).sink_validate.create(test_id=test["data"]["test_id"]).result == "valid"
    assert events.sinks(sinks[1].sid).fetch().status == "active"

    other = sqlite_server.client().api.accounts.create(friendly_name="not the owner")
    stranger = sqlite_server.client(other.sid, other.auth_token).events.v1
    assert stranger.sinks.list() == []
    with pytest.raises(TwilioRestException) as hidden:
        stranger.sinks(sinks[1].sid).fetch()
    assert hidden.value.status == 404
