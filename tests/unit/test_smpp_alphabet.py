"""A carrier's default alphabet (``default_alphabet``): what data_coding 0 means to its SMSC,
how a deliver_sm with data_coding 0 is read and how a GSM-7 message is sent to it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pigeon.carriers.config import CarrierConfigError, SmppCarrierConfig, load_carriers
from pigeon.carriers.smpp_inbound import read_mo
from pigeon.carriers.smpp_pdu import DeliverSm
from pigeon.carriers.smpp_submit import PreparedMessage, prepare
from pigeon.domain.reassembly import Part, assemble
from pigeon.domain.segments import plan_segments
from pigeon.ports import InboundPart, InboundSms, OutboundMessage
from tests.unit.receipt_pdus import deliver_sm

BASE = SmppCarrierConfig(name="acme", host="smsc.example", system_id="pigeon", password="secret")
UDH_OCTETS = 6


def config(**overrides: Any) -> SmppCarrierConfig:
    return dataclasses.replace(BASE, **overrides)


def outbound(body: str) -> OutboundMessage:
    plan = plan_segments(body)
    return OutboundMessage(
        message_sid="SM" + "0" * 32,
        account_sid="AC" + "0" * 32,
        sender="+14155550100",
        recipient="+447700900123",
        body=body,
        encoding=plan.encoding,
        parts=plan.parts,
    )


def sent(body: str, alphabet: str, **overrides: Any) -> PreparedMessage:
    return prepare(outbound(body), config(default_alphabet=alphabet, **overrides), reference=0x2A)


def texts(prepared: PreparedMessage) -> list[bytes]:
    """Each part's encoded text, without its UDH."""
    return [p.payload[UDH_OCTETS:] if p.udhi else p.payload for p in prepared.parts]


# --- the option -------------------------------------------------------------------------------


def carrier_table(**keys: Any) -> dict[str, Any]:
    return {"carriers": [{"name": "acme", "host": "smsc.example", "system_id": "pigeon", "password": "x", **keys}]}


def test_the_default_alphabet_is_gsm7_unless_set() -> None:
    assert load_carriers(carrier_table()).carriers[0].default_alphabet == "gsm7"
    for value in ("gsm7", "latin1", "ascii"):
        assert load_carriers(carrier_table(default_alphabet=value)).carriers[0].default_alphabet == value


@pytest.mark.parametrize("value", ["latin-1", "utf8", "", 3])
def test_an_unknown_default_alphabet_is_refused_naming_the_key(value: object) -> None:
    with pytest.raises(CarrierConfigError, match=r"carriers\[0\] \('acme'\): default_alphabet must be"):
        load_carriers(carrier_table(default_alphabet=value))


# --- outbound ---------------------------------------------------------------------------------


def test_gsm7_stays_as_it_was() -> None:
    prepared = sent("café @ 5€", "gsm7")
    assert (prepared.encoding, prepared.data_coding) == ("GSM-7", 0)
    assert texts(prepared) == ["café @ 5€".encode("gsm03.38")]
    assert texts(prepared)[0][5:6] == b"\x00"  # "@" is septet 0 in GSM-7


def test_latin1_sends_a_latin1_text_with_data_coding_3() -> None:
    prepared = sent("café @ 5", "latin1")
    assert (prepared.encoding, prepared.data_coding) == ("Latin-1", 3)
    assert texts(prepared) == [b"caf\xe9 @ 5"]  # "@" is 0x40, not GSM-7's 0x00


@pytest.mark.parametrize("alphabet", ["latin1", "ascii"])
def test_a_gsm7_text_the_alphabet_cannot_carry_goes_as_ucs2(alphabet: str) -> None:
    body = "5€ please" if alphabet == "latin1" else "café"  # "€" is not in Latin-1, "é" not in ASCII
    prepared = sent(body, alphabet)
    assert (prepared.encoding, prepared.data_coding) == ("UCS-2", 8)
    assert texts(prepared) == [body.encode("utf-16-be")]


@pytest.mark.parametrize("alphabet", ["gsm7", "latin1", "ascii"])
def test_a_ucs2_text_stays_ucs2(alphabet: str) -> None:
    prepared = sent("Привет 👋", alphabet)
    assert (prepared.encoding, prepared.data_coding) == ("UCS-2", 8)


def test_ascii_sends_an_ascii_text_with_data_coding_1() -> None:
    prepared = sent("Hello @ [you] {x} ~", "ascii")
    assert (prepared.encoding, prepared.data_coding) == ("ASCII", 1)
    assert texts(prepared) == [b"Hello @ [you] {x} ~"]  # one octet each, no GSM-7 escapes


@pytest.mark.parametrize(
    ("length", "sizes"),
    [(140, [140]), (141, [134, 7]), (300, [134, 134, 32])],
)
@pytest.mark.parametrize(("alphabet", "char"), [("latin1", "é"), ("ascii", "a")])
def test_octet_alphabets_split_by_octets(alphabet: str, char: str, length: int, sizes: list[int]) -> None:
    prepared = sent(char * length, alphabet)
    assert [len(t) for t in texts(prepared)] == sizes
    if len(sizes) > 1:
        assert [p.payload[:UDH_OCTETS] for p in prepared.parts] == [
            bytes([0x05, 0x00, 0x03, 0x2A, len(sizes), n]) for n in range(1, len(sizes) + 1)
        ]
        assert prepared.reference == 0x2A
    assert b"".join(texts(prepared)).decode("latin-1") == char * length


def test_the_carrier_may_get_another_number_of_parts_than_gsm7_counts() -> None:
    body = "é" * 155  # GSM-7: 1 part of 155 septets; Latin-1: 155 octets, 2 parts
    assert len(plan_segments(body).parts) == 1
    assert len(sent(body, "latin1").parts) == 2


def test_sixteen_bit_references_leave_133_octets_a_part() -> None:
    prepared = sent("a" * 300, "latin1", sixteen_bit_reference=True)
    assert [len(p.payload) - 7 for p in prepared.parts] == [133, 133, 34]


# --- inbound ----------------------------------------------------------------------------------


def deliver(short_message: bytes, *, data_coding: int = 0, esm_class: int = 0) -> DeliverSm:
    return deliver_sm(short_message, data_coding=data_coding, esm_class=esm_class)


def read(d: DeliverSm, alphabet: str) -> InboundSms | InboundPart:
    return read_mo(
        d,
        carrier="acme",
        sender="+447700900123",
        recipient="+14155550100",
        reassembly_timeout=90.0,
        default_alphabet=alphabet,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("alphabet", "data", "text"),
    [
        ("gsm7", b"caf\x05 \x00", "café @"),
        ("latin1", b"caf\xe9 @", "café @"),
        ("ascii", b"cafe @", "cafe @"),
        ("ascii", b"caf\xe9", "café"),  # above 0x7F: kept, read as Latin-1, never dropped
    ],
)
def test_data_coding_0_is_read_in_the_carriers_default_alphabet(alphabet: str, data: bytes, text: str) -> None:
    sms = read(deliver(data), alphabet)
    assert isinstance(sms, InboundSms)
    assert sms.body == text and sms.raw["data_coding"] == 0


def test_explicit_data_codings_do_not_depend_on_the_default_alphabet() -> None:
    sms = read(deliver("café".encode("utf-16-be"), data_coding=8), "latin1")
    assert isinstance(sms, InboundSms) and sms.body == "café"


def test_parts_of_a_data_coding_0_message_are_joined_in_the_default_alphabet() -> None:
    udh = bytes([0x05, 0x00, 0x03, 0x07, 0x02])
    first = read(deliver(udh + b"\x01caf", esm_class=0x40), "latin1")
    second = read(deliver(udh + b"\x02\xe9!", esm_class=0x40), "latin1")
    assert isinstance(first, InboundPart) and isinstance(second, InboundPart)
    joined = assemble(
        [Part(sequence=p.sequence, data=p.data, data_coding=p.data_coding) for p in (first, second)],
        reference=7,
        bits=8,
        total=2,
    )
    assert joined.text == "café!"
