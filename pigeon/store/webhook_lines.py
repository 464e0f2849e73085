"""The lines of the webhook outbox: each message's deliveries to one URL, in order.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.engine import index_plans, probe_each, unindexed
from pigeon.store.prepared import Prepared
from pigeon.store.tables import webhook_deliveries

__all__ = [
    "DELIVERED",
    "FAILED",
    "FINISHED",
    "PENDING",
    "UNFINISHED",
    "WAITING",
    "find_orphans",
    "promote",
    "promote_orphans",
    "unfinished",
]

d = webhook_deliveries.c

PENDING, WAITING, DELIVERED, FAILED = "pending", "waiting", "delivered", "failed"
#: Not finished yet: a later delivery of the same message and URL waits behind these.
UNFINISHED = (PENDING, WAITING)
FINISHED = (DELIVERED, FAILED)


def unfinished(status: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    # Unindexed: else SQLite's planner may read these message-scoped lookups through the
    # (status, next_attempt_at) index, visiting every pending or waiting delivery instead of
    # one message's handful.
    return unindexed(status).in_(UNFINISHED)


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
            unfinished(ahead.c.status),
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


def promote(conn: Connection, finished: Iterable[str | None], *, now: datetime) -> None:
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
