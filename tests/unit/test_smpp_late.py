"""The submits a session gave up on, remembered for a while so that a late submit_sm_resp
still names its message, and what a late answer tells: an acceptance with the carrier's id,
or a refusal (pigeon/carriers/smpp_late.py)."""

from __future__ import annotations

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.smpp_late import ForgottenSubmit, ForgottenSubmits, late_acceptance, late_refusal
from pigeon.ports import LateAcceptance, LateRefusal

SUBMIT = ForgottenSubmit(message_sid="SM1", account_sid="AC1", part=2, parts=3)


class Ticking:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_forgotten_sequence_is_taken_once() -> None:
    memory = ForgottenSubmits()
    memory.remember(7, SUBMIT)
    assert memory.take(8) is None
    assert memory.take(7) == SUBMIT
    assert memory.take(7) is None and len(memory) == 0


def test_a_sequence_is_remembered_only_for_a_while() -> None:
    clock = Ticking()
    memory = ForgottenSubmits(keep_for=600.0, clock=clock)
    memory.remember(1, SUBMIT)
    clock.now += 300
    memory.remember(2, SUBMIT)
    clock.now += 301  # sequence 1 is 601 s old, sequence 2 301 s
    assert memory.take(1) is None
    assert memory.take(2) == SUBMIT


def test_expired_sequences_are_dropped_as_new_ones_come() -> None:
    clock = Ticking()
    memory = ForgottenSubmits(keep_for=10.0, clock=clock)
    for sequence in range(100):
        memory.remember(sequence, SUBMIT)
    clock.now += 11
    memory.remember(100, SUBMIT)
    assert len(memory) == 1


def test_only_the_newest_are_kept() -> None:
    memory = ForgottenSubmits(capacity=3)
    for sequence in range(1, 6):
        memory.remember(sequence, ForgottenSubmit(message_sid=f"SM{sequence}", account_sid="AC1", part=1, parts=1))
    assert len(memory) == 3
    assert memory.take(1) is None and memory.take(2) is None
    assert [taken.message_sid for s in (3, 4, 5) if (taken := memory.take(s)) is not None] == ["SM3", "SM4", "SM5"]


def test_a_sequence_used_again_after_it_wrapped_names_its_newer_submit() -> None:
    memory = ForgottenSubmits(capacity=2)
    memory.remember(1, SUBMIT)
    newer = ForgottenSubmit(message_sid="SM2", account_sid="AC1", part=1, parts=1)
    memory.remember(1, newer)
    memory.remember(2, SUBMIT)
    assert len(memory) == 2
    assert memory.take(1) == newer


def test_a_late_acceptance_carries_the_canonical_id_and_the_part() -> None:
    body = b"00A1F3\x00"
    late = late_acceptance("acme", SUBMIT, status=0, body=body, id_format="hex_to_decimal", sequence=7)
    assert late == LateAcceptance(
        carrier="acme",
        message_sid="SM1",
        account_sid="AC1",
        carrier_id=str(0xA1F3),
        part=2,
        parts=3,
        raw={"message_id": "00A1F3", "sequence": 7},
    )


def test_a_late_refusal_or_an_answer_without_id_is_no_acceptance() -> None:
    refused = late_acceptance("acme", SUBMIT, status=pdu.ESME_RX_T_APPN, body=b"", id_format="as_is", sequence=7)
    assert refused is None
    assert late_acceptance("acme", SUBMIT, status=0, body=b"\x00", id_format="as_is", sequence=7) is None


def test_a_late_refusal_names_the_part_and_the_carriers_status() -> None:
    refused = late_refusal("acme", SUBMIT, command_id=pdu.SUBMIT_SM_RESP, status=pdu.ESME_RX_T_APPN, sequence=7)
    assert refused == LateRefusal(
        carrier="acme",
        message_sid="SM1",
        account_sid="AC1",
        part=2,
        parts=3,
        command_status=pdu.ESME_RX_T_APPN,
        status_name="ESME_RX_T_APPN",
        raw={"sequence": 7, "command": "submit_sm_resp"},
    )


def test_a_late_generic_nack_is_a_refusal_and_a_vendor_code_keeps_its_value() -> None:
    nack = late_refusal("acme", SUBMIT, command_id=pdu.GENERIC_NACK, status=pdu.ESME_RINVCMDID, sequence=9)
    assert nack is not None and nack.raw["command"] == "generic_nack" and nack.status_name == "ESME_RINVCMDID"
    vendor = late_refusal("acme", SUBMIT, command_id=pdu.SUBMIT_SM_RESP, status=0x401, sequence=9)
    assert vendor is not None and vendor.status_name == "0x00000401"


def test_a_late_acceptance_or_another_answer_is_no_refusal() -> None:
    assert late_refusal("acme", SUBMIT, command_id=pdu.SUBMIT_SM_RESP, status=0, sequence=7) is None
    assert late_refusal("acme", SUBMIT, command_id=pdu.ENQUIRE_LINK_RESP, status=pdu.ESME_RSYSERR, sequence=7) is None
