"""Messages, their media and their timeline (message_events).

Every status change goes through `transition`, a guarded UPDATE that only matches rows in a
status allowed to move to the target, and appends the change to the timeline in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.errors import IdempotencyKeyTaken, InvalidTransition
from pigeon.domain.idempotency import KEY_TTL
from pigeon.domain.status import NO_POOL_SENDER, SENDERLESS, MessageStatus, allowed_from
from pigeon.domain.urls import mask_credentials_in
from pigeon.store import message_batch
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import alerts, idempotency_keys, media, message_events, messages, request_log

Row = dict[str, Any]

m = messages.c


# The batch INSERTs, built once: a statement built per call is walked for SQLAlchemy's
# cache key every time, which cost more than the executemany it runs.
_INSERT_IDEMPOTENCY_KEYS = idempotency_keys.insert()
_INSERT_MEDIA = media.insert()
_INSERT_ALERTS = alerts.insert()


@dataclass
class NewMessage:
    """Everything one accepted message writes: the row, its media and its first timeline entry,
    and, for an API send, its Idempotency-Key row and any alert about it (a duplicate)."""

    message: Row
    media: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    #: An idempotency_keys row: committed with the message, so its primary key decides which
    #: of two concurrent requests with one key makes the message.
    idempotency: Row | None = None
    alerts: list[Row] = field(default_factory=list)
    #: When the send looked for an earlier message with the same content, created since
    #: `duplicates_since`: the one it found (sid, date_created), or None. Not written.
    duplicates_since: datetime | None = None
    duplicate_of: Row | None = None
    #: Whether the account had an Event Streams subscription when the send was validated
    #: (`pigeon.store.accounts.get_account`); None when not known. Not written.
    streams_events: bool | None = None


ik = idempotency_keys.c
_DELETE_STALE_KEY = idempotency_keys.delete().where(
    ik.account_sid == sa.bindparam("b_account_sid"),
    ik.key == sa.bindparam("b_key"),
    ik.date_created < sa.bindparam("b_before"),
)


def _claim_keys(conn: Connection, rows: list[Row]) -> None:
    """Insert the batch's Idempotency-Key rows, first of all its rows. A key another request
    holds (already committed, or earlier in this batch) fails the transaction with
    IdempotencyKeyTaken; the group committer then writes the batch's messages one by one."""
    # A key older than its time to live names nothing any more: it may be used again.
    stale = [
        {"b_account_sid": r["account_sid"], "b_key": r["key"], "b_before": r["date_created"] - KEY_TTL} for r in rows
    ]
    conn.execute(_DELETE_STALE_KEY, stale)
    try:
        conn.execute(_INSERT_IDEMPOTENCY_KEYS, rows)
    except sa.exc.IntegrityError as exc:
        first = rows[0]
        raise IdempotencyKeyTaken(first["account_sid"], first["key"]) from exc


def insert_messages(conn: Connection, batch: Sequence[NewMessage]) -> None:
    """Insert many accepted messages with executemany: one round trip per table."""
    if not batch:
        return
    key_rows = [n.idempotency for n in batch if n.idempotency is not None]
    if key_rows:
        _claim_keys(conn, key_rows)
    insert_many(conn, messages, [n.message for n in batch])
    media_rows = [r for n in batch for r in n.media]
    if media_rows:
        conn.execute(_INSERT_MEDIA, media_rows)
    message_batch.add_events(conn, [r for n in batch for r in n.events])
    alert_rows = [r for n in batch for r in n.alerts]
    if alert_rows:
        conn.execute(_INSERT_ALERTS, alert_rows)


def get_message(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(messages).where(m.sid == sid)
    if account_sid is not None:
        q = q.where(m.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def lock_message(conn: Connection, sid: str) -> bool:
    """Hold the message's row until the transaction ends (PostgreSQL: SELECT … FOR UPDATE;
    SQLite, with one writer at a time, needs nothing); False when there is none."""
    return conn.execute(sa.select(m.sid).where(m.sid == sid).with_for_update()).first() is not None


@dataclass(frozen=True)
class MessageFilter:
    account_sid: str | None
    to: str | None = None
    from_: str | None = None
    status: str | None = None
    direction: str | None = None
    date_sent_on: tuple[datetime, datetime] | None = None  # [start, end)
    date_sent_after: datetime | None = None  # inclusive
    date_sent_before: datetime | None = None  # inclusive
    created_since: datetime | None = None
    created_before: datetime | None = None  # exclusive
    number: str | None = None  # either side


#: `pigeon.domain.status.pool_sender_unused` in SQL: a message shown with no sender.
_POOL_SENDER_UNUSED = sa.and_(
    m.sender_from_pool.is_(True),
    m.messaging_service_sid.is_not(None),
    sa.or_(
        m.status.in_([str(s) for s in sorted(SENDERLESS)]),
        sa.and_(m.status == str(MessageStatus.FAILED), m.error_code.in_(sorted(NO_POOL_SENDER))),
    ),
)


def _filtered(f: MessageFilter) -> sa.Select[Any]:
    q = sa.select(messages)
    if f.account_sid is not None:
        q = q.where(m.account_sid == f.account_sid)
    if f.to is not None:
        q = q.where(m.to == f.to)
    if f.from_ is not None:
        # Not a message whose pool has its sender still to choose, or never chose it: it may
        # never go (or never went) from this one, and the API shows it with no `from`.
        q = q.where(m.from_ == f.from_, sa.not_(_POOL_SENDER_UNUSED))
    if f.number is not None:
        q = q.where(sa.or_(m.to == f.number, m.from_ == f.number))
    if f.status is not None:
        q = q.where(m.status == f.status)
    if f.direction is not None:
        q = q.where(m.direction == f.direction)
    if f.date_sent_on is not None:
        q = q.where(m.date_sent >= f.date_sent_on[0], m.date_sent < f.date_sent_on[1])
    if f.date_sent_after is not None:
        q = q.where(m.date_sent >= f.date_sent_after)
    if f.date_sent_before is not None:
        q = q.where(m.date_sent <= f.date_sent_before)
    if f.created_since is not None:
        q = q.where(m.date_created >= f.created_since)
    if f.created_before is not None:
        q = q.where(m.date_created < f.created_before)
    return q


def list_messages(
    conn: Connection,
    f: MessageFilter,
    *,
    limit: int,
    after: tuple[datetime, str] | None = None,
    before: tuple[datetime, str] | None = None,
    offset: int = 0,
) -> list[Row]:
    """Newest first. `after` is a keyset cursor (date_created, sid) of the last row already seen
    (the next page); `before` the first row of a page already seen (the previous page)."""
    if before is not None:
        created, sid = before
        q = (
            _filtered(f)
            .where(sa.or_(m.date_created > created, sa.and_(m.date_created == created, m.sid > sid)))
            .order_by(m.date_created.asc(), m.sid.asc())
            .limit(limit)
        )
        return [dict(r) for r in reversed(conn.execute(q).mappings().all())]
    q = _filtered(f).order_by(m.date_created.desc(), m.sid.desc()).limit(limit)
    if after is not None:
        created, sid = after
        q = q.where(sa.or_(m.date_created < created, sa.and_(m.date_created == created, m.sid < sid)))
    elif offset:
        q = q.offset(offset)
    return [dict(r) for r in conn.execute(q).mappings()]


def recent_duplicate(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """`columns` of the account's newest message to a recipient with a content hash, created
    at or after a time (parameters b_account_sid, b_to, b_content_hash, b_since)."""
    return (
        sa.select(*columns)
        .where(
            m.account_sid == sa.bindparam("b_account_sid"),
            m.to == sa.bindparam("b_to"),
            m.date_created >= sa.bindparam("b_since"),
            m.content_hash == sa.bindparam("b_content_hash"),
        )
        .order_by(m.date_created.desc())
        .limit(1)
    )


# Built once: on the send path, building and compiling the select per call costs 6x running it.
_RECENT_DUPLICATE = Prepared(recent_duplicate(m.sid, m.date_created))


def find_recent_duplicate(
    conn: Connection, *, account_sid: str, to: str, content_hash: str, since: datetime
) -> Row | None:
    """The newest message of the account to `to` with this content hash created at or after
    `since` (sid and date_created). It reads the (account_sid, to, date_created) index for a
    few seconds of one recipient's traffic: a handful of rows, never a scan."""
    params = {"b_account_sid": account_sid, "b_to": to, "b_since": since, "b_content_hash": content_hash}
    return _RECENT_DUPLICATE.first(conn, params)


_RECENT_CONTENTS = Prepared(
    sa.select(m.sid, m.to, m.content_hash, m.date_created)
    .where(
        m.account_sid == sa.bindparam("b_account_sid"),
        m.to.in_(sa.bindparam("b_tos", expanding=True)),
        m.date_created >= sa.bindparam("b_since"),
        m.content_hash.in_(sa.bindparam("b_hashes", expanding=True)),
    )
    .order_by(m.date_created)
)


def recent_contents(
    conn: Connection, *, account_sid: str, tos: Sequence[str], content_hashes: Sequence[str], since: datetime
) -> list[Row]:
    """The account's messages to any of `tos` with any of `content_hashes`, created at or after
    `since`, oldest first (sid, to, content_hash, date_created): for a batch of sends, what
    `find_recent_duplicate` finds for one, on the same (account_sid, to, date_created) index."""
    params = {"b_account_sid": account_sid, "b_tos": list(tos), "b_since": since, "b_hashes": list(content_hashes)}
    return _RECENT_CONTENTS.all(conn, params)


def events_for_messages(conn: Connection, message_sids: Sequence[str]) -> dict[str, list[Row]]:
    """The timelines of many messages in one query, each in order."""
    out: dict[str, list[Row]] = {sid: [] for sid in message_sids}
    if not message_sids:
        return out
    e = message_events.c
    q = sa.select(message_events).where(e.message_sid.in_(list(message_sids))).order_by(e.message_sid, e.id)
    for r in conn.execute(q).mappings():
        out[r["message_sid"]].append(shown_event(r))
    return out


def shown_event(row: Mapping[Any, Any]) -> Row:
    """A timeline entry as it leaves the store: the password of a webhook URL in its detail
    masked (the writers mask it; entries stored before they did are masked here)."""
    out = dict(row)
    if out.get("detail"):
        out["detail"] = mask_credentials_in(out["detail"])
    return out


def add_event(
    conn: Connection,
    *,
    message_sid: str,
    account_sid: str,
    at: datetime,
    kind: str,
    status: str | None = None,
    error_code: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        message_events.insert().values(
            message_sid=message_sid,
            account_sid=account_sid,
            at=at,
            kind=kind,
            status=status,
            error_code=error_code,
            detail=dict(detail) if detail else None,
        )
    )


def list_events(conn: Connection, message_sid: str, *, account_sid: str | None = None) -> list[Row]:
    q = sa.select(message_events).where(message_events.c.message_sid == message_sid)
    if account_sid is not None:
        q = q.where(message_events.c.account_sid == account_sid)
    q = q.order_by(message_events.c.id)
    return [shown_event(r) for r in conn.execute(q).mappings()]


def transition(
    conn: Connection,
    sid: str,
    to: MessageStatus,
    *,
    at: datetime,
    kind: str = "status",
    detail: Mapping[str, Any] | None = None,
    error_code: int | None = None,
    error_message: str | None = None,
    from_statuses: Iterable[MessageStatus] | None = None,
    **values: Any,
) -> Row:
    """Move a message to `to` if its current status allows it, and record the change.

    Raises InvalidTransition when no row matched (unknown sid, or a status that may not move
    to `to`). Returns the updated row.
    """
    allowed = sorted(str(s) for s in (from_statuses if from_statuses is not None else allowed_from(to)))
    changes: dict[str, Any] = {"status": str(to), "date_updated": at, **values}
    if error_code is not None:
        changes["error_code"] = error_code
        changes["error_message"] = error_message
    q = messages.update().where(m.sid == sid, m.status.in_(allowed)).values(**changes).returning(*messages.c)
    row = conn.execute(q).mappings().first()
    if row is None:
        raise InvalidTransition(sid=sid, to_status=str(to))
    add_event(
        conn,
        message_sid=sid,
        account_sid=row["account_sid"],
        at=at,
        kind=kind,
        status=str(to),
        error_code=error_code,
        detail=detail,
    )
    return dict(row)


def update_fields(conn: Connection, sid: str, **values: Any) -> None:
    conn.execute(messages.update().where(m.sid == sid).values(**values))


def mark_late_copies(conn: Connection, sids: Iterable[str]) -> None:
    """Note that a carrier took a copy of each of these messages after its submit was given up
    on (``late_copy``): their receipts are then counted per copy (`pigeon.app.receipts`)."""
    wanted = sorted(set(sids))
    if wanted:
        conn.execute(messages.update().where(m.sid.in_(wanted), m.late_copy.is_(sa.false())).values(late_copy=True))


def redact_message(conn: Connection, sid: str, *, content_hash: str | None, now: datetime) -> None:
    """A message's text and its fingerprint gone: the body emptied, the content hash cleared
    on the message and on the request log's entries of the requests that made it (found
    through the hash's index: the log's resource_sid has none for sends)."""
    conn.execute(messages.update().where(m.sid == sid).values(body="", content_hash=None, date_updated=now))
    if content_hash is not None:
        rl = request_log.c
        conn.execute(
            request_log.update()
            .where(rl.content_hash == content_hash, rl.resource_sid == sid)
            .values(content_hash=None)
        )


def forget_redacted_fingerprints(conn: Connection) -> None:
    """Clear the content hash of every message redacted so far (a "redacted" event in its
    timeline) and of the request log's entries about it. Once, when the store gets its content
    key (`pigeon.store.schema.upgrade`): a scan of the timelines, as a migration's backfill."""
    redacted = sa.select(message_events.c.message_sid).where(message_events.c.kind == "redacted")
    conn.execute(messages.update().where(m.sid.in_(redacted), m.content_hash.is_not(None)).values(content_hash=None))
    rl = request_log.c
    conn.execute(
        request_log.update()
        .where(rl.resource_sid.in_(redacted), rl.content_hash.is_not(None))
        .values(content_hash=None)
    )


def list_media(
    conn: Connection,
    message_sid: str,
    *,
    offset: int = 0,
    limit: int | None = None,
    created_on: tuple[datetime, datetime] | None = None,  # [start, end)
    created_after: datetime | None = None,  # inclusive
    created_before: datetime | None = None,  # inclusive
) -> list[Row]:
    q = sa.select(media).where(media.c.message_sid == message_sid).order_by(media.c.position)
    if created_on is not None:
        q = q.where(media.c.date_created >= created_on[0], media.c.date_created < created_on[1])
    if created_after is not None:
        q = q.where(media.c.date_created >= created_after)
    if created_before is not None:
        q = q.where(media.c.date_created <= created_before)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def get_media(conn: Connection, message_sid: str, media_sid: str) -> Row | None:
    q = sa.select(media).where(media.c.message_sid == message_sid, media.c.sid == media_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def delete_media(conn: Connection, media_sid: str) -> None:
    conn.execute(media.delete().where(media.c.sid == media_sid))
