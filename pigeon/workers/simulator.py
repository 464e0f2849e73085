"""The built-in network's receipt worker: applies receipts as they come due, a batch at a time."""

from __future__ import annotations

import asyncio

from pigeon.app.receipt_batch import deliver_simulated_receipts, simulated_receipts_due
from pigeon.ports import Clock
from pigeon.store.engine import Database
from pigeon.workers.loop import run_loop


class SimulatedReceiptsWorker:
    def __init__(self, db: Database, clock: Clock, *, batch: int = 500, idle: float = 0.05) -> None:
        self.db = db
        self.clock = clock
        self.batch = batch
        self.idle = idle

    def _step(self) -> int:
        # Most polls find nothing due (between receipts, or another worker process took them):
        # a read says so without a write transaction.
        with self.db.lookup() as conn:
            if not simulated_receipts_due(conn, now=self.clock.now()):
                return 0
        return self.db.transact(lambda conn: deliver_simulated_receipts(conn, now=self.clock.now(), limit=self.batch))

    async def run_once(self) -> int:
        return await asyncio.to_thread(self._step)

    async def run(self, stop: asyncio.Event) -> None:
        await run_loop("simulated-receipts", self.run_once, stop, idle=self.idle)
