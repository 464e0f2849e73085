"""Records past their retention, removed a chunk at a time (pigeon/workers/retention.py).

- Messages (`PIGEON_MESSAGE_DAYS`) go with everything that hangs off them: media, timeline,
  carrier ids, webhook deliveries and their attempts. Only a message at rest goes (nothing
  more will happen to it unasked: not queued, sending, scheduled or being received), and only
  once its webhook deliveries have all finished; both its creation and its last change must
  be older than the cut-off. The opt-outs it caused stay: they are the recipient's choice, not
  the message's record, and the doctor says when their message is gone.
- The error log (`PIGEON_ERROR_LOG_DAYS`): alerts, receipts that never matched a message, and
  inbound messages for numbers that no account holds (which carry their text).
- Not the records of erasures (pigeon/store/erasure_log.py): they are the evidence that a
  person's request to have their data deleted was carried out, and hold nothing of theirs but
  keyed fingerprints; the doctor reads them to say "erased" rather than "never sent".

Messages and alerts are found per account through the (account_sid, date_created) indexes
that their listings use, oldest first. The two logs of unmatched traffic have no date index:
their ids grow with time, so they are read in id order and the chunk stops at the first row
that is not old enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import AT_REST
from pigeon.store.engine import index_plans, unindexed
from pigeon.store.tables import (
    accounts,
    alerts,
    carrier_refs,
    media,
    message_events,
    messages,
    unmatched_receipts,
    unroutable_inbound,
    webhook_attempts,
    webhook_deliveries,
)
from pigeon.store.webhook_lines import FINISHED, UNFINISHED

m = messages.c
d = webhook_deliveries.c

#: A page of accounts in SID order: from a SID on (inclusive), or after one.
_ACCOUNTS_FROM, _ACCOUNTS_AFTER = (
    sa.select(accounts.c.sid).where(condition).order_by(accounts.c.sid).limit(sa.bindparam("limit"))
    for condition in (accounts.c.sid >= sa.bindparam("first"), accounts.c.sid > sa.bindparam("first"))
)
ACCOUNTS_PAGE = 100

#: A message nothing more will happen to unasked: at rest, with no webhook delivery still to go
#: out. Unindexed: the way in is by account or by SID, not the (status, …) index, which would
#: visit every delivered message.
SETTLED = sa.and_(
    unindexed(m.status).in_(sorted(AT_REST)),
    ~sa.exists().where(d.message_sid == m.sid, unindexed(d.status).in_(UNFINISHED)),
)

#: Not changed since the cut-off (`before`), nor made after it.
_OLD = sa.and_(m.date_created < sa.bindparam("before"), m.date_updated < sa.bindparam("before"))

_MESSAGES_AT_REST = (
    sa.select(m.sid)
    .where(m.account_sid == sa.bindparam("account"), _OLD, SETTLED)
    .order_by(m.date_created)
    .limit(sa.bindparam("limit"))
)

_OLD_ALERTS = (
    sa.select(alerts.c.sid)
    .where(alerts.c.account_sid == sa.bindparam("account"), alerts.c.date_created < sa.bindparam("before"))
    .order_by(alerts.c.date_created)
    .limit(sa.bindparam("limit"))
)


def _per_account(
    conn: Connection, query: sa.Select[Any], *, before: datetime, limit: int, progress: dict[str, Any], key: str
) -> list[str]:
    """At most `limit` rows of `query`, account after account in SID order, from the account
    `progress[key]` names: a purge is many chunks, and each starts where the one before
    stopped, not over every account again (a store with thousands of subaccounts would
    otherwise ask each of them for every chunk). The last account is left in `progress`."""
    found: list[str] = []
    pages, first = _ACCOUNTS_FROM, progress.get(key, "")
    while len(found) < limit:
        page = list(conn.execute(pages, {"first": first, "limit": ACCOUNTS_PAGE}).scalars())
        for account in page:
            # On PostgreSQL's index plans (store/engine.py): from statistics older than the
            # rows, it read every old message of the account and sorted them, and scanned the
            # outbox for each one.
            with index_plans(conn):
                params = {"account": account, "before": before, "limit": limit - len(found)}
                found += conn.execute(query, params).scalars()
            progress[key] = account
            if len(found) >= limit:
                return found
        if len(page) < ACCOUNTS_PAGE:
            break
        pages, first = _ACCOUNTS_AFTER, page[-1]
    return found


def lock_settled(conn: Connection, sids: Sequence[str], *also: sa.ColumnElement[bool], **params: Any) -> list[str]:
    """Of the messages `sids`, found `SETTLED` (and `also`, with `params`) by a read that
    locked nothing, those that still are, locked until the transaction ends.

    On PostgreSQL a receipt can change one in between: its transaction moves the message on
    and enqueues its callback and event and adds a timeline row, and commits before or while
    a removal runs. Removed regardless, the message would leave those behind: deliveries that
    go out naming its numbers and text, a timeline row of no message. So the rows are locked
    first, passing over those another transaction is changing (SKIP LOCKED: a later run takes
    them), then read again by a statement of their own: that one sees what committed before
    the locks were taken, which the locking statement's own check does not (under READ
    COMMITTED it checks the locked row's new version, but reads the deliveries as they were
    when it started). Locked, they stay as read: every status change, and every delivery
    enqueued for a message, updates the message's row first. On SQLite the transaction is
    the only writer; FOR UPDATE is not written, and the second read finds what the first did."""
    if not sids:
        return []
    with index_plans(conn):
        locking = sa.select(m.sid).where(m.sid.in_(sids)).order_by(m.sid).with_for_update(skip_locked=True)
        locked = list(conn.execute(locking).scalars())
        if not locked:
            return []
        return list(conn.execute(sa.select(m.sid).where(m.sid.in_(locked), SETTLED, *also), params).scalars())


def remove_messages(conn: Connection, sids: Sequence[str]) -> int:
    """Remove messages with their media, timeline, carrier ids, and finished webhook
    deliveries with their attempts; returns how many messages went (another process may have
    removed some first). A delivery still to go out stays (the retention never picks a
    message that has one; a message deleted through the API keeps it until it is delivered
    or given up, and the webhook history's retention removes it then)."""
    if not sids:
        return 0
    # Unindexed: found by message SID, not through (status, …), which holds every finished one.
    finished = sa.and_(d.message_sid.in_(sids), unindexed(d.status).in_(FINISHED))
    with index_plans(conn):  # each table's rows by their message's SID, whatever the statistics
        conn.execute(
            webhook_attempts.delete().where(webhook_attempts.c.delivery_id.in_(sa.select(d.id).where(finished)))
        )
        conn.execute(webhook_deliveries.delete().where(finished))
        conn.execute(carrier_refs.delete().where(carrier_refs.c.message_sid.in_(sids)))
        conn.execute(media.delete().where(media.c.message_sid.in_(sids)))
        conn.execute(message_events.delete().where(message_events.c.message_sid.in_(sids)))
        return int(conn.execute(messages.delete().where(m.sid.in_(sids))).rowcount)


def purge_messages(conn: Connection, *, before: datetime, limit: int, progress: dict[str, Any] | None = None) -> int:
    """Remove at most `limit` messages at rest created and last changed before `before`;
    returns how many went. `progress` carries where the purge got to from one chunk to the
    next (`_per_account`). Two processes purging at once may pick the same messages: the
    second removes none of those, counts none, and so stops until its next turn. A message
    changed since it was found (`lock_settled`) stays for a later purge."""
    progress = {} if progress is None else progress
    sids = _per_account(conn, _MESSAGES_AT_REST, before=before, limit=limit, progress=progress, key="messages")
    return remove_messages(conn, lock_settled(conn, sids, _OLD, before=before))


def purge_error_log(conn: Connection, *, before: datetime, limit: int, progress: dict[str, Any] | None = None) -> int:
    """Remove at most `limit` rows of the error log older than `before`: alerts first, then
    unmatched receipts, then inbound messages that found no number; returns how many went."""
    progress = {} if progress is None else progress
    sids = _per_account(conn, _OLD_ALERTS, before=before, limit=limit, progress=progress, key="alerts")
    picked, removed = len(sids), 0
    if sids:
        removed += conn.execute(alerts.delete().where(alerts.c.sid.in_(sids))).rowcount
    for table in (unmatched_receipts, unroutable_inbound):
        if picked >= limit:
            break
        query = sa.select(table.c.id, table.c.received_at).order_by(table.c.id).limit(limit - picked)
        ids = []
        for row_id, received_at in conn.execute(query).all():
            if received_at >= before:
                break  # ids grow with time: the rest are newer
            ids.append(row_id)
        if ids:
            removed += conn.execute(table.delete().where(table.c.id.in_(ids))).rowcount
        picked += len(ids)
    return int(removed)
