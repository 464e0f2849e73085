"""SIDs and tokens: Twilio's shape, unique, and in the order they were made (see
`pigeon.domain.sids` for why the order matters to the store)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from pigeon.domain.sids import Prefix, is_sid, made_at, new_sid, new_token, ordered_hex


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


def test_a_sid_says_when_it_was_made() -> None:
    now = datetime.now(UTC)
    sid = new_sid(Prefix.SMS)
    made = made_at(sid, now=now)
    assert made is not None and abs((made - now).total_seconds()) < 1
    at = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert made_at("SM" + f"{int(at.timestamp() * 1000):012x}" + "0" * 20, now=now) == at
    # Leading digits that cannot be a time: random (made before SIDs carried one), in the
    # future, or not a SID at all.
    assert made_at("SM" + "f" * 32, now=now) is None
    assert made_at("SM" + "0" * 32, now=now) is None
    assert made_at("SM" + f"{int((now.timestamp() + 3 * 86400) * 1000):012x}" + "0" * 20, now=now) is None
    assert made_at("not-a-sid", now=now) is None
