"""An application that answers the incoming-message webhook with an HTTP redirect, through the
inbound path on each store with the real webhook sender and receivers on 127.0.0.1: which
redirects are followed, by which method, each hop signed so that the `twilio` SDK's
RequestValidator accepts it at the URL it reached; loops (11215) and redirects that cannot be
followed (11216) end at the fallback."""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from twilio.request_validator import RequestValidator

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.ports import InboundSms
from pigeon.store import webhooks as outbox
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.tables import media as media_table
from pigeon.store.tables import messages
from pigeon.testing import FrozenClock
from pigeon.webhooks.sender import HttpWebhookSender

NUMBER, HANDSET = "+14155550171", "+14155557171"
TWIML = b"<Response><Message><Body>ok</Body><Media>img/cat.jpg</Media></Message></Response>"

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    signature: str


class Receiver:
    """An application on 127.0.0.1: records each request, answers with `route(path)`."""

    def __init__(self, route: Callable[[str], Answer], host: str = "127.0.0.1") -> None:
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                outer.seen.append(Seen(self.command, self.path, params, self.headers["X-Twilio-Signature"]))
                status, headers, body = route(self.path)
                self.send_response(status)
                for name, value in {"Content-Type": "text/xml", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.base = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signed_for_its_own_url(self, seen: Seen, token: str) -> bool:
        """What the application checks: the signature against the URL it was reached at and
        the form it got (none for a GET, whose parameters are in that URL)."""
        return bool(RequestValidator(token).validate(self.base + seen.path, seen.params, seen.signature))


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(route: Callable[[str], Answer], host: str = "127.0.0.1") -> Receiver:
        made.append(Receiver(route, host))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()
        receiver.server.server_close()


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> dict[str, Any]:
    with db.write() as conn:
        return dict(account_use.create_account(conn, friendly_name="redirects", now=clock.now()))


@dataclass
class Outcome:
    replies: list[str]
    inbound_sid: str


def converse(
    db: Database, clock: FrozenClock, account: dict[str, Any], sender: HttpWebhookSender | None = None, **settings: str
) -> Outcome:
    """Give the number `settings`, text it, and run the webhook delivery that queued."""
    with db.write() as conn:
        number_use.provision(conn, account_sid=account["sid"], phone_number=NUMBER, now=clock.now(), settings=settings)
        receive(
            conn,
            InboundSms(carrier="simulator", sender=HANDSET, recipient=NUMBER, body="hello"),
            now=clock.now(),
            base_url="https://pigeon.example.com",
        )
    with db.write() as conn:
        [row] = [
            r for r in outbox.claim_due(conn, now=clock.now(), limit=10, lease_seconds=60) if r["kind"] == "inbound"
        ]

    async def run() -> list[str]:
        http = sender or HttpWebhookSender()
        try:
            return await deliver_inbound(db, http, clock, row)
        finally:
            await http.aclose()

    return Outcome(asyncio.run(run()), row["message_sid"])


def alerts(db: Database, account: dict[str, Any]) -> list[tuple[int, str]]:
    with db.read() as conn:
        return [(a["error_code"], a["request_url"]) for a in list_alerts(conn, account_sid=account["sid"])]


def attempts(db: Database, inbound_sid: str) -> list[tuple[str, int | None, int | None]]:
    with db.read() as conn:
        found = outbox.list_attempts(conn, message_sid=inbound_sid)
    return [(a["url"], a["status_code"], a["error_code"]) for a in found]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_followed_with_the_message_and_each_hop_signed_for_its_own_url(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any, status: int
) -> None:
    """A 302 was an 11200: the application never heard of the text, and nobody was answered."""
    app = receivers(lambda path: (200, {}, TWIML) if path == "/v2/sms" else (status, {"Location": "/v2/sms"}, b""))
    out = converse(db, clock, account, sms_url=app.base + "/sms")
    first, second = app.seen
    assert [(s.method, s.path) for s in app.seen] == [("POST", "/sms"), ("POST", "/v2/sms")]
    assert second.params == first.params and second.params["Body"] == "hello"
    assert all(app.signed_for_its_own_url(s, account["auth_token"]) for s in app.seen)
    assert not RequestValidator(account["auth_token"]).validate(app.base + "/sms", second.params, second.signature)
    [sid] = out.replies
    with db.read() as conn:
        reply = conn.execute(sa.select(messages).where(messages.c.sid == sid)).mappings().one()
        media = conn.execute(sa.select(media_table.c.url).where(media_table.c.message_sid == sid)).scalars().all()
    assert (reply["body"], reply["to"]) == ("ok", HANDSET)
    assert media == [app.base + "/v2/img/cat.jpg"]  # read against the URL that answered
    assert alerts(db, account) == []
    assert attempts(db, out.inbound_sid) == [(app.base + "/sms", status, None), (app.base + "/v2/sms", 200, None)]


def test_a_see_other_is_fetched_by_get_without_the_message(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any
) -> None:
    """303: the application took the POST and points to its answer; the GET carries nothing more."""
    app = receivers(
        lambda path: (200, {}, TWIML) if path.startswith("/answer") else (303, {"Location": "/answer?id=7"}, b"")
    )
    assert len(converse(db, clock, account, sms_url=app.base + "/sms").replies) == 1
    assert [(s.method, s.path, s.params) for s in app.seen[1:]] == [("GET", "/answer?id=7", {})]
    assert all(app.signed_for_its_own_url(s, account["auth_token"]) for s in app.seen)


def test_a_get_webhook_follows_to_the_location_as_given_on_another_host(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any
) -> None:
    other = receivers(lambda path: (200, {}, TWIML))
    app = receivers(lambda path: (302, {"Location": other.base + "/hook?x=1"}, b""))
    assert len(converse(db, clock, account, sms_url=app.base + "/sms", sms_method="GET").replies) == 1
    [asked] = app.seen
    assert asked.method == "GET" and "Body=hello" in asked.path
    assert [(s.method, s.path) for s in other.seen] == [("GET", "/hook?x=1")]  # no parameters added to it
    assert app.signed_for_its_own_url(asked, account["auth_token"])
    assert other.signed_for_its_own_url(other.seen[0], account["auth_token"])


def test_a_redirect_loop_ends_with_11215_and_the_fallback_is_asked(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any
) -> None:
    app = receivers(
        lambda path: (200, {}, TWIML) if path == "/fallback" else (302, {"Location": f"/loop{len(path)}"}, b"")
    )
    out = converse(db, clock, account, sms_url=app.base + "/loop", sms_fallback_url=app.base + "/fallback")
    assert len(out.replies) == 1  # the fallback's
    assert [s.path for s in app.seen] == ["/loop", "/loop5", "/loop6", "/loop6", "/loop6", "/loop6", "/fallback"]
    fallback = app.seen[-1]
    assert (fallback.params["ErrorCode"], fallback.params["ErrorUrl"]) == ("11215", app.base + "/loop6")
    assert alerts(db, account) == [(11215, app.base + "/loop6")]


@pytest.mark.parametrize(
    ("status", "headers"),
    [(302, {}), (301, {"Location": "ftp://files.example.com/twiml"}), (300, {"Location": "/a"}), (304, {})],
)
def test_a_redirect_that_cannot_be_followed_is_11216_and_the_fallback_is_asked(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any, status: int, headers: dict[str, str]
) -> None:
    app = receivers(lambda path: (200, {}, TWIML) if path == "/fallback" else (status, headers, b""))
    out = converse(db, clock, account, sms_url=app.base + "/sms", sms_fallback_url=app.base + "/fallback")
    assert len(out.replies) == 1
    assert [s.path for s in app.seen] == ["/sms", "/fallback"]
    assert app.seen[-1].params["ErrorCode"] == "11216"
    assert alerts(db, account) == [(11216, app.base + "/sms")]


def test_a_redirect_into_a_denied_network_is_never_connected_to(
    db: Database, clock: FrozenClock, account: dict[str, Any], receivers: Any
) -> None:
    """The sender's denied networks (a cloud's metadata service, by default) hold for every hop:
    an application that may be reached cannot bounce a request to an address that may not."""
    inside = receivers(lambda path: (200, {}, TWIML), host="127.0.0.2")
    app = receivers(lambda path: (307, {"Location": inside.base + "/latest/meta-data"}, b""))
    denied = HttpWebhookSender(denied_networks=["127.0.0.2/32"])
    out = converse(db, clock, account, sender=denied, sms_url=app.base + "/sms")
    assert out.replies == [] and inside.seen == [] and len(app.seen) == 1
    with db.read() as conn:
        [alert] = list_alerts(conn, account_sid=account["sid"])
    assert alert["error_code"] == 11205 and "not allowed" in alert["alert_text"]
    assert alert["request_url"] == inside.base + "/latest/meta-data"
