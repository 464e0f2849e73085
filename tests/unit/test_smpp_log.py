"""SMPP PDUs in the log (pigeon.carriers.smpp_log): the layout of a deliver_sm or data_sm that
could not be read in full, without the numbers or the text, which `pigeon erase` cannot reach
in a log."""

from __future__ import annotations

import struct

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.smpp_log import masked_hex, masked_receipt_text

SENDER, RECIPIENT, TEXT = b"447700900123", b"14155550100", b"meet me at 6, the code is 4321"


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def addressed(esm_class: int = 0) -> bytes:
    return b"\x00" + bytes([1, 1]) + SENDER + b"\x00" + bytes([1, 1]) + RECIPIENT + b"\x00" + bytes([esm_class])


def deliver_sm(short_message: bytes, *, sm_length: int | None = None, tlvs: bytes = b"") -> bytes:
    length = len(short_message) if sm_length is None else sm_length
    return addressed() + bytes([0, 0]) + b"\x00\x00" + bytes([0, 0, 0, 0, length]) + short_message + tlvs


def assert_private(logged: str, body: bytes) -> None:
    assert len(logged) == 2 * len(body)  # every octet accounted for: the layout stays readable
    for secret in (SENDER, RECIPIENT, TEXT, TEXT[:8]):
        assert secret.hex() not in logged


def test_a_deliver_sm_keeps_its_layout_and_loses_numbers_and_text() -> None:
    body = deliver_sm(TEXT, tlvs=tlv(pdu.TLV_SAR_SEGMENT_SEQNUM, b"\x02") + tlv(0x1401, b"vendor"))
    logged = masked_hex(pdu.DELIVER_SM, body)
    assert_private(logged, body)
    assert logged.startswith("000101" + "xx" * len(SENDER) + "00" + "0101" + "xx" * len(RECIPIENT) + "00" + "00")
    assert f"{len(TEXT):02x}" + "xx" * len(TEXT) in logged  # sm_length, then the text masked
    assert logged.endswith("020f0001" + "02" + "14010006" + "xx" * 6)  # tags and lengths kept


def test_a_data_sm_s_message_payload_is_masked() -> None:
    body = addressed() + bytes([0, 8]) + tlv(pdu.TLV_MESSAGE_PAYLOAD, TEXT)
    logged = masked_hex(pdu.DATA_SM, body)
    assert_private(logged, body)
    assert logged.endswith("0008" + f"0424{len(TEXT):04x}" + "xx" * len(TEXT))


def test_a_garbled_pdu_is_shown_up_to_where_it_breaks() -> None:
    body = deliver_sm(TEXT, sm_length=200)  # sm_length runs past the end
    logged = masked_hex(pdu.DELIVER_SM, body)
    assert_private(logged, body)
    assert "c8" + "xx" * len(TEXT) == logged[-2 - 2 * len(TEXT) :]
    cut = addressed()[:10]  # a source_addr without its NUL
    assert masked_hex(pdu.DELIVER_SM, cut) == "000101" + "xx" * 7


def test_a_receipt_s_text_field_is_left_out() -> None:
    text = b"id:42 sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:DELIVRD err:000 Text:the code is"
    assert masked_receipt_text(text).endswith("stat:DELIVRD err:000 Text:...")
