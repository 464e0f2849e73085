"""The doctor's reads: the request log, a number's inbound history, opt-outs with the message
behind them, and the messages that may be duplicates. Read-only; every query is scoped to one
account and starts from an index (messages by account and recipient or time, request_log by
account, recipient and time, alerts and events by the message they belong to)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.numbers import is_number_sender
from pigeon.domain.status import FINAL, MessageStatus
from pigeon.store.alerts import shown as shown_alert
from pigeon.store.engine import unindexed
from pigeon.store.messages import shown_event
from pigeon.store.tables import (
    alerts,
    carrier_refs,
    message_events,
    messages,
    opt_outs,
    phone_numbers,
    request_log,
    unmatched_receipts,
    unroutable_inbound,
)

Row = dict[str, Any]

m = messages.c
e = message_events.c
r = request_log.c

#: Statuses of a message still waiting to be submitted (a sender's queue).
_WAITING = ("accepted", "queued", "sending")
#: Messages to a recipient made before the window that the doctor reads, newest first, to find
#: those that changed in it or are still open (`outbound_to`).
OLDER_SCAN = 1000


def _rows(conn: Connection, q: sa.Select[Any]) -> list[Row]:
    return [dict(row) for row in conn.execute(q).mappings()]


# -- messages --------------------------------------------------------------------------------------


def queue_ahead(conn: Connection, *, sender: str, account_sid: str, due: datetime, sid: str) -> int:
    """Messages in the queue of `sender` (a number's, or `account_sid`'s own of an
    alphanumeric sender ID: `domain.pacing.queue_key`) waiting to go out before `due`."""
    q = sa.select(sa.func.count()).where(
        m.from_ == sender, m.status.in_(_WAITING), m.next_attempt_at < due, m.sid != sid
    )
    if not is_number_sender(sender):
        q = q.where(unindexed(m.account_sid) == account_sid)
    return int(conn.execute(q).scalar_one())


def outbound_to(conn: Connection, *, account_sid: str, to: Collection[str], since: datetime, limit: int) -> list[Row]:
    """Messages to `to` (any of its spellings) made since `since` (at most `limit`, newest first), then those made
    before it that changed in it or are still open (scheduled, queued, sent without a receipt …),
    the newest change first, at most `limit` too. Both read the (account_sid, to, date_created)
    index; the older ones among the recipient's newest `OLDER_SCAN` made before the window. An
    index that found them directly would hold status and date_updated, and every status change
    of every message, four a message, would write it again: too dear for a question asked now
    and then."""
    made: list[Row] = []
    older: list[Row] = []
    newest = m.date_created.desc()  # the index's own order: with the SID too, a plan may take another index
    for spelling in dict.fromkeys(to):  # one read a spelling: an IN list would not keep the index's order
        mine = [m.account_sid == account_sid, m.to == spelling, m.direction != "inbound"]
        made += _rows(conn, sa.select(messages).where(*mine, m.date_created >= since).order_by(newest).limit(limit))
        older += _rows(
            conn, sa.select(messages).where(*mine, m.date_created < since).order_by(newest).limit(OLDER_SCAN)
        )
    made.sort(key=lambda r: (r["date_created"], r["sid"]), reverse=True)
    made = made[:limit]
    moved = [r for r in older if r["date_updated"] >= since or MessageStatus(r["status"]) not in FINAL]
    moved.sort(key=lambda r: (r["date_updated"], r["sid"]), reverse=True)
    return made + moved[:limit]


def messages_by_sid(conn: Connection, *, account_sid: str, sids: Collection[str]) -> list[Row]:
    if not sids:
        return []
    q = sa.select(messages).where(m.account_sid == account_sid, m.sid.in_(list(sids)))
    return _rows(conn, q)


def similar_messages(
    conn: Connection, *, account_sid: str, since: datetime, to: Collection[str] | None, limit: int
) -> list[Row]:
    """API-created messages since `since` (to `to`, any of its spellings, if given) that share
    sender, recipient and content with another, the newest first."""
    window: list[sa.ColumnElement[bool]] = [
        m.account_sid == account_sid,
        m.date_created >= since,
        m.direction == "outbound-api",
    ]
    if to is not None:
        window.append(m.to.in_(list(to)))
    repeated = (
        sa.select(m.content_hash)
        .where(*window, m.content_hash.is_not(None))
        .group_by(m.from_, m.to, m.content_hash)
        .having(sa.func.count() > 1)
    )
    q = (
        sa.select(messages)
        .where(*window, m.content_hash.in_(repeated.scalar_subquery()))
        .order_by(m.date_created.desc(), m.sid.desc())
        .limit(limit)
    )
    return _rows(conn, q)


def resubmitted_messages(
    conn: Connection, *, account_sid: str, since: datetime, to: Collection[str] | None, limit: int
) -> list[Row]:
    """Messages since `since` that were resent, or got more receipts than they have parts, the
    newest first."""
    window: list[sa.ColumnElement[bool]] = [
        m.account_sid == account_sid,
        m.date_created >= since,
        m.direction != "inbound",
    ]
    if to is not None:
        window.append(m.to.in_(list(to)))
    resent = sa.select(e.message_sid).join(messages, m.sid == e.message_sid).where(*window, e.kind == "resend")
    parts = (
        sa.select(sa.func.count())
        .select_from(carrier_refs)
        .where(carrier_refs.c.message_sid == e.message_sid)
        .scalar_subquery()
    )
    receipted = (
        sa.select(e.message_sid)
        .join(messages, m.sid == e.message_sid)
        .where(*window, e.kind == "receipt")
        .group_by(e.message_sid)
        .having(sa.func.count() > parts)
    )
    q = sa.select(messages).where(sa.or_(m.sid.in_(resent), m.sid.in_(receipted)))
    return _rows(conn, q.order_by(m.date_created.desc(), m.sid.desc()).limit(limit))


def unmatched_since(conn: Connection, *, carrier: str, since: datetime) -> int:
    """Receipts from `carrier` since `since` that matched no submitted part (still parked)."""
    u = unmatched_receipts.c
    q = sa.select(sa.func.count()).where(u.carrier == carrier, u.received_at >= since)
    return int(conn.execute(q).scalar_one())


# -- the request log ---------------------------------------------------------------------------------


def refused_requests_to(
    conn: Connection,
    *,
    account_sid: str,
    to: Sequence[str],
    since: datetime,
    limit: int = 50,
    error_code: int | None = None,
    from_: str | None = None,
) -> list[Row]:
    """Requests naming `to` (any of its spellings) that the API refused, newest first: the
    account's own, and those whose URL names it but whose credentials were refused or could
    not be checked (`account_sid` null in those; each query reads its own index)."""
    found: list[Row] = []
    for mine in (r.account_sid == account_sid, sa.and_(r.claimed_account_sid == account_sid, r.account_sid.is_(None))):
        q = sa.select(request_log).where(mine, r.to.in_(list(to)), r.at >= since, r.status >= 400)
        if error_code is not None:
            q = q.where(r.error_code == error_code)
        if from_ is not None:
            q = q.where(r.from_ == from_)
        found += _rows(conn, q.order_by(r.at.desc(), r.id.desc()).limit(limit))
    return sorted(found, key=lambda row: (row["at"], row["id"]), reverse=True)[:limit]


def count_send_requests(conn: Connection, *, account_sid: str, since: datetime) -> int:
    """Requests to create a message (POST .../Messages.json) the account made since `since`."""
    q = sa.select(sa.func.count()).where(
        r.account_sid == account_sid, r.at >= since, r.method == "POST", r.path.like("%/Messages.json")
    )
    return int(conn.execute(q).scalar_one())


def requests_creating(
    conn: Connection,
    *,
    account_sid: str,
    sids: Collection[str],
    content_hash: str | None,
    start: datetime,
    end: datetime,
) -> list[Row]:
    """The requests in [start, end] that created (or returned) `sids`, or that carried the same
    content: a repeat an idempotency key answered, or one the API refused, is one of them.
    The time range keeps the read on the (account_sid, at) index."""
    match: list[sa.ColumnElement[bool]] = [r.resource_sid.in_(list(sids))]
    if content_hash:
        match.append(r.content_hash == content_hash)
    q = (
        sa.select(request_log)
        .where(r.account_sid == account_sid, r.at >= start, r.at <= end, sa.or_(*match))
        .order_by(r.at, r.id)
    )
    return _rows(conn, q)


def deletions_of(conn: Connection, *, account_sid: str, sid: str) -> list[Row]:
    """The account's DELETE requests that removed `sid` (answered 2xx), oldest first; read on
    the partial index of DELETE requests by the SID they addressed."""
    q = (
        sa.select(request_log)
        .where(
            r.resource_sid == sid,
            r.method == "DELETE",
            r.account_sid == account_sid,
            r.status >= 200,
            r.status < 300,
        )
        .order_by(r.at, r.id)
    )
    return _rows(conn, q)


# -- a number's inbound history ------------------------------------------------------------------------


def _inbound_to(account_sid: str, number: str, since: datetime) -> list[sa.ColumnElement[bool]]:
    return [m.account_sid == account_sid, m.to == number, m.direction == "inbound", m.date_created >= since]


def inbound_alerts(
    conn: Connection, *, account_sid: str, number: str, since: datetime, codes: Collection[int], limit: int = 50
) -> list[Row]:
    """Alerts with `codes` about inbound messages to `number`, newest first."""
    q = (
        sa.select(alerts)
        .join(messages, m.sid == alerts.c.resource_sid)
        .where(*_inbound_to(account_sid, number, since), alerts.c.error_code.in_(list(codes)))
        .order_by(alerts.c.date_created.desc(), alerts.c.sid.desc())
        .limit(limit)
    )
    return [shown_alert(row) for row in conn.execute(q).mappings()]


def inbound_events(
    conn: Connection,
    *,
    account_sid: str,
    number: str,
    since: datetime,
    kind: str,
    limit: int = 50,
    with_error_code: bool = False,
) -> list[Row]:
    """Timeline entries of `kind` of inbound messages to `number`, newest first; only those
    with an error code if `with_error_code` (a webhook the fallback URL answered)."""
    q = sa.select(message_events).join(messages, m.sid == e.message_sid)
    q = q.where(*_inbound_to(account_sid, number, since), e.kind == kind)
    if with_error_code:
        q = q.where(e.error_code.is_not(None))
    return [shown_event(row) for row in conn.execute(q.order_by(e.id.desc()).limit(limit)).mappings()]


def count_inbound(conn: Connection, *, account_sid: str, number: str, since: datetime) -> int:
    q = sa.select(sa.func.count()).where(*_inbound_to(account_sid, number, since))
    return int(conn.execute(q).scalar_one())


def _told_no_one() -> sa.ColumnElement[bool]:
    """An inbound message that no application was told of for want of a URL: its ``no_webhook``
    timeline entry, or (texts from before that entry was written) the 11200 alert without a
    request that intake raised for it."""
    entry = sa.select(e.message_sid).where(e.message_sid == m.sid, e.kind == "no_webhook")
    alert = sa.select(alerts.c.sid).where(
        alerts.c.resource_sid == m.sid, alerts.c.error_code == 11200, alerts.c.request_url.is_(None)
    )
    return sa.or_(entry.exists(), alert.exists())


def untold_inbound(
    conn: Connection, *, account_sid: str, number: str, since: datetime, limit: int = 10
) -> tuple[int, datetime | None, list[Row]]:
    """Inbound messages to `number` since `since` that no application was told of: how many,
    when the first came, and the newest `limit` of them (newest first)."""
    where = [*_inbound_to(account_sid, number, since), _told_no_one()]
    count, first = conn.execute(sa.select(sa.func.count(), sa.func.min(m.date_created)).where(*where)).one()
    newest = sa.select(messages).where(*where).order_by(m.date_created.desc(), m.sid.desc()).limit(limit)
    return int(count), first, _rows(conn, newest) if count else []


def unroutable_to(conn: Connection, *, number: Collection[str], since: datetime, limit: int = 50) -> list[Row]:
    """Texts to `number` (any of its spellings: carriers report some nationally) kept as unroutable since `since`, newest first. They belong to no
    account: the caller reads them only from when the asking account holds the number."""
    u = unroutable_inbound.c
    q = (
        sa.select(unroutable_inbound)
        .where(u.to.in_(list(number)), u.received_at >= since)
        .order_by(u.received_at.desc(), u.id.desc())
        .limit(limit)
    )
    return _rows(conn, q)


def number_countries(conn: Connection, *, account_sid: str) -> list[str]:
    """The countries of the account's numbers, to read a number written without its country
    code in (pigeon.app.diagnose_numbers)."""
    p = phone_numbers.c
    q = sa.select(p.iso_country).where(p.account_sid == account_sid, p.iso_country.is_not(None)).distinct()
    return sorted(str(c) for c in conn.execute(q).scalars())


# -- opt-outs ---------------------------------------------------------------------------------------


def opt_outs_with_messages(
    conn: Connection, *, account_sid: str, recipient: Collection[str], senders: Collection[str] | None = None
) -> list[Row]:
    """The recipient's opt-outs (under any of its spellings: a STOP's sender as the carrier wrote it) (from `senders` only, if given), newest first, each with the
    inbound message that caused it (inbound_body, inbound_at) when that is the account's own: a
    number moved from another account of the family brings its opt-outs, not that account's
    messages."""
    o = opt_outs.c
    q = (
        sa.select(opt_outs, m.body.label("inbound_body"), m.date_created.label("inbound_at"))
        .select_from(
            opt_outs.outerjoin(messages, sa.and_(m.sid == o.inbound_message_sid, m.account_sid == o.account_sid))
        )
        .where(o.account_sid == account_sid, o.recipient.in_(list(recipient)))
        .order_by(o.date_created.desc(), o.id.desc())
    )
    if senders is not None:
        q = q.where(o.sender.in_(list(senders)))
    return _rows(conn, q)
