"""Webhook outbox claim cost with a backlog held back by a receiver that is down.

One account's status callback URL stops answering: the first callback of each of its messages
is backing off, and the later ones (sent, delivered) queue behind them. Every claim the
webhook workers make, for every account, must step past that backlog or not. This script
builds such a store (--messages messages, three callbacks each, the first of each retrying an
hour from now), adds a few deliveries that are due, and times the claim that finds them.

    .venv/bin/python bench/outbox_claim.py --backend both --messages 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import store

from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.schema import upgrade

ACCOUNT = "AC" + "0" * 32
DEAD = "http://127.0.0.1:9/down"
ALIVE = "http://127.0.0.1:9/up"


def row(message_sid: str, url: str) -> dict[str, object]:
    return outbox.new_delivery(
        account_sid=ACCOUNT, message_sid=message_sid, kind="status_callback", url=url, method="POST", params=[]
    )


def build(db: Database, messages: int, now: datetime) -> None:
    for start in range(0, messages, 1000):
        with db.write() as conn:
            outbox.enqueue_many(
                conn,
                [row(f"SM{n:032x}", DEAD) for n in range(start, min(messages, start + 1000)) for _ in range(3)],
                now=now,
            )
    while True:  # the receiver is down: every first callback backs off for an hour
        with db.write() as conn:
            heads = outbox.claim_due(conn, now=now, limit=1000, lease_seconds=60)
            for h in heads:
                outbox.schedule_retry(
                    conn,
                    h["id"],
                    now=now,
                    next_attempt_at=now + timedelta(hours=1),
                    status_code=None,
                    error="connection refused",
                    lease=h["claimed_until"],
                )
        if not heads:
            return


def measure(db: Database, now: datetime, rounds: int) -> list[float]:
    times = []
    for i in range(rounds):
        with db.write() as conn:
            outbox.enqueue_many(conn, [row(f"SM{10**9 + i * 100 + n:032x}", ALIVE) for n in range(50)], now=now)
        t = time.perf_counter()
        with db.write() as conn:
            got = outbox.claim_due(conn, now=now + timedelta(seconds=1), limit=100, lease_seconds=60)
        times.append((time.perf_counter() - t) * 1000)
        assert len(got) == 50, len(got)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    p.add_argument("--messages", type=int, default=10000, help="messages held back by the dead receiver")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    now = datetime.now(UTC)
    print(f"{'backend':8} {'held back':>10} {'claim p50 ms':>13} {'claim max ms':>13}")
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp, store(backend, Path(tmp)) as url:
            db = Database.from_url(url)
            upgrade(db.engine)
            build(db, args.messages, now)
            times = measure(db, now, args.rounds)
            db.dispose()
        print(f"{backend:8} {args.messages * 3:>10} {statistics.median(times):>13.1f} {max(times):>13.1f}")


if __name__ == "__main__":
    main()
