"""Idempotency keys of POST Messages. A key row is written with its message
(`messages.insert_messages`); this module reads and expires them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.tables import idempotency_keys

Row = dict[str, Any]

k = idempotency_keys.c


def key_row(*, account_sid: str, key: str, request_hash: str, message_sid: str, at: datetime) -> Row:
    return {
        "account_sid": account_sid,
        "key": key,
        "request_hash": request_hash,
        "message_sid": message_sid,
        "date_created": at,
    }


_GET_KEY = sa.select(idempotency_keys).where(
    k.account_sid == sa.bindparam("b_account_sid"), k.key == sa.bindparam("b_key")
)


def get_key(conn: Connection, account_sid: str, key: str) -> Row | None:
    row = conn.execute(_GET_KEY, {"b_account_sid": account_sid, "b_key": key}).mappings().first()
    return dict(row) if row else None


def purge_idempotency_keys(conn: Connection, older_than: datetime) -> int:
    """Forget keys made before `older_than`; returns how many."""
    result = conn.execute(idempotency_keys.delete().where(k.date_created < older_than))
    return int(result.rowcount or 0)
