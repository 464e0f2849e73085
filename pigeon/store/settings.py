"""Server-wide settings shared by every process (table settings): a key and a text value.

`CONTENT_KEY` is the install's key for content fingerprints (messages.content_hash and the
request log's): an HMAC key, so that a fingerprint alone does not give away a short text by
trying every candidate (a six-digit code is a million SHA-256s, a second or two). Every
upgrade of the schema makes sure it exists (`pigeon.store.schema.upgrade`, which every process
runs as it starts, or `pigeon db upgrade`), so every process finds the same one; `content_key`
reads it once per engine and keeps it, as it never changes.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from pigeon.store.tables import settings

_GET = sa.select(settings.c.value).where(settings.c.key == sa.bindparam("key"))


def get_setting(conn: Connection, key: str) -> str | None:
    value = conn.execute(_GET, {"key": key}).scalar_one_or_none()
    return str(value) if value is not None else None


def get_or_create(conn: Connection, key: str, make: Callable[[], str], *, now: datetime) -> str:
    """The value under `key`, creating it with `make()` if there is none. Two processes racing
    to create it both end up with the one value that won: the loser's insert fails on the
    primary key inside a savepoint and it reads the winner's."""
    existing = get_setting(conn, key)
    if existing is not None:
        return existing
    try:
        with conn.begin_nested():
            conn.execute(settings.insert().values(key=key, value=make(), date_created=now))
    except IntegrityError:
        pass
    value = get_setting(conn, key)
    assert value is not None
    return value


#: The settings key of the content fingerprints' HMAC key (64 hex digits).
CONTENT_KEY = "messages.content_key"
_CONTENT_KEYS: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()


class MissingContentKey(RuntimeError):
    """The store has no content key: its schema was never upgraded by this release."""


def ensure_content_key(conn: Connection, *, now: datetime) -> bool:
    """Make the install's content key if there is none; whether this call made it."""
    if get_setting(conn, CONTENT_KEY) is not None:
        return False
    made = secrets.token_hex(32)
    return get_or_create(conn, CONTENT_KEY, lambda: made, now=now) == made


def content_key(conn: Connection) -> bytes:
    """The install's content key: read from the store the first time for each engine, then
    kept (it never changes), so that the send path pays no query for it."""
    engine = conn.engine
    key = _CONTENT_KEYS.get(engine)
    if key is None:
        value = get_setting(conn, CONTENT_KEY)
        if value is None:
            raise MissingContentKey("the store has no content key: run `pigeon db upgrade`")
        key = _CONTENT_KEYS[engine] = bytes.fromhex(value)
    return key


def known_content_key(engine: Engine) -> bytes | None:
    """The content key if this process has read it already, without asking the store (which
    may be out of reach: a refused send is logged all the same)."""
    return _CONTENT_KEYS.get(engine)


def forget_content_key(engine: Engine) -> None:
    """Drop what `content_key` kept for `engine` (its store's schema was just made again)."""
    _CONTENT_KEYS.pop(engine, None)
