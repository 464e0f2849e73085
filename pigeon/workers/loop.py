"""The shape every worker shares: repeat a step, rest when idle, survive errors, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pigeon.domain.errors import StoreUnavailable

log = logging.getLogger(__name__)


def log_failure(what: str, exc: Exception, pause: float) -> None:
    """Log a loop's failed step: `what` failed, the next try in `pause` seconds. The store out
    of reach is one line without a traceback: every loop of every process says so while the
    database is down, and the traceback would only repeat where the driver gave up. Anything
    else is unexpected, and logged with its traceback."""
    if isinstance(exc, StoreUnavailable):
        log.warning("%s failed: %s; trying again in %.1f s", what, exc, pause)
    else:
        log.error("%s failed; trying again in %.1f s", what, pause, exc_info=exc)


def backoff(failures: int, *, base: float = 0.1, most: float = 5.0) -> float:
    """The pause after `failures` failures in a row: doubling from `base`, at most `most`."""
    return min(most, base * 2.0**failures)


async def rest(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less if `stop` is set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass


async def run_loop(
    name: str,
    step: Callable[[], Awaitable[int]],
    stop: asyncio.Event,
    *,
    idle: float = 0.05,
    max_backoff: float = 5.0,
) -> None:
    """Call `step` until `stop` is set. A step that did no work (returned 0) is followed by a
    rest of `idle` seconds; a step that raised, by a growing pause (the store may be down)."""
    failures = 0
    while not stop.is_set():
        try:
            done = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            pause = backoff(failures, most=max_backoff)
            log_failure(f"{name} step", exc, pause)
            await rest(stop, pause)
            continue
        if failures:
            log.info("%s is working again after %d failed steps", name, failures)
            failures = 0
        if done == 0:
            await rest(stop, idle)
