"""Receipt rules: the carrier's receipt text as carriers really send it, and what each state means.

Carriers disagree on case, padding, separators and id formats (DESIGN.md §7: receipts that
never match their message); the parser must read them all and keep the values as sent
(canonicalising ids is the connector's job, pigeon.carriers.smpp_ids).
"""

from __future__ import annotations

import pytest

from pigeon.domain.receipts import (
    ERR_CODES,
    STATES,
    ParsedReceipt,
    ReceiptOutcome,
    format_receipt_text,
    looks_like_receipt,
    outcome_of,
    parse_receipt_text,
    table_key,
)
from pigeon.domain.status import MessageStatus

S = MessageStatus

STANDARD = (
    "id:2345678901 sub:001 dlvrd:001 submit date:2601151200 done date:2601151201 stat:DELIVRD err:000 text:Hello there"
)


def test_the_standard_appendix_b_text() -> None:
    assert parse_receipt_text(STANDARD) == ParsedReceipt(
        carrier_id="2345678901",
        stat="DELIVRD",
        err="000",
        submit_date="2601151200",
        done_date="2601151201",
        text="Hello there",
    )


@pytest.mark.parametrize(
    ("text", "carrier_id", "stat", "err"),
    [
        # upper case keys, as several SMSCs send them
        (
            "ID:ABC123 SUB:001 DLVRD:001 SUBMIT DATE:2601151200 DONE DATE:2601151201 STAT:DELIVRD ERR:000 TEXT:",
            "ABC123",
            "DELIVRD",
            "000",
        ),
        # mixed case keys and a lower-case state: the state is upper-cased
        (
            "Id:77 Sub:001 Dlvrd:000 Submit Date:2601151200 Done Date:2601151201 Stat:undeliv Err:001 Text:x",
            "77",
            "UNDELIV",
            "001",
        ),
        # spaces around the colon, doubled spaces between fields, tabs
        ("id : 12345  sub:001\tdlvrd:001  stat : DELIVRD   err : 000", "12345", "DELIVRD", "000"),
        # hex ids, upper and lower case, with and without a 0x prefix: kept exactly as sent
        ("id:0x1A2B3C stat:DELIVRD err:000", "0x1A2B3C", "DELIVRD", "000"),
        ("id:00a1f3 stat:DELIVRD err:000", "00a1f3", "DELIVRD", "000"),
        ("id:C449AB9744F47B6AF1879E49E75E4F40 stat:ACCEPTD err:0", "C449AB9744F47B6AF1879E49E75E4F40", "ACCEPTD", "0"),
        # leading zeros are kept: the connector canonicalises, the parser does not guess
        ("id:0000012345 stat:DELIVRD err:000", "0000012345", "DELIVRD", "000"),
        # a UUID id with dashes
        (
            "id:5f0c6d2e-1b7a-4c1e-9d3f-2a6b8c0e4f11 stat:REJECTD err:004",
            "5f0c6d2e-1b7a-4c1e-9d3f-2a6b8c0e4f11",
            "REJECTD",
            "004",
        ),
        # single-digit and unpadded err values
        ("id:9 stat:UNDELIV err:2", "9", "UNDELIV", "2"),
        # fields in another order
        ("stat:EXPIRED err:007 id:42 sub:001 dlvrd:000", "42", "EXPIRED", "007"),
        # a trailing newline or CRLF
        ("id:42 stat:DELIVRD err:000\r\n", "42", "DELIVRD", "000"),
        # leading blanks
        ("   id:42 stat:DELIVRD err:000", "42", "DELIVRD", "000"),
        # underscores instead of the space in the date keys (some SMSC simulators)
        (
            "id:42 sub:001 dlvrd:001 submit_date:2601151200 done_date:2601151201 stat:DELIVRD err:000",
            "42",
            "DELIVRD",
            "000",
        ),
        # NUL terminators left by a C string
        ("id:42 stat:UNDELIV err:002\x00", "42", "UNDELIV", "002"),
        ("id:42\x00 stat:DELIVRD\x00 err:000\x00 text:\x00", "42", "DELIVRD", "000"),
    ],
)
def test_real_world_variants(text: str, carrier_id: str, stat: str, err: str) -> None:
    parsed = parse_receipt_text(text)
    assert (parsed.carrier_id, parsed.stat, parsed.err) == (carrier_id, stat, err)
    assert looks_like_receipt(text)


def test_dates_are_read_with_any_spacing_or_separator() -> None:
    for text in (
        "id:1 submit date:2601151200 done date:2601151201 stat:DELIVRD",
        "id:1 submit  date:2601151200 done  date:2601151201 stat:DELIVRD",
        "id:1 submit_date:2601151200 done_date:2601151201 stat:DELIVRD",
        "id:1 SUBMIT DATE:2601151200 DONE DATE:2601151201 stat:DELIVRD",
    ):
        parsed = parse_receipt_text(text)
        assert (parsed.submit_date, parsed.done_date, parsed.stat) == ("2601151200", "2601151201", "DELIVRD"), text


def test_missing_fields_are_none() -> None:
    parsed = parse_receipt_text("id:42 stat:DELIVRD")
    assert parsed == ParsedReceipt("42", "DELIVRD", None, None, None, None)
    only_id = parse_receipt_text("id:42")
    assert only_id.carrier_id == "42" and only_id.stat is None
    assert not looks_like_receipt("id:42")
    assert not looks_like_receipt("stat:DELIVRD err:000")


def test_empty_values_are_none_not_empty_strings() -> None:
    parsed = parse_receipt_text("id: sub:001 dlvrd:001 submit date: done date: stat:DELIVRD err: text:")
    assert parsed.carrier_id is None
    assert parsed.submit_date is None and parsed.done_date is None and parsed.err is None
    assert parsed.stat == "DELIVRD"
    assert not looks_like_receipt("id: stat:DELIVRD")


def test_ordinary_text_is_not_a_receipt() -> None:
    for text in ("", "   ", "Hello, see you at 5", "STOP", "Your code is 123456"):
        assert not looks_like_receipt(text), text
    assert parse_receipt_text("") == ParsedReceipt(None, None, None, None, None, None)


def test_the_text_field_keeps_colons_and_the_first_value_of_a_key_wins() -> None:
    parsed = parse_receipt_text("id:42 sub:001 dlvrd:001 stat:DELIVRD err:000 text:Meet at 10:30 id:99")
    assert parsed.carrier_id == "42"
    assert parsed.text == "Meet at 10:30"
    assert parse_receipt_text("id:42 stat:DELIVRD text:valid:yes").text == "valid:yes"


def test_format_then_parse_round_trips() -> None:
    text = format_receipt_text("abc123", "UNDELIV", err="002", submit_date="2601151200", done_date="2601151201")
    assert text.startswith("id:abc123 sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:UNDELIV")
    parsed = parse_receipt_text(text)
    assert (parsed.carrier_id, parsed.stat, parsed.err) == ("abc123", "UNDELIV", "002")
    assert (parsed.submit_date, parsed.done_date) == ("2601151200", "2601151201")
    delivered = parse_receipt_text(format_receipt_text("x1", "DELIVRD", text="a" * 40))
    assert "dlvrd:001" in format_receipt_text("x1", "DELIVRD")
    assert delivered.text == "a" * 20  # the standard keeps the first 20 characters


# -- outcome_of: the one table from receipt state to status and code --------------------------


@pytest.mark.parametrize(
    ("stat", "err", "status", "code", "final"),
    [
        ("DELIVRD", "000", S.DELIVERED, None, True),
        ("DELIVRD", "001", S.DELIVERED, None, True),  # a delivered receipt never carries a code
        ("UNDELIV", None, S.UNDELIVERED, 30003, True),
        ("UNDELIV", "000", S.UNDELIVERED, 30003, True),  # err 000 means nothing: the state's default
        ("UNDELIV", "001", S.UNDELIVERED, 30003, True),
        ("UNDELIV", "002", S.UNDELIVERED, 30005, True),
        ("UNDELIV", "003", S.UNDELIVERED, 30006, True),
        ("UNDELIV", "004", S.UNDELIVERED, 30007, True),
        ("UNDELIV", "005", S.UNDELIVERED, 30008, True),
        ("UNDELIV", "006", S.UNDELIVERED, 30004, True),
        ("UNDELIV", "007", S.UNDELIVERED, 30036, True),
        ("UNDELIV", "999", S.UNDELIVERED, 30003, True),  # unknown err: the state's default
        ("EXPIRED", None, S.UNDELIVERED, 30003, True),
        ("DELETED", None, S.UNDELIVERED, 30008, True),
        ("REJECTD", None, S.UNDELIVERED, 30007, True),
        ("REJECTD", "002", S.UNDELIVERED, 30005, True),
        ("UNKNOWN", None, S.UNDELIVERED, 30008, True),
        ("FAILED", None, S.FAILED, 30008, True),
        ("FAILED", "003", S.FAILED, 30006, True),
        ("ACCEPTD", None, None, None, False),
        ("ENROUTE", "000", None, None, False),
        ("BUFFRED", None, None, None, False),
    ],
)
def test_outcome_table(stat: str, err: str | None, status: MessageStatus | None, code: int | None, final: bool) -> None:
    assert outcome_of(stat, err) == ReceiptOutcome(status, code, final)


@pytest.mark.parametrize("err", ["2", "02", "002", "0002", " 002 ", "002\x00"])
def test_err_values_map_whatever_their_padding(err: str) -> None:
    assert outcome_of("UNDELIV", err).error_code == 30005


@pytest.mark.parametrize("stat", ["delivrd", "Delivrd", " DELIVRD ", "DELIVRD\x00"])
def test_states_are_read_whatever_their_case_or_padding(stat: str) -> None:
    assert outcome_of(stat).status is S.DELIVERED


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        # Full words some gateways send instead of the seven-letter SMPP states.
        ("DELIVERED", S.DELIVERED),
        ("UNDELIVERABLE", S.UNDELIVERED),
        ("UNDELIVERED", S.UNDELIVERED),
        ("REJECTED", S.UNDELIVERED),
        ("ACCEPTED", None),
    ],
)
def test_spelled_out_states(stat: str, status: MessageStatus | None) -> None:
    assert outcome_of(stat).status is status


def test_an_unknown_or_missing_state_is_unknown_not_delivered() -> None:
    for stat in (None, "", "WHATEVER"):
        assert outcome_of(stat) == ReceiptOutcome(S.UNDELIVERED, 30008, True)


def test_non_decimal_err_values_fall_back_to_the_state_default() -> None:
    assert outcome_of("UNDELIV", "0x0B").error_code == 30003
    assert outcome_of("REJECTD", "abc").error_code == 30007


def test_every_final_failure_state_has_a_code_and_every_code_is_a_delivery_error() -> None:
    for stat, outcome in STATES.items():
        if outcome.final and outcome.status is not S.DELIVERED:
            assert outcome.error_code is not None, stat
        if not outcome.final:
            assert outcome.status is None and outcome.error_code is None, stat
    assert all(30000 <= code < 31000 for code in ERR_CODES.values())


def test_the_carriers_own_code_comes_before_pigeons_table_and_the_states() -> None:
    assert outcome_of("UNDELIV", "001").error_code == 30003  # Pigeon's table
    assert outcome_of("UNDELIV", "001", 30005).error_code == 30005  # the carrier's receipt_errors
    assert outcome_of("REJECTD", "abc", 30004) == ReceiptOutcome(S.UNDELIVERED, 30004, True)
    assert outcome_of("DELIVRD", "001", 30005) == ReceiptOutcome(S.DELIVERED, None, True)
    assert outcome_of("ENROUTE", "001", 30005) == ReceiptOutcome(None, None, False)


@pytest.mark.parametrize(
    ("err", "key"),
    [
        ("1", "001"),
        ("001", "001"),
        ("0001", "001"),
        (" 27 ", "027"),
        ("1234", "1234"),
        ("00b", "00B"),
        ("", None),
        (None, None),
    ],
)
def test_table_keys_read_an_err_value_in_one_form(err: str | None, key: str | None) -> None:
    assert table_key(err) == key
