"""The concatenation reference of a long message: derived from its SID and part count, so every
copy of the message, from any process, carries the same (`pigeon.domain.segments.concat_reference`)."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import pytest

from pigeon.carriers.config import SmppCarrierConfig
from pigeon.carriers.smpp_submit import prepare
from pigeon.domain.segments import concat_reference, plan_segments
from pigeon.ports import OutboundMessage

SID = "SM0193f0a1b2c3d4e5f60718293a4b5c6d"
LONG = "x" * 400  # GSM-7: three parts with an 8-bit reference UDH


def message(sid: str = SID, body: str = LONG) -> OutboundMessage:
    plan = plan_segments(body)
    return OutboundMessage(
        message_sid=sid,
        account_sid="AC" + "0" * 32,
        sender="+14155550100",
        recipient="+447700900123",
        body=body,
        encoding=plan.encoding,
        parts=plan.parts,
    )


def config(**overrides: Any) -> SmppCarrierConfig:
    base = SmppCarrierConfig(name="acme", host="smsc.example", port=2775, system_id="pigeon", password="x")
    return dataclasses.replace(base, **overrides)


def test_the_reference_is_the_first_octets_of_sha256_of_the_sid_and_the_part_count() -> None:
    # Pinned: a reference that changed between releases, or between processes (Python's salted
    # hash), would make a copy sent again after a crash a second message on the handset.
    assert hashlib.sha256(f"{SID}/3".encode()).digest()[:2] == (20351).to_bytes(2, "big")
    assert concat_reference(SID, 3, sixteen_bit=True) == 20351
    assert concat_reference(SID, 3) == 20351 & 0xFF == 127
    assert concat_reference(SID, 2, sixteen_bit=True) == 38985
    assert concat_reference("SM" + "0" * 32, 3, sixteen_bit=True) == 12823


def test_another_split_of_the_same_message_gets_another_reference() -> None:
    """Parts of a different split cannot be joined with the earlier ones (`ports.Continuation`)."""
    assert concat_reference(SID, 2) != concat_reference(SID, 3)


def test_references_of_different_messages_spread_over_the_whole_range() -> None:
    sids = [f"SM{n:032x}" for n in range(2000)]
    eight = {concat_reference(sid, 3) for sid in sids}
    sixteen = {concat_reference(sid, 3, sixteen_bit=True) for sid in sids}
    assert len(eight) == 256 and min(eight) == 0 and max(eight) == 255
    assert len(sixteen) > 1950 and max(sixteen) > 0xFF00  # about 30 pairs share one by chance


@pytest.mark.parametrize(
    ("overrides", "where"),
    [({}, "udh8"), ({"sixteen_bit_reference": True}, "udh16"), ({"long_messages": "sar"}, "sar")],
)
def test_every_part_carries_the_messages_own_reference_however_often_it_is_prepared(
    overrides: dict[str, Any], where: str
) -> None:
    first = prepare(message(), config(**overrides))
    again = prepare(message(), config(**overrides))  # another process, after a crash
    assert first == again
    wide = where != "udh8"
    expected = concat_reference(SID, len(first.parts), sixteen_bit=wide)
    assert first.reference == expected
    for seq, part in enumerate(first.parts, start=1):
        if where == "sar":
            assert part.sar == (expected, len(first.parts), seq) and not part.udhi
        elif wide:
            assert part.payload[:7] == bytes((6, 8, 4, expected >> 8, expected & 0xFF, len(first.parts), seq))
        else:
            assert part.payload[:6] == bytes((5, 0, 3, expected, len(first.parts), seq))


def test_a_given_reference_is_kept_cut_to_the_carriers_width() -> None:
    """A continuation's: the one its earlier parts went with (a counter's, for holds recorded
    before references were derived)."""
    assert prepare(message(), config(), 0x2A).reference == 0x2A
    assert prepare(message(), config(), 0x1234).reference == 0x34
    assert prepare(message(), config(sixteen_bit_reference=True), 0x1234).reference == 0x1234


def test_a_one_part_message_has_no_reference() -> None:
    assert prepare(message(body="short"), config()).reference is None
