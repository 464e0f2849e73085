"""Per-stage cost of the delivery pipeline in one process, without HTTP: what each message
costs the store and the Python around it, at large batches and with nothing else running.

N messages are accepted in one transaction, then dispatched to the built-in network by one
`DispatchRound` (pacing raised out of the way), their simulated receipts applied in batches
of 500, and their three status callbacks (sending, sent, delivered) delivered by a
`WebhookWorker` to a recording sender (no network). Printed: milliseconds of wall time per
message for each stage, and the write transactions each stage took with their share.

It is the floor under bench/e2e.py's figures: the end to end run adds HTTP (the API, the
signed callbacks, the receiver), smaller batches and the processes' contention for the store.

    .venv/bin/python bench/stages.py --backend both --messages 2000
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from harness import store  # noqa: E402

import pigeon.store.combined as combined_module  # noqa: E402
import pigeon.store.engine as engine_module  # noqa: E402
from pigeon.app.receipt_batch import deliver_simulated_receipts  # noqa: E402
from pigeon.app.send import SendRequest, prepare_message  # noqa: E402
from pigeon.domain.pacing import DEFAULT_RATES, PacingPolicy  # noqa: E402
from pigeon.domain.retry import STATUS_CALLBACKS  # noqa: E402
from pigeon.store.engine import Database  # noqa: E402
from pigeon.store.messages import insert_messages  # noqa: E402
from pigeon.store.schema import upgrade  # noqa: E402
from pigeon.testing import FrozenClock, RecordingWebhookSender  # noqa: E402
from pigeon.workers.webhooks import WebhookWorker  # noqa: E402
from tests.integration.pipeline import make_pipeline  # noqa: E402

#: write transactions by the function that opened them: [count, seconds, CPU seconds]
WRITES: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
_write = engine_module.write


@contextlib.contextmanager
def _timed_write(engine: Any) -> Iterator[Any]:
    frame = sys._getframe(2)
    name = frame.f_code.co_qualname  # the bench's own, unless a pigeon function opened it
    while frame is not None:
        path = frame.f_code.co_filename
        if "pigeon" in path:
            # The store's own plumbing names the transaction only when nothing else does (a
            # group committer's thread has no caller above it).
            name = frame.f_code.co_qualname
            if not path.endswith(("engine.py", "combined.py", "batch.py")):
                break
        frame = frame.f_back  # type: ignore[assignment]
    started, cpu = time.perf_counter(), time.thread_time()
    with _write(engine) as conn:
        yield conn
    entry = WRITES[name]
    entry[0] += 1
    entry[1] += time.perf_counter() - started
    entry[2] += time.thread_time() - cpu


# Every module that took `write` by name gets the timed one too: with only the engine module's
# patched, the writes that `transact` runs (most of the pipeline's) went uncounted.
engine_module.write = _timed_write
combined_module.write = _timed_write  # type: ignore[attr-defined]


async def run(db: Database, n: int, batch: int) -> dict[str, float]:
    clock = FrozenClock()
    pipe = make_pipeline(db, clock)
    pacing = PacingPolicy(rates={kind: 100000.0 for kind in DEFAULT_RATES})
    timings: dict[str, float] = {}
    t = time.perf_counter()
    with db.write() as conn:
        new = [
            prepare_message(
                conn,
                pipe.account_sid,
                SendRequest(
                    to=f"+1415555{2000 + i % 5000:04d}",
                    from_="+14155550100",
                    body=f"hello {i}",
                    status_callback="https://hooks.example.com/s",
                ),
                clock.now(),
                pacing=pacing,
            )
            for i in range(n)
        ]
        insert_messages(conn, new)
    timings["accept (one transaction)"] = time.perf_counter() - t
    WRITES.clear()

    t = time.perf_counter()
    dispatcher = pipe.round(pacing=pacing, batch=batch, lookahead=timedelta(seconds=1))
    while await dispatcher.run_once():
        pass
    timings["dispatch"] = time.perf_counter() - t

    clock.advance(5)
    t = time.perf_counter()
    while True:
        with db.write() as conn:
            if not deliver_simulated_receipts(conn, now=clock.now(), limit=batch):
                break
    timings["receipts"] = time.perf_counter() - t

    sender = RecordingWebhookSender()
    worker = WebhookWorker(db, sender, clock, policy=STATUS_CALLBACKS, batch=batch, concurrency=batch)
    t = time.perf_counter()
    while await worker.run_once():
        pass
    timings["three callbacks"] = time.perf_counter() - t
    assert len(sender.requests) == 3 * n, len(sender.requests)
    pipe.spool.stop()
    return timings


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--batch", type=int, default=100, help="claims and receipt batches (e2e under load: a few dozen)")
    args = p.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp, store(backend, Path(tmp)) as url:
            db = Database.from_url(url)
            upgrade(db.engine)
            timings = asyncio.run(run(db, args.messages, args.batch))
            db.dispose()
        print(f"{backend}, {args.messages} messages, batches of {args.batch}: ms per message")
        for stage, seconds in timings.items():
            print(f"  {stage:26} {1000 * seconds / args.messages:7.3f}")
        print("  write transactions after the accept (count, ms/msg held, of which CPU):")
        for name, (count, seconds, cpu) in sorted(WRITES.items(), key=lambda kv: -kv[1][1]):
            per, cpu_per = 1000 * seconds / args.messages, 1000 * cpu / args.messages
            print(f"    {int(count):5d}  {per:7.3f}  {cpu_per:7.3f}  {name}")
        total = sum(cpu for _, _, cpu in WRITES.values())
        print(f"    total CPU in write transactions: {1000 * total / args.messages:.3f} ms/msg")
        WRITES.clear()


if __name__ == "__main__":
    main()
