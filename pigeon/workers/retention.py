"""Removes what is past its retention (pigeon/app/retention.py), once an hour.

Every worker process runs it; they share the work through the store (a row removed by one is
not found by the next). The removal goes in chunks, each its own short transaction with a
pause after it, so that a first purge of a large history never holds SQLite's writer lock for
long or keeps the other loops waiting."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pigeon.app.retention import Rule, purge_chunk
from pigeon.ports import Clock
from pigeon.store.engine import Database
from pigeon.workers.loop import log_failure, rest

log = logging.getLogger(__name__)


class RetentionPurger:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        rules: Sequence[Rule],
        *,
        every: float = 3600.0,
        first_after: float = 60.0,
        chunk: int | None = None,
        pause: float = 0.05,
        removed: Callable[[str, int], None] | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.rules = list(rules)
        self.every = every  # seconds between purges
        self.first_after = first_after  # seconds after start: not while everything starts up
        self.chunk = chunk  # rows per transaction, for every rule (None: each rule's own)
        self.pause = pause
        self.purged: collections.Counter[str] = collections.Counter()  # by rule
        self._removed = removed  # told (rule, count) after each chunk: the metrics' counter

    async def run(self, stop: asyncio.Event) -> None:
        await rest(stop, self.first_after)
        while not stop.is_set():
            for rule in self.rules:
                try:
                    await self.purge(rule, stop)
                except Exception as exc:  # one rule's failure does not keep the others from their turn
                    log_failure(f"removing {rule.what} past their retention", exc, self.every)
            await rest(stop, self.every)

    async def purge_all(self) -> int:
        """Every rule once, now; how many rows went in all."""
        return sum([await self.purge(rule) for rule in self.rules])

    async def purge(self, rule: Rule, stop: asyncio.Event | None = None) -> int:
        """Remove everything past `rule`'s retention now, chunk by chunk; returns how many."""
        before = self.clock.now() - rule.keep
        chunk = self.chunk or rule.chunk
        removed = 0
        progress: dict[str, Any] = {}  # how far this purge got, from one chunk to the next
        while stop is None or not stop.is_set():
            n = await asyncio.to_thread(purge_chunk, self.db, rule, before=before, limit=chunk, progress=progress)
            removed += n
            if n and self._removed is not None:
                self._removed(rule.what, n)
            if n < chunk:
                break
            await asyncio.sleep(self.pause)
        self.purged[rule.what] += removed
        if removed:
            log.info(
                "removed %d %s older than %s",
                removed,
                rule.what,
                rule.keep,
                extra={"removed": removed, "what": rule.what},
            )
        return removed
