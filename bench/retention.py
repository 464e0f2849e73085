"""How fast the retention removes old messages, and how long each of its transactions holds
the store: what an operator who sets PIGEON_MESSAGE_DAYS on a large store can expect of the
first purge, and what the traffic around it waits for.

N messages at rest, each with the history the pipeline leaves (8 timeline rows, a carrier id,
3 status callbacks delivered with one attempt each), are written 40 days old, and a tenth as
many a day old; then the messages rule (30 days) runs chunk by chunk as the worker runs it.
Printed per backend: messages and rows removed per second, and each chunk's transaction time
(on SQLite, how long the writer lock was held).

    .venv/bin/python bench/retention.py --backend both --messages 50000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from harness import store, workdir  # noqa: E402

import pigeon.app.retention as retention_use  # noqa: E402
from pigeon.domain.sids import Prefix, new_sid, new_token  # noqa: E402
from pigeon.store.engine import Database  # noqa: E402
from pigeon.store.schema import upgrade  # noqa: E402
from pigeon.store.tables import (  # noqa: E402
    accounts,
    carrier_refs,
    message_events,
    messages,
    webhook_attempts,
    webhook_deliveries,
)

EVENTS = ("created", "status", "status", "submit", "status", "receipt", "status", "callback")
ROWS_PER_MESSAGE = 1 + len(EVENTS) + 1 + 3 + 3
BATCH = 2000


def history(account: str, at: datetime, n: int) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {t: [] for t in ("messages", "events", "refs", "deliveries")}
    for i in range(n):
        sid = new_sid(Prefix.SMS)
        rows["messages"].append(
            {
                "sid": sid,
                "account_sid": account,
                "direction": "outbound-api",
                "from_": "+14155550100",
                "to": f"+1415555{i % 10000:04d}",
                "body": "Your code is 123456",
                "status": "delivered",
                "price": "-0.00790",
                "date_created": at,
                "date_updated": at,
                "date_sent": at,
            }
        )
        rows["events"] += [
            {"message_sid": sid, "account_sid": account, "at": at, "kind": k, "status": "delivered"} for k in EVENTS
        ]
        rows["refs"].append(
            {
                "carrier": "simulator",
                "carrier_message_id": new_token(),
                "message_sid": sid,
                "account_sid": account,
                "submitted_at": at,
                "receipt_stat": "DELIVRD",
                "receipt_at": at,
            }
        )
        rows["deliveries"] += [
            {
                "idempotency_token": new_token(),
                "account_sid": account,
                "message_sid": sid,
                "kind": "status_callback",
                "url": "https://hooks.example.com/status",
                "params": [["MessageSid", sid], ["MessageStatus", status]],
                "sequence": seq,
                "status": "delivered",
                "attempts": 1,
                "next_attempt_at": at,
                "date_created": at,
                "date_updated": at,
            }
            for seq, status in enumerate(("sending", "sent", "delivered"))
        ]
    return rows


def fill(db: Database, account: str, at: datetime, n: int) -> None:
    for start in range(0, n, BATCH):
        rows = history(account, at, min(BATCH, n - start))
        with db.write() as conn:
            conn.execute(messages.insert(), rows["messages"])
            conn.execute(message_events.insert(), rows["events"])
            conn.execute(carrier_refs.insert(), rows["refs"])
            conn.execute(webhook_deliveries.insert(), rows["deliveries"])
            tokens = [d["idempotency_token"] for d in rows["deliveries"]]
            ids = conn.execute(
                webhook_deliveries.select()
                .with_only_columns(webhook_deliveries.c.id)
                .where(webhook_deliveries.c.idempotency_token.in_(tokens))
            ).scalars()
            conn.execute(
                webhook_attempts.insert(),
                [
                    {"delivery_id": i, "account_sid": account, "at": at, "url": "https://hooks", "status_code": 204}
                    for i in ids
                ],
            )


def run(backend: str, n: int, chunk: int) -> None:
    now = datetime.now(UTC)
    with workdir() as wd, store(backend, wd) as url:
        db = Database.from_url(url)
        try:
            upgrade(db.engine)
            account = "AC" + "b" * 32
            with db.write() as conn:
                conn.execute(
                    accounts.insert().values(
                        sid=account,
                        owner_account_sid=account,
                        friendly_name="bench",
                        auth_token="0" * 32,
                        status="active",
                        type="Full",
                        date_created=now,
                        date_updated=now,
                    )
                )
            started = time.perf_counter()
            fill(db, account, now - timedelta(days=40), n)
            fill(db, account, now - timedelta(days=1), n // 10)
            filled = time.perf_counter() - started
            print(f"{backend}: {n:,} old and {n // 10:,} recent messages written in {filled:.1f} s")

            [rule] = retention_use.rules(message_days=30, webhook_history_days=0, error_log_days=0)
            before = now - rule.keep
            chunk = chunk or rule.chunk
            held: list[float] = []
            removed = 0
            progress: dict[str, Any] = {}  # as the worker carries it from chunk to chunk
            t0 = time.perf_counter()
            while True:  # as RetentionPurger.purge goes, without its pause between chunks
                started = time.perf_counter()
                got = retention_use.purge_chunk(db, rule, before=before, limit=chunk, progress=progress)
                held.append(time.perf_counter() - started)
                removed += got
                if got < chunk:
                    break
            took = time.perf_counter() - t0
            assert removed == n, (removed, n)
            ms = sorted(h * 1000 for h in held)
            print(
                f"  removed {removed:,} messages ({removed * ROWS_PER_MESSAGE:,} rows) in {took:.1f} s:"
                f" {removed / took:,.0f} messages/s, {removed * ROWS_PER_MESSAGE / took:,.0f} rows/s"
            )
            print(
                f"  {len(ms)} transactions of up to {chunk} messages: p50 {statistics.median(ms):.0f} ms,"
                f" p90 {ms[int(len(ms) * 0.9)]:.0f} ms, max {ms[-1]:.0f} ms"
            )
        finally:
            db.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    p.add_argument("--messages", type=int, default=50000)
    p.add_argument("--chunk", type=int, default=0, help="messages per transaction (0: the rule's own)")
    args = p.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args.messages, args.chunk)


if __name__ == "__main__":
    main()
