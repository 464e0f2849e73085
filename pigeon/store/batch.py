"""Group commit: many callers' rows written in one transaction, each caller woken after it.

One insert and one commit per request caps a store at about a thousand writes a second; the
commit (an fsync) is the cost. A GroupCommitter owns one thread that takes every item
waiting in its queue, writes them all in one transaction and only then wakes each waiting
caller, so each caller still returns after its own commit (DESIGN.md §6).

If a batch fails, its items are written one by one, so that one bad row fails only its own
caller. Callers are woken with one hand-over per event loop per batch, not one per caller.

`AsyncGroupCommitter` is the same for callers that all live on one event loop (a worker's
deliveries): no thread of its own; the items written while a batch commits (in a worker
thread) form the next batch.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine

from pigeon.domain.errors import StoreUnavailable
from pigeon.store.combined import transact

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    item: T
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def write_isolating(
    engine: Engine, write_batch: Callable[[Connection, Sequence[T]], None], items: Sequence[T], *, name: str
) -> tuple[list[Exception | None], int]:
    """Write `items` in one transaction; if that fails, write them one by one, so that one bad
    item fails only itself. (Each item's error or None, how many transactions committed.)
    When the store cannot be reached, no item is to blame: they all fail at once, rather than
    each trying (and failing) to connect on its own."""
    try:
        transact(engine, lambda conn: write_batch(conn, items))
    except StoreUnavailable as exc:
        log.warning("%s write of %d failed: %s", name, len(items), exc)
        return [exc] * len(items), 0
    except Exception as exc:
        if len(items) == 1:
            log.warning("%s write failed: %r", name, exc)
            return [exc], 0
        outcomes: list[Exception | None] = []
        committed = 0
        for item in items:
            one, n = write_isolating(engine, write_batch, [item], name=name)
            outcomes += one
            committed += n
        return outcomes, committed
    return [None] * len(items), 1


def _settle(outcomes: Sequence[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for future, exc in outcomes:
        if future.done():  # the caller gave up (cancelled); the row is committed all the same
            continue
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)


def _resolve(outcomes: Sequence[tuple[_Pending[T], BaseException | None]]) -> None:
    """Wake the callers: one hand-over per event loop for the whole batch, not one per caller
    (each hand-over is a write to the loop's wake-up pipe)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
    for p, exc in outcomes:
        by_loop.setdefault(p.loop, []).append((p.future, exc))
    for loop, settled in by_loop.items():
        loop.call_soon_threadsafe(_settle, settled)


class GroupCommitter(Generic[T]):
    def __init__(
        self,
        engine: Engine,
        write_batch: Callable[[Connection, Sequence[T]], None],
        *,
        name: str,
        max_batch: int = 200,
        max_wait: float = 0.001,
    ) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._name = name
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.Queue[_Pending[T] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"pigeon-{self._name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    async def write(self, item: T) -> None:
        """Return once `item` is committed; raise what the store raised if it could not be."""
        if self._thread is None:
            raise RuntimeError(f"{self._name} writer is not started")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(item, loop, fut))
        await fut

    def _take_batch(self, first: _Pending[T]) -> tuple[list[_Pending[T]], bool]:
        """The first item and what arrives within max_wait of it (max_batch at most). It
        sleeps out the wait and then takes what is queued, rather than waking for every
        item that arrives: under load each wake-up is a fight for the GIL with the event
        loop that is putting the items in."""
        batch = [first]
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                time.sleep(remaining)
                continue
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch, stopping = self._take_batch(first)
            self._commit(batch)

    def _commit(self, batch: Sequence[_Pending[T]]) -> None:
        _resolve(self._write(batch))

    def _write(self, batch: Sequence[_Pending[T]]) -> list[tuple[_Pending[T], BaseException | None]]:
        outcomes, committed = write_isolating(self._engine, self._write_batch, [p.item for p in batch], name=self._name)
        self.batches += committed
        self.rows += outcomes.count(None)
        return list(zip(batch, outcomes, strict=True))


class AsyncGroupCommitter(Generic[T]):
    """Group commit for code on an event loop, without a thread of its own: items written
    while a batch is being committed (in a worker thread) form the next batch. For workers
    whose callers are all on one loop; `write` returns once the item's batch has committed."""

    def __init__(self, engine: Engine, write_batch: Callable[[Connection, Sequence[T]], None], *, name: str) -> None:
        self._engine = engine
        self._write_batch = write_batch
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0
        self.rows = 0

    async def write(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush(), name=f"pigeon-{self._name}")
        await future

    async def _flush(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                outcomes = await asyncio.to_thread(self._commit, [item for item, _ in batch])
                _settle([(future, exc) for (_, future), exc in zip(batch, outcomes, strict=True)])
        finally:
            self._flushing = None
            for _, future in batch:  # cancelled mid-commit: whether it committed is unknown
                if not future.done():
                    future.cancel()

    def _commit(self, items: Sequence[T]) -> list[BaseException | None]:
        outcomes, committed = write_isolating(self._engine, self._write_batch, items, name=self._name)
        self.batches += committed
        self.rows += outcomes.count(None)
        return list(outcomes)
