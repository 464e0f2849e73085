"""Evaluates the usage triggers every `every` seconds (pigeon/app/usage_triggers.py).

Every worker process runs it. The sums are read outside any write transaction; only the
triggers that have reached their threshold are then marked and their callbacks queued, in one
short transaction whose guarded mark lets one process alone fire each."""

from __future__ import annotations

import asyncio
import logging

from pigeon.app.usage_triggers import Reached, fire, reached
from pigeon.ports import Clock
from pigeon.store.engine import Database
from pigeon.workers.loop import log_failure, rest

log = logging.getLogger(__name__)


class UsageTriggerWorker:
    def __init__(self, db: Database, clock: Clock, *, every: float = 15.0) -> None:
        self.db = db
        self.clock = clock
        self.every = every

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # the store may be away: the next round tries again
                log_failure("evaluating usage triggers", exc, self.every)
            await rest(stop, self.every)

    async def run_once(self) -> list[str]:
        """Evaluate every trigger once; the SIDs of those fired."""
        due = await asyncio.to_thread(self._reached)
        if not due:
            return []
        fired = await asyncio.to_thread(self._fire, due)
        for sid in fired:
            log.info("usage trigger %s fired", sid, extra={"usage_trigger_sid": sid})
        return fired

    def _reached(self) -> list[Reached]:
        with self.db.read() as conn:
            return reached(conn, today=self.clock.now().date())

    def _fire(self, due: list[Reached]) -> list[str]:
        with self.db.write() as conn:
            return fire(conn, due, now=self.clock.now())
