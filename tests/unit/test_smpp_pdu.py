"""Unit tests for pigeon.carriers.smpp_pdu.parse_deliver_sm: a broken mandatory part is refused,
unreadable optional parameters (TLVs) after it are left out and named."""

from __future__ import annotations

import struct

import pytest

from pigeon.carriers.smpp_pdu import TLV_RECEIPTED_MESSAGE_ID, PduError, parse_deliver_sm

TEXT = b"id:4200000 sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:DELIVRD err:000 text:"


def body(short_message: bytes = TEXT, *, sm_length: int | None = None) -> bytes:
    """A deliver_sm body up to and including short_message (its TLVs are appended by the tests)."""
    length = len(short_message) if sm_length is None else sm_length
    return (
        b"\x00"  # service_type
        + bytes([1, 1])
        + b"447700900123\x00"
        + bytes([1, 1])
        + b"14155550100\x00"
        + bytes([0x04, 0, 0])  # esm_class: delivery receipt; protocol_id; priority_flag
        + b"\x00\x00"  # schedule_delivery_time, validity_period
        + bytes([0, 0, 0, 0, length])
        + short_message
    )


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def test_well_formed_tlvs_are_all_read() -> None:
    deliver = parse_deliver_sm(body() + tlv(TLV_RECEIPTED_MESSAGE_ID, b"4200000\x00") + tlv(0x1401, b"ab"))
    assert deliver.tlvs == {TLV_RECEIPTED_MESSAGE_ID: b"4200000\x00", 0x1401: b"ab"}
    assert deliver.unread_tail is None


@pytest.mark.parametrize("stray", [b"\x00", b"\x00\x00\x00"], ids=["one", "three"])
def test_stray_octets_after_the_last_tlv_are_left_out(stray: bytes) -> None:
    # Some SMSCs put a NUL after the text: fewer than a TLV header's four octets.
    deliver = parse_deliver_sm(body() + tlv(TLV_RECEIPTED_MESSAGE_ID, b"4200000\x00") + stray)
    assert deliver.short_message == TEXT
    assert deliver.tlvs == {TLV_RECEIPTED_MESSAGE_ID: b"4200000\x00"}
    assert deliver.unread_tail == f"{len(stray)} octet(s) after the last TLV, too few for a TLV header"


def test_a_tlv_longer_than_the_pdu_is_left_out_and_those_before_it_kept() -> None:
    overrunning = struct.pack("!HH", 0x1401, 8) + b"ab"
    deliver = parse_deliver_sm(body() + tlv(TLV_RECEIPTED_MESSAGE_ID, b"4200000\x00") + overrunning)
    assert deliver.tlvs == {TLV_RECEIPTED_MESSAGE_ID: b"4200000\x00"}
    assert deliver.unread_tail == "TLV 0x1401 announces 8 octets, 2 left"


def test_a_broken_mandatory_part_is_still_refused() -> None:
    with pytest.raises(PduError, match="short_message"):
        parse_deliver_sm(body(b"short", sm_length=200))
