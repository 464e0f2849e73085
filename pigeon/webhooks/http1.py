"""HTTP/1.1 client connections on asyncio protocols and httptools' response parser.

Just what webhooks need: one request, one answer, one exchange at a time per connection.
Requests carry a Content-Length (never chunked); answers may be length-framed, chunked or
end at EOF, and a gzip or deflate body is inflated (within the body cap) although we never
ask for one. An answer not complete by the request's deadline fails with the builtin
`TimeoutError`; every other failure is one of:

    HTTPError            anything else (the pool was closed under a waiting request)
    ├── InvalidRequest   cannot be sent as given: not an http(s) URL, a line break in a header
    ├── ConnectError     no connection: refused, unreachable, connect timeout
    │   ├── NameNotResolved       the host name did not resolve (DNS)
    │   └── TLSFailed             the TLS handshake failed: reset, not TLS, nothing in common
    │       └── CertificateRejected   the server's certificate did not verify (`problem` says why)
    └── ProtocolError    the answer cannot be read: not HTTP, a broken body, a head without end
        └── ConnectionDropped   the connection closed before the answer was complete

`pigeon.webhooks.pool` keeps these connections (`connect_error` sorts the failures of opening
one); `pigeon.webhooks.sender` turns the errors into `WebhookError`s.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import socket
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, cast
from urllib.parse import unquote, urlsplit

import httptools

__all__ = [
    "Answer",
    "CertificateRejected",
    "ConnectError",
    "Connection",
    "ConnectionDropped",
    "HTTPError",
    "InvalidRequest",
    "NameNotResolved",
    "Origin",
    "ProtocolError",
    "TLSFailed",
    "connect_error",
    "parse_url",
]

#: An answer whose status line and headers run past this is not a webhook's; give up on it.
MAX_HEAD_BYTES = 64 * 1024
#: Bytes that cannot appear in a request target or Host header: spaces and controls.
_UNSAFE = frozenset(map(chr, [*range(0x21), 0x7F]))


class HTTPError(Exception):
    """The HTTP exchange failed."""


class InvalidRequest(HTTPError):
    """The request cannot be sent as given; sending it again cannot help."""


class ConnectError(HTTPError):
    """No connection could be opened."""


class NameNotResolved(ConnectError):
    """The host name did not resolve: no such name, or no answer from DNS."""


class AddressDenied(ConnectError):
    """Every address the host name resolved to is in a network webhooks may not reach."""


class TLSFailed(ConnectError):
    """The TLS handshake failed: the server reset the connection during it, did not speak TLS,
    or had no protocol version or cipher in common with us."""


CertificateProblem = Literal["expired", "name", "untrusted"]


class CertificateRejected(TLSFailed):
    """The server's certificate did not verify."""

    def __init__(self, message: str, *, problem: CertificateProblem) -> None:
        super().__init__(message)
        #: expired (or not yet valid), name (issued for another host name or address), or
        #: untrusted (self-signed, or no chain to a trusted authority, or anything else).
        self.problem: CertificateProblem = problem


#: OpenSSL's verification results (X509_V_ERR_*) that name a certificate's problem; every other
#: result means the chain could not be trusted.
_CERTIFICATE_PROBLEMS: dict[int, CertificateProblem] = {
    9: "expired",  # CERT_NOT_YET_VALID: its validity dates do not cover now either way
    10: "expired",  # CERT_HAS_EXPIRED
    62: "name",  # HOSTNAME_MISMATCH
    64: "name",  # IP_ADDRESS_MISMATCH
}


def connect_error(exc: OSError, where: str, *, tls: bool) -> ConnectError:
    """The ConnectError for an OSError raised while opening a connection to `where` (host:port),
    over TLS or not."""
    text = f"{where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, socket.gaierror):
        return NameNotResolved(text)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateRejected(text, problem=_CERTIFICATE_PROBLEMS.get(exc.verify_code, "untrusted"))
    if isinstance(exc, ssl.SSLError) or (tls and isinstance(exc, ConnectionResetError)):
        # Once the TCP connection is up, a reset can only come during the handshake: the
        # connection is handed over only after it.
        return TLSFailed(text)
    return ConnectError(text)


class ProtocolError(HTTPError):
    """The answer could not be read."""


class ConnectionDropped(ProtocolError):
    """The connection closed before the answer was complete."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        #: Whether any byte of the answer had come; if none had, the request was maybe never read.
        self.answered = answered


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lower-cased; the last of repeated headers wins
    body: bytes


class Origin(NamedTuple):
    key: tuple[str, str, int]  # scheme, host, port: what the pool keys connections by
    host_header: str
    target: str  # path and query, exactly as in the URL
    authorization: str | None  # Basic credentials from the URL's user:password@, if any


@functools.lru_cache(maxsize=512)
def parse_url(url: str) -> Origin:
    """Where `url` goes and what its request line says. Cached: a worker sends to few URLs,
    and a status callback's URL is the same for every message of an application."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise InvalidRequest(f"not an http(s) URL: {url!r}")
        host = parts.hostname
        if not host:
            raise InvalidRequest(f"no host in {url!r}")
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        default = 443 if scheme == "https" else 80
        port = parts.port or default
    except ValueError as exc:  # a bad port, a broken [IPv6] literal, a name IDNA refuses
        raise InvalidRequest(f"{url!r}: {exc}") from exc
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == default else f"{bracketed}:{port}"
    if not _UNSAFE.isdisjoint(target) or not _UNSAFE.isdisjoint(host_header):
        raise InvalidRequest(f"spaces or control characters in {url!r}")
    authorization = None
    if parts.username is not None:
        # Twilio sends a URL's user:password@ as HTTP Basic credentials; so do we.
        secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(secret).decode("ascii")
    return Origin((scheme, host, port), host_header, target, authorization)


class Connection(asyncio.Protocol):
    """One connection: one exchange at a time, its answer parsed as the bytes arrive."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        key: tuple[str, str, int],
        *,
        max_body: int,
        on_lost: Callable[[Connection], None],
    ) -> None:
        self.key = key
        self.idle_since = 0.0
        self.counted = True  # counts towards the pool's limit until forgotten
        self._loop = loop
        self._max_body = max_body
        self._on_lost = on_lost
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._lost = False
        self._unusable = False  # answered beyond its request, or cut short: never reused
        self._reset()

    def _reset(self) -> None:
        self._raw: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] | None = None  # set once a final answer's head is read
        self._body = bytearray()
        self._inflate: zlib._Decompress | None = None
        self._coding: str | None = None
        self._until_eof = False
        self._interim = False
        self._answered = False
        self._head_bytes = 0
        self._complete = False
        self._keep_alive = False

    @property
    def reusable(self) -> bool:
        """The last answer was complete, allowed keep-alive, and the connection is still open."""
        transport = self._transport
        return (
            self._complete
            and self._keep_alive
            and not self._unusable
            and not self._lost
            and transport is not None
            and not transport.is_closing()
        )

    def exchange(self, data: bytes, deadline: float) -> asyncio.Future[Answer]:
        """Send one request; the future is the answer, or TimeoutError at `deadline` (loop time).

        A timer of our own, not `asyncio.timeout`: this is every request's path, and that
        context manager costs about 4 µs of CPU (measured, on asyncio's loop and uvloop alike),
        a bare timer handle 2."""
        transport = self._transport
        if transport is None or self._lost or transport.is_closing():
            raise ConnectionDropped("the connection closed before the request went out", answered=False)
        self._reset()
        self._waiter = waiter = self._loop.create_future()
        self._timer = self._loop.call_at(deadline, self._expire)
        transport.write(data)
        return waiter

    def abort(self) -> None:
        self._unusable = True
        self._stop_timer()
        if self._transport is not None:
            self._transport.abort()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        self._fail(TimeoutError("no complete answer in time"))

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: what follows cannot be trusted
            self.abort()
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unusable = True  # a 101 answer (reported as is); the bytes after it are not HTTP
        except httptools.HttpParserError as exc:
            cause = exc.__context__  # what a callback raised, if one did
            self._fail(
                cause if isinstance(cause, ProtocolError) else ProtocolError(f"an answer that is not HTTP ({exc})")
            )
            return
        if self._headers is None and self._waiter is not None:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(ProtocolError(f"no end of the answer's head in its first {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool | None:
        return False  # close our side too; connection_lost decides what the EOF meant

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._waiter is not None:
            if exc is None and self._until_eof and self._headers is not None:
                self._finish()  # the answer had no length: the end of the connection ends its body
            else:
                how = f" ({type(exc).__name__}: {exc})" if exc else ""
                part = "the answer was complete" if self._answered else "any answer"
                self._fail(ConnectionDropped(f"the connection closed before {part}{how}", answered=self._answered))
        self._on_lost(self)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            self._unusable = True  # a second answer to one request
        self._raw = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 100 Continue, 103 Early Hints: the answer follows
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self._raw}
        self._headers = headers
        framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "").lower()
        self._until_eof = not framed and status not in (204, 304)
        coding = headers.get("content-encoding", "").strip().lower()
        self._coding = coding if coding in ("gzip", "x-gzip", "deflate") else None

    def on_body(self, chunk: bytes) -> None:
        if self._waiter is None:
            return  # past the cap: the connection is closing
        room = self._max_body - len(self._body)
        if self._coding is not None:
            chunk = self._decoded(chunk, room)
        if len(chunk) > room:
            # Over the cap: keep what fits and stop reading; the rest of the answer is still
            # on the connection, so it can never be reused.
            self._body += chunk[:room]
            self._finish()
            self.abort()
        else:
            self._body += chunk

    def _decoded(self, chunk: bytes, room: int) -> bytes:
        if self._inflate is None:
            if self._coding == "deflate":
                # "deflate" should be zlib-wrapped, but some servers send a raw stream.
                wbits = zlib.MAX_WBITS if chunk[:1] and chunk[0] & 0x0F == 8 else -zlib.MAX_WBITS
            else:
                wbits = 16 + zlib.MAX_WBITS
            self._inflate = zlib.decompressobj(wbits)
        try:
            # At most one byte past the cap (0 would mean no limit): a small gzip bomb must
            # not inflate into memory.
            return self._inflate.decompress(chunk, room + 1)
        except zlib.error as exc:
            raise ProtocolError(f"a {self._coding} body that does not inflate ({exc})") from exc

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
        self._finish()

    # -- outcomes ------------------------------------------------------------------------------

    def _finish(self) -> None:
        self._stop_timer()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            status = self._parser.get_status_code()
            waiter.set_result(Answer(status, self._headers or {}, bytes(self._body)))

    def _fail(self, exc: HTTPError | TimeoutError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()
