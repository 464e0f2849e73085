"""What one attempt's refusals mean together, every carrier of the route having answered.

An attempt tries the carriers of the message's route in order (`pigeon.app.dispatch_jobs`);
when none took the message, their refusals decide what happens next:

* *Nobody reached* (`unreached`): every carrier refused with `CarrierUnavailable` (no bind)
  and none took a part. Nothing happened on the network, so the attempt is not counted
  against the retry budget; the message waits for a bind, with a backoff that grows with
  how long it has waited up to `UNREACHED_MAX_DELAY`, until its ValidityPeriod ends it
  (30036), as Twilio keeps a message queued while its carrier is out of reach.
* *Worth another attempt* (`retry_with`): some carrier refused in a way that may pass later
  (throttled, its own trouble, no answer). The message is retried with backoff, within the
  budget, even if other carriers of the route refused for good: the one that only
  throttled would take it.
* *Refused for good*: every carrier refused permanently, or one refused for a reason about
  the recipient or the content (`CarrierError.stops_route`), which no carrier would get past.

The code a failed message reports (`telling`) is the one that says most about why:

1. a refusal about the recipient or the content (30005, 30007, 21610 ...): true at every carrier;
2. when retries ran out, a retryable refusal: the carrier that could have taken the message
   and did not in time is the reason it failed (a carrier that refused for good only says why
   it was no help); the carrier of a submit never answered is named by the caller (30410);
3. otherwise the first carrier's, in route order, that gave a specific code: 30008 only says
   that the carrier gave no reason Pigeon knows, whereas 21606 or 30019 say what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pigeon.domain.errors import CarrierError, CarrierUnavailable

__all__ = ["UNREACHED_MAX_DELAY", "Refusals", "unreached_delay"]

#: The longest wait between two attempts at a route whose carriers none could be reached
#: (no bind): a bind usually comes back within seconds to a minute (reconnects), and a message
#: should go out within this long of it.
UNREACHED_MAX_DELAY = 30.0
#: The shortest such wait: a bind being brought up needs a moment.
UNREACHED_MIN_DELAY = 1.0

_UNKNOWN = 30008


def unreached_delay(waited: float, *, rand: float = 0.0) -> float:
    """Seconds until the next attempt at a route nobody could reach, for a message that has
    waited `waited` seconds: half that wait, between `UNREACHED_MIN_DELAY` and
    `UNREACHED_MAX_DELAY` (so the waits grow by half each time, then stay at the ceiling);
    `rand`, uniform in [0, 1), shortens it by up to a tenth, spreading the messages that wait
    for one bind when it comes back."""
    delay = min(UNREACHED_MAX_DELAY, max(UNREACHED_MIN_DELAY, waited / 2))
    return delay * (1 - 0.1 * rand)


@dataclass(frozen=True)
class Refusals:
    """The refusals of one attempt, in route order (module docstring)."""

    tried: Sequence[tuple[str, CarrierError]]

    @property
    def errors(self) -> list[CarrierError]:
        return [e for _, e in self.tried]

    @property
    def unreached(self) -> bool:
        """Every carrier refused for want of a bind, and none took any part of the message."""
        errors = self.errors
        return bool(errors) and all(isinstance(e, CarrierUnavailable) and not e.accepted_carrier_ids for e in errors)

    @property
    def retry_with(self) -> CarrierError | None:
        """The refusal the retry policy decides on, or None when no attempt can help."""
        if any(e.stops_route for e in self.errors):
            return None
        return next((e for e in self.errors if e.retryable), None)

    def telling(self) -> CarrierError:
        """The refusal whose code the failed message reports (module docstring)."""
        errors = self.errors
        verdict = next((e for e in errors if e.stops_route), None)
        if verdict is not None:
            return verdict
        pool = [e for e in errors if e.retryable] or errors
        return next((e for e in pool if e.error_code != _UNKNOWN), pool[0])
