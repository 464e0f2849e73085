"""The dispatcher's queries: claiming due messages, sender slots, queue depth, carrier ids.

Claims are leases (claimed_by, claimed_until) taken in one write transaction: on PostgreSQL
with ``FOR UPDATE SKIP LOCKED`` so that many dispatchers split the work; on SQLite the write
transaction itself (BEGIN IMMEDIATE) makes each claim exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import MessageStatus
from pigeon.store.tables import carrier_refs, messages, sender_pacing, unmatched_receipts

Row = dict[str, Any]
m = messages.c

READY = (str(MessageStatus.QUEUED), str(MessageStatus.ACCEPTED))
WAITING = (*READY, str(MessageStatus.SENDING))


def claim_due(conn: Connection, *, now: datetime, limit: int, lease: timedelta, worker_id: str) -> list[Row]:
    """Claim up to `limit` messages that are due: ready ones whose time has come, and
    messages left in `sending` by a dispatcher whose lease ran out (to be resent)."""
    due = sa.or_(
        sa.and_(
            m.status.in_(READY),
            m.next_attempt_at <= now,
            sa.or_(m.claimed_until.is_(None), m.claimed_until < now),
        ),
        sa.and_(m.status == str(MessageStatus.SENDING), m.claimed_until < now),
    )
    pick = sa.select(m.sid).where(due).order_by(m.next_attempt_at, m.date_created).limit(limit)
    if conn.dialect.name == "postgresql":
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        messages.update()
        .where(m.sid.in_(pick.scalar_subquery()))
        .values(claimed_by=worker_id, claimed_until=now + lease)
        .returning(*messages.c)
    )
    rows = [dict(r) for r in conn.execute(stmt).mappings()]
    rows.sort(key=lambda r: (r["next_attempt_at"], r["date_created"]))
    return rows


def release(conn: Connection, sid: str, *, next_attempt_at: datetime, paced_at: datetime | None) -> None:
    """Give a claimed message back to the queue until `next_attempt_at`."""
    conn.execute(
        messages.update()
        .where(m.sid == sid)
        .values(claimed_by=None, claimed_until=None, next_attempt_at=next_attempt_at, paced_at=paced_at)
    )


def next_free(conn: Connection, senders: Sequence[str]) -> dict[str, datetime]:
    """Each sender's next free slot (lock the rows on PostgreSQL: reservations must not race)."""
    if not senders:
        return {}
    q = sa.select(sender_pacing).where(sender_pacing.c.sender.in_(sorted(set(senders))))
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return {r.sender: r.next_send_at for r in conn.execute(q)}


def set_next_free(conn: Connection, values: dict[str, datetime], *, known: set[str]) -> None:
    for sender, at in values.items():
        if sender in known:
            conn.execute(sender_pacing.update().where(sender_pacing.c.sender == sender).values(next_send_at=at))
        elif conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(sender_pacing).values(sender=sender, next_send_at=at)
            conn.execute(stmt.on_conflict_do_update(index_elements=["sender"], set_={"next_send_at": at}))
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt2 = sqlite_insert(sender_pacing).values(sender=sender, next_send_at=at)
            conn.execute(stmt2.on_conflict_do_update(index_elements=["sender"], set_={"next_send_at": at}))


def queued_segments(conn: Connection, sender: str) -> int:
    """Segments waiting for `sender` (for the 21611 queue limit)."""
    q = sa.select(sa.func.coalesce(sa.func.sum(m.num_segments), 0)).where(m.from_ == sender, m.status.in_(WAITING))
    return int(conn.execute(q).scalar_one())


def record_carrier_ids(
    conn: Connection, *, carrier: str, ids: Sequence[str], message_sid: str, account_sid: str, at: datetime
) -> None:
    conn.execute(
        carrier_refs.insert(),
        [
            {
                "carrier": carrier,
                "carrier_message_id": cid,
                "message_sid": message_sid,
                "account_sid": account_sid,
                "part_index": i,
                "part_count": len(ids),
                "submitted_at": at,
            }
            for i, cid in enumerate(ids)
        ],
    )


def find_carrier_ref(conn: Connection, carrier: str, carrier_id: str) -> Row | None:
    q = sa.select(carrier_refs).where(
        carrier_refs.c.carrier == carrier, carrier_refs.c.carrier_message_id == carrier_id
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def parts_of(conn: Connection, message_sid: str) -> list[Row]:
    q = sa.select(carrier_refs).where(carrier_refs.c.message_sid == message_sid).order_by(carrier_refs.c.part_index)
    return [dict(r) for r in conn.execute(q).mappings()]


def set_part_receipt(conn: Connection, carrier: str, carrier_id: str, *, stat: str, at: datetime) -> None:
    conn.execute(
        carrier_refs.update()
        .where(carrier_refs.c.carrier == carrier, carrier_refs.c.carrier_message_id == carrier_id)
        .values(receipt_stat=stat, receipt_at=at)
    )


def park_unmatched(conn: Connection, row: Row) -> None:
    conn.execute(unmatched_receipts.insert().values(**row))


def take_unmatched(conn: Connection, carrier: str, ids: Sequence[str]) -> list[Row]:
    """Receipts that arrived for these ids before we recorded them; removed as they are taken."""
    q = (
        sa.select(unmatched_receipts)
        .where(unmatched_receipts.c.carrier == carrier, unmatched_receipts.c.carrier_message_id.in_(list(ids)))
        .order_by(unmatched_receipts.c.id)
    )
    rows = [dict(r) for r in conn.execute(q).mappings()]
    if rows:
        conn.execute(unmatched_receipts.delete().where(unmatched_receipts.c.id.in_([r["id"] for r in rows])))
    return rows
