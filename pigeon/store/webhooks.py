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

Order. Deliveries of one message to one URL go out in ``sequence`` order, each after the one
before it finished (`pigeon.store.webhook_lines` keeps the lines and says how).

Batches. The workers write many rows at once with the same rules: `enqueue_many` numbers each
message's deliveries after those it has, `record_attempts` and `mark_many_delivered` (fenced
by the lease, one UPDATE per lease and status code) record a group of attempts; the
waiting deliveries they release are promoted in one UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import new_token
from pigeon.domain.urls import mask_credentials, url_for_log
from pigeon.store.engine import found_in_order, index_plans, unindexed
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import webhook_attempts, webhook_deliveries
from pigeon.store.webhook_lines import (
    DELIVERED,
    FAILED,
    PENDING,
    WAITING,
    promote,
    unfinished,
)

Row = dict[str, Any]

d = webhook_deliveries.c
a = webhook_attempts.c

# -- named queries ----------------------------------------------------------------------------

_cand = webhook_deliveries.alias("cand")

#: Due and unclaimed (or lease expired). A pending delivery is always first in line for its
#: message and URL (the ones behind it are waiting), so nothing else needs checking.
_DUE = (
    sa.select(_cand.c.id)
    .where(
        _cand.c.status == PENDING,
        _cand.c.next_attempt_at <= sa.bindparam("now"),
        sa.or_(_cand.c.claimed_until.is_(None), _cand.c.claimed_until < sa.bindparam("now")),
    )
    # The index's order and nothing more, so that reading it in order needs no sort (SQLite's
    # index ends with the row id anyway; PostgreSQL takes equal times in any order).
    .order_by(_cand.c.next_attempt_at)
    .limit(sa.bindparam("limit"))
)


def _claim(due: sa.Select[Any]) -> sa.Update:
    return (
        webhook_deliveries.update()
        .where(d.id.in_(due))
        .values(claimed_until=sa.bindparam("lease"), date_updated=sa.bindparam("now"))
        .returning(*webhook_deliveries.c)
    )


_CLAIM = Prepared(_claim(_DUE))
_CLAIM_SKIP_LOCKED = Prepared(_claim(_DUE.with_for_update(skip_locked=True, of=_cand)))

#: Whether a claim would find anything: the first due delivery in the index's order.
_ANY_DUE = sa.select(found_in_order(_DUE))


#: The message's next sequence, and whether `url` already has an unfinished delivery.
_NEXT_IN_LINE = sa.select(
    sa.func.coalesce(sa.func.max(d.sequence) + 1, 0),
    sa.func.coalesce(
        sa.func.max(sa.case((sa.and_(d.url == sa.bindparam("url"), unfinished(d.status)), 1), else_=0)), 0
    ),
).where(d.message_sid == sa.bindparam("message_sid"))

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
    """Add a delivery, due now (or waiting behind an unfinished one of the same message and
    URL); returns its id. Params keep their order and repeats."""
    sequence, status = 0, PENDING
    if message_sid is not None:
        following, busy = conn.execute(_NEXT_IN_LINE, {"message_sid": message_sid, "url": url}).one()
        sequence, status = int(following), WAITING if busy else PENDING
    q = (
        webhook_deliveries.insert()
        .values(
            idempotency_token=new_token(),
            account_sid=account_sid,
            message_sid=message_sid,
            kind=kind,
            url=url,
            method=method.upper(),
            params=[[name, value] for name, value in params],
            fallback_url=fallback_url,
            fallback_method=(fallback_method or "POST").upper() if fallback_url else None,
            sequence=sequence,
            status=status,
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


# What a batch of messages already has in the outbox, per message and URL: the last sequence,
# and whether one is unfinished. Built once: enqueue_many runs for every batch of callbacks.
_DELIVERIES_OF = Prepared(
    sa.select(
        d.message_sid,
        d.url,
        sa.func.max(d.sequence).label("top"),
        sa.func.max(sa.case((unfinished(d.status), 1), else_=0)).label("unfinished"),
    )
    .where(d.message_sid.in_(sa.bindparam("b_sids", expanding=True)))
    .group_by(d.message_sid, d.url)
)


def enqueue_many(conn: Connection, deliveries: Sequence[Row], *, now: datetime) -> None:
    """`enqueue` for many deliveries (made with `new_delivery`), all due now, in one INSERT.

    Each message's deliveries are numbered after those it already has, in the order given,
    so a later status's callback never overtakes an earlier one; a delivery behind an
    unfinished one of the same message and URL (in the store or earlier in `deliveries`) is
    written waiting."""
    if not deliveries:
        return
    sids = sorted({r["message_sid"] for r in deliveries if r["message_sid"] is not None})
    following: dict[str, int] = {}
    busy: set[tuple[str, str]] = set()
    if sids:
        with index_plans(conn):
            found = _DELIVERIES_OF.all(conn, {"b_sids": sids})
        for f in found:
            sid = f["message_sid"]
            following[sid] = max(following.get(sid, 0), int(f["top"]) + 1)
            if f["unfinished"]:
                busy.add((sid, f["url"]))
    rows = []
    for r in deliveries:
        sequence, status = 0, PENDING
        sid = r["message_sid"]
        if sid is not None:
            sequence = following.get(sid, 0)
            following[sid] = sequence + 1
            if (sid, r["url"]) in busy:
                status = WAITING
            busy.add((sid, r["url"]))
        rows.append(
            {
                **r,
                "idempotency_token": new_token(),
                "sequence": sequence,
                "status": status,
                "attempts": 0,
                "next_attempt_at": now,
                "date_created": now,
                "date_updated": now,
            }
        )
    insert_many(conn, webhook_deliveries, rows)


def claim_due(conn: Connection, *, now: datetime, limit: int, lease_seconds: float) -> list[Row]:
    """Claim up to `limit` due deliveries for `lease_seconds`; oldest due first.

    Call inside a write transaction: on SQLite that transaction's BEGIN IMMEDIATE is what makes
    the claim exclusive; on PostgreSQL, SKIP LOCKED lets concurrent claimers pass each other.
    """
    q = _CLAIM_SKIP_LOCKED if conn.dialect.name == "postgresql" else _CLAIM
    lease = now + timedelta(seconds=lease_seconds)
    with index_plans(conn):
        rows = [_row(r) for r in q.all(conn, {"now": now, "limit": limit, "lease": lease})]
    # RETURNING follows no ORDER BY; give callers the due order.
    return sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"]))


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether `claim_due` would find anything now (a read; another worker may claim it first)."""
    return bool(conn.execute(_ANY_DUE, {"now": now}).scalar())


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
    location: str | None = None,
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
            location=location,
        )
    )


def record_attempts(conn: Connection, attempts: Sequence[Row]) -> None:
    """`record_attempt` for many attempts, with one multi-row INSERT. Each row has every
    argument of `record_attempt` (``delivery_id``, ``account_sid``, ``at``, ``url``,
    ``status_code``, ``error_code``, ``error``, ``duration_ms``, ``response_excerpt``)."""
    insert_many(conn, webhook_attempts, attempts)


def _lease_matches(lease: datetime | None) -> sa.ColumnElement[bool]:
    return d.claimed_until.is_(None) if lease is None else d.claimed_until == lease


def _mark_delivered_where(lease: sa.ColumnElement[bool]) -> Any:
    return (
        webhook_deliveries.update()
        # Found by id; the status only guards (`unindexed`: else SQLite reads every pending
        # delivery for each batch of outcomes).
        .where(d.id.in_(sa.bindparam("ids", expanding=True)), unindexed(d.status) == PENDING, lease)
        .values(
            attempts=d.attempts + 1,
            claimed_until=None,
            status=DELIVERED,
            last_status_code=sa.bindparam("code"),
            last_error=None,
            date_updated=sa.bindparam("now"),
        )
        .returning(d.id, d.message_sid)
    )


_MARK_DELIVERED = Prepared(_mark_delivered_where(d.claimed_until == sa.bindparam("lease", type_=d.claimed_until.type)))
_MARK_DELIVERED_UNLEASED = Prepared(_mark_delivered_where(d.claimed_until.is_(None)))


def mark_many_delivered(
    conn: Connection, delivered: Sequence[tuple[int, datetime | None, int]], *, now: datetime
) -> set[int]:
    """`mark_delivered` for many (delivery id, lease, status code); returns the ids this worker
    still held (the others were taken over by another claim). One UPDATE per lease and status
    code: the deliveries of one claim share their lease, and receivers mostly answer alike.
    Then one UPDATE promotes the deliveries waiting behind them."""
    groups: dict[tuple[datetime | None, int], list[int]] = {}
    for delivery_id, lease, status_code in delivered:
        groups.setdefault((lease, status_code), []).append(delivery_id)
    held: set[int] = set()
    finished: list[str | None] = []
    for (lease, status_code), ids in groups.items():
        q, params = (_MARK_DELIVERED_UNLEASED, {}) if lease is None else (_MARK_DELIVERED, {"lease": lease})
        for row in q.all(conn, {**params, "ids": sorted(ids), "code": status_code, "now": now}):
            held.add(int(row["id"]))
            finished.append(row["message_sid"])
    promote(conn, finished, now=now)
    return held


def _update_held(conn: Connection, delivery_id: int, lease: datetime | None, **values: Any) -> Any:
    """Update a delivery this worker still holds: same lease, still pending. The row (its
    message_sid), or None if it lost it."""
    q = (
        webhook_deliveries.update()
        .where(d.id == delivery_id, d.status == PENDING, _lease_matches(lease))
        .values(attempts=d.attempts + 1, claimed_until=None, **values)
        .returning(d.message_sid)
    )
    return conn.execute(q).first()


def _finish(conn: Connection, delivery_id: int, lease: datetime | None, now: datetime, **values: Any) -> bool:
    """Settle a held delivery for good and promote the one waiting behind it."""
    row = _update_held(conn, delivery_id, lease, date_updated=now, **values)
    if row is None:
        return False
    promote(conn, [row.message_sid], now=now)
    return True


def mark_delivered(
    conn: Connection, delivery_id: int, *, now: datetime, status_code: int, lease: datetime | None
) -> bool:
    return _finish(conn, delivery_id, lease, now, status=DELIVERED, last_status_code=status_code, last_error=None)


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
    """Try again at `next_attempt_at`. The delivery stays pending and first in line, so the
    ones behind it keep waiting."""
    row = _update_held(
        conn,
        delivery_id,
        lease,
        next_attempt_at=next_attempt_at,
        last_status_code=status_code,
        last_error=error,
        date_updated=now,
    )
    return row is not None


#: A claim given back unattempted: the lease let go (fenced by it) and the delivery due later.
_GIVE_BACK = Prepared(
    webhook_deliveries.update()
    .where(
        d.id.in_(sa.bindparam("b_ids", expanding=True)),
        unindexed(d.status) == PENDING,
        d.claimed_until == sa.bindparam("b_lease", type_=d.claimed_until.type),
    )
    .values(
        claimed_until=None,
        next_attempt_at=sa.bindparam("b_until", type_=d.next_attempt_at.type),
        date_updated=sa.bindparam("b_now", type_=d.date_updated.type),
    )
)


def give_back(conn: Connection, ids: Sequence[int], *, lease: datetime, until: datetime, now: datetime) -> int:
    """Let go of claimed deliveries without attempting them, due again at `until` (a worker
    whose receiver is slow has no room for them now). Not an attempt: nothing else changes,
    and a delivery stays first in line. Only rows still under `lease`; how many."""
    if not ids:
        return 0
    return _GIVE_BACK.run(conn, {"b_ids": list(ids), "b_lease": lease, "b_until": until, "b_now": now})


def mark_failed(
    conn: Connection, delivery_id: int, *, now: datetime, status_code: int | None, error: str, lease: datetime | None
) -> bool:
    return _finish(conn, delivery_id, lease, now, status=FAILED, last_status_code=status_code, last_error=error)


def set_params(conn: Connection, delivery_id: int, params: Sequence[tuple[str, str]]) -> None:
    """Replace a delivery's parameters (a redacted message's text; its token stays)."""
    conn.execute(webhook_deliveries.update().where(d.id == delivery_id).values(params=[list(p) for p in params]))


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
    """Every attempt for a message (with its delivery's kind and sequence), or for one delivery;
    the password of its URL masked (attempts recorded before their writers masked it kept it)."""
    if message_sid is not None:
        rows = conn.execute(_ATTEMPTS_OF_MESSAGE, {"message_sid": message_sid}).mappings()
    elif delivery_id is not None:
        rows = conn.execute(sa.select(webhook_attempts).where(a.delivery_id == delivery_id).order_by(a.id)).mappings()
    else:
        raise ValueError("give message_sid or delivery_id")
    return [
        {
            **r,
            "url": url_for_log(r["url"]),
            "error": mask_credentials(r["error"]) if r["error"] else r["error"],
            "location": url_for_log(r["location"]) if r["location"] else None,
        }
        for r in rows
    ]
