"""The webhook sender's own HTTP/1.1 client against real servers on 127.0.0.1.

Each test starts an asyncio server in its own event loop, scripted request by request, and
counts the connections it sees; every test runs on asyncio's loop and on uvloop (the loop
of the worker processes). Covered: keep-alive reuse, `Connection: close` and HTTP/1.0,
chunked and EOF-ended bodies, the body cap, gzip and deflate, a receiver dropping an idle
connection, timeouts, refused ports, garbage, bad URLs, GET queries, TLS and the pool's limit.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import ssl
import subprocess
import sys
import zlib
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from pigeon.domain.errors import WebhookError
from pigeon.domain.signatures import request_url
from pigeon.ports import WebhookRequest, WebhookResponse
from pigeon.webhooks.http1 import Answer
from pigeon.webhooks.pool import Pool
from pigeon.webhooks.sender import USER_AGENT, HttpWebhookSender, form_body

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # not on every platform
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Run[Any]:
    def run(main: Coroutine[Any, Any, T]) -> T:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(main)

    return run


# -- a scripted server ---------------------------------------------------------------------------


@dataclass
class Seen:
    conn: int  # which connection (from 0, in the order they were opened) carried the request
    head: str
    body: bytes

    @property
    def target(self) -> str:
        return self.head.split(" ")[1]

    @property
    def headers(self) -> dict[str, str]:
        lines = self.head.split("\r\n")[1:]
        return {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}


Reply = Callable[[Seen, asyncio.Transport], object]


def answer(status: int = 200, body: bytes = b"", *headers: str, version: str = "1.1") -> bytes:
    lines = [f"HTTP/{version} {status} X", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def replying(data: bytes) -> Reply:
    return lambda _seen, transport: transport.write(data)


@dataclass
class Tally:
    """Connections open at once, at one server or several sharing the tally."""

    open_now: int = 0
    most_open: int = 0


@dataclass
class Server:
    """Answers each request with `reply(seen, transport)`: it may write, close, or do nothing."""

    reply: Reply
    tally: Tally = field(default_factory=Tally)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self, tls: ssl.SSLContext | None = None) -> Server:
        self.server = await asyncio.get_running_loop().create_server(lambda: _Peer(self), "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = "/cb", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def open_now(self) -> int:
        return self.tally.open_now

    @property
    def most_open(self) -> int:
        return self.tally.most_open


class _Peer(asyncio.Protocol):
    def __init__(self, server: Server) -> None:
        self.server = server
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        s = self.server
        self.index = s.connections
        s.connections += 1
        s.tally.open_now += 1
        s.tally.most_open = max(s.tally.most_open, s.tally.open_now)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode()
            seen = Seen(self.index, head, b"")
            length = int(seen.headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            seen.body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.server.seen.append(seen)
            self.server.reply(seen, self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.tally.open_now -= 1


def post(url: str, timeout: float = 15.0) -> WebhookRequest:
    return WebhookRequest(url=url, method="POST", params=[("MessageStatus", "sent")], headers={}, timeout=timeout)


async def send_all(sender: HttpWebhookSender, *requests: WebhookRequest) -> list[WebhookResponse]:
    try:
        return [await sender.send(r) for r in requests]
    finally:
        await sender.aclose()


async def failure(sender: HttpWebhookSender, request: WebhookRequest) -> WebhookError:
    try:
        await sender.send(request)
    except WebhookError as exc:
        return exc
    finally:
        await sender.aclose()
    raise AssertionError("the request did not fail")


# -- keep-alive and framing ----------------------------------------------------------------------


def test_one_connection_carries_several_requests(run: Run[Any]) -> None:
    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(
            replying(answer(200, b"<Response/>", "Set-Cookie: a=1", "X-Twice: 1", "X-Twice: 2"))
        ).start()
        request = WebhookRequest(
            url=server.url(), method="POST", params=[("Body", "héllo & bye")], headers={"X-Twilio-Signature": "sig="}
        )
        return server, await send_all(HttpWebhookSender(), *[request] * 4)

    server, answers = run(main())
    assert server.connections == 1 and len(server.seen) == 4
    assert [a.status for a in answers] == [200] * 4 and answers[0].body == b"<Response/>"
    assert answers[0].headers["x-twice"] == "2" and "set-cookie" in answers[0].headers  # names lower-cased
    first = server.seen[0]
    assert first.head.startswith("POST /cb HTTP/1.1\r\n") and first.body == form_body([("Body", "héllo & bye")])
    assert first.headers["host"] == f"127.0.0.1:{server.port}"
    assert first.headers["user-agent"] == USER_AGENT and first.headers["x-twilio-signature"] == "sig="
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "accept-encoding" not in first.headers
    assert all("cookie" not in s.headers for s in server.seen)  # the receiver's cookie never comes back


@pytest.mark.parametrize(
    "reply",
    [answer(204, b"", "Connection: close"), answer(200, b"ok", version="1.0")],
    ids=["connection-close", "http-1.0"],
)
def test_an_answer_without_keep_alive_ends_its_connection(run: Run[Any], reply: bytes) -> None:
    """The server leaves the connection open; the client must still not use it again."""

    async def main() -> Server:
        server = await Server(replying(reply)).start()
        await send_all(HttpWebhookSender(), *[post(server.url())] * 3)
        return server

    server = run(main())
    assert server.connections == 3 and [s.conn for s in server.seen] == [0, 1, 2]


def test_chunked_and_eof_ended_bodies(run: Run[Any]) -> None:
    chunked = answer(200, b"5\r\n<Resp\r\n7\r\nonse/>\n\r\n0\r\n\r\n", "Transfer-Encoding: chunked")

    def reply(seen: Seen, transport: asyncio.Transport) -> None:
        if seen.conn == 0 and len(server.seen) < 3:
            transport.write(chunked)
        else:  # no length: the body ends with the connection
            transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<Response/>")
            transport.close()

    server = Server(reply)

    async def main() -> list[WebhookResponse]:
        await server.start()
        return await send_all(HttpWebhookSender(), *[post(server.url())] * 3)

    answers = run(main())
    assert [a.body for a in answers] == [b"<Response/>\n", b"<Response/>\n", b"<Response/>"]
    assert [s.conn for s in server.seen] == [0, 0, 0]


def test_interim_100_continue_is_skipped(run: Run[Any]) -> None:
    async def main() -> list[WebhookResponse]:
        server = await Server(replying(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(201, b"made"))).start()
        return await send_all(HttpWebhookSender(), post(server.url()), post(server.url()))

    assert [(a.status, a.body) for a in run(main())] == [(201, b"made")] * 2


# -- the body cap and compression ----------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_cap_is_cut_and_its_connection_closed(run: Run[Any], chunked: bool) -> None:
    big = b"x" * 5000
    reply = (
        answer(200, b"1388\r\n" + big + b"\r\n0\r\n\r\n", "Transfer-Encoding: chunked") if chunked else answer(200, big)
    )

    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(replying(reply)).start()
        return server, await send_all(HttpWebhookSender(max_response_bytes=1000), *[post(server.url())] * 2)

    server, answers = run(main())
    assert [len(a.body) for a in answers] == [1000, 1000]
    assert [s.conn for s in server.seen] == [0, 1]  # never reused: the rest was still on it


def test_a_body_exactly_at_the_cap_keeps_its_connection(run: Run[Any]) -> None:
    async def main() -> Server:
        server = await Server(replying(answer(200, b"y" * 1000))).start()
        await send_all(HttpWebhookSender(max_response_bytes=1000), *[post(server.url())] * 2)
        return server

    assert run(main()).connections == 1


@pytest.mark.parametrize(
    ("coding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-zlib.MAX_WBITS)),  # raw, as some servers send
    ],
    ids=["gzip", "deflate", "raw-deflate"],
)
def test_a_compressed_answer_is_inflated(run: Run[Any], coding: str, compress: Callable[[bytes], bytes]) -> None:
    text = b"<Response><Message>" + b"hello " * 500 + b"</Message></Response>"

    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(replying(answer(200, compress(text), f"Content-Encoding: {coding}"))).start()
        return server, await send_all(HttpWebhookSender(), post(server.url()), post(server.url()))

    server, answers = run(main())
    assert [a.body for a in answers] == [text, text] and server.connections == 1
    assert "accept-encoding" not in server.seen[0].headers


def test_a_gzip_bomb_inflates_only_to_the_cap(run: Run[Any]) -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # about 20 kB on the wire

    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(replying(answer(200, bomb, "Content-Encoding: gzip"))).start()
        return server, await send_all(
            HttpWebhookSender(max_response_bytes=4096), post(server.url()), post(server.url())
        )

    server, answers = run(main())
    assert [len(a.body) for a in answers] == [4096, 4096] and server.connections == 2


def test_a_body_that_does_not_inflate_is_a_protocol_violation(run: Run[Any]) -> None:
    async def main() -> WebhookError:
        server = await Server(replying(answer(200, b"not gzip at all", "Content-Encoding: gzip"))).start()
        return await failure(HttpWebhookSender(), post(server.url()))

    caught = run(main())
    assert caught.error_code == 11206 and caught.retryable and "inflate" in caught.detail


# -- connections that end ------------------------------------------------------------------------


def test_a_receiver_closing_an_idle_connection_as_the_request_goes_is_retried_once(run: Run[Any]) -> None:
    """The second request goes out on the kept connection, and the receiver closes it without
    answering (its keep-alive timeout firing just then): sent again on a new connection."""

    def reply(seen: Seen, transport: asyncio.Transport) -> None:
        if len(server.seen) == 2:
            transport.close()
        else:
            transport.write(answer(204))

    server = Server(reply)

    async def main() -> list[WebhookResponse]:
        await server.start()
        return await send_all(HttpWebhookSender(), post(server.url()), post(server.url()), post(server.url()))

    answers = run(main())
    assert [a.status for a in answers] == [204] * 3
    assert [s.conn for s in server.seen] == [0, 0, 1, 1]


def test_a_connection_the_receiver_closed_while_idle_is_not_used(run: Run[Any]) -> None:
    def reply(seen: Seen, transport: asyncio.Transport) -> None:
        transport.write(answer(204))  # keep-alive allowed, then the receiver closes anyway
        transport.close()

    server = Server(reply)

    async def main() -> list[WebhookResponse]:
        await server.start()
        sender = HttpWebhookSender()
        first = await sender.send(post(server.url()))
        await asyncio.sleep(0.05)  # the close arrives while the connection is idle
        return [first, *await send_all(sender, post(server.url()))]

    assert [a.status for a in run(main())] == [204, 204]
    assert [s.conn for s in server.seen] == [0, 1]


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (lambda t: t.close(), "a new connection closed without an answer: not retried"),
        (lambda t: (t.write(b"HTTP/1.1 200 OK\r\nContent-Len"), t.close()), "part of an answer came: not retried"),
        (lambda t: (t.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"), t.close()), "body cut short"),
    ],
    ids=["fresh", "reused-half-head", "reused-half-body"],
)
def test_a_connection_dropped_mid_exchange_is_11206(
    run: Run[Any], second: Callable[[asyncio.Transport], Any], why: str
) -> None:
    def reply(seen: Seen, transport: asyncio.Transport) -> None:
        if why.startswith("a new") or len(server.seen) == 2:
            second(transport)
        else:
            transport.write(answer(204))

    server = Server(reply)

    async def main() -> WebhookError:
        await server.start()
        sender = HttpWebhookSender()
        if not why.startswith("a new"):
            await sender.send(post(server.url()))
        return await failure(sender, post(server.url()))

    caught = run(main())
    assert caught.error_code == 11206 and caught.retryable and caught.status is None, why
    assert len(server.seen) == (1 if why.startswith("a new") else 2), why  # sent once: no retry


def test_a_receiver_that_never_answers_times_out_with_11205_and_loses_the_connection(run: Run[Any]) -> None:
    server = Server(lambda seen, transport: None)

    async def main() -> tuple[WebhookError, float]:
        await server.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        caught = await failure(HttpWebhookSender(total_timeout=0.3), post(server.url()))
        took = loop.time() - started
        await asyncio.sleep(0.05)
        return caught, took

    caught, took = run(main())
    assert caught.error_code == 11205 and caught.retryable and 0.29 <= took < 1.0
    assert server.open_now == 0  # the timed-out connection was closed, not kept


def test_the_request_timeout_applies_when_shorter(run: Run[Any]) -> None:
    async def main() -> WebhookError:
        server = await Server(lambda seen, transport: None).start()
        return await failure(HttpWebhookSender(total_timeout=15.0), post(server.url(), timeout=0.2))

    assert run(main()).error_code == 11205


def test_a_refused_port_is_11205(run: Run[Any]) -> None:
    async def main() -> WebhookError:
        server = await Server(lambda seen, transport: None).start()
        url = server.url()
        await server.stop()
        return await failure(HttpWebhookSender(connect_timeout=1.0), post(url))

    caught = run(main())
    assert caught.error_code == 11205 and caught.retryable and "could not connect" in caught.detail


@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9.6\r\n", b"HTTP/1.1 abc\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01"])
def test_an_answer_that_is_not_http_is_11206(run: Run[Any], garbage: bytes) -> None:
    async def main() -> WebhookError:
        server = await Server(replying(garbage)).start()
        return await failure(HttpWebhookSender(total_timeout=2.0), post(server.url()))

    caught = run(main())
    assert caught.error_code == 11206 and caught.retryable


def test_a_head_without_end_is_11206(run: Run[Any]) -> None:
    async def main() -> WebhookError:
        endless = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"p" * 100_000
        server = await Server(replying(endless)).start()
        return await failure(HttpWebhookSender(total_timeout=2.0), post(server.url()))

    assert run(main()).error_code == 11206


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/cb", "http://[::1/cb", "http://127.0.0.1:99999/cb", "http:///cb", "not a url", "http://h/a b"],
)
def test_a_url_that_cannot_be_requested_is_a_permanent_11200(run: Run[Any], url: str) -> None:
    caught = run(failure(HttpWebhookSender(), post(url)))
    assert caught.error_code == 11200 and caught.retryable is False and caught.status is None


def test_a_header_with_a_line_break_is_a_permanent_11200(run: Run[Any]) -> None:
    request = WebhookRequest(url="http://127.0.0.1:9/cb", method="POST", params=[], headers={"X": "a\r\nB: c"})
    caught = run(failure(HttpWebhookSender(), request))
    assert caught.error_code == 11200 and caught.retryable is False


# -- what goes out ---------------------------------------------------------------------------------


def test_get_sends_its_parameters_in_the_query_exactly_as_signed(run: Run[Any]) -> None:
    params = [("MessageSid", "SM1"), ("Body", "a b&c/ü")]

    async def main() -> Server:
        server = await Server(replying(answer(200))).start()
        # Escapes in the configured URL stay as they are (%7e, not ~); the fragment never goes.
        url = server.url("/hooks/%7ebob/cb?tenant=A%2fB&x") + "#rc=3"
        request = WebhookRequest(url=url, method="get", params=params, headers={})
        await send_all(HttpWebhookSender(), request)
        return server

    server = run(main())
    (seen,) = server.seen
    expected = request_url(server.url("/hooks/%7ebob/cb?tenant=A%2fB&x"), "GET", params)
    assert seen.head.startswith("GET /hooks/%7ebob/cb?tenant=A%2fB&x&MessageSid=SM1&Body=a+b%26c%2F%C3%BC HTTP/1.1")
    assert f"http://127.0.0.1:{server.port}{seen.target}" == expected
    assert "content-length" not in seen.headers and seen.body == b""


def test_a_json_body_goes_as_given_and_url_credentials_as_basic_auth(run: Run[Any]) -> None:
    body = b'[{"specversion":"1.0","type":"com.twilio.messaging.message.sent"}]'

    async def main() -> Server:
        server = await Server(replying(answer(200))).start()
        url = server.url("/events", host="us%40r:p%3Ass@127.0.0.1")
        request = WebhookRequest(
            url=url, method="POST", params=[], headers={}, body=body, content_type="application/json"
        )
        await send_all(HttpWebhookSender(), request)
        return server

    (seen,) = run(main()).seen
    assert seen.body == body and seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Basic dXNAcjpwOnNz"  # base64 of "us@r:p:ss"
    assert seen.target == "/events" and "@" not in seen.headers["host"]


def test_redirects_are_reported_not_followed(run: Run[Any]) -> None:
    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(replying(answer(302, b"", "Location: /elsewhere"))).start()
        return server, await send_all(HttpWebhookSender(), post(server.url()))

    server, answers = run(main())
    assert answers[0].status == 302 and answers[0].headers["location"] == "/elsewhere" and len(server.seen) == 1


def test_a_sender_made_outside_any_loop_serves_one_loop_after_another() -> None:
    sender = HttpWebhookSender()  # as the composition root makes it, before a loop runs

    async def once() -> int:
        server = await Server(replying(answer(204))).start()
        response = await sender.send(post(server.url()))
        await server.stop()
        return response.status

    assert asyncio.run(once()) == 204
    assert asyncio.run(once()) == 204  # a new loop: a new pool, not the old loop's connections


# -- the pool's limit and idle connections ---------------------------------------------------------


def slow(seen: Seen, transport: asyncio.Transport) -> None:
    asyncio.get_running_loop().call_later(0.02, transport.write, answer(204))


def test_never_more_connections_than_the_limit(run: Run[Any]) -> None:
    async def main() -> tuple[Server, list[WebhookResponse]]:
        server = await Server(slow).start()
        sender = HttpWebhookSender(max_connections=3)
        try:
            return server, await asyncio.gather(*(sender.send(post(server.url())) for _ in range(24)))
        finally:
            await sender.aclose()

    server, answers = run(main())
    assert [a.status for a in answers] == [204] * 24
    assert server.most_open == 3 and server.connections == 3  # the others waited, then reused them


def test_the_limit_counts_every_origin_and_idle_connections_make_room(run: Run[Any]) -> None:
    """Two receivers, room for three connections: a request to one closes an idle connection
    to the other when there is no room left. Watched from the client (the pool's count, exact)
    and from the servers (who see a close a loop turn after the connection that replaced it:
    one over, for that moment)."""

    async def main() -> tuple[Tally, Server, Server, int]:
        tally = Tally()
        one, two = await Server(slow, tally).start(), await Server(slow, tally).start()
        pool = Pool(asyncio.get_running_loop(), max_connections=3, connect_timeout=1, max_body=100, default_headers={})
        most = 0

        async def send(url: str) -> None:
            nonlocal most
            await pool.request("POST", url, {}, b"", deadline=pool.loop.time() + 5)
            most = max(most, pool.open_connections)

        async def watch() -> None:
            nonlocal most
            for _ in range(300):
                most = max(most, pool.open_connections)
                await asyncio.sleep(0.001)

        await asyncio.gather(watch(), *(send(one.url() if i % 5 else two.url()) for i in range(40)))
        pool.close()
        return tally, one, two, most

    tally, one, two, most = run(main())
    assert most == 3 and tally.most_open <= 4
    assert len(one.seen) == 32 and len(two.seen) == 8
    assert one.connections + two.connections > 3  # idle connections were closed to make room


def test_idle_connections_close_after_the_idle_timeout(run: Run[Any]) -> None:
    async def main() -> tuple[int, int, int]:
        server = await Server(replying(answer(204))).start()
        loop = asyncio.get_running_loop()
        pool = Pool(loop, max_connections=5, connect_timeout=1, max_body=1000, default_headers={}, idle_timeout=0.1)
        await asyncio.gather(
            *(pool.request("POST", server.url(), {}, b"", deadline=pool.loop.time() + 5) for _ in range(3))
        )
        kept = server.open_now
        await asyncio.sleep(0.3)
        return kept, server.open_now, pool.open_connections

    assert run(main()) == (3, 0, 0)


# -- TLS -------------------------------------------------------------------------------------------


def _openssl() -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a certificate with")
    return openssl


_NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name`, valid for two days (the openssl command line; no
    Python package)."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            *(_openssl(), "req", "-x509", *_NEW_KEY, "-keyout", str(key), "-out", str(cert), "-days", "2"),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for localhost."""
    yield _self_signed(tmp_path_factory.mktemp("tls"), "localhost")


@pytest.fixture(scope="module")
def expired_certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate for localhost that was valid for one day in January 2020.
    `openssl req` only makes certificates valid from now, so `openssl ca` signs it, with the
    dates given."""
    folder = tmp_path_factory.mktemp("expired")
    (folder / "index.txt").write_text("")
    (folder / "serial").write_text("01\n")
    (folder / "ca.cnf").write_text(
        "[ca]\ndefault_ca = here\n[here]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n"
    )
    openssl = _openssl()
    subprocess.run(
        [
            *(openssl, "req", "-new", *_NEW_KEY, "-keyout", "key.pem", "-out", "request.csr"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    subprocess.run(
        [
            *(openssl, "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "key.pem"),
            *("-in", "request.csr", "-out", "cert.pem"),
            *("-startdate", "20200101000000Z", "-enddate", "20200102000000Z"),
        ],
        check=True,
        capture_output=True,
        cwd=folder,
    )
    yield folder / "cert.pem", folder / "key.pem"


def _server_tls(certificate: tuple[Path, Path], names: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    return context


def test_https_to_a_self_signed_certificate_is_refused_as_11237(run: Run[Any], certificate: tuple[Path, Path]) -> None:
    """The system's trust store does not know this certificate. The check fails in the TLS
    handshake, before any HTTP is exchanged, and says which check failed: 11237, no path to a
    trusted certificate. Retryable, since the receiver's operator may fix it."""

    async def main() -> tuple[Server, WebhookError]:
        server = await Server(replying(answer(200))).start(_server_tls(certificate, []))
        return server, await failure(
            HttpWebhookSender(connect_timeout=2), post(server.url(host="localhost", scheme="https"))
        )

    server, caught = run(main())
    assert caught.error_code == 11237 and caught.retryable and "self-signed" in caught.detail
    assert server.seen == []  # nothing was sent to a receiver we could not verify


def _trusting_and_refused(run: Run[Any], certificate: tuple[Path, Path]) -> WebhookError:
    """Send to a localhost server with `certificate`, which the sender trusts as its CA; the
    failure, once it is clear that nothing reached the server."""

    async def main() -> tuple[Server, WebhookError]:
        server = await Server(replying(answer(200))).start(_server_tls(certificate, []))
        trusting = ssl.create_default_context(cafile=str(certificate[0]))
        sender = HttpWebhookSender(connect_timeout=2, tls=trusting)
        return server, await failure(sender, post(server.url(host="localhost", scheme="https")))

    result: tuple[Server, WebhookError] = run(main())
    server, caught = result
    assert server.seen == []
    return caught


def test_an_expired_certificate_is_11236_even_when_trusted(
    run: Run[Any], expired_certificate: tuple[Path, Path]
) -> None:
    caught = _trusting_and_refused(run, expired_certificate)
    assert caught.error_code == 11236 and caught.retryable and "expired" in caught.detail


def test_a_trusted_certificate_for_another_name_is_11235(run: Run[Any], tmp_path: Path) -> None:
    """The certificate verifies, but for elsewhere.example, not the host in the URL."""
    caught = _trusting_and_refused(run, _self_signed(tmp_path, "elsewhere.example"))
    assert caught.error_code == 11235 and caught.retryable and "another host name" in caught.detail


_SEND_ONE = """
import asyncio, sys
from pigeon.ports import WebhookRequest
from pigeon.webhooks.sender import HttpWebhookSender

async def main():
    sender = HttpWebhookSender(connect_timeout=5)
    request = WebhookRequest(url=sys.argv[1], method="POST", params=[("a", "1")], headers={}, timeout=10)
    try:
        print((await sender.send(request)).status)
    finally:
        await sender.aclose()

asyncio.run(main())
"""


def test_a_private_ca_is_trusted_through_ssl_cert_file(certificate: tuple[Path, Path]) -> None:
    """What the README tells operators whose receivers use an internal CA: the sender verifies
    with OpenSSL's default paths, so SSL_CERT_FILE (or SSL_CERT_DIR) in the workers' environment
    selects the bundle. Here the bundle is the server's own self-signed certificate."""

    async def main() -> tuple[Server, bytes, bytes]:
        server = await Server(replying(answer(204))).start(_server_tls(certificate, []))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SEND_ONE,
            server.url(host="localhost", scheme="https"),
            env={**os.environ, "SSL_CERT_FILE": str(certificate[0])},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await server.stop()
        return server, out, err

    server, out, err = asyncio.run(main())
    assert out.strip() == b"204", err.decode()[-2000:]
    assert len(server.seen) == 1


@pytest.mark.parametrize("behaviour", ["answers plain HTTP", "closes at once", "resets"])
def test_a_failed_tls_handshake_is_11220(run: Run[Any], behaviour: str) -> None:
    """An https URL whose server is not TLS: it answers in plain HTTP, or hangs up (with a FIN
    or a reset) on our ClientHello."""

    async def main() -> WebhookError:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(5)  # the start of the ClientHello
            if behaviour == "answers plain HTTP":
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                writer.close()
            elif behaviour == "closes at once":
                writer.close()
            else:
                writer.transport.abort()  # with unread data pending, the kernel answers with a reset

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await failure(HttpWebhookSender(connect_timeout=2), post(f"https://localhost:{port}/cb"))
        finally:
            server.close()

    caught = run(main())
    assert caught.error_code == 11220 and caught.retryable and "handshake" in caught.detail


def test_a_host_name_that_does_not_resolve_is_11210(run: Run[Any]) -> None:
    """`.invalid` never resolves (RFC 6761). A resolver that cannot be reached fails the same
    way (EAI_AGAIN), if later: the connect timeout is long enough for the libc resolver to give up."""
    caught = run(failure(HttpWebhookSender(connect_timeout=30), post("http://no-such-host.invalid/cb")))
    assert caught.error_code == 11210 and caught.retryable and "does not resolve" in caught.detail


def test_a_receiver_in_a_denied_network_is_never_connected_to(run: Run[Any]) -> None:
    """What a URL names is checked after resolution: an address literal, and a name (here
    localhost, which resolves to 127.0.0.1 and perhaps ::1) whose every address is denied."""

    async def main() -> tuple[Server, list[WebhookError], WebhookResponse]:
        server = await Server(replying(answer(204))).start()
        denied = HttpWebhookSender(denied_networks=["127.0.0.0/8", "::1/128"])
        refused = [
            await failure(denied, post(server.url())),
            await failure(denied, post(server.url(host="localhost"))),
        ]
        allowed = HttpWebhookSender(denied_networks=["169.254.0.0/16"])
        [ok] = await send_all(allowed, post(server.url()))
        await server.stop()
        return server, refused, ok

    server, refused, ok = run(main())
    for caught in refused:
        assert (caught.error_code, caught.retryable) == (11205, False)
        assert "not allowed" in caught.detail and "PIGEON_WEBHOOK_DENIED_NETWORKS" in caught.detail
    assert ok.status == 204
    assert server.connections == 1  # the allowed sender's only


def test_https_with_a_trusted_certificate_sends_the_host_name(run: Run[Any], certificate: tuple[Path, Path]) -> None:
    names: list[str | None] = []

    async def main() -> tuple[Server, list[Answer]]:
        server = await Server(replying(answer(200, b"secure"))).start(_server_tls(certificate, names))
        trusting = ssl.create_default_context(cafile=str(certificate[0]))
        pool = Pool(
            asyncio.get_running_loop(),
            max_connections=2,
            connect_timeout=2,
            max_body=1000,
            default_headers={},
            tls=trusting,
        )
        url = server.url(host="localhost", scheme="https")
        answers = [await pool.request("POST", url, {}, b"a=1", deadline=pool.loop.time() + 5) for _ in range(2)]
        pool.close()
        return server, answers

    server, answers = run(main())
    assert [a.body for a in answers] == [b"secure"] * 2 and server.connections == 1
    assert names == ["localhost"]  # SNI
    assert server.seen[0].headers["host"] == f"localhost:{server.port}"


def test_plain_http_to_a_tls_port_is_11206(run: Run[Any], certificate: tuple[Path, Path]) -> None:
    async def main() -> WebhookError:
        server = await Server(replying(answer(200))).start(_server_tls(certificate, []))
        return await failure(HttpWebhookSender(total_timeout=2), post(server.url(host="localhost")))

    caught = run(main())
    assert caught.error_code == 11206 and caught.retryable
