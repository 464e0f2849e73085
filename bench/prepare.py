"""What validating a send costs, in one process, without HTTP: the API's reads and checks for a
create (`prepare_message` with the duplicate check and the queue gauge, then
`send_guard.guard`), as `POST …/Messages.json` runs them inside its lookup connection.

A store with a first account and `--history` queued messages; then `--messages` creates from
the account's number to different recipients, three rounds. Printed per round: wall and CPU
microseconds per create. On PostgreSQL the wall time includes the round trips, which the
API's threads wait for. To compare trees, run each tree's copy with PYTHONPATH=TREE.

    .venv/bin/python bench/prepare.py --backend both --messages 4000
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from harness import machine, store  # noqa: E402

from pigeon.app import send_guard  # noqa: E402
from pigeon.app.queue_gauge import QueueGauge  # noqa: E402
from pigeon.app.send import SendRequest, prepare_message  # noqa: E402
from pigeon.bootstrap import ensure_first_account  # noqa: E402
from pigeon.store.engine import Database  # noqa: E402
from pigeon.store.messages import insert_messages  # noqa: E402
from pigeon.store.schema import upgrade  # noqa: E402
from pigeon.testing import FrozenClock  # noqa: E402

WINDOW = timedelta(seconds=10)  # the API's duplicate window


def run(db: Database, messages: int, history: int) -> list[tuple[float, float]]:
    clock = FrozenClock()
    first = ensure_first_account(db, clock)
    assert first is not None
    account, sender = first.account["sid"], first.numbers[0]["phone_number"]
    with db.write() as conn:
        insert_messages(
            conn,
            [
                prepare_message(
                    conn, account, SendRequest(to=f"+1646555{2000 + i:04d}", from_=sender, body=f"b{i}"), clock.now()
                )
                for i in range(history)
            ],
        )
    gauge = QueueGauge()
    # A tree from before the send looked for duplicates with its sender (46d8ad2) has no
    # duplicates_since: the guard looks on its own there, so both trees can be compared.
    combined = "duplicates_since" in inspect.signature(prepare_message).parameters
    rounds = []
    for _ in range(3):
        started, cpu = time.perf_counter(), time.process_time()
        with db.lookup() as conn:
            for i in range(messages):
                now = clock.now()
                req = SendRequest(to=f"+1646555{2000 + i % 8000:04d}", from_=sender, body=f"hello {i}")
                since: dict[str, Any] = {"duplicates_since": now - WINDOW} if combined else {}
                new = prepare_message(conn, account, req, now, queue_gauge=gauge, **since)
                send_guard.guard(conn, new, key=None, request_hash=None, now=now, path="/bench", window=WINDOW)
        rounds.append((time.perf_counter() - started, time.process_time() - cpu))
    return rounds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--messages", type=int, default=4000)
    p.add_argument("--history", type=int, default=3000, help="messages in the store before timing")
    args = p.parse_args()
    print(f"prepare bench  {machine()}")
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory() as tmp, store(backend, Path(tmp)) as url:
            db = Database.from_url(url)
            upgrade(db.engine)
            rounds = run(db, args.messages, args.history)
            db.dispose()
        for wall, cpu in rounds:
            print(
                f"{backend:9} {1e6 * wall / args.messages:8.1f} µs wall {1e6 * cpu / args.messages:8.1f} µs CPU per create"
            )


if __name__ == "__main__":
    main()
