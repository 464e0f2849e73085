"""Status callbacks over real HTTP to a receiver that fails, is down, or is slow for a while.

The real HttpWebhookSender and WebhookWorker deliver from the real store (SQLite and
PostgreSQL) to an http.server on 127.0.0.1. Every request the receiver gets must pass the
twilio SDK's RequestValidator; once the receiver recovers every callback has been
acknowledged, in status order per message, none lost, and each failed attempt is on record.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.callback_delivery import build_request
from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import WebhookError
from pigeon.domain.retry import RetryPolicy
from pigeon.domain.status import MessageStatus
from pigeon.ports import SystemClock, WebhookRequest, WebhookResponse
from pigeon.store import webhook_lines
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages, list_events, transition
from pigeon.webhooks.sender import MAX_RESPONSE_BYTES, HttpWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.acceptance.conftest import free_port

S = MessageStatus
LIFECYCLE = (S.SENDING, S.SENT, S.DELIVERED)
#: Quick backoff so a test waits seconds, not the shipped hour; same shape as STATUS_CALLBACKS.
QUICK = RetryPolicy(max_attempts=30, base_delay=0.05, max_delay=0.3, multiplier=2.0, jitter=0.2)


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    params: list[tuple[str, str]]
    status: int
    acknowledged: bool  # the answer reached Pigeon (not written after it gave up waiting)


@dataclass
class Receiver:
    """A customer's callback endpoint. `plan(n)` says how to answer the n-th request (from 0):
    (HTTP status, seconds to stall first)."""

    port: int
    plan: Callable[[int], tuple[int, float]]
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    body: bytes = b"<Response/>"
    set_cookie: str | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                self.answer(parse_qsl(form, keep_blank_values=True))

            def do_GET(self) -> None:
                self.answer([])  # a GET's parameters are in self.path, which is what gets signed

            def answer(self, params: list[tuple[str, str]]) -> None:
                with receiver.lock:
                    status, stall = receiver.plan(len(receiver.hits))
                    receiver.hits.append(Hit(self.path, dict(self.headers), params, status, not stall))
                if stall:
                    time.sleep(stall)
                body = b"" if status in (204, 304) else receiver.body
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                if receiver.set_cookie:
                    self.send_header("Set-Cookie", receiver.set_cookie)
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # Pigeon gave up waiting and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/callbacks/status?app=acceptance"


@dataclass
class Account:
    sid: str
    token: str
    number: str


def make_account(db: Database) -> Account:
    now = SystemClock().now()
    with db.write() as conn:
        row = account_use.create_account(conn, friendly_name="acceptance", now=now)
        number = number_use.provision(conn, account_sid=row["sid"], phone_number="+14155550100", now=now)
    return Account(row["sid"], row["auth_token"], number["phone_number"])


def send_and_progress(db: Database, acct: Account, url: str, count: int) -> list[str]:
    """`count` messages, each moved sending → sent → delivered with its callbacks enqueued in
    the status change's own transaction, as the dispatcher and the receipt code do."""
    clock = SystemClock()
    sids = []
    for i in range(count):
        with db.write() as conn:
            req = SendRequest(to=f"+1415555{2671 + i:04d}", from_=acct.number, body=f"hello {i}", status_callback=url)
            new = prepare_message(conn, acct.sid, req, clock.now())
            insert_messages(conn, [new])
        sid = str(new.message["sid"])
        for status in LIFECYCLE:
            with db.write() as conn:
                row = transition(conn, sid, status, at=clock.now())
                done = "2601151200" if status is S.DELIVERED else None
                enqueue_status_callback(conn, row, now=clock.now(), raw_dlr_done_date=done)
        sids.append(sid)
    return sids


def deliver_until_settled(db: Database, sids: list[str], *, timeout: float, total_timeout: float = 5.0) -> float:
    """Run the real worker until every callback of `sids` has finished; returns the seconds it took."""

    def pending() -> int:
        with db.read() as conn:
            return sum(
                r["status"] in webhook_lines.UNFINISHED
                for sid in sids
                for r in outbox.list_deliveries(conn, message_sid=sid)
            )

    async def main() -> float:
        sender = HttpWebhookSender(connect_timeout=1.0, total_timeout=total_timeout)
        worker = WebhookWorker(
            db, sender, SystemClock(), policy=QUICK, concurrency=8, lease_seconds=30, poll_interval=0.02, timeout=15
        )
        stop = asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(worker.run(stop))
        try:
            while await asyncio.to_thread(pending) and time.monotonic() - started < timeout:
                await asyncio.sleep(0.05)
            return time.monotonic() - started
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await sender.aclose()

    return asyncio.run(main())


def check_everything_arrived(db: Database, acct: Account, receiver: Receiver, sids: list[str]) -> list[dict[str, Any]]:
    validator = RequestValidator(acct.token)
    for hit in receiver.hits:
        seen_url = f"http://127.0.0.1:{receiver.port}{hit.path}"
        assert validator.validate(seen_url, dict(hit.params), hit.headers["X-Twilio-Signature"]), hit
        assert hit.headers["User-Agent"] == "TwilioProxy/1.1"
        assert hit.headers["Content-Type"] == "application/x-www-form-urlencoded"

    acknowledged: dict[str, list[str]] = {}
    for hit in receiver.hits:
        if hit.acknowledged and 200 <= hit.status < 300:
            params = dict(hit.params)
            acknowledged.setdefault(params["MessageSid"], []).append(params["MessageStatus"])
    # Every callback acknowledged, each once, and in the order the statuses happened.
    assert acknowledged == {sid: [str(s) for s in LIFECYCLE] for sid in sids}

    attempts: list[dict[str, Any]] = []
    with db.read() as conn:
        for sid in sids:
            rows = outbox.list_deliveries(conn, message_sid=sid)
            assert [r["status"] for r in rows] == ["delivered"] * len(LIFECYCLE)
            tokens = {
                h.headers["I-Twilio-Idempotency-Token"] for h in receiver.hits if dict(h.params)["MessageSid"] == sid
            }
            assert tokens == {r["idempotency_token"] for r in rows}  # one token per callback, kept on retries
            events = [e for e in list_events(conn, sid) if e["kind"] == "callback"]
            assert [e["status"] for e in events] == [str(s) for s in LIFECYCLE]
            attempts += outbox.list_attempts(conn, message_sid=sid)
        assert list_alerts(conn, account_sid=acct.sid) == []
    return attempts


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


def test_receiver_failing_with_500_then_recovering(db: Database, receivers: list[Receiver]) -> None:
    acct = make_account(db)
    receiver = Receiver(free_port(), lambda n: (500, 0.0) if n < 6 else (204, 0.0))
    receivers.append(receiver)
    receiver.start()
    sids = send_and_progress(db, acct, receiver.url, count=4)
    deliver_until_settled(db, sids, timeout=20)
    attempts = check_everything_arrived(db, acct, receiver, sids)
    failed = [a for a in attempts if a["status_code"] == 500]
    assert len(failed) == 6 and all(a["error_code"] == 11200 for a in failed)
    assert all(a["response_excerpt"] == "<Response/>" for a in failed)  # what the receiver said is kept
    assert len(attempts) == 6 + 4 * len(LIFECYCLE)


def test_receiver_down_for_a_while_then_up(db: Database, receivers: list[Receiver]) -> None:
    acct = make_account(db)
    receiver = Receiver(free_port(), lambda n: (200, 0.0))  # the port is closed until start()
    receivers.append(receiver)
    sids = send_and_progress(db, acct, receiver.url, count=4)
    threading.Timer(1.0, receiver.start).start()
    took = deliver_until_settled(db, sids, timeout=20)
    assert took >= 1.0
    attempts = check_everything_arrived(db, acct, receiver, sids)
    refused = [a for a in attempts if a["status_code"] is None]
    assert refused and all(a["error_code"] == 11205 for a in refused)
    assert len(attempts) == len(refused) + len(receiver.hits)


def test_receiver_slower_than_the_time_limit_for_a_while(db: Database, receivers: list[Receiver]) -> None:
    acct = make_account(db)
    # The first three requests stall past Pigeon's 0.4 s limit; after that the receiver is quick.
    receiver = Receiver(free_port(), lambda n: (200, 1.0) if n < 3 else (200, 0.0))
    receivers.append(receiver)
    receiver.start()
    sids = send_and_progress(db, acct, receiver.url, count=3)
    deliver_until_settled(db, sids, timeout=20, total_timeout=0.4)
    attempts = check_everything_arrived(db, acct, receiver, sids)
    timed_out = [a for a in attempts if a["error_code"] == 11205]
    assert len(timed_out) == 3 and all(a["status_code"] is None and a["duration_ms"] >= 390 for a in timed_out)
    assert len(attempts) == len(receiver.hits)


# -- the sender on its own, over real HTTP ------------------------------------------------------


def test_sender_get_signs_the_query_string_and_post_sends_a_form(receivers: list[Receiver]) -> None:
    receiver = Receiver(free_port(), lambda n: (200, 0.0))
    receivers.append(receiver)
    receiver.start()
    token = "f" * 32
    params = [("MessageSid", "SM" + "1" * 32), ("Body", "héllo & goodbye"), ("MediaUrl0", "https://x/y?a=1")]
    delivery = {"url": receiver.url + "#rt=100", "params": params, "idempotency_token": "tok-1"}

    async def main() -> list[WebhookResponse]:
        sender = HttpWebhookSender()
        try:
            return [await sender.send(build_request({**delivery, "method": m}, token)) for m in ("GET", "POST")]
        finally:
            await sender.aclose()

    answers = asyncio.run(main())
    assert [a.status for a in answers] == [200, 200] and answers[0].body == b"<Response/>"
    get, post = receiver.hits
    assert "#" not in get.path and parse_qsl(urlsplit(get.path).query)[1:] == params
    assert RequestValidator(token).validate(
        f"http://127.0.0.1:{receiver.port}{get.path}", {}, get.headers["X-Twilio-Signature"]
    )
    assert post.params == params and post.headers["I-Twilio-Idempotency-Token"] == "tok-1"
    assert RequestValidator(token).validate(receiver.url, dict(params), post.headers["X-Twilio-Signature"])


def test_sender_reads_at_most_64_kb_and_does_not_follow_redirects(receivers: list[Receiver]) -> None:
    receiver = Receiver(free_port(), lambda n: (200, 0.0) if n == 0 else (302, 0.0), body=b"x" * 1_000_000)
    receivers.append(receiver)
    receiver.start()
    request = WebhookRequest(url=receiver.url, method="POST", params=[("a", "1")], headers={})

    async def main() -> list[WebhookResponse]:
        sender = HttpWebhookSender()
        try:
            return [await sender.send(request), await sender.send(request)]
        finally:
            await sender.aclose()

    big, moved = asyncio.run(main())
    assert big.status == 200 and len(big.body) == MAX_RESPONSE_BYTES
    assert moved.status == 302 and len(receiver.hits) == 2  # reported, not followed


def test_sender_keeps_no_cookies_between_requests(receivers: list[Receiver]) -> None:
    """One sender serves every account, so a cookie set by a receiver is not sent back: the
    next request to that host may be another account's. (By name, not by address: cookie
    jars, as aiohttp's was, often ignore cookies from IP addresses, which would hide a jar.)"""
    receiver = Receiver(free_port(), lambda n: (200, 0.0), set_cookie="session=account-a; Path=/")
    receivers.append(receiver)
    receiver.start()
    url = f"http://localhost:{receiver.port}/callbacks/status"
    request = WebhookRequest(url=url, method="POST", params=[("a", "1")], headers={})

    async def main() -> None:
        sender = HttpWebhookSender()
        try:
            await sender.send(request)
            await sender.send(request)
        finally:
            await sender.aclose()

    asyncio.run(main())
    assert len(receiver.hits) == 2
    assert all("Cookie" not in hit.headers for hit in receiver.hits)


@pytest.mark.parametrize(
    ("url", "code", "retryable"),
    [
        ("http://127.0.0.1:{closed}/cb", 11205, True),
        ("ftp://127.0.0.1/cb", 11200, False),
        ("http://[::1/cb", 11200, False),
    ],
)
def test_sender_turns_transport_failures_into_webhook_errors(url: str, code: int, retryable: bool) -> None:
    request = WebhookRequest(url=url.format(closed=free_port()), method="POST", params=[], headers={})

    async def main() -> None:
        sender = HttpWebhookSender(connect_timeout=1.0)
        try:
            await sender.send(request)
        finally:
            await sender.aclose()

    with pytest.raises(WebhookError) as caught:
        asyncio.run(main())
    assert caught.value.error_code == code and caught.value.retryable is retryable and caught.value.status is None


def test_a_url_stored_outside_ascii_goes_out_percent_encoded(db: Database, receivers: list[Receiver]) -> None:
    """A callback URL kept raw (a row written before the setters encoded URLs) is encoded when
    it is sent, and signed as it is sent. Before, the request line carried raw UTF-8 (uvicorn
    answers 400) and the signature the unescaped URL, which the receiver never sees."""
    acct = make_account(db)
    receiver = Receiver(free_port(), lambda n: (204, 0.0))
    receivers.append(receiver)
    receiver.start()
    with db.write() as conn:
        delivery = outbox.enqueue(
            conn,
            account_sid=acct.sid,
            message_sid=None,
            kind="status_callback",
            url=f"http://127.0.0.1:{receiver.port}/callbacks/café?q=ü",
            method="POST",
            params=[("AccountSid", acct.sid), ("MessageStatus", "sent")],
            now=SystemClock().now(),
        )

    async def main() -> None:
        sender = HttpWebhookSender(connect_timeout=1.0)
        worker = WebhookWorker(db, sender, SystemClock(), policy=QUICK, concurrency=2, lease_seconds=30, timeout=15)
        try:
            await worker.run_once()
        finally:
            await sender.aclose()

    asyncio.run(main())
    [hit] = receiver.hits
    assert hit.path == "/callbacks/caf%C3%A9?q=%C3%BC"
    seen = f"http://127.0.0.1:{receiver.port}{hit.path}"
    assert RequestValidator(acct.token).validate(seen, dict(hit.params), hit.headers["X-Twilio-Signature"])
    with db.read() as conn:
        row = outbox.get_delivery(conn, delivery)
    assert row is not None and row["status"] == "delivered"
