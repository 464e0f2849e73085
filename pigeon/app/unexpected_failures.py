"""A delivery whose handling raised something unexpected (a bug, not a receiver's answer).

Left to its lease, such a delivery came back at every lease's end and raised again: the
receiver was asked again every minute, for ever, and nobody was told. It is recorded instead
as a failed attempt (12400, Pigeon's internal failure), retried with the worker's backoff like
any other failure, and when the attempts run out it fails with the same alert and timeline
entry as a receiver that never answered. The lease still fences it: if another worker took the
delivery over meanwhile, its outcome stands and this one changes nothing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from pigeon.app.callback_delivery import Attempt, Outcome, Transactions, attempt_row, record_outcome
from pigeon.domain.errors import WebhookError
from pigeon.domain.retry import RetryPolicy
from pigeon.ports import Clock
from pigeon.store import webhooks as outbox

__all__ = ["INTERNAL_FAILURE", "record_unexpected"]

#: Twilio's "Internal Failure": the platform, not the receiver, failed to process the exchange.
INTERNAL_FAILURE = 12400


def record_unexpected(
    db: Transactions,
    clock: Clock,
    delivery: Mapping[str, Any],
    exc: BaseException,
    *,
    policy: RetryPolicy,
    duration_ms: float = 0.0,
) -> Outcome:
    """Record `exc` as one failed, retryable attempt at the claimed `delivery`."""
    # Retryable: a failure that depends on the moment (a row being written) may pass next time;
    # one that does not is bounded by the policy's attempts all the same.
    error = WebhookError(
        INTERNAL_FAILURE, f"Pigeon failed while delivering: {type(exc).__name__}: {exc}", retryable=True
    )
    now = clock.now()
    attempt = Attempt(delivery=delivery, at=now, duration_ms=duration_ms, response=None, error=error)
    with db.write() as conn:
        outcome = record_outcome(conn, attempt, now, policy, random.random)
        # Superseded: the delivery is no longer this claim's (another worker holds it, or the
        # handler settled it before raising), so no attempt of this claim's is invented.
        if outcome is not Outcome.SUPERSEDED:
            outbox.record_attempt(conn, **attempt_row(attempt))
    return outcome
