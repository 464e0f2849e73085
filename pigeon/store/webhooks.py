"""The webhook outbox: deliveries waiting to go out, their claims and every attempt.

A delivery is written in the same transaction as the change it reports (a message's status),
so a committed change always has its callback on the way, and a crash loses nothing.

Claims. Workers take due rows with a lease (``claimed_until``); a worker that dies simply
lets its lease run out and the row becomes due again. The lease is also the fence for the
outcome: `mark_delivered`, `schedule_retry` and `mark_failed` only change a row whose lease is
still the one the worker claimed, so a worker that lost its lease to another (it was too slow)
cannot overwrite the newer claim's outcome. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED``
so any number of workers share the table; SQLite has one writer at a time (the write
transaction is ``BEGIN IMMEDIATE``), which makes each claim exclusive.

Order. Deliveries of one message to one URL go out in ``sequence`` order: a delivery waits
while an earlier one for the same message and URL is still pending (being retried), so a
receiver never sees ``delivered`` before ``sent``. Ordering is per URL, not per message, so
that a dead Event Streams sink cannot hold back the same message's status callbacks.
Sequences are numbered per message when enqueued; two enqueues for one message do not race,
because each follows a guarded UPDATE of that message's row in the same transaction, which
serialises them.

Batches. The workers write many rows at once with the same rules: `enqueue_many` numbers each
message's deliveries after those it has, `record_attempts` and `mark_many_delivered` (fenced
by the lease, one UPDATE per lease and status code) record a group of attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import webhook_attempts, webhook_deliveries

Row = dict[str, Any]

d = webhook_deliveries.c
a = webhook_attempts.c

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

# -- named queries ----------------------------------------------------------------------------

_cand = webhook_deliveries.alias("cand")
_earlier = webhook_deliveries.alias("earlier")

#: Due, unclaimed (or lease expired), and first in line for its message and URL.
_DUE = (
    sa.select(_cand.c.id)
    .where(
        _cand.c.status == PENDING,
        _cand.c.next_attempt_at <= sa.bindparam("now"),
        sa.or_(_cand.c.claimed_until.is_(None), _cand.c.claimed_until < sa.bindparam("now")),
        ~sa.exists().where(
            _earlier.c.message_sid == _cand.c.message_sid,
            _earlier.c.url == _cand.c.url,
            # coalesce() over a NOT NULL column changes nothing but keeps SQLite's planner off
            # the (status, next_attempt_at) index here: through it, each candidate would scan
            # every pending delivery, a claim costing O(pending^2); by message_sid, a handful.
            sa.func.coalesce(_earlier.c.status, PENDING) == PENDING,
            _earlier.c.sequence < _cand.c.sequence,
        ),
    )
    .order_by(_cand.c.next_attempt_at, _cand.c.id)
    .limit(sa.bindparam("limit"))
)

_NEXT_SEQUENCE = sa.select(sa.func.coalesce(sa.func.max(d.sequence) + 1, 0)).where(
    d.message_sid == sa.bindparam("message_sid")
)

_ATTEMPTS_OF_MESSAGE = (
    sa.select(webhook_attempts, d.message_sid, d.kind, d.sequence)
    .join(webhook_deliveries, d.id == a.delivery_id)
    .where(d.message_sid == sa.bindparam("message_sid"))
    .order_by(a.id)
)

# -- writing ----------------------------------------------------------------------------------


def enqueue(
    conn: Connection,
    *,
    account_sid: str,
    message_sid: str | None,
    kind: str,
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    now: datetime,
    fallback_url: str | None = None,
    fallback_method: str | None = None,
) -> int:
    """Add a delivery, due now; returns its id. Params keep their order and repeats."""
    sequence = 0
    if message_sid is not None:
        sequence = int(conn.execute(_NEXT_SEQUENCE, {"message_sid": message_sid}).scalar_one())
    q = (
        webhook_deliveries.insert()
        .values(
            idempotency_token=str(uuid.uuid4()),
            account_sid=account_sid,
            message_sid=message_sid,
            kind=kind,
            url=url,
            method=method.upper(),
            params=[[name, value] for name, value in params],
            fallback_url=fallback_url,
            fallback_method=(fallback_method or "POST").upper() if fallback_url else None,
            sequence=sequence,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            date_created=now,
            date_updated=now,
        )
        .returning(d.id)
    )
    return int(conn.execute(q).scalar_one())


def new_delivery(
    *,
    account_sid: str,
    message_sid: str | None,
    kind: str,
    url: str,
    method: str,
    params: Sequence[tuple[str, str]],
    fallback_url: str | None = None,
    fallback_method: str | None = None,
) -> Row:
    """A delivery for `enqueue_many`, shaped as `enqueue` writes it."""
    return {
        "account_sid": account_sid,
        "message_sid": message_sid,
        "kind": kind,
        "url": url,
        "method": method.upper(),
        "params": [[name, value] for name, value in params],
        "fallback_url": fallback_url,
        "fallback_method": (fallback_method or "POST").upper() if fallback_url else None,
    }


def enqueue_many(conn: Connection, deliveries: Sequence[Row], *, now: datetime) -> None:
    """`enqueue` for many deliveries (made with `new_delivery`), all due now, in one INSERT.

    Each message's deliveries are numbered after those it already has, in the order given,
    so a later status's callback never overtakes an earlier one."""
    if not deliveries:
        return
    sids = sorted({r["message_sid"] for r in deliveries if r["message_sid"] is not None})
    following: dict[str, int] = {}
    if sids:
        q = sa.select(d.message_sid, sa.func.max(d.sequence)).where(d.message_sid.in_(sids)).group_by(d.message_sid)
        following = {sid: int(top) + 1 for sid, top in conn.execute(q)}
    rows = []
    for r in deliveries:
        sequence = 0
        if r["message_sid"] is not None:
            sequence = following.get(r["message_sid"], 0)
            following[r["message_sid"]] = sequence + 1
        rows.append(
            {
                **r,
                "idempotency_token": str(uuid.uuid4()),
                "sequence": sequence,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "date_created": now,
                "date_updated": now,
            }
        )
    conn.execute(webhook_deliveries.insert(), rows)


def claim_due(conn: Connection, *, now: datetime, limit: int, lease_seconds: float) -> list[Row]:
    """Claim up to `limit` due deliveries for `lease_seconds`; oldest due first.

    Call inside a write transaction: on SQLite that transaction's BEGIN IMMEDIATE is what makes
    the claim exclusive; on PostgreSQL, SKIP LOCKED lets concurrent claimers pass each other.
    """
    due = _DUE
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=_cand)
    lease = now + timedelta(seconds=lease_seconds)
    q = (
        webhook_deliveries.update()
        .where(d.id.in_(due))
        .values(claimed_until=lease, date_updated=now)
        .returning(*webhook_deliveries.c)
    )
    rows = [_row(r) for r in conn.execute(q, {"now": now, "limit": limit}).mappings()]
    # RETURNING follows no ORDER BY; give callers the due order.
    return sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"]))


def record_attempt(
    conn: Connection,
    *,
    delivery_id: int,
    account_sid: str,
    at: datetime,
    url: str,
    status_code: int | None,
    error_code: int | None = None,
    error: str | None = None,
    duration_ms: float | None = None,
    response_excerpt: str | None = None,
) -> None:
    conn.execute(
        webhook_attempts.insert().values(
            delivery_id=delivery_id,
            account_sid=account_sid,
            at=at,
            url=url,
            status_code=status_code,
            error_code=error_code,
            error=error,
            duration_ms=duration_ms,
            response_excerpt=response_excerpt,
        )
    )


def record_attempts(conn: Connection, attempts: Sequence[Row]) -> None:
    """`record_attempt` for many attempts, with one executemany. Each row has every argument
    of `record_attempt` (``delivery_id``, ``account_sid``, ``at``, ``url``, ``status_code``,
    ``error_code``, ``error``, ``duration_ms``, ``response_excerpt``)."""
    if attempts:
        conn.execute(webhook_attempts.insert(), list(attempts))


def mark_many_delivered(
    conn: Connection, delivered: Sequence[tuple[int, datetime | None, int]], *, now: datetime
) -> set[int]:
    """`mark_delivered` for many (delivery id, lease, status code); returns the ids this worker
    still held (the others were taken over by another claim). One UPDATE per lease and status
    code: the deliveries of one claim share their lease, and receivers mostly answer alike."""
    groups: dict[tuple[datetime | None, int], list[int]] = {}
    for delivery_id, lease, status_code in delivered:
        groups.setdefault((lease, status_code), []).append(delivery_id)
    held: set[int] = set()
    for (lease, status_code), ids in groups.items():
        lease_matches = d.claimed_until.is_(None) if lease is None else d.claimed_until == lease
        q = (
            webhook_deliveries.update()
            .where(d.id.in_(sorted(ids)), d.status == PENDING, lease_matches)
            .values(
                attempts=d.attempts + 1,
                claimed_until=None,
                status=DELIVERED,
                last_status_code=status_code,
                last_error=None,
                date_updated=now,
            )
            .returning(d.id)
        )
        held.update(int(i) for i in conn.execute(q).scalars())
    return held


def _finish(conn: Connection, delivery_id: int, lease: datetime | None, **values: Any) -> bool:
    """Update a delivery this worker still holds: same lease, still pending. False if it lost it."""
    lease_matches = d.claimed_until.is_(None) if lease is None else d.claimed_until == lease
    q = (
        webhook_deliveries.update()
        .where(d.id == delivery_id, d.status == PENDING, lease_matches)
        .values(attempts=d.attempts + 1, claimed_until=None, **values)
    )
    return conn.execute(q).rowcount == 1


def mark_delivered(
    conn: Connection, delivery_id: int, *, now: datetime, status_code: int, lease: datetime | None
) -> bool:
    return _finish(
        conn, delivery_id, lease, status=DELIVERED, last_status_code=status_code, last_error=None, date_updated=now
    )


def schedule_retry(
    conn: Connection,
    delivery_id: int,
    *,
    now: datetime,
    next_attempt_at: datetime,
    status_code: int | None,
    error: str,
    lease: datetime | None,
) -> bool:
    return _finish(
        conn,
        delivery_id,
        lease,
        next_attempt_at=next_attempt_at,
        last_status_code=status_code,
        last_error=error,
        date_updated=now,
    )


def mark_failed(
    conn: Connection, delivery_id: int, *, now: datetime, status_code: int | None, error: str, lease: datetime | None
) -> bool:
    return _finish(
        conn, delivery_id, lease, status=FAILED, last_status_code=status_code, last_error=error, date_updated=now
    )


# -- reading ----------------------------------------------------------------------------------


def _row(mapping: Any) -> Row:
    row = dict(mapping)
    row["params"] = [(str(k), str(v)) for k, v in row["params"]]
    return row


def get_delivery(conn: Connection, delivery_id: int) -> Row | None:
    row = conn.execute(sa.select(webhook_deliveries).where(d.id == delivery_id)).mappings().first()
    return _row(row) if row else None


def list_deliveries(conn: Connection, *, message_sid: str) -> list[Row]:
    """A message's deliveries in the order they go out."""
    q = sa.select(webhook_deliveries).where(d.message_sid == message_sid).order_by(d.sequence, d.id)
    return [_row(r) for r in conn.execute(q).mappings()]


def list_attempts(conn: Connection, *, message_sid: str | None = None, delivery_id: int | None = None) -> list[Row]:
    """Every attempt for a message (with its delivery's kind and sequence), or for one delivery."""
    if message_sid is not None:
        return [dict(r) for r in conn.execute(_ATTEMPTS_OF_MESSAGE, {"message_sid": message_sid}).mappings()]
    if delivery_id is None:
        raise ValueError("give message_sid or delivery_id")
    q = sa.select(webhook_attempts).where(a.delivery_id == delivery_id).order_by(a.id)
    return [dict(r) for r in conn.execute(q).mappings()]
