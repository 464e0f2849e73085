"""Combined writes: a process's write transactions on SQLite, run together as one.

SQLite has one writer at a time, and under load Pigeon's throughput is how long each message
keeps it. A worker process writes from several places at once: the dispatcher's claims and
records, the receipts, the callback claims and the callback outcomes, the receipt spool; the
API process writes accepted messages and the request log. Each was a transaction of its own,
and each paid on its own for what a transaction costs besides its statements: the wait for
the writer lock and its hand-over, BEGIN IMMEDIATE, and the commit, which writes every page
the transaction changed into the log and syncs it (measured in the e2e bench: commits alone
were about a quarter of the time the lock was held, at 1.8-2.4 ms each; the same hot pages,
the tail of the timeline and of the outbox, were written again by every transaction).

`WriteCombiner` owns one thread per process and database. Callers hand it a function of a
connection (`call` from a thread, `run` from an event loop); the thread takes every function
waiting, runs them one after another in one transaction, each inside a savepoint of its own,
commits, and only then gives each caller its function's result. So each caller still returns
after its own commit, and a function that raises has written nothing (its savepoint is rolled
back) and fails only its own caller. If the commit fails, every caller of that transaction
gets the error: none of their writes happened.

A function runs on the combiner's thread, not its caller's, and must not start a transaction
of its own. `transact(engine, fn)` uses the process's combiner while one runs (`combining`
starts it for the life of an entry point) and otherwise runs `fn` in a write transaction of
its own, in the calling thread, which is always what happens on PostgreSQL: there, writers do
not queue for one lock, and combining would only hold row locks longer.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pigeon.store.engine import holds_writer_lock, is_sqlite, write, writer_lock

__all__ = ["WriteCombiner", "combining", "transact"]

log = logging.getLogger(__name__)

R = TypeVar("R")

#: Functions run in one transaction at most; the rest wait for the next one.
MAX_COMBINED = 64


@dataclass(eq=False)
class _Job:
    fn: Callable[[Connection], Any]
    future: Future[Any] = field(default_factory=Future)


class WriteCombiner:
    """One thread that runs its callers' write functions together (module docstring)."""

    def __init__(self, engine: Engine, *, max_combined: int = MAX_COMBINED) -> None:
        self._engine = engine
        self._max = max_combined
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self.transactions = 0
        self.functions = 0

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pigeon-write-combiner", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Run what is queued, then stop; later callers write on their own."""
        with self._guard:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout=30)

    def _submit(self, fn: Callable[[Connection], R]) -> Future[R] | None:
        if threading.current_thread() is self._thread or holds_writer_lock(self._engine):
            # The combiner would wait for this very thread: a write inside a write.
            raise RuntimeError("a write transaction cannot start inside another one")
        with self._guard:
            if self._thread is None:
                return None
            job = _Job(fn)
            self._queue.put(job)
            return job.future

    def call(self, fn: Callable[[Connection], R]) -> R:
        """Run `fn` in a combined write transaction; its result once that has committed."""
        future = self._submit(fn)
        if future is None:
            return _alone(self._engine, fn)
        return future.result()

    async def run(self, fn: Callable[[Connection], R]) -> R:
        """`call` for a caller on an event loop: the loop is not blocked meanwhile."""
        future = self._submit(fn)
        if future is None:
            return await asyncio.to_thread(_alone, self._engine, fn)
        return await asyncio.wrap_future(future)

    # -- the thread ----------------------------------------------------------------------------

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            try:
                # Wait for the writer lock first, then take everything that arrived meanwhile:
                # under load the wait is what gathers the batch.
                with writer_lock(self._engine):
                    stopping = self._take_waiting(jobs)
                    # A caller that gave up before its turn (an event loop's task cancelled) is
                    # skipped; once running, a job can no longer be cancelled.
                    jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
                    if jobs:
                        self._run(jobs)
            except Exception as exc:  # never leave the thread: its callers would wait forever
                log.exception("combined write failed outside its transaction")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _take_waiting(self, jobs: list[_Job]) -> bool:
        """Add the jobs waiting in the queue to `jobs` (up to the maximum); True if `stop` was
        among them."""
        while len(jobs) < self._max:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            jobs.append(nxt)
        return False

    def _run(self, jobs: list[_Job]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            with write(self._engine) as conn:
                if len(jobs) == 1:
                    outcomes.append((True, jobs[0].fn(conn)))
                else:
                    outcomes = [_in_savepoint(conn, job.fn) for job in jobs]
        except Exception as exc:  # the commit failed, or a lone function raised
            for job in jobs:
                job.future.set_exception(exc)
            return
        self.transactions += 1
        self.functions += len(jobs)
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)


def _in_savepoint(conn: Connection, fn: Callable[[Connection], Any]) -> tuple[bool, Any]:
    """(True, result), or (False, the exception) with everything `fn` wrote undone. An error
    that leaves the savepoint unusable ends the whole transaction (it propagates).

    The savepoint statements go straight to the driver (SQLite only, where SQLAlchemy leaves
    transactions to us, see `store.engine`): through `exec_driver_sql` they cost more than
    some of the functions they wrap, and the writer lock is held meanwhile."""
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("SAVEPOINT combined")
    try:
        value = fn(conn)
    except Exception as exc:
        driver.execute("ROLLBACK TO SAVEPOINT combined")
        driver.execute("RELEASE SAVEPOINT combined")
        return False, exc
    driver.execute("RELEASE SAVEPOINT combined")
    return True, value


#: SQLSTATEs of a transaction PostgreSQL aborted for another's sake: deadlock detected,
#: serialization failure. Nothing it wrote happened; run again, it usually goes through.
_CONFLICTS = frozenset({"40P01", "40001"})


def _alone(engine: Engine, fn: Callable[[Connection], R], *, conflict_retries: int = 0) -> R:
    attempt = 0
    while True:
        try:
            with write(engine) as conn:
                return fn(conn)
        except DBAPIError as exc:
            if attempt >= conflict_retries or getattr(exc.orig, "sqlstate", None) not in _CONFLICTS:
                raise
            attempt += 1
            log.warning("transaction aborted by a conflict; running it again", extra={"attempt": attempt})
            time.sleep(random.uniform(0.001, 0.02) * attempt)  # apart, so they do not meet again


class _Running:
    def __init__(self, combiner: WriteCombiner) -> None:
        self.combiner = combiner
        self.users = 0


_COMBINERS: weakref.WeakKeyDictionary[Engine, _Running] = weakref.WeakKeyDictionary()
_COMBINERS_GUARD = threading.Lock()


@contextmanager
def combining(engine: Engine) -> Iterator[WriteCombiner | None]:
    """Combine this process's writes to `engine` while inside (SQLite only; None otherwise).
    Entry points nest: the API and the workers of `pigeon serve` share one combiner, which
    stops when the last of them leaves."""
    if not is_sqlite(engine):
        yield None
        return
    with _COMBINERS_GUARD:
        running = _COMBINERS.get(engine)
        if running is None:
            running = _COMBINERS[engine] = _Running(WriteCombiner(engine))
        running.users += 1
        running.combiner.start()
    try:
        yield running.combiner
    finally:
        with _COMBINERS_GUARD:
            running.users -= 1
            last = running.users == 0
            if last:
                del _COMBINERS[engine]
        if last:
            running.combiner.stop()


def transact(engine: Engine, fn: Callable[[Connection], R], *, conflict_retries: int = 0) -> R:
    """Run `fn` in a write transaction (combined with others while `combining`); its result
    once committed. Blocks: call it from a thread, or use `transact_async` on an event loop.

    `conflict_retries`: on PostgreSQL, how many times to run `fn` again in a new transaction
    when one is aborted as a deadlock's or a serialization failure's victim. Only for an `fn`
    whose every effect is in the transaction (it may run more than once). SQLite, with one
    writer at a time, has no such conflicts."""
    running = _COMBINERS.get(engine)
    if running is None:
        return _alone(engine, fn, conflict_retries=conflict_retries)
    return running.combiner.call(fn)


async def transact_async(engine: Engine, fn: Callable[[Connection], R]) -> R:
    running = _COMBINERS.get(engine)
    if running is None:
        return await asyncio.to_thread(_alone, engine, fn)
    return await running.combiner.run(fn)
