"""Dispatcher worker: several claim rounds running side by side, so that one round waiting
for a paced slot does not hold up messages that are due now."""

from __future__ import annotations

import asyncio

from pigeon.app.dispatch import DispatchRound
from pigeon.workers.loop import run_loop


class DispatcherWorker:
    def __init__(self, round_: DispatchRound, *, concurrency: int = 4, idle: float = 0.05) -> None:
        self.round = round_
        self.concurrency = concurrency
        self.idle = idle

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            *(run_loop(f"dispatcher-{i}", self.round.run_once, stop, idle=self.idle) for i in range(self.concurrency))
        )
