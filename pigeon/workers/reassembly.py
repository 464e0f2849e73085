"""The reassembly sweeper: hands over inbound messages whose missing parts never came.

Parts wait in the store (`pigeon.app.reassembly`), so any worker process may sweep them,
also for a carrier whose bind is now held elsewhere or nowhere; two sweepers never hand a
message over twice (the hand-over takes the message's lock and looks again).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from pigeon.workers.loop import run_loop


class PartSweeper(Protocol):
    def sweep_inbound_parts(self, limit: int = 100) -> int:
        """Hand over up to `limit` messages that timed out; how many went."""
        ...


class ReassemblyWorker:
    def __init__(self, sink: PartSweeper, *, batch: int = 100, idle: float = 1.0) -> None:
        self.sink = sink
        self.batch = batch
        # A carrier waits `reassembly_timeout` (two minutes by default) for a missing part:
        # looking once a second costs an indexed read and is late by at most that second.
        self.idle = idle

    async def run_once(self) -> int:
        return await asyncio.to_thread(self.sink.sweep_inbound_parts, self.batch)

    async def run(self, stop: asyncio.Event) -> None:
        await run_loop("reassembly", self.run_once, stop, idle=self.idle)
