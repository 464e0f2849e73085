"""When to try again: a retry policy is a value that turns a failed attempt into a decision.

The policy never sleeps and keeps no state: the attempt count and the next due time live in
the store (``attempts``, ``next_attempt_at``), so a retry survives a restart and any worker
can make it (STYLE.md, "retry state in process memory" is what to avoid). Carrier submits and
webhook deliveries share the type; each failure says for itself whether another attempt can
help (``retryable`` on `CarrierError` and `WebhookError`).

Delay before attempt n+1, after attempt n failed:

    min(max_delay, base_delay * multiplier ** (n - 1)) * (1 - jitter * u),   u uniform in [0, 1)

Jitter only ever shortens the delay, so ``max_delay`` stays a true ceiling while retries of
many deliveries that failed together (a receiver that went down) spread out instead of
arriving at the receiver in one burst when it comes back. With ``jitter=0`` it is exact.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

__all__ = ["CARRIER_SUBMITS", "STATUS_CALLBACKS", "RetryDecision", "RetryPolicy", "Retryable"]


class Retryable(Protocol):
    """What a policy needs to know about a failure (`CarrierError`, `WebhookError`)."""

    @property
    def retryable(self) -> bool: ...


@dataclass(frozen=True)
class RetryDecision:
    """Try again: attempt number `attempt` is due `delay` seconds after the failure."""

    attempt: int
    delay: float

    def due(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.delay)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with a ceiling, a jitter fraction and a budget of attempts."""

    max_attempts: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (the first attempt counts)")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError("delays must satisfy 0 <= base_delay <= max_delay")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1, or later retries would come sooner")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction of the delay, between 0 and 1")

    def delay(self, attempt: int, *, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after attempt number `attempt` (1-based) failed."""
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        # Cap the exponent before computing: multiplier ** 1000 would overflow a float.
        exponent = min(attempt - 1, 64)
        ceiling = min(self.max_delay, self.base_delay * self.multiplier**exponent)
        if self.jitter == 0:
            return ceiling
        return ceiling * (1 - self.jitter * rand())

    def decide(
        self, attempt: int, error: Retryable, *, rand: Callable[[], float] = random.random
    ) -> RetryDecision | None:
        """After attempt number `attempt` failed with `error`: when to try again, or None to give up."""
        if not error.retryable or attempt >= self.max_attempts:
            return None
        return RetryDecision(attempt=attempt + 1, delay=self.delay(attempt, rand=rand))

    def total_delay(self) -> float:
        """The longest time from the first attempt to the last (jitter only shortens it)."""
        return sum(self.delay(n, rand=lambda: 0.0) for n in range(1, self.max_attempts))


#: Status callbacks: 20 attempts over about an hour (1, 2, 4 … 256 s, then every 5 minutes), so a
#: receiver that is down for a deploy or a short outage still gets every callback.
STATUS_CALLBACKS = RetryPolicy(max_attempts=20, base_delay=1.0, max_delay=300.0, multiplier=2.0, jitter=0.2)

#: Carrier submits refused with a retryable error (throttled, the SMSC's own trouble, no answer):
#: 10 attempts over about 4 minutes. An attempt that reached no carrier (none bound) is not one
#: of them: the message waits for a bind until its ValidityPeriod (30036), `pigeon.domain.refusals`.
CARRIER_SUBMITS = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=60.0, multiplier=2.0, jitter=0.1)
