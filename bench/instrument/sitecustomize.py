"""Instruments for `bench/e2e.py --instrument`: SQLite's writer lock and the write combiner,
timed inside each `pigeon` process of a run.

Python imports `sitecustomize` at start-up from PYTHONPATH, which the bench points here (this
file is not part of the package). When PIGEON_BENCH_INSTRUMENT names a directory, the
process wraps `pigeon.store.engine._WriterLock.held` and `pigeon.store.combined.WriteCombiner._run`
and writes its running totals to `<dir>/<pid>.json` twice a second; the bench reads them at
the start and the end of its measured window and prints the difference. Per process:

- the writer lock: transactions, seconds held, of which on a CPU and waiting in the run queue
  (the holder's thread, from /proc/thread-self/schedstat), and seconds spent waiting for it;
- the combiner: CPU seconds per combined function (by name), and the rest of each combined
  transaction (BEGIN, savepoints, the commit and its page writes) as "(transaction)".

The wrappers cost the server 10-20 % of its throughput: compare instrumented runs only with
each other.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_DIR = os.environ.get("PIGEON_BENCH_INSTRUMENT")


def _run_queue_seconds() -> float:
    with open("/proc/thread-self/schedstat") as f:
        return int(f.read().split()[1]) / 1e9


def _name(fn: Callable[..., Any]) -> str:
    """A combined function's name; for `write_isolating`'s lambda, the batch writer it wraps."""
    inner: Any = getattr(fn, "func", fn)
    qualname = str(getattr(inner, "__qualname__", repr(inner)))
    if "write_isolating" in qualname and getattr(inner, "__closure__", None):
        for cell in inner.__closure__:
            value = cell.cell_contents
            if callable(value) and not isinstance(value, type):
                return str(getattr(getattr(value, "__func__", value), "__qualname__", repr(value)))
    return qualname


def _install(directory: str) -> None:
    import pigeon.store.combined as combined
    import pigeon.store.engine as engine

    guard = threading.Lock()
    lock = {"transactions": 0, "held": 0.0, "cpu": 0.0, "run_queue": 0.0, "waited": 0.0}
    jobs: dict[str, list[float]] = {}
    held = engine._WriterLock.held

    @contextmanager
    def timed_held(self: Any) -> Iterator[None]:
        mine = self._local.__dict__.get("fd")
        outermost = self._path is not None and (mine is None or mine.depth == 0 or mine.pid != os.getpid())
        asked = time.monotonic()
        with held(self):
            if not outermost:
                yield
                return
            got, cpu, queued = time.monotonic(), time.thread_time(), _run_queue_seconds()
            try:
                yield
            finally:
                now = time.monotonic()
                with guard:
                    lock["transactions"] += 1
                    lock["waited"] += got - asked
                    lock["held"] += now - got
                    lock["cpu"] += time.thread_time() - cpu
                    lock["run_queue"] += _run_queue_seconds() - queued

    def add(name: str, cpu: float) -> None:
        with guard:
            entry = jobs.setdefault(name, [0, 0.0])
            entry[0] += 1
            entry[1] += cpu

    def timed(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        name = _name(fn)

        def run(conn: Any) -> Any:
            started = time.thread_time()
            try:
                return fn(conn)
            finally:
                add(name, time.thread_time() - started)

        return run

    run_combined = combined.WriteCombiner._run

    def timed_run(self: Any, batch: list[Any]) -> None:
        for job in batch:
            job.fn = timed(job.fn)
        started = time.thread_time()
        with guard:
            before = sum(cpu for _, cpu in jobs.values())
        run_combined(self, batch)
        with guard:
            inside = sum(cpu for _, cpu in jobs.values()) - before
        add("(transaction)", time.thread_time() - started - inside)

    engine._WriterLock.held = timed_held  # type: ignore[method-assign]
    combined.WriteCombiner._run = timed_run  # type: ignore[method-assign, assignment]
    with open("/proc/self/cmdline") as f:
        role = "worker" if "worker" in f.read().split("\0") else "api"
    path = os.path.join(directory, f"{os.getpid()}.json")

    def write() -> None:
        while True:
            time.sleep(0.5)
            with guard:
                totals = {"role": role, "at": time.monotonic(), "lock": dict(lock), "jobs": dict(jobs)}
            with open(path + ".tmp", "w") as f:
                json.dump(totals, f)
            os.replace(path + ".tmp", path)

    threading.Thread(target=write, name="bench-instrument", daemon=True).start()


def _is_pigeon() -> bool:
    with open("/proc/self/cmdline") as f:
        return "pigeon" in f.read()


if _DIR and _is_pigeon():
    _install(_DIR)
