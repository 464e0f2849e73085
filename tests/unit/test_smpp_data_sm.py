"""Unit tests for data_sm from the SMSC (SMPP 3.4 §4.7): pigeon.carriers.smpp_pdu reads it into
the `DeliverSm` a deliver_sm gives, so smpp_inbound reads its receipts and texts alike, and
answers it with a data_sm_resp."""

from __future__ import annotations

import struct

import pytest

from pigeon.carriers.smpp_inbound import is_receipt, read_mo, receipt_from
from pigeon.carriers.smpp_pdu import (
    DATA_SM_RESP,
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    PduError,
    data_sm_resp_pdu,
    parse_data_sm,
    parse_header,
)
from pigeon.ports import InboundPart, InboundSms


def tlv(tag: int, value: bytes) -> bytes:
    return struct.pack("!HH", tag, len(value)) + value


def data_sm(*tlvs: bytes, esm_class: int = 0, data_coding: int = 0) -> bytes:
    """A data_sm body: its mandatory part, then the TLVs given."""
    return (
        b"\x00"  # service_type
        + bytes([1, 1])
        + b"447700900123\x00"
        + bytes([1, 1])
        + b"14155550100\x00"
        + bytes([esm_class, 0, data_coding])  # esm_class, registered_delivery, data_coding
        + b"".join(tlvs)
    )


def test_a_text_in_message_payload_is_a_whole_inbound_message() -> None:
    deliver = parse_data_sm(data_sm(tlv(TLV_MESSAGE_PAYLOAD, "Grüße ☃".encode("utf-16-be")), data_coding=8))
    assert (deliver.source, deliver.destination, deliver.data_coding) == ("447700900123", "14155550100", 8)
    assert deliver.short_message == b"" and deliver.unread_tail is None
    assert not is_receipt(deliver)
    message = read_mo(deliver, carrier="acme", sender="+447700900123", recipient="+14155550100", reassembly_timeout=5)
    assert isinstance(message, InboundSms)
    assert message.body == "Grüße ☃"


def test_sar_tlvs_make_a_part() -> None:
    deliver = parse_data_sm(
        data_sm(
            tlv(TLV_SAR_MSG_REF_NUM, b"\x01\x02"),
            tlv(TLV_SAR_TOTAL_SEGMENTS, b"\x02"),
            tlv(TLV_SAR_SEGMENT_SEQNUM, b"\x01"),
            tlv(TLV_MESSAGE_PAYLOAD, b"first half"),
        )
    )
    part = read_mo(deliver, carrier="acme", sender="+447700900123", recipient="+14155550100", reassembly_timeout=5)
    assert isinstance(part, InboundPart)
    assert (part.reference, part.total, part.sequence, part.data) == (0x0102, 2, 1, b"first half")


def test_a_udh_in_message_payload_makes_a_part() -> None:
    udh = bytes([0x05, 0x00, 0x03, 0x2A, 0x03, 0x02])
    deliver = parse_data_sm(data_sm(tlv(TLV_MESSAGE_PAYLOAD, udh + b"middle"), esm_class=0x40))
    part = read_mo(deliver, carrier="acme", sender="+447700900123", recipient="+14155550100", reassembly_timeout=5)
    assert isinstance(part, InboundPart)
    assert (part.reference, part.total, part.sequence, part.data) == (0x2A, 3, 2, b"middle")


def test_a_receipt_in_tlvs_only_gives_its_id_state_and_network_error() -> None:
    deliver = parse_data_sm(
        data_sm(
            tlv(TLV_RECEIPTED_MESSAGE_ID, b"4200000\x00"),
            tlv(TLV_MESSAGE_STATE, bytes([5])),  # UNDELIV
            tlv(TLV_NETWORK_ERROR_CODE, bytes([3, 0, 2])),  # GSM, error 2
            esm_class=0x04,
        )
    )
    assert is_receipt(deliver)
    receipt = receipt_from(deliver, carrier="acme", id_format="as_is", error_codes={"002": 30005})
    assert receipt is not None
    assert (receipt.carrier_id, receipt.stat, receipt.err, receipt.error_code) == ("4200000", "UNDELIV", "002", 30005)
    assert receipt.raw == "[receipted_message_id=4200000 message_state=5 network_error_code=030002]"


def test_a_receipt_text_in_message_payload_is_read() -> None:
    text = b"id:4200000 sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:DELIVRD err:000 text:"
    deliver = parse_data_sm(data_sm(tlv(TLV_MESSAGE_PAYLOAD, text), esm_class=0x04))
    receipt = receipt_from(deliver, carrier="acme", id_format="as_is")
    assert receipt is not None
    assert (receipt.carrier_id, receipt.stat, receipt.done_date) == ("4200000", "DELIVRD", "2601151201")


def test_unreadable_tlvs_are_left_out_and_named() -> None:
    deliver = parse_data_sm(data_sm(tlv(TLV_RECEIPTED_MESSAGE_ID, b"4200000\x00"), b"\x00", esm_class=0x04))
    assert deliver.tlvs == {TLV_RECEIPTED_MESSAGE_ID: b"4200000\x00"}
    assert deliver.unread_tail == "1 octet(s) after the last TLV, too few for a TLV header"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (data_sm()[:-1], "data_coding"),
        (b"\x00\x01\x01" + b"4" * 80, "source_addr"),
    ],
    ids=["cut-short", "address-without-end"],
)
def test_a_broken_mandatory_part_is_refused(body: bytes, problem: str) -> None:
    with pytest.raises(PduError, match=problem):
        parse_data_sm(body)


@pytest.mark.parametrize("status", [0, 0x64])
def test_data_sm_resp_carries_the_status_and_an_empty_message_id(status: int) -> None:
    resp = data_sm_resp_pdu(0x01020304, status)
    header = parse_header(resp)
    assert (header.length, header.command_id, header.status, header.sequence) == (17, DATA_SM_RESP, status, 0x01020304)
    assert resp == struct.pack("!IIII", 17, 0x80000103, status, 0x01020304) + b"\x00"
