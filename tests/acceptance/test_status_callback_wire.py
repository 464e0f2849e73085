"""Status callbacks on the wire, end to end: a real `pigeon serve` (SQLite and PostgreSQL), the
`twilio` SDK, and a receiver on 127.0.0.1 that has moved (it answers 301 with its new
address) and whose URL holds characters outside ASCII.

Before: the URL went out as raw UTF-8 in the request line (receivers such as uvicorn answer
400) signed over its unescaped form, and the 301 was a final 11200: every callback was lost.
Now each request goes to the percent-encoded URL, signed for the URL it goes to (the one the
receiver sees), the redirect is followed, and the message the carrier throttled twice is
told `sending` once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

from tests.acceptance.conftest import Server, free_port
from tests.acceptance.support import wait_for

MOVED_PATH = "/moved/café?q=ü"
LANDED = "/landed/caf%C3%A9?q=%C3%BC"


@dataclass
class Hit:
    target: str  # the request line's target, as sent
    signature: str
    params: dict[str, str]
    status: int


@dataclass
class MovedReceiver:
    """Answers a POST to /moved/… with 301 to /landed/… (same path and query), 204 there."""

    port: int = field(default_factory=free_port)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
                moved = self.path.startswith("/moved/")
                status = 301 if moved else 204
                with receiver.lock:
                    receiver.hits.append(
                        Hit(self.path, self.headers.get("X-Twilio-Signature", ""), dict(parse_qsl(form)), status)
                    )
                self.send_response(status)
                if moved:
                    self.send_header("Location", self.path.replace("/moved/", "/landed/", 1))
                self.send_header("Content-Length", "0")
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

    def landed(self, sid: str) -> list[str]:
        with self.lock:
            return [h.params["MessageStatus"] for h in self.hits if h.status == 204 and h.params["MessageSid"] == sid]


@pytest.fixture
def receiver() -> Iterator[MovedReceiver]:
    r = MovedReceiver()
    r.start()
    yield r
    r.stop()


@pytest.mark.timeout(120)  # seconds; starting the server on a loaded machine takes longer
def test_a_moved_receiver_with_a_non_ascii_url_gets_every_callback_once(
    server: Server, receiver: MovedReceiver
) -> None:
    client = server.client()
    callback = f"http://127.0.0.1:{receiver.port}{MOVED_PATH}"
    sids = [
        client.messages.create(to=to, from_=server.numbers[0], body="hi", status_callback=callback).sid
        for to in ("+14155552671", "+14155550109")  # the second is throttled twice, then sent
    ]
    wait_for("the delivered callbacks", lambda: all(receiver.landed(s)[-1:] == ["delivered"] for s in sids), 60)
    for sid in sids:
        assert receiver.landed(sid) == ["sending", "sent", "delivered"], sid

    validator = RequestValidator(server.auth_token)
    with receiver.lock:
        hits = list(receiver.hits)
    assert {h.target for h in hits} == {"/moved/caf%C3%A9?q=%C3%BC", LANDED}
    for hit in hits:  # each request signed for the URL it was sent to, as the receiver sees it
        seen = f"http://127.0.0.1:{receiver.port}{hit.target}"
        assert validator.validate(seen, hit.params, hit.signature), hit

    # A number's webhook URLs are kept, and shown, as they go on the wire.
    [number] = client.incoming_phone_numbers.list(phone_number=server.numbers[0])
    updated = client.incoming_phone_numbers(number.sid).update(
        sms_url="https://app.example.com/sms/café", status_callback=callback
    )
    assert updated.sms_url == "https://app.example.com/sms/caf%C3%A9"
    assert updated.status_callback == f"http://127.0.0.1:{receiver.port}/moved/caf%C3%A9?q=%C3%BC"
