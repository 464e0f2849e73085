"""RetryPolicy: exponential backoff with a ceiling, jitter that only shortens, a budget of attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from pigeon.domain.errors import CarrierPermanentError, CarrierRetryableError, WebhookError
from pigeon.domain.retry import CARRIER_SUBMITS, STATUS_CALLBACKS, RetryDecision, RetryPolicy


@dataclass
class Failure:
    retryable: bool


def test_exponential_then_capped_without_jitter() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=30.0, multiplier=2.0, jitter=0)
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert policy.decide(1, Failure(True)) == RetryDecision(attempt=2, delay=1.0)
    assert policy.decide(5, Failure(True)) == RetryDecision(attempt=6, delay=16.0)


def test_gives_up_after_the_budget_or_on_a_permanent_error() -> None:
    policy = RetryPolicy(max_attempts=3, jitter=0)
    assert policy.decide(2, Failure(True)) is not None
    assert policy.decide(3, Failure(True)) is None
    assert policy.decide(1, Failure(False)) is None
    assert RetryPolicy(max_attempts=1).decide(1, Failure(True)) is None


def test_domain_errors_carry_their_own_retryability() -> None:
    policy = RetryPolicy(jitter=0)
    assert policy.decide(1, WebhookError(11205, "refused", retryable=True)) is not None
    assert policy.decide(1, WebhookError(11200, "HTTP 404", retryable=False, status=404)) is None
    assert policy.decide(1, CarrierRetryableError(carrier_code="ESME_RTHROTTLED")) is not None
    assert policy.decide(1, CarrierPermanentError(carrier_code="ESME_RINVDSTADR")) is None


def test_jitter_only_shortens_and_stays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay=10.0, max_delay=10.0, jitter=0.25)
    assert policy.delay(1, rand=lambda: 0.0) == 10.0
    assert policy.delay(1, rand=lambda: 0.5) == pytest.approx(8.75)
    assert policy.delay(1, rand=lambda: 0.999999) == pytest.approx(7.5, abs=1e-4)
    for _ in range(200):
        assert 7.5 <= policy.delay(1) <= 10.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert RetryPolicy(max_delay=60.0, jitter=0).delay(10_000) == 60.0


def test_due_time() -> None:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    assert RetryDecision(attempt=2, delay=1.5).due(now) == now + timedelta(seconds=1.5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1.0},
        {"base_delay": 10.0, "max_delay": 5.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"jitter": -0.1},
    ],
)
def test_nonsense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().delay(0)


def test_shipped_policies() -> None:
    # Status callbacks outlast a receiver's deploy or short outage: about an hour.
    assert 50 * 60 < STATUS_CALLBACKS.total_delay() < 70 * 60
    assert STATUS_CALLBACKS.max_delay == 300.0
    # Carrier refusals: a few minutes of backoff, bounded anyway by the ValidityPeriod.
    assert 2 * 60 < CARRIER_SUBMITS.total_delay() < 10 * 60
