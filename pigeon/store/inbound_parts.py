"""Parts of concatenated inbound messages (table inbound_parts); the rules are in
`pigeon.app.reassembly` and `pigeon.domain.reassembly`.

Every transaction that changes a message's parts first takes `lock(key)`, so that the parts
of one message are looked at by one transaction at a time: two of its parts committed at
the same moment by two processes would otherwise each see the message as still incomplete,
and a sweep could hand over a message whose last part is being added. On PostgreSQL that is
a transaction-level advisory lock in a key space of its own (the two-integer form, which does
not overlap the single-bigint locks of the webhook outbox); on SQLite every write
transaction already holds the database's single write lock.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.reassembly import HeldPart
from pigeon.ports import InboundPart
from pigeon.store.tables import inbound_parts

Row = dict[str, Any]

t = inbound_parts

#: First key of the advisory locks taken here ("MO" + "re"): no other lock of Pigeon uses it.
_LOCK_CLASS = 0x4D4F7265
_LOCK = sa.text("SELECT pg_advisory_xact_lock(:cls, :obj)")


class MessageKey(NamedTuple):
    """What the parts of one message share."""

    carrier: str
    sender: str
    recipient: str
    reference_bits: int
    reference: int
    total: int

    @classmethod
    def of(cls, part: InboundPart) -> MessageKey:
        return cls(part.carrier, part.sender, part.recipient, part.reference_bits, part.reference, part.total)

    def where(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            t.c.carrier == self.carrier,
            t.c.sender == self.sender,
            t.c.recipient == self.recipient,
            t.c.reference_bits == self.reference_bits,
            t.c.reference == self.reference,
            t.c.total == self.total,
        )


def lock(conn: Connection, key: MessageKey) -> None:
    """Wait until no other transaction works on this message's parts (see the module doc)."""
    if conn.dialect.name != "postgresql":
        return
    text = "\x1f".join(str(v) for v in key).encode()
    obj = int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big", signed=True)
    conn.execute(_LOCK, {"cls": _LOCK_CLASS, "obj": obj})


def held(conn: Connection, key: MessageKey, sequence: int) -> HeldPart | None:
    """The stored copy of part `sequence` of the message, if any."""
    q = sa.select(t.c.handed_over_at, t.c.digest).where(key.where(), t.c.sequence == sequence)
    row = conn.execute(q).first()
    return None if row is None else HeldPart(handed_over=row.handed_over_at is not None, digest=row.digest)


def add(
    conn: Connection,
    key: MessageKey,
    *,
    sequence: int,
    data: bytes,
    digest: str,
    data_coding: int,
    received_at: datetime,
    due_at: datetime,
) -> None:
    conn.execute(
        t.insert().values(
            **key._asdict(),
            sequence=sequence,
            data=data,
            digest=digest,
            data_coding=data_coding,
            received_at=received_at,
            due_at=due_at,
        )
    )


def forget_handed_over(conn: Connection, key: MessageKey) -> None:
    """Drop what is remembered of a handed-over message under this key (its reference is in use again)."""
    conn.execute(t.delete().where(key.where(), t.c.handed_over_at.is_not(None)))


def pending(conn: Connection, key: MessageKey) -> list[Row]:
    """The parts of the message still waiting to be handed over, by part number."""
    q = sa.select(t).where(key.where(), t.c.handed_over_at.is_(None)).order_by(t.c.sequence)
    return [dict(r) for r in conn.execute(q).mappings()]


def mark_handed_over(conn: Connection, ids: list[int], *, now: datetime, keep_until: datetime) -> None:
    """The parts' message is recorded: drop their octets, keep their digests until `keep_until`."""
    conn.execute(t.update().where(t.c.id.in_(ids)).values(data=None, handed_over_at=now, due_at=keep_until))


def due_messages(conn: Connection, *, now: datetime, limit: int) -> list[MessageKey]:
    """Messages with a part waiting since before its timeout ran out (due_at <= now)."""
    cols = [t.c.carrier, t.c.sender, t.c.recipient, t.c.reference_bits, t.c.reference, t.c.total]
    q = sa.select(*cols).where(t.c.due_at <= now, t.c.handed_over_at.is_(None)).distinct().limit(limit)
    return [MessageKey(*row) for row in conn.execute(q)]


def has_expired_memories(conn: Connection, *, now: datetime) -> bool:
    q = sa.select(t.c.id).where(t.c.due_at <= now, t.c.handed_over_at.is_not(None)).limit(1)
    return conn.execute(q).first() is not None


def forget_expired(conn: Connection, *, now: datetime) -> int:
    """Delete handed-over parts whose window for resent copies has passed."""
    result = conn.execute(t.delete().where(t.c.due_at <= now, t.c.handed_over_at.is_not(None)))
    return int(result.rowcount or 0)
