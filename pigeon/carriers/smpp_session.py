"""One SMPP session: a TCP connection, one bind, its requests in flight, enquire_link.

We run the session ourselves instead of aiosmpplib's ``ESME`` loop (its PDU classes still
build everything we send, see `smpp_pdu`), because the connector must answer one question
the ESME loop cannot: *was this submit_sm written to the SMSC or not?* The ESME silently
drops a dequeued message when the connection breaks and offers no callback for it, and it
drops the whole connection on any command_status outside its enum. Here:

* a request that was never written fails with `SessionClosed(sent=False)`: nothing reached
  the SMSC, retrying cannot duplicate;
* a request written but unanswered when the connection ends fails with
  `SessionClosed(sent=True)`: the SMSC may have it, the caller must say so;
* every answer is matched by sequence number, whatever its command_status;
* an answer to a submit_sm the caller stopped waiting for (`forget`) is handed to
  ``on_late`` with what the caller said the submit was for (`pigeon.carriers.smpp_late`).

A deliver_sm or a data_sm (which SMSCs also send receipts and mobile-originated messages in)
is handed to ``on_deliver`` and answered by the carrier (via `respond`) only after the event
is recorded. Any other request from the SMSC gets generic_nack ESME_RINVCMDID. Nothing here
logs credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.smpp_late import ForgottenSubmit, ForgottenSubmits
from pigeon.carriers.smpp_tls import TlsSettings, client_context

__all__ = ["BindRefused", "Response", "SessionClosed", "SmppSession"]

log = logging.getLogger(__name__)

_BIND_COMMANDS = {
    "transceiver": pdu.BIND_TRANSCEIVER,
    "transmitter": pdu.BIND_TRANSMITTER,
    "receiver": pdu.BIND_RECEIVER,
}


class BindRefused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class SessionClosed(Exception):
    def __init__(self, reason: str, *, sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sent = sent


@dataclass(frozen=True)
class Response:
    command_id: int
    status: int
    body: bytes


DeliverHandler = Callable[["SmppSession", pdu.Header, bytes], None]
LateHandler = Callable[["SmppSession", ForgottenSubmit, pdu.Header, bytes], None]


@dataclass(frozen=True)
class SessionSettings:
    host: str
    port: int
    role: str  # "transceiver" | "transmitter" | "receiver"
    system_id: str
    password: str
    system_type: str
    address_range: str
    connect_timeout: float
    response_timeout: float
    enquire_link_interval: float
    tls: TlsSettings | None = None
    #: Seconds `close` waits for the unbind's answer, and then for the connection to close.
    unbind_wait: float = 2.0

    def __repr__(self) -> str:  # the password never reaches a log line through a repr
        tls = " TLS" if self.tls is not None else ""
        return f"SessionSettings({self.role} {self.system_id}@{self.host}:{self.port}{tls})"


class SmppSession:
    def __init__(
        self, settings: SessionSettings, on_deliver: DeliverHandler, *, label: str, on_late: LateHandler | None = None
    ) -> None:
        self.settings = settings
        self._on_deliver = on_deliver
        self._on_late = on_late
        self._forgotten = ForgottenSubmits()
        self.label = label
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._sequence = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Response]] = {}
        self._closed = asyncio.Event()
        self.close_reason = ""
        self.bound = False
        self._last_received = time.monotonic()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # --- life cycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Connect (with TLS when configured) and bind; raises `BindRefused`, OSError
        (ConnectionError, ssl.SSLError), TimeoutError or `TlsSetupError`."""
        s = self.settings
        if s.tls is None:
            connecting = asyncio.open_connection(s.host, s.port)
        else:
            connecting = asyncio.open_connection(
                s.host,
                s.port,
                ssl=client_context(s.tls),  # read afresh: a renewed certificate counts from now on
                server_hostname=s.tls.server_name or s.host,
                ssl_handshake_timeout=s.connect_timeout,
            )
        try:
            reader, writer = await asyncio.wait_for(connecting, s.connect_timeout)
        except TimeoutError:
            if s.tls is None:
                raise
            # A plain SMPP port reads a TLS ClientHello as the start of a huge PDU and waits.
            raise TimeoutError(
                f"no TLS session within {s.connect_timeout:g} s (a plain SMPP port never answers a TLS handshake)"
            ) from None
        self._reader, self._writer = reader, writer
        command = _BIND_COMMANDS[s.role]
        request = pdu.bind_pdu(
            command,
            self._next_sequence(),
            system_id=s.system_id,
            password=s.password,
            system_type=s.system_type,
            address_range=s.address_range,
        )
        try:
            writer.write(request)
            header, _ = await asyncio.wait_for(self._read_pdu(), s.connect_timeout)
        except (asyncio.IncompleteReadError, pdu.PduError, ConnectionError) as exc:
            # An SMSC that hangs up on a bind (or answers garbage) is a connection problem.
            await self._abort()
            if s.tls is not None and not isinstance(exc, pdu.PduError):
                # TLS 1.3 ends the handshake before the server has checked our certificate:
                # a refusal comes as an alert or a reset while we wait for the bind's answer.
                raise ConnectionError(
                    f"the SMSC ended the TLS session before answering the bind ({exc or type(exc).__name__}); "
                    "an SMSC that wants a client certificate, or refuses ours, does so"
                ) from exc
            raise ConnectionError(f"no bind response: {exc}") from exc
        except BaseException:
            await self._abort()
            raise
        if header.command_id != (command | pdu.RESPONSE_BIT) or header.status not in (0, 0x05):  # 0x05 ESME_RALYBND
            await self._abort()
            raise BindRefused(header.status, f"bind_{s.role} refused with command_status 0x{header.status:08X}")
        self.bound = True

    async def run(self) -> None:
        """Serve the session until it ends; returns after `close` or when the peer goes away."""
        keeper = asyncio.create_task(self._keep_alive(), name=f"{self.label} enquire_link")
        try:
            while True:
                header, body = await self._read_pdu()
                self._last_received = time.monotonic()
                self._dispatch(header, body)
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
            self._mark_closed(self.close_reason or f"connection lost: {exc.__class__.__name__}")
        except pdu.PduError as exc:
            # A broken length field leaves no way to find the next PDU: start over.
            self._mark_closed(f"garbled PDU from the SMSC: {exc}")
        except _PeerUnbound:
            self._mark_closed("the SMSC unbound")
        except asyncio.CancelledError:
            self._mark_closed(self.close_reason or "stopped")
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._abort()

    async def close(self, reason: str = "closed by Pigeon") -> None:
        """Unbind politely, then drop the connection: each waited for ``unbind_wait`` at most."""
        if self.closed:
            return
        self.close_reason = reason
        if self.bound and self._writer is not None and not self._writer.is_closing():
            try:
                _, answer = self.request(lambda seq: pdu.unbind_pdu(seq))
                await asyncio.wait_for(answer, self.settings.unbind_wait)
            except (SessionClosed, TimeoutError):
                pass
        self._mark_closed(reason)
        await self._abort()

    # --- requests and responses ---------------------------------------------------------

    def request(self, build: Callable[[int], bytes]) -> tuple[int, asyncio.Future[Response]]:
        """Write the request ``build(sequence)``; the future resolves with its response.

        Raises `SessionClosed(sent=False)` when nothing could be written.
        """
        if self.closed or self._writer is None or self._writer.is_closing():
            raise SessionClosed(self.close_reason or "not connected", sent=False)
        sequence = self._next_sequence()
        data = build(sequence)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[sequence] = future
        self._writer.write(data)
        return sequence, future

    def forget(self, sequence: int, submit: ForgottenSubmit | None = None) -> None:
        """Stop waiting for ``sequence`` (timed out). A late answer goes to ``on_late`` with
        ``submit`` (which message and part it was), for a while; otherwise it is only logged."""
        future = self._pending.pop(sequence, None)
        if future is not None and not future.done():
            future.cancel()
        if submit is not None and self._on_late is not None:
            self._forgotten.remember(sequence, submit)

    def respond(self, data: bytes) -> bool:
        """Write a response PDU; False when the session is gone (the SMSC will resend)."""
        if self.closed or self._writer is None or self._writer.is_closing():
            return False
        self._writer.write(data)
        return True

    # --- internals ----------------------------------------------------------------------

    def _next_sequence(self) -> int:
        sequence = next(self._sequence)
        if sequence > 0x7FFFFFFF:  # SMPP 3.4 §5.1.4: 0x00000001..0x7FFFFFFF, then wrap
            self._sequence = itertools.count(2)
            sequence = 1
        return sequence

    async def _read_pdu(self) -> tuple[pdu.Header, bytes]:
        assert self._reader is not None
        header = pdu.parse_header(await self._reader.readexactly(pdu.HEADER))
        body = await self._reader.readexactly(header.length - pdu.HEADER)
        return header, body

    def _dispatch(self, header: pdu.Header, body: bytes) -> None:
        if header.is_response:
            future = self._pending.pop(header.sequence, None)
            forgotten = self._forgotten.take(header.sequence) if future is None else None
            if forgotten is not None and self._on_late is not None:
                self._on_late(self, forgotten, header, body)
            elif future is None:
                log.warning(
                    "answer to no request in flight (late, or the SMSC's mistake)",
                    extra={
                        "session": self.label,
                        "command_id": f"0x{header.command_id:08X}",
                        "command_status": f"0x{header.status:08X}",
                        "sequence": header.sequence,
                        # A late submit_sm_resp carries the message_id, which is what matters;
                        # the body whole could be anything an SMSC got wrong, a text included.
                        "message_id": pdu.parse_message_id(body),
                        "octets": len(body),
                    },
                )
            elif not future.done():
                future.set_result(Response(header.command_id, header.status, body))
            return
        if header.command_id == pdu.ENQUIRE_LINK:
            self.respond(pdu.enquire_link_resp_pdu(header.sequence))
        elif header.command_id in (pdu.DELIVER_SM, pdu.DATA_SM):
            self._on_deliver(self, header, body)
        elif header.command_id == pdu.UNBIND:
            self.respond(pdu.unbind_resp_pdu(header.sequence))
            raise _PeerUnbound
        else:
            self.respond(pdu.generic_nack_pdu(header.sequence, pdu.ESME_RINVCMDID))

    async def _keep_alive(self) -> None:
        """enquire_link after ``interval`` seconds without traffic; no answer ends the session."""
        interval = self.settings.enquire_link_interval
        while True:
            idle = time.monotonic() - self._last_received
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                _, answer = self.request(lambda seq: pdu.enquire_link_pdu(seq))
                await asyncio.wait_for(answer, self.settings.response_timeout)
            except SessionClosed:
                return
            except TimeoutError:
                self._mark_closed("enquire_link unanswered")
                await self._abort()
                return
            self._last_received = time.monotonic()

    def _mark_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = self.close_reason or reason
        self.bound = False
        self._closed.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionClosed(self.close_reason, sent=True))
                future.exception()  # retrieved here: an abandoned request must not warn at exit
        self._pending.clear()

    async def _abort(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self.settings.unbind_wait)
        except TimeoutError:
            # Written data not taken by an SMSC that reads no more, or a TLS close_notify never
            # answered, would keep the connection, and the bind, open as long as the SMSC likes.
            writer.transport.abort()
        except (OSError, ConnectionError):
            pass


class _PeerUnbound(Exception):
    """The SMSC sent unbind: answered, the session ends and the carrier reconnects."""
