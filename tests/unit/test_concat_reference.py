"""The concatenation reference of a long message: derived from its SID and part count, so every
copy of the message, from any process, carries the same (`pigeon.domain.segments.concat_reference`)."""

from __future__ import annotations

import hashlib

from pigeon.domain.segments import concat_reference

SID = "SM0193f0a1b2c3d4e5f60718293a4b5c6d"


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
