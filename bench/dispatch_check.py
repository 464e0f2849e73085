"""The dispatcher's check before a claim ("is anything due?") on PostgreSQL, as the table grows.

Every dispatcher round asks it first, so that a round with nothing due does not take a write
transaction. PostgreSQL plans it from statistics, and after a burst (statistics taken while
most messages were queued, all of them delivered since) an EXISTS form of the check was
planned as a sequential scan per status: it read the whole table to find no due row. This
script builds that store (--sizes messages, all delivered, statistics from 400 queued ones,
autovacuum off for the table so that they stay stale) and times both forms: the EXISTS, and
the one `pigeon.store.dispatch.any_due` runs (each status's first due message in the index's
order).

    .venv/bin/python bench/dispatch_check.py --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import store

from pigeon.store import dispatch
from pigeon.store.engine import Database
from pigeon.store.schema import upgrade
from pigeon.store.tables import messages

ACCOUNT = "AC" + "0" * 32
m = messages.c

#: The check as it was: whether a due message EXISTS, per status.
EXISTS_FORM = sa.select(sa.or_(*(sa.exists(sa.select(m.sid).where(due)) for due in dispatch._due_branches())))

_INSERT = sa.text(
    'INSERT INTO messages (sid, account_sid, direction, from_, "to", status, next_attempt_at, date_created,'
    " date_updated) SELECT 'SM' || lpad(to_hex(:first + g), 32, '0'), :account, 'outbound-api', '+14155550100',"
    " '+14155552671', :status, :at, :at, :at FROM generate_series(0, :count - 1) AS g"
)


def per_check_ms(db: Database, query: Any, now: datetime, repeat: int) -> float:
    with db.lookup() as conn:
        for _ in range(3):  # past the driver's and the server's first plans
            conn.execute(query, {"b_now": now, "b_me": "bench"}).scalar()
        started = time.perf_counter()
        for _ in range(repeat):
            conn.execute(query, {"b_now": now, "b_me": "bench"}).scalar()
    return (time.perf_counter() - started) / repeat * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000", help="messages in the table, comma-separated")
    p.add_argument("--repeat", type=int, default=20, help="checks timed per size and form")
    args = p.parse_args()
    now = datetime.now(UTC)
    at = now - timedelta(seconds=5)
    with tempfile.TemporaryDirectory() as tmp, store("postgres", Path(tmp)) as url:
        db = Database.from_url(url)
        upgrade(db.engine)
        with db.write() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO accounts (sid, owner_account_sid, friendly_name, auth_token, status, date_created,"
                    " date_updated) VALUES (:sid, :sid, 'bench', 'token', 'active', :at, :at)"
                ),
                {"sid": ACCOUNT, "at": at},
            )
            conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
            conn.execute(_INSERT, {"first": 0, "count": 400, "status": "queued", "account": ACCOUNT, "at": at})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE messages")
        total = 400
        print("messages in the table, nothing due: ms per check (EXISTS form / index-order form)")
        for size in (int(s) for s in args.sizes.split(",")):
            with db.write() as conn:
                conn.exec_driver_sql("UPDATE messages SET status = 'delivered' WHERE status = 'queued'")
                more = {"first": 10**9 + total, "count": size - total, "status": "delivered"}
                conn.execute(_INSERT, {**more, "account": ACCOUNT, "at": at})
            total = size
            before = per_check_ms(db, EXISTS_FORM, now, args.repeat)
            after = per_check_ms(db, dispatch._ANY_DUE, now, args.repeat)
            print(f"{size:>12,}   {before:9.2f} / {after:6.2f}")
        db.dispose()


if __name__ == "__main__":
    main()
