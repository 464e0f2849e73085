"""Unit tests for the pure side of inbound reassembly: pigeon.domain.reassembly (what a part
means, how parts become text) and pigeon.carriers.smpp_inbound.read_mo (what a deliver_sm is)."""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.carriers.smpp_inbound import read_mo
from pigeon.carriers.smpp_pdu import TLV_SAR_MSG_REF_NUM, TLV_SAR_SEGMENT_SEQNUM, TLV_SAR_TOTAL_SEGMENTS, DeliverSm
from pigeon.domain.reassembly import Arrival, HeldPart, Part, arrival, assemble, decode_text, digest
from pigeon.ports import InboundPart, InboundSms
from tests.unit.receipt_pdus import deliver_sm

# --- arrival ----------------------------------------------------------------------------------


def test_a_part_number_not_held_is_new() -> None:
    assert arrival(None, digest(b"abc")) is Arrival.NEW


@pytest.mark.parametrize("same_bytes", [True, False])
def test_a_part_number_already_waiting_keeps_its_first_copy(same_bytes: bool) -> None:
    held = HeldPart(handed_over=False, digest=digest(b"first"))
    assert arrival(held, digest(b"first" if same_bytes else b"other")) is Arrival.DUPLICATE


def test_a_copy_of_a_handed_over_part_is_a_resend() -> None:
    held = HeldPart(handed_over=True, digest=digest(b"part one"))
    assert arrival(held, digest(b"part one")) is Arrival.RESENT


def test_other_content_under_a_handed_over_key_is_a_new_message() -> None:
    held = HeldPart(handed_over=True, digest=digest(b"part one"))
    assert arrival(held, digest(b"a new message")) is Arrival.NEW_MESSAGE


# --- assembly ---------------------------------------------------------------------------------


def gsm(text: str) -> bytes:
    return text.encode("gsm03.38")


def test_parts_are_joined_by_part_number_not_arrival() -> None:
    parts = [Part(3, gsm("three"), 0), Part(1, gsm("one "), 0), Part(2, gsm("two "), 0)]
    message = assemble(parts, reference=0x42, bits=8, total=3)
    assert (message.text, message.num_segments, message.complete) == ("one two three", 3, True)
    assert message.raw == {
        "data_coding": 0,
        "concatenation": {"reference": 0x42, "bits": 8, "total": 3, "received": [1, 2, 3]},
    }


def test_an_incomplete_message_says_which_parts_are_missing() -> None:
    message = assemble([Part(4, gsm("four"), 0), Part(1, gsm("one "), 0)], reference=7, bits=16, total=4)
    assert (message.text, message.num_segments, message.complete) == ("one four", 2, False)
    assert message.raw["incomplete"] is True and message.raw["missing_parts"] == [2, 3]
    assert message.raw["concatenation"]["received"] == [1, 4]


def test_a_surrogate_pair_split_across_parts_decodes_once_joined() -> None:
    data = "ok 👍".encode("utf-16-be")
    first, second = data[:-2], data[-2:]
    assert "\ufffd" in decode_text(first, 8)  # alone, the first half is garbage
    message = assemble([Part(2, second, 8), Part(1, first, 8)], reference=1, bits=8, total=2)
    assert message.text == "ok 👍"


def test_a_gsm7_escape_split_across_parts_decodes_once_joined() -> None:
    data = gsm("price 5€")
    cut = data.index(0x1B) + 1  # the escape septet ends part 1, "e" (€) starts part 2
    message = assemble([Part(1, data[:cut], 0), Part(2, data[cut:], 0)], reference=1, bits=8, total=2)
    assert message.text == "price 5€"


def test_a_message_needs_a_part() -> None:
    with pytest.raises(ValueError):
        assemble([], reference=1, bits=8, total=2)


# --- read_mo ----------------------------------------------------------------------------------


def deliver(short_message: bytes, *, esm_class: int = 0, data_coding: int = 0, **tlvs: bytes) -> DeliverSm:
    return deliver_sm(
        short_message, esm_class=esm_class, data_coding=data_coding, tlvs={int(k[1:], 16): v for k, v in tlvs.items()}
    )


def read(d: DeliverSm) -> InboundSms | InboundPart:
    return read_mo(d, carrier="acme", sender="+447700900123", recipient="+14155550100", reassembly_timeout=90.0)


UDHI = 0x40


def test_a_message_without_concatenation_is_whole_and_decoded() -> None:
    sms = read(deliver(gsm("Hello @ you")))
    assert isinstance(sms, InboundSms)
    assert (sms.carrier, sms.sender, sms.recipient, sms.body, sms.num_segments) == (
        "acme",
        "+447700900123",
        "+14155550100",
        "Hello @ you",
        1,
    )
    assert sms.raw == {"data_coding": 0, "esm_class": 0}


def test_an_8_bit_udh_part_is_handed_on_undecoded() -> None:
    udh = bytes([5, 0x00, 3, 0x42, 3, 2])
    p = read(deliver(udh + gsm("two"), esm_class=UDHI))
    assert p == InboundPart(
        carrier="acme",
        sender="+447700900123",
        recipient="+14155550100",
        reference_bits=8,
        reference=0x42,
        total=3,
        sequence=2,
        data=gsm("two"),
        data_coding=0,
        timeout=90.0,
    )


def test_a_16_bit_udh_part_keeps_its_reference_width() -> None:
    udh = bytes([6, 0x08, 4, 0x12, 0x34, 2, 1])
    p = read(deliver(udh + "Привет".encode("utf-16-be"), esm_class=UDHI, data_coding=8))
    assert isinstance(p, InboundPart)
    assert (p.reference_bits, p.reference, p.total, p.sequence, p.data_coding) == (16, 0x1234, 2, 1, 8)
    assert p.data == "Привет".encode("utf-16-be")


def test_sar_tlvs_make_a_part() -> None:
    tlvs: dict[str, Any] = {
        f"x{TLV_SAR_MSG_REF_NUM:04x}": b"\x00\x07",
        f"x{TLV_SAR_TOTAL_SEGMENTS:04x}": b"\x02",
        f"x{TLV_SAR_SEGMENT_SEQNUM:04x}": b"\x02",
    }
    p = read(deliver(gsm("rest"), **tlvs))
    assert isinstance(p, InboundPart)
    assert (p.reference_bits, p.reference, p.total, p.sequence, p.data) == (16, 7, 2, 2, gsm("rest"))


def test_a_sar_reference_longer_than_two_octets_is_not_a_part() -> None:
    # Found by fuzzing on PostgreSQL: four octets of 0xFF overflowed the reference's column,
    # and the SMSC resent the part for ever. Like a garbled UDH, it costs the concatenation.
    tlvs: dict[str, Any] = {
        f"x{TLV_SAR_MSG_REF_NUM:04x}": b"\xff\xff\xff\xff",
        f"x{TLV_SAR_TOTAL_SEGMENTS:04x}": b"\x02",
        f"x{TLV_SAR_SEGMENT_SEQNUM:04x}": b"\x01",
    }
    sms = read(deliver(gsm("first half"), **tlvs))
    assert isinstance(sms, InboundSms) and sms.body == "first half"


def test_a_one_part_concatenation_is_a_whole_message_and_keeps_its_udh() -> None:
    udh = bytes([5, 0x00, 3, 0x42, 1, 1])
    sms = read(deliver(udh + gsm("alone"), esm_class=UDHI))
    assert isinstance(sms, InboundSms)
    assert sms.body == "alone" and sms.raw["udh"] == udh.hex()


def test_a_part_number_outside_its_total_is_not_a_part() -> None:
    udh = bytes([5, 0x00, 3, 0x42, 2, 3])  # part 3 of 2
    sms = read(deliver(udh + gsm("odd"), esm_class=UDHI))
    assert isinstance(sms, InboundSms) and sms.body == "odd"


@pytest.mark.parametrize(
    "udh",
    [
        bytes([3, 0x00, 3, 5]),  # an 8-bit concatenation element announcing 3 octets, 1 in the header
        bytes([4, 0x08, 4, 1, 2]),  # a 16-bit one announcing 4 octets, 2 in the header
        bytes([8, 0x00, 3, 0x42, 2, 1, 0x24, 9, 1]),  # a whole 8-bit one, then an element running past the header
    ],
    ids=["8-bit", "16-bit", "after-a-whole-one"],
)
def test_an_element_running_past_its_header_costs_the_concatenation_not_the_message(udh: bytes) -> None:
    # The first two raised IndexError: the SMSC got a temporary error and resent the PDU for ever.
    sms = read(deliver(udh + gsm("hello"), esm_class=UDHI))
    assert isinstance(sms, InboundSms)
    assert (sms.body, sms.raw["udh"]) == ("hello", udh.hex())
