"""The shape every worker shares: repeat a step, rest when idle, survive errors, stop cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def _rest(stop: asyncio.Event, seconds: float) -> None:
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
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception:
            failures += 1
            pause = min(max_backoff, 0.1 * 2**failures)
            log.exception("%s step failed; pausing %.1f s", name, pause)
            await _rest(stop, pause)
            continue
        if done == 0:
            await _rest(stop, idle)
