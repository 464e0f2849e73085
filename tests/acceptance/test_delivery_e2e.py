"""Delivery end to end: a real `pigeon serve`, the `twilio` SDK, the built-in network's scripted
outcomes and status callbacks received by a real HTTP server on 127.0.0.1.

Every callback must pass the SDK's RequestValidator with the account's auth token and carry an
I-Twilio-Idempotency-Token; each message must end with its documented status and error code,
and its callbacks must arrive in the order its statuses happened.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.acceptance.conftest import Server, free_port
from tests.acceptance.support import add_service, store, wait_for


@dataclass
class Callback:
    path: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass
class Receiver:
    """A customer's status-callback endpoint: answers 204 to everything and keeps every request."""

    port: int = field(default_factory=free_port)
    hits: list[Callback] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                pairs = parse_qsl(body, keep_blank_values=True)
                assert len({k for k, _ in pairs}) == len(pairs), pairs  # no repeated names
                with receiver.lock:
                    receiver.hits.append(Callback(self.path, dict(self.headers), dict(pairs)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/twilio/status?app=e2e&v=1"

    def of(self, sid: str) -> list[Callback]:
        with self.lock:
            return [h for h in self.hits if h.params.get("MessageSid") == sid]

    def statuses(self, sid: str) -> list[str]:
        return [h.params["MessageStatus"] for h in self.of(sid)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def events(server: Server, sid: str) -> list[dict[str, Any]]:
    url = f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/Messages/{sid}/Events.json"
    response = httpx.get(url, auth=(server.account_sid, server.auth_token), timeout=10)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["events"]
    return rows


def check_signed(server: Server, receiver: Receiver) -> None:
    """Every callback received passes the twilio SDK's RequestValidator; tokens are unique."""
    validator = RequestValidator(server.auth_token)
    tokens = []
    with receiver.lock:
        hits = list(receiver.hits)
    assert hits
    for hit in hits:
        assert f"http://127.0.0.1:{receiver.port}{hit.path}" == receiver.url
        assert validator.validate(receiver.url, hit.params, hit.headers["X-Twilio-Signature"]), hit
        assert not validator.validate(
            receiver.url, {**hit.params, "To": "+10000000000"}, hit.headers["X-Twilio-Signature"]
        )
        assert hit.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
        tokens.append(hit.headers["I-Twilio-Idempotency-Token"])
        assert hit.params["AccountSid"] == server.account_sid
        assert hit.params["SmsSid"] == hit.params["MessageSid"]
        assert hit.params["SmsStatus"] == hit.params["MessageStatus"]
        assert hit.params["ApiVersion"] == "2010-04-01"
    assert all(tokens) and len(set(tokens)) == len(tokens)


#: destination suffix -> (final status, error code, the callbacks' MessageStatus sequence)
SCRIPT: dict[str, tuple[str, int | None, list[str]]] = {
    "0101": ("undelivered", 30003, ["sending", "sent", "undelivered"]),
    "0102": ("undelivered", 30005, ["sending", "sent", "undelivered"]),
    "0103": ("undelivered", 30006, ["sending", "sent", "undelivered"]),
    "0104": ("undelivered", 30007, ["sending", "sent", "undelivered"]),
    "0105": ("failed", 30008, ["sending", "failed"]),
    "0106": ("sent", None, ["sending", "sent"]),
    "0107": ("delivered", None, ["sending", "sent", "delivered"]),
    "0108": ("delivered", None, ["sending", "sent", "delivered"]),
    "0109": ("delivered", None, ["sending", "sent", "delivered"]),  # "sending" once, however many attempts
    "2671": ("delivered", None, ["sending", "sent", "delivered"]),
}


def settled(receiver: Receiver, sid: str, expected: list[str]) -> bool:
    return receiver.statuses(sid)[-1:] == expected[-1:]


@pytest.mark.timeout(120)  # about 10 s; starting the server on a loaded machine takes longer
def test_every_scripted_outcome_end_to_end(server: Server, receiver: Receiver) -> None:
    client = server.client()
    started = time.monotonic()
    sids: dict[str, str] = {}
    # The slow receipt first; the rest spread over the account's two long codes (1 segment/s each).
    for i, suffix in enumerate(sorted(SCRIPT, key=lambda s: s != "0107")):
        msg = client.messages.create(
            to=f"+1415555{suffix}",
            from_=server.numbers[i % 2],
            body=f"scripted {suffix}",
            status_callback=receiver.url,
        )
        assert msg.status == "queued"
        sids[suffix] = msg.sid

    wait_for(
        "every message's last callback",
        lambda: all(settled(receiver, sids[s], SCRIPT[s][2]) for s in SCRIPT),
        timeout=40,
    )
    took = time.monotonic() - started
    time.sleep(0.5)  # anything still on its way (a duplicate, a late callback) shows up now
    check_signed(server, receiver)

    for suffix, (status, code, callbacks) in SCRIPT.items():
        sid = sids[suffix]
        fetched = client.messages(sid).fetch()
        assert (fetched.status, fetched.error_code) == (status, code), suffix
        if status == "failed":
            assert fetched.price is None, suffix
        else:
            assert fetched.price == "-0.00790" and fetched.price_unit == "USD", suffix
            assert fetched.date_sent is not None
        seen = receiver.statuses(sid)
        assert seen == callbacks, (suffix, seen)
        last = receiver.of(sid)[-1].params
        assert last.get("ErrorCode") == (str(code) if code else None), suffix
        assert last["To"] == f"+1415555{suffix}"
        if status in ("delivered", "undelivered"):
            assert len(last["RawDlrDoneDate"]) == 10, suffix

    # 0107's receipt comes about five seconds after its submit.
    slow = events(server, sids["0107"])
    sent_at = next(e["timestamp"] for e in slow if e["status"] == "sent")
    delivered_at = next(e["timestamp"] for e in slow if e["kind"] == "receipt")
    gap = datetime.fromisoformat(delivered_at) - datetime.fromisoformat(sent_at)
    assert 4.5 <= gap.total_seconds() < 15, gap
    assert took >= 4.5

    # 0108: two receipts for one submit, the second recorded as a duplicate that changed nothing.
    twice = events(server, sids["0108"])
    receipts = [e for e in twice if e["kind"] == "receipt"]
    assert [(r["detail"]["applied"], r["detail"]["duplicate"]) for r in receipts] == [(True, False), (False, True)]
    assert [e["status"] for e in twice if e["kind"] == "status"] == ["sending", "sent", "delivered"]

    # 0109: throttled twice, each refusal a retry event with the carrier's code, then accepted.
    throttled = events(server, sids["0109"])
    retries = [e for e in throttled if e["kind"] == "retry"]
    assert len(retries) == 2
    assert {r["detail"]["carrier_code"] for r in retries} == {"ESME_RTHROTTLED"}
    assert [r["detail"]["attempt"] for r in retries] == [1, 2]
    assert [e["status"] for e in throttled if e["kind"] == "status"][-2:] == ["sent", "delivered"]

    # 0105: the refusal and the carrier's answer are in the timeline.
    refused = [e for e in events(server, sids["0105"]) if e["kind"] == "status"]
    assert refused[-1]["status"] == "failed" and refused[-1]["detail"]["carrier_code"] == "ESME_RSYSERR"

    # 0106: sent, and nothing more, ever.
    assert [e["kind"] for e in events(server, sids["0106"])].count("receipt") == 0

    # What the receiver was told is on each timeline too (recorded once its answer is in).
    def told(sid: str) -> list[str]:
        return [e["status"] for e in events(server, sid) if e["kind"] == "callback"]

    wait_for("the callbacks on the timelines", lambda: all(told(s) == receiver.statuses(s) for s in sids.values()), 10)


@pytest.mark.timeout(120)  # seconds; starting the server on a loaded machine takes longer
def test_canceling_a_scheduled_message_sends_a_signed_canceled_callback(server: Server, receiver: Receiver) -> None:
    """Canceled is a status change after creation, so it has its callback as every other does."""
    with store(server) as db:
        service = add_service(db, server.account_sid, server.numbers[1])
    client = server.client()
    msg = client.messages.create(
        to="+14155550115",
        messaging_service_sid=service,
        body="later",
        send_at=datetime.now(UTC) + timedelta(hours=1),
        schedule_type="fixed",
        status_callback=receiver.url,
    )
    assert msg.status == "scheduled"
    assert client.messages(msg.sid).update(status="canceled").status == "canceled"
    wait_for("the canceled callback", lambda: receiver.statuses(msg.sid) == ["canceled"], timeout=20)
    check_signed(server, receiver)
    last = receiver.of(msg.sid)[-1].params
    assert (last["MessagingServiceSid"], last["To"]) == (service, "+14155550115")
    assert "ErrorCode" not in last
    wait_for("the callback on the timeline", lambda: [e["kind"] for e in events(server, msg.sid)][-1] == "callback", 10)
    assert receiver.statuses(msg.sid) == ["canceled"]  # once


def _config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "pigeon.toml"
    path.write_text(text)
    return {"PIGEON_CONFIG": str(path)}


def test_operator_scenarios_from_the_configuration(server_factory: Any, receiver: Receiver, tmp_path: Path) -> None:
    env = _config(
        tmp_path,
        """
[[simulator.scenarios]]
suffix = "0110"
outcome = "undelivered"
stat = "UNDELIV"
err = "004"
delay = 0.2

[[simulator.scenarios]]
suffix = "0101"
outcome = "delivered"
""",
    )
    server: Server = server_factory("sqlite", env=env)
    client = server.client()
    filtered = client.messages.create(
        to="+14155550110", from_=server.numbers[0], body="config", status_callback=receiver.url
    )
    overridden = client.messages.create(
        to="+14155550101", from_=server.numbers[1], body="config", status_callback=receiver.url
    )
    wait_for(
        "both callbacks",
        lambda: (
            settled(receiver, filtered.sid, ["x", "undelivered"]) and settled(receiver, overridden.sid, ["delivered"])
        ),
        20,
    )
    assert receiver.statuses(filtered.sid) == ["sending", "sent", "undelivered"]
    assert receiver.of(filtered.sid)[-1].params["ErrorCode"] == "30007"
    assert client.messages(overridden.sid).fetch().status == "delivered"
    check_signed(server, receiver)


def test_validity_period_expiry_end_to_end(server_factory: Any, receiver: Receiver) -> None:
    server: Server = server_factory("sqlite")
    client = server.client()
    # One long code sends one segment a second: the n-th message waits about n seconds for its
    # slot, so with ValidityPeriod=1 the first goes out and the later ones expire in the queue.
    sids = [
        client.messages.create(
            to=f"+1415555{3100 + i}",
            from_=server.numbers[0],
            body=f"hurry {i}",
            status_callback=receiver.url,
            validity_period=1,
        ).sid
        for i in range(6)
    ]
    wait_for(
        "every message's last callback",
        lambda: all(receiver.statuses(sid)[-1:] in (["delivered"], ["failed"]) for sid in sids),
        20,
    )
    outcomes = {sid: client.messages(sid).fetch() for sid in sids}
    assert outcomes[sids[0]].status == "delivered"
    assert outcomes[sids[-1]].status == "failed"
    for sid, msg in outcomes.items():
        if msg.status == "failed":
            assert (msg.error_code, msg.price) == (30036, None)
            assert receiver.statuses(sid) == ["failed"]
            assert receiver.of(sid)[-1].params["ErrorCode"] == "30036"
            timeline = [(e["kind"], e["status"]) for e in events(server, sid)]
            assert timeline[:2] == [("created", "queued"), ("expired", "failed")]
        else:
            assert msg.status == "delivered" and receiver.statuses(sid) == ["sending", "sent", "delivered"]
    check_signed(server, receiver)
