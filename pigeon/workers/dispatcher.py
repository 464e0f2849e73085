"""Dispatcher worker: several claim rounds running side by side, so that one round waiting
for a paced slot does not hold up messages that are due now; and a sweep that applies parked
receipts whose submit answer was recorded by a transaction that could not see them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pigeon.app.dispatch import DispatchRound
from pigeon.app.receipt_batch import rematch_parked
from pigeon.workers.loop import run_loop


class DispatcherWorker:
    def __init__(
        self, round_: DispatchRound, *, concurrency: int = 4, idle: float = 0.05, rematch_every: float = 1.0
    ) -> None:
        self.round = round_
        self.concurrency = concurrency
        self.idle = idle
        self.rematch_every = rematch_every

    def _rematch(self) -> int:
        with self.round.db.write() as conn:
            return rematch_parked(conn, now=self.round.clock.now())

    async def rematch_once(self) -> int:
        return await asyncio.to_thread(self._rematch)

    async def round_once(self, stopping: asyncio.Event | None = None) -> int:
        """One round; with nothing due, the process's rounds share one look per `idle`.
        `stopping`: the worker's stop, which bounds how long a round waits for a store out of
        reach to record what its carriers answered (`pigeon.app.dispatch_outage`)."""
        return await self.round.run_once(rest=self.idle, stopping=stopping)

    async def run(self, stop: asyncio.Event) -> None:
        def round_once() -> Awaitable[int]:
            return self.round_once(stop)

        await asyncio.gather(
            *(run_loop(f"dispatcher-{i}", round_once, stop, idle=self.idle) for i in range(self.concurrency)),
            run_loop("receipt-rematch", self.rematch_once, stop, idle=self.rematch_every),
        )
