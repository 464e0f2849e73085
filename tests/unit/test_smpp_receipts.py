"""Unit tests for the state pigeon.carriers.smpp_inbound.receipt_from gives a receipt: an
intermediate notification (esm_class 0x20) is never final, a delivery receipt (0x04) may be."""

from __future__ import annotations

import pytest

from pigeon.carriers.smpp_inbound import receipt_from
from pigeon.carriers.smpp_pdu import TLV_MESSAGE_STATE, TLV_RECEIPTED_MESSAGE_ID
from pigeon.domain.receipts import outcome_of
from pigeon.ports import Receipt
from tests.unit.receipt_pdus import receipt_sm

RECEIPT, INTERMEDIATE = 0x04, 0x20
ID_TLV = {TLV_RECEIPTED_MESSAGE_ID: b"4200000\x00"}


def receipt(text: str, *, esm_class: int, tlvs: dict[int, bytes] | None = None) -> Receipt:
    deliver = receipt_sm(text, {**ID_TLV, **(tlvs or {})}, esm_class=esm_class)
    made = receipt_from(deliver, carrier="acme", id_format="as_is")
    assert made is not None
    return made


def test_an_intermediate_notification_without_a_state_is_enroute() -> None:
    # It read UNKNOWN, a final state (undelivered, 30008), and the DELIVRD after it was ignored.
    r = receipt("Message buffered, retrying", esm_class=INTERMEDIATE)
    assert r.stat == "ENROUTE" and not outcome_of(r.stat).final


@pytest.mark.parametrize(
    ("text", "tlvs", "said"),
    [
        ("id:4200000 stat:UNDELIV err:001", {}, "UNDELIV"),
        ("id:4200000 stat:DELIVRD err:000", {}, "DELIVRD"),
        ("id:4200000 stat:NO_SUCH_STATE err:000", {}, "NO_SUCH_STATE"),
        ("", {TLV_MESSAGE_STATE: bytes([5])}, "UNDELIV"),
    ],
    ids=["undeliv", "delivrd", "a-state-not-known", "message_state-tlv"],
)
def test_an_intermediate_notification_saying_a_final_state_is_enroute_and_keeps_what_it_said(
    text: str, tlvs: dict[int, bytes], said: str
) -> None:
    r = receipt(text, esm_class=INTERMEDIATE, tlvs=tlvs)
    assert r.stat == "ENROUTE" and not outcome_of(r.stat).final
    assert f"intermediate_notification_stat={said}" in r.raw


@pytest.mark.parametrize("stat", ["ACCEPTD", "BUFFRED", "ENROUTE"])
def test_an_intermediate_notification_keeps_a_state_that_is_not_final(stat: str) -> None:
    r = receipt(f"id:4200000 stat:{stat} err:000", esm_class=INTERMEDIATE)
    assert r.stat == stat and "intermediate_notification_stat" not in r.raw


def test_a_delivery_receipt_keeps_its_final_state_and_without_one_is_unknown() -> None:
    assert receipt("id:4200000 stat:UNDELIV err:001", esm_class=RECEIPT).stat == "UNDELIV"
    assert receipt("no state here", esm_class=RECEIPT).stat == "UNKNOWN"
