"""Phone numbers owned by accounts (IncomingPhoneNumbers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import Prefix, new_sid
from pigeon.store.prepared import Prepared
from pigeon.store.tables import phone_numbers

Row = dict[str, Any]

UPDATABLE = frozenset(
    {
        "friendly_name",
        "sms_url",
        "sms_method",
        "sms_fallback_url",
        "sms_fallback_method",
        "status_callback",
        "status_callback_method",
        "voice_url",
        "voice_method",
        "sms_capable",
        "mms_capable",
        "voice_capable",
        "fax_capable",
        "account_sid",
        "messaging_service_sid",
        "held_since",
        "iso_country",
    }
)


def add_number(conn: Connection, *, account_sid: str, phone_number: str, now: datetime, **values: Any) -> Row:
    """Put a number on an account. Short codes get SC sids (Twilio's ShortCode resource), every
    other number a PN sid (IncomingPhoneNumber)."""
    prefix = Prefix.SHORT_CODE if values.get("number_type") == "short_code" else Prefix.PHONE_NUMBER
    row: Row = {
        "sid": new_sid(prefix),
        "account_sid": account_sid,
        "phone_number": phone_number,
        "friendly_name": values.pop("friendly_name", None) or phone_number,
        "date_created": now,
        "date_updated": now,
        "held_since": now,
        **values,
    }
    conn.execute(phone_numbers.insert().values(**row))
    return get_number(conn, row["sid"]) or row


def get_number(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(phone_numbers).where(phone_numbers.c.sid == sid)
    if account_sid is not None:
        q = q.where(phone_numbers.c.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


# Built once: every send reads its sender's number, every inbound text its recipient.
_BY_NUMBER_QUERY = sa.select(phone_numbers).where(phone_numbers.c.phone_number == sa.bindparam("b_number"))
_BY_NUMBER = Prepared(_BY_NUMBER_QUERY)
_BY_NUMBER_SHARED = Prepared(_BY_NUMBER_QUERY.with_for_update(read=True))


def find_by_number(conn: Connection, phone_number: str) -> Row | None:
    """The number's record on whichever account holds it."""
    return _BY_NUMBER.first(conn, {"b_number": phone_number})


def hold_by_number(conn: Connection, phone_number: str) -> Row | None:
    """The number's record, its row held until the transaction ends in share mode (PostgreSQL:
    SELECT … FOR SHARE; SQLite, with one writer at a time, needs nothing).

    What changes where a number belongs (a move, a release, leaving a Messaging Service) holds
    the row exclusively (`lock_number`, or the UPDATE of the row): it waits for the texts being
    taken, and they for it. A text that waited gets the row as the change left it (read
    committed re-reads a row it waited for), or nothing if the number was released. Texts to
    one number do not wait for each other: a share lock does not conflict with another."""
    return _BY_NUMBER_SHARED.first(conn, {"b_number": phone_number})


def list_numbers(
    conn: Connection,
    *,
    account_sid: str | None = None,
    phone_number_like: str | None = None,
    friendly_name: str | None = None,
    short_codes: bool | None = None,
    number_type: str | None = None,
    origin: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Row]:
    """Numbers in provisioning order; `short_codes` True/False keeps only short codes / only
    the rest (IncomingPhoneNumbers never lists short codes), None both; `number_type` only
    numbers of that type (local, mobile, toll_free); `origin` only bought (twilio) or
    operator-added (hosted) ones."""
    q = sa.select(phone_numbers).order_by(phone_numbers.c.date_created, phone_numbers.c.sid)
    if short_codes is not None:
        is_short = phone_numbers.c.number_type == "short_code"
        q = q.where(is_short if short_codes else ~is_short)
    if account_sid is not None:
        q = q.where(phone_numbers.c.account_sid == account_sid)
    if number_type is not None:
        q = q.where(phone_numbers.c.number_type == number_type)
    if origin is not None:
        q = q.where(phone_numbers.c.origin == origin)
    if phone_number_like is not None:
        q = q.where(phone_numbers.c.phone_number.like(phone_number_like))
    if friendly_name is not None:
        q = q.where(phone_numbers.c.friendly_name == friendly_name)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def lock_number(conn: Connection, sid: str) -> None:
    """Hold the number's row until the transaction ends (PostgreSQL: SELECT … FOR UPDATE;
    SQLite, with one writer at a time, needs nothing)."""
    conn.execute(sa.select(phone_numbers.c.sid).where(phone_numbers.c.sid == sid).with_for_update())


def update_number(conn: Connection, sid: str, *, now: datetime, **values: Any) -> None:
    unknown = set(values) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    conn.execute(phone_numbers.update().where(phone_numbers.c.sid == sid).values(date_updated=now, **values))


def delete_number(conn: Connection, sid: str) -> None:
    conn.execute(phone_numbers.delete().where(phone_numbers.c.sid == sid))
