"""Per-sender pacing: rates by sender kind, per-sender overrides, slots and the ten-hour queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pigeon.domain.numbers import SenderKind
from pigeon.domain.pacing import DEFAULT_RATES, QUEUE_HOURS, PacingPolicy, pacing_policy, queue_key, reserve

NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)
LONG_CODE = "+14155550100"
TOLL_FREE = "+18005550100"
SHORT_CODE = "12345"
ALPHA = "MyShop"


@pytest.mark.parametrize(
    ("sender", "rate"),
    [(LONG_CODE, 1.0), ("+447700900123", 1.0), (TOLL_FREE, 3.0), (SHORT_CODE, 100.0), (ALPHA, 10.0)],
)
def test_twilio_default_rates_by_sender_kind(sender: str, rate: float) -> None:
    assert PacingPolicy().rate(sender) == rate


def test_default_rates_table_is_twilios() -> None:
    assert dict(DEFAULT_RATES) == {
        SenderKind.LONG_CODE: 1.0,
        SenderKind.TOLL_FREE: 3.0,
        SenderKind.SHORT_CODE: 100.0,
        SenderKind.ALPHANUMERIC: 10.0,
    }


def test_a_sender_that_is_no_sender_kind_is_paced_like_a_long_code() -> None:
    assert PacingPolicy().rate("") == 1.0
    assert PacingPolicy().rate("+1415") == 1.0


def test_configured_rates_replace_the_defaults_kind_by_kind() -> None:
    policy = PacingPolicy(rates={SenderKind.LONG_CODE: 30.0})
    assert policy.rate(LONG_CODE) == 30.0
    # kinds the configuration leaves out keep Twilio's default
    assert policy.rate(TOLL_FREE) == 3.0
    assert policy.rate(SHORT_CODE) == 100.0


def test_a_per_sender_override_wins_over_its_kind() -> None:
    policy = PacingPolicy(overrides={LONG_CODE: 25.0})
    assert policy.rate(LONG_CODE) == 25.0
    assert policy.rate("+14155550199") == 1.0


@pytest.mark.parametrize(
    ("sender", "segments", "seconds"),
    [(LONG_CODE, 1, 1.0), (LONG_CODE, 3, 3.0), (TOLL_FREE, 3, 1.0), (SHORT_CODE, 1, 0.01), (ALPHA, 2, 0.2)],
)
def test_duration_is_segments_over_rate(sender: str, segments: int, seconds: float) -> None:
    assert PacingPolicy().duration(sender, segments) == timedelta(seconds=seconds)


def test_a_message_of_zero_segments_still_occupies_one() -> None:
    assert PacingPolicy().duration(LONG_CODE, 0) == timedelta(seconds=1)


def test_queue_holds_ten_hours_of_traffic() -> None:
    policy = PacingPolicy()
    assert QUEUE_HOURS == 10
    assert policy.queue_capacity(LONG_CODE) == 36_000
    assert policy.queue_capacity(TOLL_FREE) == 108_000
    assert policy.queue_capacity(SHORT_CODE) == 3_600_000
    assert policy.queue_capacity(ALPHA) == 360_000


def test_queue_capacity_follows_overrides_and_tiny_rates() -> None:
    assert PacingPolicy(overrides={LONG_CODE: 2.0}).queue_capacity(LONG_CODE) == 72_000
    assert PacingPolicy(overrides={LONG_CODE: 0.0001}).queue_capacity(LONG_CODE) == 3


def test_a_free_sender_sends_now() -> None:
    assert reserve(None, NOW, timedelta(seconds=1)) == (NOW, NOW + timedelta(seconds=1))


def test_a_sender_free_since_earlier_sends_now_not_in_the_past() -> None:
    slot, free = reserve(NOW - timedelta(minutes=5), NOW, timedelta(seconds=1))
    assert (slot, free) == (NOW, NOW + timedelta(seconds=1))


def test_a_busy_sender_waits_for_its_next_free_slot() -> None:
    later = NOW + timedelta(seconds=7)
    assert reserve(later, NOW, timedelta(seconds=2)) == (later, later + timedelta(seconds=2))


def test_consecutive_reservations_are_spaced_by_their_duration() -> None:
    policy = PacingPolicy()
    free: datetime | None = None
    slots = []
    for segments in (1, 2, 1):
        slot, free = reserve(free, NOW, policy.duration(LONG_CODE, segments))
        slots.append((slot - NOW).total_seconds())
    assert slots == [0.0, 1.0, 3.0]
    assert free == NOW + timedelta(seconds=4)


def test_pacing_from_the_configuration_file_is_checked_entry_by_entry() -> None:
    policy = pacing_policy({"long_code": 2, "senders": {"+14155552000": 30.5}})
    assert policy.rate("+14155550100") == 2.0 and policy.rate("+14155552000") == 30.5
    assert policy.rate("Pigeon") == DEFAULT_RATES[SenderKind.ALPHANUMERIC]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"long_code": 0}, "[pacing] long_code = 0: a rate is a number of segments per second above 0"),
        ({"long_code": "fast"}, "[pacing] long_code = 'fast'"),
        ({"toll_free": float("inf")}, "[pacing] toll_free = inf"),
        ({"landline": 1}, "[pacing] landline: not a sender kind"),
        ({"senders": {"+14155552000": -1}}, "[pacing.senders] +14155552000 = -1"),
        ({"senders": 5}, "[pacing.senders] must be a table"),
    ]
    for section, problem in cases:
        with pytest.raises(ValueError) as refused:
            pacing_policy(section)
        assert problem in str(refused.value), (section, str(refused.value))


@pytest.mark.parametrize(
    ("sender", "key"),
    [
        (LONG_CODE, LONG_CODE),
        (TOLL_FREE, TOLL_FREE),
        (SHORT_CODE, SHORT_CODE),
        (ALPHA, "AC" + "1" * 32 + ":" + ALPHA),
        ("INFO 24", "AC" + "1" * 32 + ":INFO 24"),
    ],
)
def test_a_number_has_one_queue_and_an_alphanumeric_sender_one_per_account(sender: str, key: str) -> None:
    assert queue_key("AC" + "1" * 32, sender) == key
