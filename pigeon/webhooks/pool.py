"""The keep-alive pool of `pigeon.webhooks.http1` connections, one per event loop.

Connections are kept per (scheme, host, port), at most `max_connections` open in all, idle
ones included: a request takes an idle connection to its origin, else opens one if there is
room, else closes another origin's longest idle connection to make room, else waits for one
to come back or close. Idle connections close after `idle_timeout` (15 s). A connection goes
back to the pool only after a complete answer that allows keep-alive (not HTTP/1.0 nor
`Connection: close`); after a truncated, cancelled, timed-out or failed exchange it is closed,
since the rest of that answer may still arrive on it. A request whose pooled connection closes
before any byte of an answer is sent once more on a new connection (`Pool.request` says why).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from collections import deque
from collections.abc import Mapping, Sequence

from pigeon.webhooks.http1 import (
    AddressDenied,
    Answer,
    ConnectError,
    Connection,
    ConnectionDropped,
    HTTPError,
    InvalidRequest,
    Origin,
    connect_error,
    parse_url,
)

__all__ = ["Network", "Pool", "default_tls_context", "denied_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def denied_address(address: str, denied: Sequence[Network]) -> bool:
    """Whether `address` (an IP address as getaddrinfo gives it) is in one of `denied`; an
    IPv4 address written as IPv6 (::ffff:169.254.169.254) counts as the IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in denied)


#: Framing is ours: a request's own Content-Length or Transfer-Encoding would contradict it.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


@functools.cache
def default_tls_context() -> ssl.SSLContext:
    """The system's trusted CAs, certificate and host name checks on; made once, on first use
    (loading the CA store costs milliseconds)."""
    return ssl.create_default_context()


class Pool:
    """The keep-alive connections of one event loop, and the requests made on them."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_connections: int,
        connect_timeout: float,
        max_body: int,
        default_headers: Mapping[str, str],
        idle_timeout: float = 15.0,
        tls: ssl.SSLContext | None = None,
        denied: Sequence[Network] = (),
    ) -> None:
        """`denied`: networks no connection may be opened to (`_connect` says how)."""
        self.loop = loop
        self._denied = tuple(denied)
        self.max_body = max_body
        self._max = max_connections
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._tls = tls
        # (lower-cased name, header line): a request's own header of that name replaces it.
        self._defaults = [(name.lower(), f"{name}: {value}\r\n") for name, value in default_headers.items()]
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}  # oldest first
        self._all: set[Connection] = set()
        self._open = 0  # connections open or being opened
        self._turns: deque[asyncio.Future[None]] = deque()  # requests waiting for room
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None, *, deadline: float
    ) -> Answer:
        """The answer to one request, or TimeoutError when none is complete by `deadline` (loop time)."""
        origin = parse_url(url)
        data = self._head(method, origin, headers, body)
        conn = self._take_idle(origin.key)  # the common case: no coroutine, no timeout scope
        reused = conn is not None
        try:
            if conn is None:
                async with asyncio.timeout_at(deadline):
                    conn, reused = await self._acquire(origin.key)
            return await self._exchange(conn, data, deadline)
        except ConnectionDropped as exc:
            if not reused or exc.answered:
                raise
        # A connection from the pool closed before any byte of an answer: the receiver dropped
        # it while it was idle (its keep-alive timeout, a restart) just as we sent. Once more
        # on a new connection: the request was most likely never read, and if it was, the
        # receiver sees it twice with the same I-Twilio-Idempotency-Token, which is what the
        # token is for.
        async with asyncio.timeout_at(deadline):
            conn, _ = await self._acquire(origin.key, fresh=True)
        return await self._exchange(conn, data, deadline)

    def _head(self, method: str, origin: Origin, headers: Mapping[str, str], body: bytes | None) -> bytes:
        given = {name.lower() for name in headers}
        lines = [f"{method} {origin.target} HTTP/1.1\r\n"]
        if "host" not in given:
            lines.append(f"Host: {origin.host_header}\r\n")
        lines += [line for name, line in self._defaults if name not in given]
        if origin.authorization is not None and "authorization" not in given:
            lines.append(f"Authorization: {origin.authorization}\r\n")
        for name, value in headers.items():
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise InvalidRequest(f"a line break in the {name!r} header")
            if name.lower() not in _FRAMING:
                lines.append(f"{name}: {value}\r\n")
        if body is None:
            lines.append("\r\n")
            return "".join(lines).encode()
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(lines).encode() + body

    async def _exchange(self, conn: Connection, data: bytes, deadline: float) -> Answer:
        reusable = False
        try:
            answer = await conn.exchange(data, deadline)
            reusable = conn.reusable
            return answer
        finally:
            # Cancelled, timed out or failed: closed, since the rest of that answer may still come.
            self._release(conn, reusable)

    def _take_idle(self, key: tuple[str, str, int]) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()  # the most recently used: the least likely to have been closed
            if conn.reusable:
                return conn
            self._discard(conn)
        return None

    async def _acquire(self, key: tuple[str, str, int], *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection to `key`, and whether it had served before: an idle one unless `fresh`,
        else a new one when there is room, else the first of these once another is released."""
        while True:
            if self._closed:
                raise HTTPError("the sender was closed")
            conn = None if fresh else self._take_idle(key)
            if conn is not None:
                return conn, True
            if self._open < self._max or self._evict_idle():
                return await self._connect(key), False
            await self._wait_turn()

    async def _connect(self, key: tuple[str, str, int]) -> Connection:
        scheme, host, port = key
        conn = Connection(self.loop, key, max_body=self.max_body, on_lost=self.lost)
        self._open += 1
        self._all.add(conn)
        tls = (self._tls or default_tls_context()) if scheme == "https" else None
        try:
            async with asyncio.timeout(self._connect_timeout):
                for address in await self._addresses(host, port):
                    try:
                        await self.loop.create_connection(
                            lambda: conn, address, port, ssl=tls, server_hostname=host if tls is not None else None
                        )
                        break
                    except ssl.SSLError:
                        raise  # the server answered: another of its addresses would not do better
                    except OSError as exc:
                        last: OSError = exc
                else:
                    raise last
        except TimeoutError as exc:
            self._forget(conn)
            raise ConnectError(f"no connection to {host}:{port} within {self._connect_timeout:g} s") from exc
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS and certificate (SSLError)
            self._forget(conn)
            raise connect_error(exc, f"{host}:{port}", tls=tls is not None) from exc
        except BaseException:
            self._forget(conn)
            raise
        if self._closed:
            self._discard(conn)
            raise HTTPError("the sender was closed")
        return conn

    async def _addresses(self, host: str, port: int) -> list[str]:
        """Where to connect for `host`: the name itself when no network is denied (the loop
        resolves it); else the addresses it resolves to outside the denied networks, in the
        resolver's order, which the connection then uses as they are, so that a second
        resolution (a name whose answer changes, DNS rebinding) cannot lead elsewhere."""
        if not self._denied:
            return [host]
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in found if not denied_address(a, self._denied)]
        if not allowed:
            raise AddressDenied(
                f"{host}:{port} resolves to {', '.join(found)}, in networks webhooks may not reach"
                " (PIGEON_WEBHOOK_DENIED_NETWORKS)"
            )
        return allowed

    def _evict_idle(self) -> bool:
        """Close the pool's longest idle connection (any origin), to make room for a new one."""
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is None:
            return False
        self._idle[oldest.key].pop(0)
        self._discard(oldest)
        return True

    async def _wait_turn(self) -> None:
        turn = self.loop.create_future()
        self._turns.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._wake()  # given the turn, then cancelled: pass it on
            raise

    def _wake(self) -> None:
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def _release(self, conn: Connection, reusable: bool) -> None:
        if not reusable or self._closed:
            self._discard(conn)
            return
        conn.idle_since = self.loop.time()
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        idle.append(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._idle_timeout, self._sweep)
        if self._turns:
            self._wake()

    def _discard(self, conn: Connection) -> None:
        conn.abort()
        self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if conn.counted:
            conn.counted = False
            self._open -= 1
            self._all.discard(conn)
            if self._turns:
                self._wake()

    def lost(self, conn: Connection) -> None:
        """`conn` closed (either side): out of the pool, and room for another."""
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)
        self._forget(conn)

    def _sweep(self) -> None:
        self._sweeper = None
        expired = self.loop.time() - self._idle_timeout
        due: float | None = None
        for key in list(self._idle):
            idle = self._idle[key]
            while idle and idle[0].idle_since <= expired:
                self._discard(idle.pop(0))
            if idle:
                due = idle[0].idle_since if due is None else min(due, idle[0].idle_since)
            else:
                del self._idle[key]
        if due is not None:
            self._sweeper = self.loop.call_at(due + self._idle_timeout, self._sweep)

    def close(self) -> None:
        """Close every connection, busy ones too; requests waiting for room fail."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self._all):
            self._discard(conn)
        self._idle.clear()
        while self._turns:
            turn = self._turns.popleft()
            if not turn.done():
                turn.set_exception(HTTPError("the sender was closed"))
