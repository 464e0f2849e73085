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

Order. Deliveries of one message to one URL go out in ``sequence`` order, so a receiver never
sees ``delivered`` before ``sent``. Only the first unfinished delivery of a message and URL is
``pending``; the ones queued behind it are ``waiting`` and are never claimed. A delivery is
written ``waiting`` when an unfinished (pending or waiting) one for the same message and URL
exists; when a delivery finishes (delivered or failed, never a retry, which keeps it first in
line) the first ``waiting`` one of its message and URL becomes ``pending`` in the same
transaction. It keeps its ``next_attempt_at``, the time it was written: due at once, and ahead
of the deliveries written after it (promoted "due now", the later callbacks of every message
would queue behind the first callbacks of all newer messages, and under load wait for the
backlog). The claim therefore reads pending rows only, straight off the
(status, next_attempt_at) index, and rows held back behind a receiver that is down cost it
nothing. Ordering is per URL, not per message, so that a dead Event Streams sink cannot hold
back the same message's status callbacks. Sequences are numbered per message when enqueued;
two enqueues for one message do not race, because each follows a guarded UPDATE of that
message's row in the same transaction, which serialises them.

Enqueue against finish. On PostgreSQL (READ COMMITTED) an enqueue can read a delivery as
pending while a finisher, in a transaction running alongside, finishes it and looks for waiting
rows before the enqueue's new row is visible to it. Both commit, and the new row waits behind
nothing. Locking both sides against each other would close that window, at a cost paid on
every status change (measured: a per-message advisory lock on both sides cut the PostgreSQL
pipeline from 299 to 183-208 messages/s at 300/s offered). The window is a few milliseconds
wide and what it leaves behind is cheap to find, so instead the webhook worker looks for such rows (`find_orphans`) twice a
second among the waiting rows of the last seconds, and now and then among all of them, and
makes them pending (`promote_orphans`): one goes out a fraction of a second late, in its
order. It is not rare: with a dispatcher and a callback worker busy side by side, about one
message in 150 had a callback left behind this way (bench/e2e.py at 300 messages/s). SQLite
has one writer at a time and never leaves one.

Batches. The workers write many rows at once with the same rules: `enqueue_many` numbers each
message's deliveries after those it has, `record_attempts` and `mark_many_delivered` (fenced
by the lease, one UPDATE per lease and status code) record a group of attempts; the
waiting deliveries they release are promoted in one UPDATE.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import new_token
from pigeon.domain.urls import mask_credentials, url_for_log
from pigeon.store.engine import found_in_order, index_plans, probe_each, unindexed
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import webhook_attempts, webhook_deliveries

Row = dict[str, Any]

d = webhook_deliveries.c
a = webhook_attempts.c

PENDING, WAITING, DELIVERED, FAILED = "pending", "waiting", "delivered", "failed"
#: Not finished yet: a later delivery of the same message and URL waits behind these.
UNFINISHED = (PENDING, WAITING)
FINISHED = (DELIVERED, FAILED)

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


def _unfinished(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    # Unindexed: else SQLite's planner may read these message-scoped lookups through the
    # (status, next_attempt_at) index, visiting every pending or waiting delivery instead of
    # one message's handful.
    return unindexed(status).in_(UNFINISHED)


#: The message's next sequence, and whether `url` already has an unfinished delivery.
_NEXT_IN_LINE = sa.select(
    sa.func.coalesce(sa.func.max(d.sequence) + 1, 0),
    sa.func.coalesce(
        sa.func.max(sa.case((sa.and_(d.url == sa.bindparam("url"), _unfinished(d.status)), 1), else_=0)), 0
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
        sa.func.max(sa.case((_unfinished(d.status), 1), else_=0)).label("unfinished"),
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
    """`record_attempt` for many attempts, with one multi-row INSERT. Each row has every
    argument of `record_attempt` (``delivery_id``, ``account_sid``, ``at``, ``url``,
    ``status_code``, ``error_code``, ``error``, ``duration_ms``, ``response_excerpt``)."""
    insert_many(conn, webhook_attempts, attempts)


def _first_waiting(nxt: Any, *, among_sids: Any = None) -> sa.ColumnElement[bool]:
    """`nxt` (an alias of webhook_deliveries) is waiting with nothing unfinished ahead of it.
    `among_sids` (the message SIDs `nxt` is restricted to) bounds the rows looked at ahead,
    which the condition implies but a planner working from stale statistics may not see: no
    plan can then read more than those messages' deliveries."""
    ahead = webhook_deliveries.alias("ahead")
    bound = [ahead.c.message_sid.in_(among_sids)] if among_sids is not None else []
    return sa.and_(
        unindexed(nxt.c.status) == WAITING,
        ~sa.exists().where(
            *bound,
            ahead.c.message_sid == nxt.c.message_sid,
            ahead.c.url == nxt.c.url,
            _unfinished(ahead.c.status),
            ahead.c.sequence < nxt.c.sequence,
        ),
    )


def _make_first_waiting_pending(among: Callable[[Any], sa.ColumnElement[bool]], *, among_sids: Any = None) -> sa.Update:
    """The UPDATE that makes pending the waiting deliveries `among(nxt)` selects (nxt: an
    alias of the table) that have nothing unfinished ahead of them; they keep their place in
    the due order. Built once: the workers run it with every batch of outcomes, and building
    its aliases and subqueries cost more than running it."""
    nxt = webhook_deliveries.alias("nxt")
    first_waiting = sa.select(nxt.c.id).where(among(nxt), _first_waiting(nxt, among_sids=among_sids))
    return (
        webhook_deliveries.update()
        # The row itself must still be waiting. On PostgreSQL two promotions of one row can
        # overlap (the sweep's and a finish's): the later one, having read the row as waiting
        # through `nxt`, waits for its lock, and READ COMMITTED then rechecks only the
        # conditions on the updated row's own columns. Without this one, a row promoted,
        # claimed and delivered meanwhile would be made pending again, and sent twice.
        .where(d.id.in_(first_waiting), unindexed(d.status) == WAITING)
        .values(status=PENDING, date_updated=sa.bindparam("now"))
    )


_SIDS: sa.BindParameter[Any] = sa.bindparam("sids", expanding=True)
_PROMOTE_OF_MESSAGES = Prepared(_make_first_waiting_pending(lambda nxt: nxt.c.message_sid.in_(_SIDS), among_sids=_SIDS))
_PROMOTE_BY_ID = _make_first_waiting_pending(lambda nxt: nxt.c.id.in_(sa.bindparam("ids", expanding=True)))


def _make_pending() -> sa.Update:
    """PostgreSQL: make pending the deliveries in `ids` (an array: one statement text whatever
    their number, so that the server prepares and plans it once). The row must still be
    waiting: a promotion running alongside (the sweep's) may have made it pending, and a
    claim taken and delivered it, meanwhile (see `_make_first_waiting_pending`)."""
    from sqlalchemy.dialects.postgresql import ARRAY

    ids = sa.bindparam("ids", type_=ARRAY(sa.BigInteger))
    return (
        webhook_deliveries.update()
        .where(d.id == sa.any_(ids), unindexed(d.status) == WAITING)
        .values(status=PENDING, date_updated=sa.bindparam("now"))
    )


#: PostgreSQL: the unfinished deliveries of the messages in `sids` (an array), one probe of the
#: message_sid index per message.
_UNFINISHED_OF_MESSAGES = probe_each(
    sa.select(d.id, d.message_sid, d.url, d.sequence, d.status).where(unindexed(d.status).in_(UNFINISHED)),
    d.message_sid,
    param="sids",
)
_MAKE_PENDING = _make_pending()


def _promote(conn: Connection, finished: Iterable[str | None], *, now: datetime) -> None:
    """After deliveries of these messages finished, in their transaction: every waiting
    delivery of the messages with nothing unfinished ahead of it in its line becomes pending.
    That is the first waiting one of each line that just finished (and of no other: another
    line's first unfinished is pending already). Asked by message SID, through its index:
    asking by (message SID, URL) pairs cost PostgreSQL more to plan than to run.

    On PostgreSQL the lines are read first and their heads picked here. As one statement (the
    NOT EXISTS of `_first_waiting`), its planner, even held to index scans, compared every
    waiting delivery of the batch with every unfinished one of the batch (a materialised scan
    and a join filter: 120,000 comparisons for a batch of 200 messages, 11 ms of its 14), or,
    on stale statistics, read the whole table through the primary key."""
    sids = sorted({sid for sid in finished if sid is not None})
    if not sids:
        return
    if conn.dialect.name != "postgresql":
        _PROMOTE_OF_MESSAGES.run(conn, {"sids": sids, "now": now})
        return
    with index_plans(conn):
        heads: dict[tuple[str, str], Any] = {}
        for row in conn.execute(_UNFINISHED_OF_MESSAGES, {"sids": sids}):
            line = (row.message_sid, row.url)
            if line not in heads or row.sequence < heads[line].sequence:
                heads[line] = row
        ids = sorted(row.id for row in heads.values() if row.status == WAITING)
        if ids:
            conn.execute(_MAKE_PENDING, {"ids": ids, "now": now})


def find_orphans(conn: Connection, *, since: datetime | None = None, until: datetime | None = None) -> list[int]:
    """The waiting deliveries that have nothing unfinished ahead of them (the module docstring
    says how one can be left behind); `since` and `until` limit the search to those written
    in that time, which is where they are (a full search reads every waiting row). A read:
    `promote_orphans` then makes them pending."""
    nxt = webhook_deliveries.alias("nxt")
    # A waiting row's next_attempt_at is when it was written: the (status, next_attempt_at)
    # index finds the recent ones.
    recent = [nxt.c.status == WAITING] + ([nxt.c.next_attempt_at >= since] if since is not None else [])
    recent += [nxt.c.next_attempt_at < until] if until is not None else []
    # Left to the planner (not `index_plans`): it may look at thousands of waiting rows, which
    # a forced nested loop on stale estimates was measured turning quadratic (4 s).
    return [int(i) for i in conn.execute(sa.select(nxt.c.id).where(*recent, _first_waiting(nxt))).scalars()]


def promote_orphans(conn: Connection, ids: Sequence[int], *, now: datetime) -> int:
    """Make pending those of `ids` (from `find_orphans`) that are still waiting with nothing
    unfinished ahead; returns how many."""
    if not ids:
        return 0
    if conn.dialect.name == "postgresql":
        # Lock them first, in id order, passing over any another transaction holds: the
        # UPDATE alone locked rows in its plan's order, and two workers' sweeps running at
        # once over the same stranded rows deadlocked (PostgreSQL cancelled one after a
        # second; seen in the e2e bench). A row passed over is another worker's to promote,
        # or this one's next sweep.
        ids = list(conn.execute(_LOCK_WAITING, {"ids": sorted(ids)}).scalars())
        if not ids:
            return 0
    return int(conn.execute(_PROMOTE_BY_ID, {"ids": sorted(ids), "now": now}).rowcount)


_LOCK_WAITING = (
    sa.select(d.id)
    .where(d.id.in_(sa.bindparam("ids", expanding=True)), unindexed(d.status) == WAITING)
    .order_by(d.id)
    .with_for_update(skip_locked=True)
)


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
    _promote(conn, finished, now=now)
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
    _promote(conn, [row.message_sid], now=now)
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
        {**r, "url": url_for_log(r["url"]), "error": mask_credentials(r["error"]) if r["error"] else r["error"]}
        for r in rows
    ]
