"""A WebhookSender on asyncio and httptools: HTTP/1.1 keep-alive connections, nothing more.

Status callbacks are the busiest outbound traffic Pigeon has (three per message: sending,
sent, delivered). httpx spends about a millisecond of CPU on each request (anyio, sniffio
and its pool bookkeeping), which on two cores caps status callbacks near a thousand a second
(bench/RESULTS.md); this sender spends a few tens of microseconds: one asyncio Protocol per
connection, the C parser that uvicorn uses (httptools), and an idle-connection pool per
origin. It keeps `HttpxWebhookSender`'s contract exactly:

    connection refused, DNS failure, connect timeout      11205  retryable
    no complete answer within the time budget             11205  retryable
    connection dropped or garbled mid-answer              11206  retryable
    URL that can never work (scheme, syntax, port)        11200  permanent

Twilio's timeouts (REFERENCE.md §e): 5 s to connect, 15 s for the whole exchange, waiting for
a free connection included. Redirects are not followed (the signature covers the URL we were
given). At most 64 KiB of an answer is read; the connection is then closed. Credentials in
the URL (https://user:pass@host/…) are sent as Basic auth, as Twilio and httpx do. HTTP
proxies from the environment are ignored: customers' receivers are reached directly.

A request that fails on a reused keep-alive connection before any byte of the answer came
back (the receiver had just closed it) is sent once more on a new connection; the receiver
may then see it twice, with the same I-Twilio-Idempotency-Token, which is what the token is
for.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import httptools

from pigeon.domain.errors import WebhookError
from pigeon.domain.signatures import request_url
from pigeon.ports import WebhookRequest, WebhookResponse

__all__ = ["MAX_RESPONSE_BYTES", "USER_AGENT", "Http11WebhookSender"]

USER_AGENT = "TwilioProxy/1.1"
MAX_RESPONSE_BYTES = 64 * 1024
#: How long an idle keep-alive connection is kept for reuse.
KEEPALIVE_EXPIRY = 5.0
#: Characters left as they are in a request target; everything else is percent-encoded.
_TARGET_SAFE = "/?&=%:@!$'()*+,;~-._[]"


class _Dropped(Exception):
    """The connection closed or the answer could not be parsed."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered  # some of the answer had arrived


@dataclass(frozen=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    host_header: str
    path: str  # request target: path and query
    authorization: str | None


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(11200, f"the URL cannot be requested ({exc})", retryable=False) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookError(11200, f"the URL cannot be requested (scheme {scheme!r})", retryable=False)
    host = parts.hostname
    if not host:
        raise WebhookError(11200, "the URL cannot be requested (no host)", retryable=False)
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise WebhookError(11200, f"the URL cannot be requested ({exc})", retryable=False) from exc
    default = 443 if scheme == "https" else 80
    port = port or default
    shown = f"[{host}]" if ":" in host else host
    path = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_TARGET_SAFE)
    authorization = None
    if parts.username is not None or parts.password is not None:
        userinfo = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
    return _Target(
        origin=(scheme, host, port),
        host_header=shown if port == default else f"{shown}:{port}",
        path=path,
        authorization=authorization,
    )


def _header_line(name: str, value: str) -> str:
    if any(c in name or c in value for c in "\r\n\0"):
        raise WebhookError(11200, f"header {name!r} holds a line break", retryable=False)
    return f"{name}: {value}\r\n"


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one exchange at a time."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.uses = 0
        self._parser: Any = None
        self._answer: asyncio.Future[tuple[int, dict[str, str], bytes]] | None = None
        self._headers: dict[str, str] = {}
        self._body = bytearray()
        self._status = 0
        self._got_bytes = False
        self._until_close = False
        self._headers_done = False

    # -- asyncio ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._until_close and self._headers_done:  # the body ran to the end of the connection
            answer.set_result((self._status, self._headers, bytes(self._body)))
            return
        answer.set_exception(_Dropped(f"the receiver closed the connection ({exc or 'EOF'})", answered=self._got_bytes))

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():
            self._close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the receiver switched protocols")
        except httptools.HttpParserError as exc:
            self._fail(f"the answer is not valid HTTP ({exc})")

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self._headers[key] = f"{self._headers[key]}, {text}" if key in self._headers else text

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        no_body = self._status in (204, 304) or self._status < 200
        framed = "content-length" in self._headers or "transfer-encoding" in self._headers
        self._until_close = not no_body and not framed

    def on_body(self, body: bytes) -> None:
        room = self.max_bytes - len(self._body)
        self._body += body[:room]
        if len(self._body) >= self.max_bytes:
            self._finish(keep=False)  # the rest is never read

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers, self._headers_done, self._status = {}, False, 0
            return
        self._finish(keep=bool(self._parser.should_keep_alive()))

    # -- the exchange -------------------------------------------------------------------------

    def _finish(self, *, keep: bool) -> None:
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result((self._status, self._headers, bytes(self._body)))
        if not keep:
            self._close()

    def _fail(self, message: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(_Dropped(message, answered=True))
        self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(self, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self._answer = loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body, self._status = {}, bytearray(), 0
        self._got_bytes = self._until_close = self._headers_done = False
        self.uses += 1
        self.transport.write(payload)
        try:
            return await self._answer
        except BaseException:
            self._close()  # cancelled (timeout) or failed: never reuse a half-used connection
            raise
        finally:
            self._answer = None


class Http11WebhookSender:
    """Sends webhook requests over pooled HTTP/1.1 keep-alive connections (one pool per origin)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        total_timeout: float = 15.0,
        max_connections: int = 100,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._total = total_timeout
        self._max_bytes = max_response_bytes
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._open = 0
        self._max = max_connections
        self._freed: asyncio.Event | None = None
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn._close()
        self._idle.clear()

    async def send(self, request: WebhookRequest) -> WebhookResponse:
        """Perform `request` within min(request.timeout, total_timeout) seconds."""
        method = request.method.upper()
        target = _target(request_url(request.url, method, request.params))
        payload = self._payload(method, target, request)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(min(request.timeout, self._total)):
                status, headers, body = await self._exchange(target, payload)
        except TimeoutError as exc:
            raise WebhookError(11205, "no complete answer within the time limit", retryable=True) from exc
        return WebhookResponse(
            status=status, headers=headers, body=body, elapsed_ms=(time.perf_counter() - started) * 1000
        )

    @staticmethod
    def _payload(method: str, target: _Target, request: WebhookRequest) -> bytes:
        headers = dict(request.headers)
        content = b""
        if request.body is not None:
            content = request.body
            headers.setdefault("Content-Type", request.content_type or "application/octet-stream")
        elif method != "GET":
            content = urlencode(list(request.params)).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if target.authorization is not None:
            headers.setdefault("Authorization", target.authorization)
        lines = [
            f"{method} {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n",
            f"User-Agent: {USER_AGENT}\r\nAccept: */*\r\nAccept-Encoding: identity\r\n",
        ]
        lines += [_header_line(k, v) for k, v in headers.items()]
        if method != "GET" or content:
            lines.append(f"Content-Length: {len(content)}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + content

    async def _exchange(self, target: _Target, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        conn, reused = await self._acquire(target)
        try:
            return await self._on(target, conn, payload)
        except _Dropped as exc:
            if not (reused and not exc.answered):
                raise WebhookError(11206, f"the receiver broke the HTTP exchange ({exc})", retryable=True) from exc
        # The receiver closed an idle connection as we reused it: once more, on a new one.
        conn, _ = await self._acquire(target, fresh=True)
        try:
            return await self._on(target, conn, payload)
        except _Dropped as exc:
            raise WebhookError(11206, f"the receiver broke the HTTP exchange ({exc})", retryable=True) from exc

    async def _on(self, target: _Target, conn: _Connection, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        """One exchange on `conn`, which goes back to the pool (or is closed) whatever happens."""
        try:
            return await conn.exchange(payload)
        finally:
            self._release(target, conn)

    async def _acquire(self, target: _Target, *, fresh: bool = False) -> tuple[_Connection, bool]:
        idle = self._idle.get(target.origin)
        now = time.monotonic()
        while idle and not fresh:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_EXPIRY:
                return conn, True
            conn._close()
            self._open -= 1
        while self._open >= self._max:  # wait for a connection to come back (the timeout bounds it)
            if self._freed is None:
                self._freed = asyncio.Event()
            self._freed.clear()
            if not self._evict_one():
                await self._freed.wait()
        self._open += 1
        try:
            return await self._connect(target), False
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    def _evict_one(self) -> bool:
        """Close one idle connection to another origin to make room; False if there is none."""
        for idle in self._idle.values():
            if idle:
                idle.popleft()._close()
                self._open -= 1
                return True
        return False

    async def _connect(self, target: _Target) -> _Connection:
        scheme, host, port = target.origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            context = self._ssl or ssl.create_default_context()
            self._ssl = context
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self._max_bytes),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except TimeoutError as exc:
            raise WebhookError(11205, f"could not connect within {self._connect_timeout:g} s", retryable=True) from exc
        except (OSError, ssl.SSLError) as exc:
            raise WebhookError(11205, f"could not connect ({type(exc).__name__}: {exc})", retryable=True) from exc
        return conn

    def _release(self, target: _Target, conn: _Connection) -> None:
        if conn.closed or self._closed:
            conn._close()
            self._open -= 1
        else:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(target.origin, deque()).append(conn)
        self._wake()

    def _wake(self) -> None:
        if self._freed is not None:
            self._freed.set()
