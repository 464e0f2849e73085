"""SMPP 3.4 PDUs on the wire: encoded by aiosmpplib, decoded by us.

aiosmpplib 0.7.4 builds requests correctly, so every PDU we send comes from its message
classes, but for data_sm_resp, which it lacks (its body is one empty C-octet string, built
here). Its *decoders* cannot be trusted with what real SMSCs send (measured on 0.7.4):

* ``SmppMessage.parse_header`` turns command_id and command_status into enums, so a vendor
  status (0x400-0x4FF, common in submit_sm_resp) or a vendor command raises ValueError and
  its ESME drops the connection: the refused message is never answered, and a dispatcher
  retrying it would meet the same fate forever;
* ``DeliverSm.from_pdu`` reads a 16-bit concatenation reference as 4 bytes (the reference
  then includes the part number, so parts never reassemble), decodes each part on its own
  (a UCS-2 surrogate pair split across parts becomes garbage), and nacks any data_coding,
  TON or NPI outside its enums.

So incoming PDUs are parsed here, leniently and without enums: the header as four integers,
deliver_sm with its raw short_message bytes and TLVs, left for `smpp_inbound` to decode.
A data_sm (SMPP 3.4 §4.7), which SMSCs use for the same receipts and mobile-originated
messages, is read into the same `DeliverSm`: it has no short_message (its text, if any, is
in the message_payload TLV) and none of deliver_sm's protocol_id, priority, schedule,
validity and replace fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypedDict

from aiosmpplib import (
    NPI,
    TON,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    PhoneNumber,
    SmppCommandStatus,
    SubmitSm,
    Unbind,
    UnbindResp,
)

__all__ = [
    "HEADER",
    "MAX_PDU",
    "DeliverSm",
    "Header",
    "PduError",
    "SubmitPart",
    "bind_pdu",
    "data_sm_resp_pdu",
    "deliver_sm_resp_pdu",
    "enquire_link_pdu",
    "enquire_link_resp_pdu",
    "generic_nack_pdu",
    "parse_data_sm",
    "parse_deliver_sm",
    "parse_header",
    "parse_message_id",
    "submit_sm_pdu",
    "unbind_pdu",
    "unbind_resp_pdu",
]

HEADER = 16
#: Larger PDUs are refused as garbled: a deliver_sm with a 64 KiB message_payload is the largest legitimate one.
MAX_PDU = 70_000

# command_id values (SMPP 3.4 §5.1.2.1) used by the session.
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSCEIVER = 0x00000009
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
DATA_SM = 0x00000103
DATA_SM_RESP = 0x80000103
RESPONSE_BIT = 0x80000000

ESME_RINVCMDID = 0x03
ESME_RSYSERR = 0x08
ESME_RX_T_APPN = 0x64

# TLV tags (SMPP 3.4 §5.3.2).
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_NETWORK_ERROR_CODE = 0x0423
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

_BIND_CLASSES = {BIND_TRANSCEIVER: BindTransceiver, BIND_TRANSMITTER: BindTransmitter, BIND_RECEIVER: BindReceiver}


class PduError(ValueError):
    """A PDU that cannot be parsed."""


@dataclass(frozen=True)
class Header:
    length: int
    command_id: int
    status: int
    sequence: int

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


def parse_header(data: bytes) -> Header:
    length, command_id, status, sequence = struct.unpack("!IIII", data[:HEADER])
    if not HEADER <= length <= MAX_PDU:
        raise PduError(f"command_length {length} is outside {HEADER}..{MAX_PDU}")
    return Header(length, command_id, status, sequence)


# --- requests and responses we send -------------------------------------------------------


def bind_pdu(
    command_id: int,
    sequence: int,
    *,
    system_id: str,
    password: str,
    system_type: str,
    address_range: str,
    ton: int = 0,
    npi: int = 0,
) -> bytes:
    cls = _BIND_CLASSES[command_id]
    pdu = cls(
        sequence_num=sequence,
        system_id=system_id,
        password=password,
        system_type=system_type,
        addr_ton=TON(ton),
        addr_npi=NPI(npi),
        address_range=address_range,
    )
    return bytes(pdu.pdu())


def enquire_link_pdu(sequence: int) -> bytes:
    return bytes(EnquireLink(sequence_num=sequence).pdu())


def enquire_link_resp_pdu(sequence: int) -> bytes:
    return bytes(EnquireLinkResp(sequence_num=sequence).pdu())


def unbind_pdu(sequence: int) -> bytes:
    return bytes(Unbind(sequence_num=sequence).pdu())


def unbind_resp_pdu(sequence: int) -> bytes:
    return bytes(UnbindResp(sequence_num=sequence).pdu())


def generic_nack_pdu(sequence: int, status: int) -> bytes:
    return bytes(GenericNack(sequence_num=sequence, command_status=SmppCommandStatus(status)).pdu())


def deliver_sm_resp_pdu(sequence: int, status: int = 0) -> bytes:
    resp = DeliverSmResp(sequence_num=sequence, command_status=SmppCommandStatus(status), message_id="")
    return bytes(resp.pdu())


def data_sm_resp_pdu(sequence: int, status: int = 0) -> bytes:
    """A data_sm_resp with an empty message_id (we keep no id for what the SMSC delivers)."""
    body = b"\x00"
    return struct.pack("!IIII", HEADER + len(body), DATA_SM_RESP, status, sequence) + body


@dataclass(frozen=True)
class SubmitPart:
    """One submit_sm as the connector prepared it: addresses resolved, payload encoded."""

    source: str
    source_ton: int
    source_npi: int
    destination: str
    destination_ton: int
    destination_npi: int
    text: str  # the part's text, kept for logs and aiosmpplib's validation only
    payload: bytes  # UDH (if any) + encoded text: what goes into short_message
    udhi: bool
    data_coding: int  # 0 (the SMSC's default alphabet), 1 (ASCII), 3 (Latin-1) or 8 (UCS-2)
    registered_delivery: bool = True
    validity_period: int | None = None
    service_type: str = ""
    # How it is concatenated when not by a UDH in `payload` (carriers' long_messages):
    sar: tuple[int, int, int] | None = None  # (sar_msg_ref_num, sar_total_segments, sar_segment_seqnum)
    in_message_payload: bool = False  # `payload` goes in the message_payload TLV, short_message empty


#: data_coding → the name aiosmpplib sets it by (its SmppDataCoding).
_AIOSMPPLIB_ENCODINGS = {0: None, 1: "ascii", 3: "latin_1", 8: "ucs2"}


def submit_sm_pdu(sequence: int, part: SubmitPart) -> bytes:
    """A submit_sm carrying ``part.payload`` byte for byte.

    aiosmpplib is handed the encoded payload (``set_encoded_message``) so neither its
    splitter nor its encoder touches the text; its ``encoding`` only sets data_coding
    (`_AIOSMPPLIB_ENCODINGS`), and none leaves data_coding 0 (the SMSC's default alphabet).
    """
    message = SubmitSm(
        sequence_num=sequence,
        short_message=part.text or " ",
        source=PhoneNumber(part.source, TON(part.source_ton), NPI(part.source_npi)),
        destination=PhoneNumber(part.destination, TON(part.destination_ton), NPI(part.destination_npi)),
        service_type=part.service_type,
        esm_class=0x40 if part.udhi else 0x00,
        registered_delivery=1 if part.registered_delivery else 0,
        validity_period=timedelta(seconds=part.validity_period) if part.validity_period else None,
        encoding=_AIOSMPPLIB_ENCODINGS[part.data_coding],
        auto_message_payload=True,  # False would make aiosmpplib split (and re-encode) the part itself
    )
    if not part.in_message_payload and part.sar is None:
        message.set_encoded_message(part.payload)
        return bytes(message.pdu())
    # aiosmpplib would encode a message_payload with its own codec, and its SAR parameters
    # come with its splitter: it builds the PDU around a one-octet short_message, which is
    # replaced here, and the TLVs follow (SMPP 3.4 §5.3: in any order, after the mandatory part).
    message.set_encoded_message(b"\x00")
    built = bytes(message.pdu())
    if built[-2:] != b"\x01\x00":  # sm_length 1, then the placeholder: nothing may follow them
        raise PduError("aiosmpplib put something after short_message; the submit_sm cannot be rebuilt")
    if part.in_message_payload:
        tail = b"\x00" + _tlv(TLV_MESSAGE_PAYLOAD, part.payload)
    else:
        tail = bytes([len(part.payload)]) + part.payload  # one segment: at most 160 octets
    if part.sar is not None:
        reference, total, seq = part.sar
        tail += (
            _tlv(TLV_SAR_MSG_REF_NUM, struct.pack("!H", reference))
            + _tlv(TLV_SAR_TOTAL_SEGMENTS, bytes([total]))
            + _tlv(TLV_SAR_SEGMENT_SEQNUM, bytes([seq]))
        )
    pdu_bytes = built[:-2] + tail
    return struct.pack("!I", len(pdu_bytes)) + pdu_bytes[4:]


def _tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


# --- what the SMSC sends -------------------------------------------------------------------


def parse_message_id(body: bytes) -> str:
    """The C-octet string message_id of a submit_sm_resp (empty when the SMSC sent none)."""
    end = body.find(b"\x00")
    raw = body if end < 0 else body[:end]
    return raw.decode("latin-1")  # ids are ASCII; latin-1 never fails on a stray byte


@dataclass(frozen=True)
class DeliverSm:
    """A deliver_sm, or a data_sm read into the same fields (protocol_id 0, no short_message)."""

    service_type: str
    source_ton: int
    source_npi: int
    source: str
    destination_ton: int
    destination_npi: int
    destination: str
    esm_class: int
    protocol_id: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)
    # Why the octets after the last TLV read were left unread (see `parse_deliver_sm`), or None.
    unread_tail: str | None = None

    @property
    def user_data(self) -> bytes:
        """short_message, or the message_payload TLV when the SMSC used that instead."""
        return self.short_message or self.tlvs.get(TLV_MESSAGE_PAYLOAD, b"")

    @property
    def is_receipt_class(self) -> bool:
        """esm_class message type (bits 5-2) says SMSC delivery receipt or intermediate notification."""
        return (self.esm_class & 0x3C) in (0x04, 0x20)

    @property
    def is_intermediate_notification(self) -> bool:
        """esm_class message type says intermediate delivery notification (SMPP 3.4 §5.2.12)."""
        return (self.esm_class & 0x3C) == 0x20

    @property
    def udhi(self) -> bool:
        return bool(self.esm_class & 0x40)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def cstring(self, name: str, max_len: int) -> str:
        end = self.data.find(b"\x00", self.pos, self.pos + max_len + 1)
        if end < 0:
            raise PduError(f"{name}: no NULL terminator within {max_len} octets")
        value = self.data[self.pos : end].decode("latin-1")
        self.pos = end + 1
        return value

    def octet(self, name: str) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"{name}: PDU ends early")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, name: str, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise PduError(f"{name}: {count} octets announced, {len(self.data) - self.pos} left")
        value = self.data[self.pos : self.pos + count]
        self.pos += count
        return value


def parse_deliver_sm(body: bytes) -> DeliverSm:
    """The mandatory fields and TLVs of a deliver_sm body (the PDU after its 16-octet header).

    A broken mandatory part raises `PduError`: without it there is nothing to deliver. The
    optional parameters are read leniently: the first that cannot be read (fewer than four
    octets left, or a length running past the PDU) ends them, those before it are kept, and
    ``unread_tail`` says why. SMSCs do send a NUL after the text, or vendor TLVs with wrong
    lengths, in receipts whose id is perfectly readable; refusing the whole PDU for that
    would lose the receipt.
    """
    c = _Cursor(body)
    addressed = _addressed(c)
    protocol_id = c.octet("protocol_id")
    c.octet("priority_flag")
    c.cstring("schedule_delivery_time", 17)
    c.cstring("validity_period", 17)
    c.octet("registered_delivery")
    c.octet("replace_if_present_flag")
    data_coding = c.octet("data_coding")
    c.octet("sm_default_msg_id")
    short_message = c.take("short_message", c.octet("sm_length"))
    tlvs, unread_tail = _read_tlvs(c)
    return DeliverSm(
        **addressed,
        protocol_id=protocol_id,
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tlvs,
        unread_tail=unread_tail,
    )


def parse_data_sm(body: bytes) -> DeliverSm:
    """The mandatory fields and TLVs of a data_sm body (SMPP 3.4 §4.7.1), as `parse_deliver_sm`
    reads a deliver_sm's: a broken mandatory part raises `PduError`, TLVs are read leniently."""
    c = _Cursor(body)
    addressed = _addressed(c)
    c.octet("registered_delivery")
    data_coding = c.octet("data_coding")
    tlvs, unread_tail = _read_tlvs(c)
    return DeliverSm(
        **addressed, protocol_id=0, data_coding=data_coding, short_message=b"", tlvs=tlvs, unread_tail=unread_tail
    )


class _Addressed(TypedDict):
    service_type: str
    source_ton: int
    source_npi: int
    source: str
    destination_ton: int
    destination_npi: int
    destination: str
    esm_class: int


def _addressed(c: _Cursor) -> _Addressed:
    """The fields deliver_sm and data_sm begin with alike: service_type to esm_class."""
    return {
        "service_type": c.cstring("service_type", 6),
        "source_ton": c.octet("source_addr_ton"),
        "source_npi": c.octet("source_addr_npi"),
        "source": c.cstring("source_addr", 65),  # 21 in deliver_sm, 65 in data_sm; some send longer
        "destination_ton": c.octet("dest_addr_ton"),
        "destination_npi": c.octet("dest_addr_npi"),
        "destination": c.cstring("destination_addr", 65),
        "esm_class": c.octet("esm_class"),
    }


def _read_tlvs(c: _Cursor) -> tuple[dict[int, bytes], str | None]:
    """The TLVs from the cursor to the end (the first of a repeated tag wins), and why any
    octets were left unread (None when all were read)."""
    tlvs: dict[int, bytes] = {}
    while (left := len(c.data) - c.pos) > 0:
        if left < 4:
            return tlvs, f"{left} octet(s) after the last TLV, too few for a TLV header"
        tag, length = struct.unpack("!HH", c.take("TLV header", 4))
        if length > left - 4:
            return tlvs, f"TLV 0x{tag:04X} announces {length} octets, {left - 4} left"
        tlvs.setdefault(tag, c.take(f"TLV 0x{tag:04X}", length))
    return tlvs, None
