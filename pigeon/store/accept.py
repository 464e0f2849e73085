"""Group commit for accepted messages.

One insert and one commit per request caps a store at about a thousand accepts a second;
the commit (an fsync) is the cost. The AcceptWriter owns one thread that takes every
message waiting in its queue, writes them all in one transaction and only then wakes each
waiting request, so each 201 still follows its own commit (DESIGN.md §6).

If a batch fails, its messages are written one by one, so that one bad row fails only its
own request.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from pigeon.store.engine import write
from pigeon.store.messages import NewMessage, insert_messages

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    item: NewMessage
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _resolve(p: _Pending, exc: BaseException | None) -> None:
    def settle() -> None:
        if p.future.done():
            return
        if exc is None:
            p.future.set_result(None)
        else:
            p.future.set_exception(exc)

    p.loop.call_soon_threadsafe(settle)


class AcceptWriter:
    def __init__(self, engine: Engine, *, max_batch: int = 200, max_wait: float = 0.001) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pigeon-accept-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    async def write(self, item: NewMessage) -> None:
        """Return once `item` is committed; raise what the store raised if it could not be."""
        if self._thread is None:
            raise RuntimeError("AcceptWriter is not started")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Pending(item, loop, fut))
        await fut

    def _take_batch(self, first: _Pending) -> tuple[list[_Pending], bool]:
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

    def _commit(self, batch: Sequence[_Pending]) -> None:
        try:
            with write(self._engine) as conn:
                insert_messages(conn, [p.item for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.warning("accept failed", extra={"sid": batch[0].item.message.get("sid"), "error": repr(exc)})
                _resolve(batch[0], exc)
                return
            # Isolate the bad row: retry each message in its own transaction.
            for p in batch:
                self._commit([p])
            return
        self.batches += 1
        self.rows += len(batch)
        for p in batch:
            _resolve(p, None)
