"""The built-in network's pending receipts (table simulated_receipts)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pigeon.ports import ScheduledReceipt
from pigeon.store.batch import GroupCommitter
from pigeon.store.engine import found_in_order
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import simulated_receipts

Row = dict[str, Any]


def spool(conn: Connection, rows: Sequence[Row]) -> None:
    insert_many(conn, simulated_receipts, rows)


#: A receipt owed by `b_now`.
_IS_DUE = simulated_receipts.c.due_at <= sa.bindparam("b_now", type_=simulated_receipts.c.due_at.type)


def _take(*, lock: bool) -> sa.Select[Any]:
    q = (
        sa.select(simulated_receipts)
        .where(_IS_DUE)
        .order_by(simulated_receipts.c.due_at, simulated_receipts.c.id)
        .limit(sa.bindparam("b_limit", type_=sa.Integer))
    )
    return q.with_for_update(skip_locked=True) if lock else q


# Built once: the receipts worker takes due receipts many times a second.
_TAKE = Prepared(_take(lock=False))
_TAKE_LOCKED = Prepared(_take(lock=True))
_DELETE_TAKEN = Prepared(
    simulated_receipts.delete().where(simulated_receipts.c.id.in_(sa.bindparam("b_ids", expanding=True)))
)


def take_due(conn: Connection, *, now: datetime, limit: int) -> list[Row]:
    """Remove and return receipts that are due. Called inside the transaction that applies them,
    so a receipt is consumed exactly when it is applied."""
    q = _TAKE_LOCKED if conn.dialect.name == "postgresql" else _TAKE
    rows = q.all(conn, {"b_now": now, "b_limit": limit})
    if rows:
        _DELETE_TAKEN.run(conn, {"b_ids": [r["id"] for r in rows]})
    return rows


# The first due receipt in the (due_at) index's order (`found_in_order`): this spool's table
# also holds a dead row for every receipt taken until it is vacuumed.
_ANY_DUE = sa.select(
    found_in_order(sa.select(simulated_receipts.c.id).where(_IS_DUE).order_by(simulated_receipts.c.due_at))
)


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether `take_due` would find anything now (a read; another worker may take it first)."""
    return bool(conn.execute(_ANY_DUE, {"b_now": now}).scalar())


class StoreReceiptSpool:
    """The ReceiptSpool of the built-in network: owed receipts written with group commit, so a
    submit returns only once its receipts are durable."""

    def __init__(self, engine: Engine, *, max_batch: int = 500) -> None:
        self._writer: GroupCommitter[Sequence[ScheduledReceipt]] = GroupCommitter(
            engine, self._write, name="simulator-spool", max_batch=max_batch, max_wait=0.0
        )

    @staticmethod
    def _write(conn: Connection, batches: Sequence[Sequence[ScheduledReceipt]]) -> None:
        spool(
            conn,
            [
                {
                    "carrier_message_id": r.carrier_id,
                    "stat": r.stat,
                    "err": r.err,
                    "submit_date": r.submit_date,
                    "due_at": r.due_at,
                }
                for batch in batches
                for r in batch
            ],
        )

    def start(self) -> None:
        self._writer.start()

    def stop(self) -> None:
        self._writer.stop()

    async def schedule(self, receipts: Sequence[ScheduledReceipt]) -> None:
        if receipts:
            await self._writer.write(receipts)
