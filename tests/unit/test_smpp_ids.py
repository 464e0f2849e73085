"""Unit tests for pigeon.carriers.smpp_ids: a receipt's id always equals its submit's id.

The pairs below are the spellings carriers really mix (DESIGN.md §7): leading zeros, case,
hexadecimal answers to submit_sm with decimal receipts and the reverse, NULs and padding.
"""

from __future__ import annotations

import struct

import pytest

from pigeon.carriers.smpp_ids import ID_FORMATS, IdFormat, IdSource, canonical_id
from pigeon.carriers.smpp_inbound import receipt_from
from pigeon.carriers.smpp_pdu import TLV_MESSAGE_STATE, TLV_NETWORK_ERROR_CODE, TLV_RECEIPTED_MESSAGE_ID
from tests.unit.receipt_pdus import receipt_sm

SUBMIT, TLV, TEXT = IdSource.SUBMIT, IdSource.RECEIPT_TLV, IdSource.RECEIPT_TEXT


@pytest.mark.parametrize(
    ("id_format", "submit_id", "receipt_text_id", "canonical"),
    [
        ("as_is", "00A1F3", "a1f3", "a1f3"),
        ("as_is", "0000012345", "12345", "12345"),
        ("as_is", "  abc-DEF\x00", "ABC-def", "abc-def"),
        ("as_is", "000", "0", "0"),
        ("exact", "AbC9", " AbC9 ", "AbC9"),
        ("hex_to_decimal", "00003E9324", "4100900", "4100900"),
        ("hex_to_decimal", "0x3e9324", "0004100900", "4100900"),
        ("decimal_to_hex", "4100900", "3E9324", "4100900"),
        ("decimal_to_hex", "0004100900", "003e9324", "4100900"),
    ],
)
def test_submit_and_receipt_spellings_meet_in_one_canonical_form(
    id_format: IdFormat, submit_id: str, receipt_text_id: str, canonical: str
) -> None:
    assert canonical_id(submit_id, SUBMIT, id_format) == canonical
    assert canonical_id(receipt_text_id, TEXT, id_format) == canonical
    # The TLV carries the submit_sm_resp's spelling (SMPP 3.4 §5.3.2.12).
    assert canonical_id(submit_id, TLV, id_format) == canonical


def test_exact_keeps_case_sensitive_ids_apart() -> None:
    assert canonical_id("aBc", SUBMIT, "exact") != canonical_id("AbC", TEXT, "exact")
    assert canonical_id("aBc", SUBMIT, "as_is") == canonical_id("AbC", TEXT, "as_is")


@pytest.mark.parametrize("id_format", ID_FORMATS)
def test_ids_that_do_not_parse_in_the_announced_base_fall_back_to_text(id_format: IdFormat) -> None:
    # "msg-7Z" is neither hex nor decimal: it is kept (trimmed, and for all but exact, folded).
    expected = "msg-7Z" if id_format == "exact" else "msg-7z"
    assert canonical_id(" msg-7Z ", SUBMIT, id_format) == expected
    assert canonical_id(" msg-7Z ", TEXT, id_format) == expected
    assert canonical_id("", SUBMIT, id_format) == ""


def test_numeric_formats_refuse_what_int_would_accept() -> None:
    assert canonical_id("1_000", TEXT, "hex_to_decimal") == "1_000"
    assert canonical_id("+5", TEXT, "hex_to_decimal") == "+5"
    assert canonical_id("0x", SUBMIT, "hex_to_decimal") == "x"  # as_is: leading zero dropped


def test_numeric_ids_round_trip_for_many_values() -> None:
    for number in [0, 1, 9, 10, 15, 16, 255, 4096, 2**31 - 1, 2**63 + 7, 10**30]:
        hexa, deci = f"{number:X}", str(number)
        assert canonical_id(hexa.zfill(12), SUBMIT, "hex_to_decimal") == canonical_id(deci, TEXT, "hex_to_decimal")
        assert canonical_id(deci.zfill(12), SUBMIT, "decimal_to_hex") == canonical_id(
            hexa.lower(), TEXT, "decimal_to_hex"
        )


def test_receipt_takes_the_tlv_id_in_submit_format_before_the_text_id() -> None:
    text = "id:4100900 sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:DELIVRD err:000 text:hi"
    tlvs = {TLV_RECEIPTED_MESSAGE_ID: b"00003E9324\x00", TLV_MESSAGE_STATE: bytes([2])}
    receipt = receipt_from(receipt_sm(text, tlvs), carrier="acme", id_format="hex_to_decimal")
    assert receipt is not None
    assert receipt.carrier_id == canonical_id("00003E9324", SUBMIT, "hex_to_decimal") == "4100900"
    assert (receipt.stat, receipt.err, receipt.done_date) == ("DELIVRD", "000", "2601151201")
    assert receipt.raw.startswith(text) and "receipted_message_id=00003E9324" in receipt.raw


def test_receipt_without_tlv_uses_the_text_id_in_receipt_format() -> None:
    text = "id:4100900 sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:UNDELIV err:002 text:"
    receipt = receipt_from(receipt_sm(text), carrier="acme", id_format="hex_to_decimal")
    assert receipt is not None
    assert (receipt.carrier_id, receipt.stat, receipt.err) == ("4100900", "UNDELIV", "002")
    assert receipt.raw == text.strip()


def test_receipt_made_of_tlvs_only() -> None:
    tlvs = {
        TLV_RECEIPTED_MESSAGE_ID: b"ABC123\x00",
        TLV_MESSAGE_STATE: bytes([5]),
        TLV_NETWORK_ERROR_CODE: bytes([3]) + struct.pack("!H", 27),
    }
    receipt = receipt_from(receipt_sm("", tlvs), carrier="acme", id_format="as_is")
    assert receipt is not None
    assert (receipt.carrier_id, receipt.stat, receipt.err) == ("abc123", "UNDELIV", "027")
    assert "message_state=5" in receipt.raw


def test_receipt_gets_the_code_the_carriers_table_gives_its_err() -> None:
    text = "id:4100900 sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:UNDELIV err:27 text:"
    table = {"027": 30003, "001": 30005}
    receipt = receipt_from(receipt_sm(text), carrier="acme", id_format="as_is", error_codes=table)
    assert receipt is not None and (receipt.err, receipt.error_code) == ("27", 30003)
    tlvs = {TLV_RECEIPTED_MESSAGE_ID: b"ABC\x00", TLV_NETWORK_ERROR_CODE: bytes([3]) + struct.pack("!H", 1)}
    receipt = receipt_from(receipt_sm("", tlvs), carrier="acme", id_format="as_is", error_codes=table)
    assert receipt is not None and (receipt.err, receipt.error_code) == ("001", 30005)
    other = text.replace("err:27", "err:099")
    receipt = receipt_from(receipt_sm(other), carrier="acme", id_format="as_is", error_codes=table)
    assert receipt is not None and receipt.error_code is None  # Pigeon's own table decides


def test_a_state_and_err_key_comes_before_the_err_alone() -> None:
    text = "id:4100900 sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:{} err:001 text:"
    table = {"001": 30003, "REJECTD:001": 30007}
    codes = [
        receipt_from(receipt_sm(text.format(stat)), carrier="acme", id_format="as_is", error_codes=table)
        for stat in ("REJECTD", "UNDELIV")
    ]
    assert [r.error_code if r else None for r in codes] == [30007, 30003]


def test_receipt_without_any_id_is_none() -> None:
    assert receipt_from(receipt_sm("stat:DELIVRD err:000"), carrier="acme", id_format="as_is") is None
