"""Removes finished webhook deliveries past `PIGEON_WEBHOOK_HISTORY_DAYS`, once an hour.

Every worker process runs it; they share the work through the store (a row removed by one is
not found by the next). The removal goes in chunks, each its own short transaction with a
pause after it, so that a first purge of a large history never holds SQLite's writer lock for
long or keeps the other loops waiting."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pigeon.app.webhook_history import purge_chunk
from pigeon.ports import Clock
from pigeon.store.engine import Database
from pigeon.workers.loop import log_failure, rest

log = logging.getLogger(__name__)


class WebhookHistoryPurger:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        keep: timedelta,
        every: float = 3600.0,
        first_after: float = 60.0,
        chunk: int = 1000,
        pause: float = 0.05,
    ) -> None:
        self.db = db
        self.clock = clock
        self.keep = keep
        self.every = every  # seconds between purges
        self.first_after = first_after  # seconds after start: not while everything starts up
        self.chunk = chunk
        self.pause = pause
        self.purged = 0

    async def run(self, stop: asyncio.Event) -> None:
        await rest(stop, self.first_after)
        while not stop.is_set():
            try:
                await self.purge(stop)
            except Exception as exc:
                log_failure("purging the webhook history", exc, self.every)
            await rest(stop, self.every)

    async def purge(self, stop: asyncio.Event | None = None) -> int:
        """Remove everything past the retention now, chunk by chunk; returns how many."""
        before = self.clock.now() - self.keep
        removed = 0
        while stop is None or not stop.is_set():
            n = await asyncio.to_thread(purge_chunk, self.db, before=before, limit=self.chunk)
            removed += n
            if n < self.chunk:
                break
            await asyncio.sleep(self.pause)
        self.purged += removed
        if removed:
            log.info(
                "removed %d finished webhook deliveries older than %s", removed, self.keep, extra={"removed": removed}
            )
        return removed
