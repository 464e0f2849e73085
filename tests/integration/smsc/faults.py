"""A catalogue of misbehaving SMSCs: one named class per fault (STYLE "absorb 13").

Each class is a tiny asyncio SMPP server that behaves like a normal SMSC except for one
thing, named by the class and described (with what Pigeon must do about it) in its
docstring. The PDUs are built and read here with `struct`, independently of Pigeon's
connector. The doctor's tests can reuse these to produce the situations they explain.

    async with NoSubmitResp() as smsc:
        carrier = SmppCarrier(carrier_config(smsc.port), ...)
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER = 0x09, 0x02, 0x01
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
DATA_SM = 0x0103
RESP = 0x80000000
GENERIC_NACK = 0x80000000
ESME_RBINDFAIL, ESME_RTHROTTLED = 0x0D, 0x58


def pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    return struct.pack("!IIII", 16 + len(body), command_id, status, sequence) + body


def cstr(text: str) -> bytes:
    return text.encode("latin-1") + b"\x00"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def deliver_sm_body(
    short_message: bytes,
    *,
    esm_class: int = 0x04,
    data_coding: int = 0,
    tlvs: bytes = b"",
    sm_length: int | None = None,
    source: tuple[int, str] = (1, "447700900123"),  # (TON, address); NPI is 1 (E.164)
    destination: tuple[int, str] = (1, "14155550100"),
) -> bytes:
    return (
        cstr("")
        + bytes([source[0], 1])
        + cstr(source[1])
        + bytes([destination[0], 1])
        + cstr(destination[1])
        + bytes([esm_class, 0, 0])
        + cstr("")
        + cstr("")
        + bytes([0, 0, data_coding, 0, len(short_message) if sm_length is None else sm_length])
        + short_message
        + tlvs
    )


def receipt_text(message_id: str, stat: str = "DELIVRD") -> bytes:
    err = "000" if stat == "DELIVRD" else "001"
    return (
        f"id:{message_id} sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:{stat} err:{err} text:"
    ).encode("ascii")


@dataclass
class Submit:
    sequence: int
    destination: str
    data_coding: int
    short_message: bytes
    message_id: str | None = None
    status: int | None = None


def parse_submit(body: bytes) -> Submit:
    fields: list[bytes] = []
    pos = 0

    def c_string() -> bytes:
        nonlocal pos
        end = body.index(b"\x00", pos)
        value, pos = body[pos:end], end + 1
        return value

    c_string()  # service_type
    pos += 2
    c_string()  # source_addr
    pos += 2
    fields.append(c_string())  # destination_addr
    pos += 3
    c_string()  # schedule_delivery_time
    c_string()  # validity_period
    pos += 2
    data_coding = body[pos]
    length = body[pos + 2]
    short_message = body[pos + 3 : pos + 3 + length]
    return Submit(0, fields[0].decode(), data_coding, short_message)


class Connection:
    def __init__(self, smsc: FakeSmsc, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.smsc = smsc
        self.reader = reader
        self.writer = writer
        self._sequence = itertools.count(1)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    def request(self, command_id: int, body: bytes = b"") -> int:
        """An SMSC-originated request (deliver_sm, unbind); its answer lands in smsc.answers."""
        sequence = next(self._sequence)
        self.send(pdu(command_id, 0, sequence, body))
        return sequence

    def close(self) -> None:
        self.writer.close()


@dataclass
class Answer:
    command_id: int
    status: int


class FakeSmsc:
    """A well-behaved SMSC; subclasses override one hook to misbehave."""

    expected: ClassVar[str] = "everything works"

    def __init__(self) -> None:
        self.port = 0
        self.bind_attempts = 0
        self.submits: list[Submit] = []
        self.answers: dict[int, Answer] = {}  # our request's sequence -> the ESME's answer
        self.connections: list[Connection] = []
        self._ids = itertools.count(4_200_000)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        for connection in self.connections:
            connection.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def wait(self, done: Callable[[], bool], timeout: float = 5.0) -> None:
        async def until() -> None:
            async with self._changed:
                while not done():
                    await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the connection's read loop (which must keep reading answers)."""
        task = asyncio.create_task(work)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def next_id(self) -> str:
        return str(next(self._ids))

    # --- the protocol ------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = Connection(self, reader, writer)
        self.connections.append(connection)
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = struct.unpack("!IIII", header)
                body = await reader.readexactly(length - 16)
                await self.dispatch(connection, command_id, status, sequence, body)
                await self._changed_now()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)
            await self._changed_now()

    async def dispatch(self, conn: Connection, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id in (BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER):
            self.bind_attempts += 1
            answer = self.bind_status()
            conn.send(pdu(command_id | RESP, answer, sequence, cstr("fake-smsc")))
            if answer:
                conn.close()
            else:
                await self.on_bound(conn)
        elif command_id == ENQUIRE_LINK:
            conn.send(pdu(ENQUIRE_LINK | RESP, 0, sequence))
        elif command_id == UNBIND:
            conn.send(pdu(UNBIND | RESP, 0, sequence))
            conn.close()
        elif command_id == SUBMIT_SM:
            submit = parse_submit(body)
            submit.sequence = sequence
            self.submits.append(submit)
            await self.on_submit(conn, submit)
        elif command_id & RESP:
            self.answers[sequence] = Answer(command_id, status)
        else:
            conn.send(pdu(GENERIC_NACK, 0x03, sequence))

    def accept(self, conn: Connection, submit: Submit, message_id: str | None = None) -> str:
        submit.message_id = message_id or self.next_id()
        submit.status = 0
        conn.send(pdu(SUBMIT_SM | RESP, 0, submit.sequence, cstr(submit.message_id)))
        return submit.message_id

    def refuse(self, conn: Connection, submit: Submit, status: int) -> None:
        submit.status = status
        conn.send(pdu(SUBMIT_SM | RESP, status, submit.sequence))

    def send_receipt(self, conn: Connection, text_id: str, *, tlv_id: str | None = None, stat: str = "DELIVRD") -> int:
        tlvs = tlv(0x001E, cstr(tlv_id)) if tlv_id is not None else b""
        return conn.request(DELIVER_SM, deliver_sm_body(receipt_text(text_id, stat), tlvs=tlvs))

    # --- hooks ---------------------------------------------------------------------------

    def bind_status(self) -> int:
        return 0

    async def on_bound(self, conn: Connection) -> None:
        pass

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        message_id = self.accept(conn, submit)
        self.send_receipt(conn, message_id, tlv_id=message_id)


# --- the catalogue -----------------------------------------------------------------------------


class BindRefused(FakeSmsc):
    """Every bind is answered ESME_RBINDFAIL and the connection closed.

    Expected: the carrier never counts as bound (status "bind_refused", last error naming
    ESME_RBINDFAIL), submits raise CarrierUnavailable (nothing sent), and it keeps trying
    to bind with growing backoff instead of giving up or hammering the SMSC.
    """

    def bind_status(self) -> int:
        return ESME_RBINDFAIL


class BindThenUnbind(FakeSmsc):
    """Every bind is accepted, then ended at once with an unbind: how some SMSCs say that the
    account's bind limit is reached or that the client's address is not allowed.

    Expected: the carrier keeps binding again, with a backoff that keeps growing as for a
    refused bind (a bind that does not last is no sign of recovery), not every reconnect_min
    seconds for ever: some SMSCs blacklist a client that hammers them so.
    """

    async def on_bound(self, conn: Connection) -> None:
        conn.request(UNBIND)


class NoSubmitResp(FakeSmsc):
    """submit_sm is swallowed: no submit_sm_resp, ever (enquire_link is still answered).

    Expected: submit raises CarrierRetryableError "smpp:response_timeout" after the response
    timeout — retryable but flagged as possibly accepted — and frees its window slot; the
    bind stays up.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        pass


class FirstSubmitUnanswered(FakeSmsc):
    """The first submit_sm is taken (an id issued, its receipt sent) but its submit_sm_resp is
    lost; every later submit_sm is answered as usual.

    Expected: that submit raises CarrierOutcomeUnknown "smpp:response_timeout" with
    ``may_fail_over`` as configured (false by default); the receipt of the unannounced id
    still reaches on_receipt; the next submit is accepted on the same bind. The SMSC now has
    the message, which is why the dispatcher must not send it to another carrier blindly.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if len(self.submits) == 1:
            submit.message_id = self.next_id()
            submit.status = 0
            self.send_receipt(conn, submit.message_id, tlv_id=submit.message_id)
        else:
            await super().on_submit(conn, submit)


class FirstSubmitAnsweredLate(FakeSmsc):
    """The first submit_sm is taken and answered, with its id, only after ``LATE`` seconds
    (longer than the carrier's response_timeout in its test); every later submit_sm at once.

    Expected: that submit raises CarrierOutcomeUnknown "smpp:response_timeout"; when the
    answer comes, the carrier reports it to on_late_acceptance with the message, the part and
    the canonical id (so the store can keep the id of the copy the carrier took, and its
    receipts find the message); a later answer for a sequence never sent is only logged.
    """

    LATE = 1.0

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if len(self.submits) > 1:
            await super().on_submit(conn, submit)
            return

        async def answer_late() -> None:
            await asyncio.sleep(self.LATE)
            self.accept(conn, submit)
            conn.send(pdu(SUBMIT_SM | RESP, 0, 0x7FFF0000, cstr("4299999")))  # answers nothing we sent

        self.spawn(answer_late())


class FirstSubmitRefusedLate(FakeSmsc):
    """The first submit_sm is refused (ESME_RSYSERR), but only after ``LATE`` seconds (longer
    than the carrier's response_timeout in its test); every later submit_sm is answered at once.

    Expected: that submit raises CarrierOutcomeUnknown "smpp:response_timeout" (the carrier
    may have it, as far as anyone can tell then); when the refusal comes, the carrier reports
    it to on_late_refusal with the message, the part, the command_status and its name (so
    the store can record that this copy is not at the carrier), and nothing to
    on_late_acceptance.
    """

    LATE = 1.0
    STATUS = 0x08  # ESME_RSYSERR

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if len(self.submits) > 1:
            await super().on_submit(conn, submit)
            return

        async def refuse_late() -> None:
            await asyncio.sleep(self.LATE)
            self.refuse(conn, submit, self.STATUS)

        self.spawn(refuse_late())


class UnbindDuringSubmit(FakeSmsc):
    """The first submit_sm is answered with an unbind instead of a submit_sm_resp.

    Expected: that submit raises CarrierRetryableError "smpp:connection_lost" (written,
    unanswered: possibly accepted); the carrier answers unbind_resp, binds again, and the
    next submit is accepted.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if len(self.submits) == 1:
            conn.request(UNBIND)
        else:
            self.accept(conn, submit)


class ThrottleBursts(FakeSmsc):
    """Bursts of ESME_RTHROTTLED: of every five submit_sm, three are throttled.

    Expected: every message is accepted exactly once (same part resent after a pause, within
    the throttle budget), throttles are counted, no error reaches the caller.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if (len(self.submits) - 1) % 5 < 3:
            self.refuse(conn, submit, ESME_RTHROTTLED)
        else:
            self.accept(conn, submit)


class ReceiptBeforeSubmitResp(FakeSmsc):
    """The delivery receipt arrives before the submit_sm_resp that announces its id.

    Expected: the receipt reaches on_receipt with the same canonical id the SubmitAck then
    carries (the store keeps it until the id is recorded), and the deliver_sm is acknowledged.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        message_id = self.next_id()
        sequence = self.send_receipt(conn, message_id, tlv_id=message_id)

        async def answer_later() -> None:
            await self.wait(lambda: sequence in self.answers)  # the receipt was acknowledged
            self.accept(conn, submit, message_id)

        self.spawn(answer_later())


class ReceiptSaysFailed(FakeSmsc):
    """The SMSC takes the message, then its receipt says ``stat:FAILED err:005``, in the text
    only: SMPP 3.4's message_state has no such state, so it sends no message_state TLV.

    Expected: the message goes to failed with 30008 (the receipt mapping) and is not charged:
    its price becomes 0.00000 and it comes back out of usage (pigeon.app.failed_charges).
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        message_id = self.accept(conn, submit)
        text = (
            f"id:{message_id} sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:FAILED err:005 text:"
        )
        conn.request(DELIVER_SM, deliver_sm_body(text.encode("ascii"), tlvs=tlv(0x001E, cstr(message_id))))


class ReceiptForUnknownId(FakeSmsc):
    """Right after bind, a receipt for a message id this SMSC never issued.

    Expected: it still reaches on_receipt (kept, unmatched, for the doctor) and is
    acknowledged with ESME_ROK, so the SMSC does not resend it forever.
    """

    async def on_bound(self, conn: Connection) -> None:
        self.send_receipt(conn, "0000999999", tlv_id="0000999999", stat="UNDELIV")


class HexIds(FakeSmsc):
    """submit_sm_resp ids are zero-padded upper-case hex; receipt texts carry the decimal id, no TLV.

    Expected: with receipt_id_format = "hex_to_decimal" the receipt's carrier id equals the
    SubmitAck's; with "as_is" they differ (the setting exists for exactly this).
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        number = int(self.next_id())
        self.accept(conn, submit, f"{number:010X}")
        self.send_receipt(conn, str(number))


class GarbledPdu(FakeSmsc):
    """After bind, a deliver_sm whose sm_length runs past the end of the PDU.

    Expected: the carrier answers generic_nack ESME_RINVCMDLEN, counts a "pdu" error, keeps
    the bind, and later submits are accepted.
    """

    async def on_bound(self, conn: Connection) -> None:
        conn.request(DELIVER_SM, deliver_sm_body(b"short", esm_class=0, sm_length=200))


class GarbledDataSm(FakeSmsc):
    """After bind, a data_sm cut short in its mandatory part (no registered_delivery, no
    data_coding), then a well-formed data_sm carrying a text in message_payload.

    Expected: the garbled one refused as a garbled deliver_sm is (generic_nack
    ESME_RINVCMDLEN, a "pdu" error counted), the bind kept, and the good one taken and
    answered data_sm_resp ESME_ROK.
    """

    async def on_bound(self, conn: Connection) -> None:
        addressed = cstr("") + bytes([1, 1]) + cstr("447700900123") + bytes([1, 1]) + cstr("14155550100")
        self.sequences = [
            conn.request(DATA_SM, addressed + bytes([0])),
            conn.request(DATA_SM, addressed + bytes([0, 0, 0]) + tlv(0x0424, b"still readable")),
        ]


class UnreadableTlvs(FakeSmsc):
    """Right after bind, two receipts whose optional parameters cannot all be read: one with a
    stray NUL after its text (too short for a TLV), one whose receipted_message_id TLV is
    followed by a vendor TLV announcing more octets than the PDU has left.

    Expected: both acknowledged ESME_ROK (not generic_nack: the receipts are readable) and
    both reach on_receipt with their ids; each counted as a "tlv" error and logged at warning
    with its command and sequence. A broken mandatory part is still nacked (GarbledPdu).
    """

    async def on_bound(self, conn: Connection) -> None:
        self.sequences = [
            conn.request(DELIVER_SM, deliver_sm_body(receipt_text("4200100")) + b"\x00"),
            conn.request(
                DELIVER_SM,
                deliver_sm_body(
                    receipt_text("4200101"), tlvs=tlv(0x001E, cstr("4200101")) + struct.pack("!HH", 0x1401, 8) + b"ab"
                ),
            ),
        ]


class VendorStatus(FakeSmsc):
    """submit_sm refused with vendor command_status 0x00000401 (outside SMPP 3.4's table).

    Expected: CarrierRetryableError with carrier_code "0x00000401" (or what the carrier's
    status_map says), and the bind stays up — aiosmpplib's own ESME drops the connection here.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        self.refuse(conn, submit, 0x401)


class SenderRefused(FakeSmsc):
    """submit_sm refused with ESME_RINVSRCADR: this SMSC does not accept the From.

    Expected: CarrierPermanentError 21606 about this carrier only, so the dispatcher moves the
    message to the next carrier of its route (`CarrierError.stops_route`)."""

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        self.refuse(conn, submit, 0x0A)


class UnknownSubscriber(FakeSmsc):
    """submit_sm refused with ESME_RINVDSTADR: the network does not know the handset.

    Expected: CarrierPermanentError 30005, which no carrier would get past: the message fails
    at once and the next carrier of the route is not tried."""

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        self.refuse(conn, submit, 0x0B)


class LaterPartRefused(FakeSmsc):
    """Of a multipart message, part 1 is accepted and part 2 refused (ESME_RSUBMITFAIL); every
    later submit_sm is accepted.

    Expected: submit raises CarrierRetryableError whose ``accepted_carrier_ids`` holds part
    1's id (also named in the message) and whose ``progress`` has the part count and the
    concatenation reference, so the dispatcher can keep part 1 for its receipt and later ask
    for parts 2.. only; no further part is sent. A continuation then sends parts 2 and 3
    alone, with the same reference and part count.
    """

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        if len(self.submits) == 2:
            self.refuse(conn, submit, 0x45)
        else:
            await super().on_submit(conn, submit)  # accepted, and its receipt follows


class SilentLink(FakeSmsc):
    """On the first connection, enquire_link goes unanswered (a half-dead TCP link or a hung SMSC).

    Expected: after one enquire_link interval plus one response timeout the carrier gives the
    session up ("enquire_link unanswered"), binds again, and submits work on the new bind.
    """

    async def dispatch(self, conn: Connection, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id == ENQUIRE_LINK and conn is self.connections[0]:
            return
        await super().dispatch(conn, command_id, status, sequence, body)


class OddTexts(FakeSmsc):
    """Texts and fields past what SMPP 3.4 allows, as some SMSC software writes them:
    - message ids of 90 characters (SMPP allows 65), in the submit_sm_resp and in the receipt;
    - receipts whose text is NUL-padded and whose err field has 20 digits;
    - right after bind, a receipt for an unknown id whose stat has 20 characters, and a
      UCS-2 message to 14155550100 padded with NUL characters.

    Expected: every deliver_sm answered ESME_ROK, on PostgreSQL as on SQLite, nothing resent.
    The message is delivered (its id, cut to the 80 characters kept, still matches its
    receipt); the unknown receipt is parked with its fields cut to the 16 characters kept; the
    inbound text is stored without its NUL padding, and its timeline says how many were left
    out.
    """

    LONG_ID_LENGTH = 90
    PADDED_TEXT = "Hi \u2713"  # a check mark: UCS-2

    def _long_id(self) -> str:
        return "id" + self.next_id().rjust(self.LONG_ID_LENGTH - 2, "7")

    async def on_bound(self, conn: Connection) -> None:
        odd = receipt_text("999999").replace(b"stat:DELIVRD", b"stat:DELIVERED_TO_HANDSET")
        conn.request(DELIVER_SM, deliver_sm_body(odd))
        text = self.PADDED_TEXT.encode("utf-16-be") + b"\x00\x00" * 3
        conn.request(DELIVER_SM, deliver_sm_body(text, esm_class=0, data_coding=8))

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        message_id = self.accept(conn, submit, self._long_id())
        text = receipt_text(message_id).replace(b"err:000", b"err:" + b"0" * 20) + b"\x00" * 4
        conn.request(DELIVER_SM, deliver_sm_body(text, tlvs=tlv(0x001E, cstr(message_id))))


class ReusedIds(FakeSmsc):
    """submit_sm_resp ids repeat, as from an SMSC whose id counter wrapped or started again
    when it restarted: the first two submits are both answered "7", the third with an empty
    id. No receipts are sent unasked.

    Expected: every message is recorded as sent (before, the second use of an id failed the
    INSERT of its carrier id, so the message was never recorded and was sent again, for ever);
    a receipt for "7" goes to the newest message that was given it; the empty id is not kept,
    since no receipt can name it.
    """

    IDS = ("7", "7", "")

    async def on_submit(self, conn: Connection, submit: Submit) -> None:
        given = self.IDS[min(len(self.submits), len(self.IDS)) - 1]
        submit.message_id, submit.status = given, 0
        conn.send(pdu(SUBMIT_SM | RESP, 0, submit.sequence, cstr(given)))


CATALOGUE: tuple[type[FakeSmsc], ...] = (
    BindRefused,
    BindThenUnbind,
    NoSubmitResp,
    FirstSubmitUnanswered,
    FirstSubmitAnsweredLate,
    FirstSubmitRefusedLate,
    UnbindDuringSubmit,
    ThrottleBursts,
    ReceiptBeforeSubmitResp,
    ReceiptForUnknownId,
    HexIds,
    GarbledPdu,
    GarbledDataSm,
    UnreadableTlvs,
    VendorStatus,
    LaterPartRefused,
    SilentLink,
    OddTexts,
    ReusedIds,
)
