"""Idempotency keys of POST Messages. A key row is written with its message
(`messages.insert_messages`); this module reads and expires them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.idempotency import REDACTED
from pigeon.store.tables import idempotency_keys

Row = dict[str, Any]

k = idempotency_keys.c

#: A key row is written with the `now` its message was created at: a second either side.
_SAME_MOMENT = timedelta(seconds=1)


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


_KEY_OF_MESSAGE = sa.select(k.key).where(
    k.account_sid == sa.bindparam("b_account_sid"),
    k.message_sid == sa.bindparam("b_message_sid"),
    k.date_created.between(sa.bindparam("b_from"), sa.bindparam("b_to")),
)


def key_of_message(conn: Connection, account_sid: str, message_sid: str, created: datetime) -> str | None:
    """The Idempotency-Key the request that made a message carried, if it did and the key is
    still kept (24 hours). `created`: the message's date_created, which its key row shares;
    the key rows of that moment are found by their index, not by a scan of the account's."""
    params = {
        "b_account_sid": account_sid,
        "b_message_sid": message_sid,
        "b_from": created - _SAME_MOMENT,
        "b_to": created + _SAME_MOMENT,
    }
    key = conn.execute(_KEY_OF_MESSAGE, params).scalar_one_or_none()
    return str(key) if key is not None else None


def forget_request(conn: Connection, account_sid: str, message_sid: str, created: datetime) -> None:
    """The fingerprint of the request that made a message replaced with `REDACTED`: it covers
    the message's Body. Found as `key_of_message` finds the key, by its date's index."""
    conn.execute(
        idempotency_keys.update()
        .where(
            k.account_sid == account_sid,
            k.message_sid == message_sid,
            k.date_created.between(created - _SAME_MOMENT, created + _SAME_MOMENT),
        )
        .values(request_hash=REDACTED)
    )


def purge_idempotency_keys(conn: Connection, older_than: datetime) -> int:
    """Forget keys made before `older_than`; returns how many."""
    result = conn.execute(idempotency_keys.delete().where(k.date_created < older_than))
    return int(result.rowcount or 0)
