"""SMPP PDUs as they may appear in the log: their structure, never what people wrote.

A deliver_sm or data_sm that cannot be read in full is logged so that its fault can be found
(which field, at which octet, what the SMSC put there). Logged whole, as hex, it also put
the sender's and the recipient's numbers and the text of a mobile-originated message (or of
a receipt's ``text:`` field, the message's first characters) into the log, which `pigeon
erase` cannot reach and which is kept and shipped by rules of its own.

`masked_hex` keeps every octet of the PDU's layout (the fields' values, the NUL terminators,
sm_length, the TLV tags and lengths, the values of the TLVs that only describe delivery) and
writes ``xx`` for each octet of an address, of short_message, and of any other TLV's value
(message_payload, subaddresses, callback numbers, vendor TLVs). The octets after a point
where the PDU stops making sense cannot be told apart and are all written ``xx``: their
number is there, which is usually the fault.
"""

from __future__ import annotations

import re
import struct

from pigeon.carriers import smpp_pdu as pdu

__all__ = ["masked_hex", "masked_receipt_text"]

#: TLVs whose value says how a message fared, never who sent it or what it said.
_PLAIN_TLVS = frozenset(
    {
        pdu.TLV_RECEIPTED_MESSAGE_ID,
        pdu.TLV_SAR_MSG_REF_NUM,
        pdu.TLV_SAR_TOTAL_SEGMENTS,
        pdu.TLV_SAR_SEGMENT_SEQNUM,
        pdu.TLV_NETWORK_ERROR_CODE,
        pdu.TLV_MESSAGE_STATE,
        0x0204,  # user_message_reference
        0x0005,  # dest_addr_subunit
        0x0006,  # dest_network_type
        0x0007,  # dest_bearer_type
        0x000F,  # source_addr_subunit
        0x0210,  # sc_interface_version
        0x0426,  # more_messages_to_send
    }
)


class _Walk:
    """Reads a PDU body field by field, noting which octets may be shown."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.shown = bytearray(len(body))  # 1: the octet may be logged as it is
        self.pos = 0

    def octets(self, count: int, *, show: bool) -> None:
        if self.pos + count > len(self.body):
            raise pdu.PduError("ends early")
        if show:
            self.shown[self.pos : self.pos + count] = b"\x01" * count
        self.pos += count

    def cstring(self, max_len: int, *, show: bool) -> None:
        end = self.body.find(b"\x00", self.pos, self.pos + max_len + 1)
        if end < 0:
            raise pdu.PduError("no NUL")
        self.octets(end - self.pos, show=show)
        self.octets(1, show=True)  # the terminator: where the field ends

    def tlvs(self) -> None:
        while len(self.body) - self.pos >= 4:
            tag, length = struct.unpack_from("!HH", self.body, self.pos)
            self.octets(4, show=True)
            self.octets(length, show=tag in _PLAIN_TLVS)


def _walk_addressed(w: _Walk) -> None:
    w.cstring(6, show=True)  # service_type
    w.octets(2, show=True)  # source_addr_ton, source_addr_npi
    w.cstring(65, show=False)  # source_addr
    w.octets(2, show=True)  # dest_addr_ton, dest_addr_npi
    w.cstring(65, show=False)  # destination_addr
    w.octets(1, show=True)  # esm_class


def _walk_deliver_sm(w: _Walk) -> None:
    _walk_addressed(w)
    w.octets(2, show=True)  # protocol_id, priority_flag
    w.cstring(17, show=True)  # schedule_delivery_time
    w.cstring(17, show=True)  # validity_period
    w.octets(4, show=True)  # registered_delivery, replace_if_present_flag, data_coding, sm_default_msg_id
    w.octets(1, show=True)  # sm_length
    w.octets(w.body[w.pos - 1], show=False)  # short_message
    w.tlvs()


def _walk_data_sm(w: _Walk) -> None:
    _walk_addressed(w)
    w.octets(2, show=True)  # registered_delivery, data_coding
    w.tlvs()


_WALKS = {pdu.DELIVER_SM: _walk_deliver_sm, pdu.DATA_SM: _walk_data_sm}


def masked_hex(command_id: int, body: bytes) -> str:
    """The body of a deliver_sm or data_sm (after its 16-octet header) as hex, each octet that
    could say who wrote to whom or what written ``xx`` (module docstring). Any other PDU is
    all ``xx`` but for its length: its layout is not known here."""
    w = _Walk(body)
    walk = _WALKS.get(command_id)
    if walk is not None:
        try:
            walk(w)
        except pdu.PduError:
            pass  # what follows is not shown; the caller logs the parser's own words for why
    return "".join(f"{octet:02x}" if shown else "xx" for octet, shown in zip(body, w.shown, strict=True))


_RECEIPT_TEXT = re.compile(rb"(text:).*", re.IGNORECASE | re.DOTALL)


def masked_receipt_text(user_data: bytes) -> str:
    """A receipt's text (``id:… stat:… err:… text:…``) for the log, without what follows
    ``text:``, which carries the first characters of the message."""
    return _RECEIPT_TEXT.sub(rb"\1...", user_data).decode("latin-1")
