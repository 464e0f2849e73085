"""Two-way messaging end to end: a phone texts a Pigeon number, the application's webhook gets
Twilio's parameters (signed), answers with TwiML, and the reply goes out; STOP/START/HELP."""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator

from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from tests.acceptance.conftest import Server

Answer = Callable[[str, dict[str, str]], tuple[int, str, bytes]]


class App:
    """A customer's application: records each webhook and answers with `answer`, or with the
    redirect `redirects` gives its path (status, Location)."""

    def __init__(self, answer: Answer, redirects: dict[str, tuple[int, str]] | None = None) -> None:
        self.answer = answer
        self.redirects = redirects or {}
        self.requests: list[dict[str, Any]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                query = urllib.parse.urlsplit(self.path).query
                params = dict(urllib.parse.parse_qsl(raw if self.command == "POST" else query, keep_blank_values=True))
                app.requests.append(
                    {"method": self.command, "path": self.path, "params": params, "headers": dict(self.headers)}
                )
                if self.path in app.redirects:
                    status, location = app.redirects[self.path]
                    ctype, body = "text/plain", b""
                else:
                    status, ctype, body = app.answer(self.path, params)
                    location = None
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = _handle
            do_GET = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def app_factory() -> Iterator[Callable[..., App]]:
    made: list[App] = []

    def make(answer: Answer, redirects: dict[str, tuple[int, str]] | None = None) -> App:
        made.append(App(answer, redirects))
        return made[-1]

    yield make
    for a in made:
        a.close()


def twiml(xml: str) -> tuple[int, str, bytes]:
    return 200, "text/xml", f'<?xml version="1.0" encoding="UTF-8"?><Response>{xml}</Response>'.encode()


def text_in(server: Server, handset: str, to: str, body: str) -> dict[str, Any]:
    r = httpx.post(
        server.base_url + "/simulator/inbound",
        data={"From": handset, "To": to, "Body": body},
        auth=(server.account_sid, server.auth_token),
    )
    assert r.status_code in (201, 202), r.text
    return dict(r.json())


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def set_sms_url(server: Server, number: str, url: str, method: str = "POST", fallback: str | None = None) -> None:
    client = server.client()
    pn = client.incoming_phone_numbers.list(phone_number=number)[0]
    kwargs: dict[str, Any] = {"sms_url": url, "sms_method": method}
    if fallback:
        kwargs["sms_fallback_url"] = fallback
    client.incoming_phone_numbers(pn.sid).update(**kwargs)


def test_webhook_twiml_reply_goes_out(server: Server, app_factory: Callable[[Answer], App]) -> None:
    app = app_factory(lambda path, p: twiml(f"<Message>You said: {p['Body']}</Message>"))
    number = server.numbers[0]
    set_sms_url(server, number, app.url + "/sms?x=1")
    result = text_in(server, "+14155552671", number, "hello there")
    assert result["webhook_queued"] is True
    inbound_sid = result["message_sid"]
    wait_for(lambda: app.requests)
    req = app.requests[0]
    params = req["params"]
    assert params["MessageSid"] == inbound_sid == params["SmsSid"] == params["SmsMessageSid"]
    assert params["From"] == "+14155552671" and params["To"] == number and params["Body"] == "hello there"
    assert (
        params["AccountSid"] == server.account_sid and params["NumMedia"] == "0" and params["SmsStatus"] == "received"
    )
    validator = RequestValidator(server.auth_token)
    assert validator.validate(app.url + "/sms?x=1", params, req["headers"]["X-Twilio-Signature"])
    client = server.client()
    inbound = client.messages(inbound_sid).fetch()
    assert inbound.direction == "inbound" and inbound.status == "received"
    replies = wait_for(lambda: [m for m in client.messages.list(to="+14155552671") if m.direction == "outbound-reply"])
    assert replies[0].body == "You said: hello there" and replies[0].from_ == number
    wait_for(lambda: client.messages(replies[0].sid).fetch().status == "delivered")


def test_get_webhook_plain_text_reply_and_redirect(sqlite_server: Server, app_factory: Callable[[Answer], App]) -> None:
    def answer(path: str, p: dict[str, str]) -> tuple[int, str, bytes]:
        if path.startswith("/first"):
            return twiml('<Redirect method="GET">/second</Redirect>'.replace("/second", app.url + "/second"))
        return 200, "text/plain", b"plain reply"

    app = app_factory(answer)
    number = sqlite_server.numbers[0]
    set_sms_url(sqlite_server, number, app.url + "/first", method="GET")
    text_in(sqlite_server, "+14155552672", number, "hi")
    wait_for(lambda: len(app.requests) >= 2)
    assert [r["method"] for r in app.requests[:2]] == ["GET", "GET"]
    assert app.requests[0]["params"]["Body"] == "hi"
    client = sqlite_server.client()
    replies = wait_for(lambda: [m for m in client.messages.list(to="+14155552672") if m.direction == "outbound-reply"])
    assert replies[0].body == "plain reply"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (lambda path, p: (500, "text/plain", b"boom"), 11200),
        (lambda path, p: (200, "text/xml", b"<Response><Message>unclosed</Response>"), 12100),
        (lambda path, p: (200, "application/json", b'{"reply": "no"}'), 12300),
        (lambda path, p: twiml("<Say>voice verb</Say>"), 14110),
        # Over 64 kB is 11750, whatever the answer holds (the reader stops one byte past it).
        (lambda path, p: twiml("<Message>" + "x" * 70_000 + "</Message>"), 11750),
        (lambda path, p: (200, "text/plain", b"y" * 65_537), 11750),
        (
            lambda path, p: (
                200,
                "text/xml",
                b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                b"<Response><Message>&b;</Message></Response>",
            ),
            12100,
        ),
    ],
)
def test_webhook_failures_use_the_fallback_and_raise_alerts(
    sqlite_server: Server, app_factory: Callable[[Answer], App], answer: Answer, code: int
) -> None:
    def routed(path: str, p: dict[str, str]) -> tuple[int, str, bytes]:
        if path.startswith("/fallback"):
            return twiml("<Message>fallback reply</Message>")
        return answer(path, p)

    app = app_factory(routed)
    number = sqlite_server.numbers[0]
    set_sms_url(sqlite_server, number, app.url + "/primary", fallback=app.url + "/fallback")
    text_in(sqlite_server, "+14155552673", number, "hello")
    wait_for(lambda: any(r["path"].startswith("/fallback") for r in app.requests))
    fb = next(r for r in app.requests if r["path"].startswith("/fallback"))
    assert fb["params"]["ErrorCode"] == str(code)
    assert fb["params"]["ErrorUrl"] == app.url + "/primary"
    client = sqlite_server.client()
    replies = wait_for(lambda: [m for m in client.messages.list(to="+14155552673") if m.direction == "outbound-reply"])
    assert [m.body for m in replies] == ["fallback reply"]
    db = Database.from_url(sqlite_server.database_url)
    with db.read() as conn:
        alerts = list_alerts(conn, account_sid=sqlite_server.account_sid, error_code=code)
    db.dispose()
    assert alerts and alerts[0]["request_url"] == app.url + "/primary"
    assert alerts[0]["request_variables"]  # the request is kept with the alert


def test_stop_start_help(server: Server, app_factory: Callable[[Answer], App]) -> None:
    app = app_factory(lambda path, p: (204, "text/plain", b""))
    number = server.numbers[0]
    handset = "+14155552674"
    set_sms_url(server, number, app.url + "/sms")
    client = server.client()
    stop = text_in(server, handset, number, "  stop ")
    assert stop["keyword"] == "STOP" and len(stop["reply_sids"]) == 1
    wait_for(lambda: app.requests)
    assert app.requests[0]["params"]["Body"] == "  stop "  # the application still gets the keyword message
    confirmation = client.messages(stop["reply_sids"][0]).fetch()
    assert confirmation.direction == "outbound-reply" and "START" in confirmation.body
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(to=handset, from_=number, body="promo")
    assert err.value.code == 21610 and err.value.status == 400
    listed = httpx.get(
        f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/OptOuts.json",
        auth=(server.account_sid, server.auth_token),
    ).json()["opt_outs"]
    assert listed[0]["recipient"] == handset and listed[0]["keyword"] == "STOP"
    assert listed[0]["inbound_message_sid"] == stop["message_sid"] and listed[0]["scope"] == "number"
    not_a_keyword = text_in(server, handset, number, "STOP PLEASE")
    assert not_a_keyword["keyword"] is None
    help_ = text_in(server, handset, number, "help")
    assert help_["keyword"] == "HELP" and len(help_["reply_sids"]) == 1
    start = text_in(server, handset, number, "Start")
    assert start["keyword"] == "START"
    msg = client.messages.create(to=handset, from_=number, body="welcome back")
    wait_for(lambda: client.messages(msg.sid).fetch().status == "delivered")


def test_unroutable_and_no_webhook(sqlite_server: Server) -> None:
    nobody = text_in(sqlite_server, "+14155552675", "+14155559999", "anyone?")
    assert nobody["message_sid"] is None and "not a number of any account" in nobody["unroutable_reason"]
    stored = text_in(sqlite_server, "+14155552675", sqlite_server.numbers[1], "no url")
    assert stored["message_sid"] and stored["webhook_queued"] is False


def test_the_handsets_media_urls_are_http_urls(sqlite_server: Server) -> None:
    # Each is stored and shown as a link in the console: the outbound send's rule (21620) holds.
    number = sqlite_server.numbers[1]
    client = sqlite_server.client()
    for bad in ("javascript:alert(document.cookie)", "data:text/html,<script>x</script>", "ftp://example.com/a.png"):
        r = httpx.post(
            sqlite_server.base_url + "/simulator/inbound",
            data={"From": "+14155552676", "To": number, "Body": "look", "MediaUrl": ["https://example.com/a.png", bad]},
            auth=(sqlite_server.account_sid, sqlite_server.auth_token),
        )
        assert (r.status_code, r.json()["code"]) == (400, 21620), r.text
    assert client.messages.list(from_="+14155552676") == []
    r = httpx.post(
        sqlite_server.base_url + "/simulator/inbound",
        data={"From": "+14155552676", "To": number, "MediaUrl": "https://example.com/a.png"},
        auth=(sqlite_server.account_sid, sqlite_server.auth_token),
    )
    assert r.status_code == 201 and client.messages(r.json()["message_sid"]).fetch().num_media == "1"


def test_the_webhooks_media_urls_answer_without_credentials(
    sqlite_server: Server, app_factory: Callable[[Answer], App]
) -> None:
    """Applications fetch MediaUrl0 as the webhook gives it, without credentials; media URLs are
    public on Twilio unless the account turns on HTTP Basic auth for them."""
    app = app_factory(lambda path, p: twiml(""))
    number = sqlite_server.numbers[0]
    set_sms_url(sqlite_server, number, app.url + "/sms")
    r = httpx.post(
        sqlite_server.base_url + "/simulator/inbound",
        data={"From": "+14155552677", "To": number, "Body": "photo", "MediaUrl": "https://example.com/cat.jpg"},
        auth=(sqlite_server.account_sid, sqlite_server.auth_token),
    )
    assert r.status_code == 201, r.text
    params = wait_for(lambda: app.requests)[0]["params"]
    assert params["NumMedia"] == "1"
    url = params["MediaUrl0"]
    assert url.startswith(sqlite_server.base_url + "/2010-04-01/Accounts/") and not url.endswith(".json")
    content = httpx.get(url)
    assert content.status_code == 302 and content.headers["location"] == "https://example.com/cat.jpg"
    # The record's metadata stays the account's own.
    assert httpx.get(url + ".json").status_code == 401
    assert httpx.get(url + ".json", auth=(sqlite_server.account_sid, sqlite_server.auth_token)).status_code == 200
    # Credentials that are sent are checked.
    assert httpx.get(url, auth=(sqlite_server.account_sid, "wrong")).status_code == 401


def test_reply_loop_is_stopped(sqlite_server: Server, app_factory: Callable[[Answer], App]) -> None:
    app = app_factory(lambda path, p: twiml("<Message>ack</Message>"))
    number = sqlite_server.numbers[0]
    set_sms_url(sqlite_server, number, app.url + "/sms")
    for i in range(18):
        text_in(sqlite_server, "+14155552676", number, f"ping {i}")
    client = sqlite_server.client()
    wait_for(lambda: len(app.requests) >= 18, timeout=20)
    time.sleep(1)
    replies = [m for m in client.messages.list(to="+14155552676") if m.direction == "outbound-reply"]
    assert len(replies) == 15


def test_stop_covers_the_whole_messaging_service(server: Server) -> None:
    client = server.client()
    service = client.messaging.v1.services.create(friendly_name="alerts")
    pns = {n.phone_number: n.sid for n in client.incoming_phone_numbers.list()}
    for number in server.numbers:
        client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=pns[number])
    handset = "+14155552677"
    stop = text_in(server, handset, server.numbers[0], "STOP")
    assert stop["keyword"] == "STOP"
    for kwargs in ({"from_": server.numbers[1]}, {"messaging_service_sid": service.sid}):
        with pytest.raises(TwilioRestException) as err:
            client.messages.create(to=handset, body="still there?", **kwargs)
        assert err.value.code == 21610
    listed = httpx.get(
        f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/OptOuts.json",
        auth=(server.account_sid, server.auth_token),
    ).json()["opt_outs"]
    assert listed[0]["scope"] == "service" and listed[0]["sender"] == service.sid
    text_in(server, handset, server.numbers[1], "unstop")
    msg = client.messages.create(to=handset, messaging_service_sid=service.sid, body="welcome back")
    assert msg.status == "accepted"
    wait_for(lambda: client.messages(msg.sid).fetch().status == "delivered")


def test_a_redirected_webhook_s_eleven_replies_send_ten_one_to_a_national_number(
    sqlite_server: Server, app_factory: Callable[..., App]
) -> None:
    """Three faults of one conversation that used to cost the text its replies: the
    application's 302 was an 11200, the eleventh <Message> failed the whole answer (14109, the
    fallback asked), and a `to` in national format was refused (14101)."""
    national = "<Message to='(415) 555-2699'>to a national number</Message>"
    more = "".join(f"<Message>reply {i}</Message>" for i in range(10))
    app = app_factory(lambda path, p: twiml(national + more), redirects={"/old": (302, "/new")})
    number = sqlite_server.numbers[0]
    set_sms_url(sqlite_server, number, app.url + "/old", fallback=app.url + "/fallback")
    text_in(sqlite_server, "+14155552698", number, "hello")
    client = sqlite_server.client()

    def replies() -> list[Any]:
        return [m for m in client.messages.list(from_=number, limit=50) if m.direction == "outbound-reply"]

    sent = wait_for(replies)  # written in one transaction with the conversation's record
    assert [r["path"] for r in app.requests] == ["/old", "/new"]  # the fallback was not asked
    validator = RequestValidator(sqlite_server.auth_token)
    for request in app.requests:
        assert request["params"]["Body"] == "hello"
        assert validator.validate(
            app.url + request["path"], request["params"], request["headers"]["X-Twilio-Signature"]
        )
    assert sorted(m.to for m in sent) == ["+14155552698"] * 9 + ["+14155552699"]
    db = Database.from_url(sqlite_server.database_url)
    with db.read() as conn:
        alerts = list_alerts(conn, account_sid=sqlite_server.account_sid)
    db.dispose()
    assert [(a["error_code"], a["log_level"]) for a in alerts] == [(14109, "warning")]


def test_the_fallback_is_told_the_failed_url_without_its_password(
    sqlite_server: Server, app_factory: Callable[..., App]
) -> None:
    def answer(path: str, p: dict[str, str]) -> tuple[int, str, bytes]:
        return twiml("<Message>fallback</Message>") if path == "/fallback" else (500, "text/plain", b"boom")

    app = app_factory(answer)
    number = sqlite_server.numbers[0]
    primary = app.url.replace("http://", "http://bot:s3cret-pass@") + "/primary"
    set_sms_url(sqlite_server, number, primary, fallback=app.url + "/fallback")
    text_in(sqlite_server, "+14155552697", number, "hello")
    fallback = wait_for(lambda: [r for r in app.requests if r["path"] == "/fallback"])[0]
    assert fallback["params"]["ErrorUrl"] == app.url + "/primary"
    assert "s3cret" not in str(fallback["params"])
