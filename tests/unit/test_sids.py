"""SIDs and tokens: Twilio's shape, unique, and in the order they were made (see
`pigeon.domain.sids` for why the order matters to the store)."""

from __future__ import annotations

import time
import uuid

import pytest

from pigeon.domain.sids import Prefix, is_sid, new_sid, new_token, ordered_hex


def test_a_sid_has_twilios_shape() -> None:
    sid = new_sid(Prefix.SMS)
    assert is_sid(sid, Prefix.SMS) and len(sid) == 34
    assert sid == sid[:2] + sid[2:].lower()


def test_sids_begin_with_the_millisecond_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    sid = new_sid(Prefix.SMS)
    after = time.time_ns() // 1_000_000
    assert before <= int(sid[2:14], 16) <= after


def test_sids_made_later_sort_later_and_never_repeat() -> None:
    first = [new_sid(Prefix.SMS) for _ in range(2000)]
    time.sleep(0.002)
    later = new_sid(Prefix.SMS)
    assert len(set(first)) == len(first)
    assert all(s < later for s in first)
    # Within one millisecond the order is random: only the time part is ordered.
    assert [s[:14] for s in first] == sorted(s[:14] for s in first)


def test_tokens_are_version_7_uuids_in_the_order_they_were_made() -> None:
    tokens = [new_token() for _ in range(2000)]
    parsed = [uuid.UUID(t) for t in tokens]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert all(str(u) == t for u, t in zip(parsed, tokens, strict=True))
    assert len(set(tokens)) == len(tokens)
    now = time.time_ns() // 1_000_000
    assert all(now - 5_000 <= u.int >> 80 <= now for u in parsed)
    time.sleep(0.002)
    assert max(tokens) < new_token()


@pytest.mark.parametrize("digits", [8, 12, 20])
def test_ordered_hex_has_the_time_then_random_digits(digits: int) -> None:
    value = ordered_hex(digits)
    assert len(value) == 12 + digits
    int(value, 16)
