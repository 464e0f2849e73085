"""Group commit: many callers' rows written in one transaction, each caller woken after it.

One insert and one commit per request caps a store at about a thousand writes a second; the
commit (an fsync) is the cost. A GroupCommitter owns one thread that takes every item
waiting in its queue, writes them all in one transaction and only then wakes each waiting
caller, so each caller still returns after its own commit (DESIGN.md §6).

If a batch fails, its items are written one by one, so that one bad row fails only its own
caller.
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

from pigeon.store.engine import write

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    item: T
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _resolve(p: _Pending[T], exc: BaseException | None) -> None:
    def settle() -> None:
        if p.future.done():
            return
        if exc is None:
            p.future.set_result(None)
        else:
            p.future.set_exception(exc)

    p.loop.call_soon_threadsafe(settle)


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
        batch = [first]
        deadline = time.monotonic() + self._max_wait
        while len(batch) < self._max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
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
        try:
            with write(self._engine) as conn:
                self._write_batch(conn, [p.item for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.warning("%s write failed: %r", self._name, exc)
                _resolve(batch[0], exc)
                return
            for p in batch:  # isolate the bad item
                self._commit([p])
            return
        self.batches += 1
        self.rows += len(batch)
        for p in batch:
            _resolve(p, None)
