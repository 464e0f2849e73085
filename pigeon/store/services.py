"""Messaging Services and the senders in their pools.

A pool holds numbers and short codes (phone_numbers rows whose messaging_service_sid names
the service; a number is in one pool at most) and alphanumeric sender IDs (alpha_senders).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import MessageStatus
from pigeon.store.prepared import Prepared
from pigeon.store.tables import alpha_senders, messages, messaging_services, phone_numbers

Row = dict[str, Any]


def get_service(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(messaging_services).where(messaging_services.c.sid == sid)
    if account_sid is not None:
        q = q.where(messaging_services.c.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def lock_service(conn: Connection, sid: str) -> None:
    """Hold the service's row until the transaction ends (PostgreSQL: SELECT … FOR UPDATE;
    SQLite, with one writer at a time, needs nothing). Changes to a pool and the deletion of
    its service take it first, so that they take turns."""
    conn.execute(sa.select(messaging_services.c.sid).where(messaging_services.c.sid == sid).with_for_update())


def sender_numbers(conn: Connection, service_sid: str) -> list[Row]:
    """The SMS-capable numbers in a service's pool, oldest first."""
    q = (
        sa.select(phone_numbers)
        .where(phone_numbers.c.messaging_service_sid == service_sid, phone_numbers.c.sms_capable.is_(True))
        .order_by(phone_numbers.c.date_created, phone_numbers.c.sid)
    )
    return [dict(r) for r in conn.execute(q).mappings()]


#: The statuses of a message its recipient heard, or is about to: at a carrier or past it, and
#: waiting in a sender's queue (accepted by a service, queued). Not a scheduled one (it may
#: yet be canceled, and a pool's chooses its sender again at its SendAt), nor a canceled one.
HEARD_OR_ABOUT_TO = tuple(
    str(s)
    for s in (
        MessageStatus.ACCEPTED,
        MessageStatus.QUEUED,
        MessageStatus.SENDING,
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.READ,
        MessageStatus.PARTIALLY_DELIVERED,
    )
)

# Found off the (account_sid, to, date_created) index, newest first: one recipient's messages
# of the account, read until the first that counts. Without the account (as it was) no index
# served it, and every pool send with sticky sender on read the whole table.
_LAST_SENDER_TO = Prepared(
    sa.select(messages.c.from_)
    .where(
        messages.c.account_sid == sa.bindparam("b_account_sid"),
        messages.c.to == sa.bindparam("b_to"),
        messages.c.messaging_service_sid == sa.bindparam("b_service_sid"),
        messages.c.from_.is_not(None),
        messages.c.sid != sa.bindparam("b_excluding"),
        sa.or_(
            messages.c.status.in_(HEARD_OR_ABOUT_TO),
            # Failed after a carrier took it (a receipt said so): the recipient may have it.
            # Failed before any carrier did (refused, expired, opted out...): it never left.
            sa.and_(messages.c.status == str(MessageStatus.FAILED), messages.c.date_sent.is_not(None)),
        ),
    )
    .order_by(messages.c.date_created.desc())
    .limit(1)
)


def last_sender_to(
    conn: Connection, service_sid: str, recipient: str, *, account_sid: str, excluding: str | None = None
) -> str | None:
    """The sender this service (of `account_sid`) last texted `recipient` from (sticky sender),
    in a message other than `excluding`: the newest that reached a carrier, or waits in a
    queue to (`HEARD_OR_ABOUT_TO`). A canceled message, a scheduled one, and one failed before
    any carrier took it do not count: the recipient never heard from their sender."""
    row = _LAST_SENDER_TO.first(
        conn,
        {"b_account_sid": account_sid, "b_to": recipient, "b_service_sid": service_sid, "b_excluding": excluding or ""},
    )
    return str(row["from_"]) if row is not None else None


# -- the Services API -------------------------------------------------------------------------

SERVICE_SETTINGS = frozenset(
    c.name for c in messaging_services.columns if c.name not in {"sid", "account_sid", "date_created", "date_updated"}
)


def create_service(conn: Connection, *, account_sid: str, now: datetime, **values: Any) -> Row:
    _check_settings(values)
    sid = new_sid(Prefix.SERVICE)
    conn.execute(
        messaging_services.insert().values(
            sid=sid, account_sid=account_sid, date_created=now, date_updated=now, **values
        )
    )
    row = get_service(conn, sid)
    assert row is not None
    return row


def list_services(conn: Connection, account_sid: str | None, *, offset: int = 0, limit: int | None = None) -> list[Row]:
    """One account's services (every account's with None), oldest first."""
    q = sa.select(messaging_services).order_by(messaging_services.c.date_created, messaging_services.c.sid)
    if account_sid is not None:
        q = q.where(messaging_services.c.account_sid == account_sid)
    q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def update_service(conn: Connection, sid: str, *, now: datetime, **values: Any) -> None:
    _check_settings(values)
    conn.execute(messaging_services.update().where(messaging_services.c.sid == sid).values(date_updated=now, **values))


def delete_service(conn: Connection, sid: str, *, now: datetime) -> None:
    """Delete a service; its numbers and short codes leave the pool (they stay on the account)
    and its alphanumeric senders go with it."""
    conn.execute(
        phone_numbers.update()
        .where(phone_numbers.c.messaging_service_sid == sid)
        .values(messaging_service_sid=None, date_updated=now)
    )
    conn.execute(alpha_senders.delete().where(alpha_senders.c.messaging_service_sid == sid))
    conn.execute(messaging_services.delete().where(messaging_services.c.sid == sid))


def _check_settings(values: dict[str, Any]) -> None:
    unknown = set(values) - SERVICE_SETTINGS
    if unknown:
        raise ValueError(f"not service settings: {sorted(unknown)}")


# -- the sender pool: numbers and short codes (phone_numbers rows), alphanumeric senders ---------


def pool_numbers(
    conn: Connection, service_sid: str, *, short_codes: bool, offset: int = 0, limit: int | None = None
) -> list[Row]:
    """The service's numbers (short_codes=False) or short codes (True), whatever their capabilities."""
    is_short = phone_numbers.c.number_type == "short_code"
    q = (
        sa.select(phone_numbers)
        .where(phone_numbers.c.messaging_service_sid == service_sid, is_short if short_codes else ~is_short)
        .order_by(phone_numbers.c.date_created, phone_numbers.c.sid)
        .offset(offset)
    )
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def hold_pool_numbers(conn: Connection, service_sid: str) -> list[Row]:
    """The service's numbers and short codes, their rows held until the transaction ends
    (PostgreSQL: SELECT … FOR UPDATE, in SID order, so that two such reads never wait for each
    other both ways). A text being taken by one of them (`numbers.hold_by_number`) is recorded
    first; a number that left the pool meanwhile is not among them."""
    q = (
        sa.select(phone_numbers)
        .where(phone_numbers.c.messaging_service_sid == service_sid)
        .order_by(phone_numbers.c.sid)
        .with_for_update()
    )
    return [dict(r) for r in conn.execute(q).mappings()]


def pool_size(conn: Connection, service_sid: str) -> int:
    """Numbers, short codes and alphanumeric senders in the pool."""
    numbers = sa.select(sa.func.count()).where(phone_numbers.c.messaging_service_sid == service_sid)
    return int(conn.execute(numbers).scalar_one()) + count_alpha_senders(conn, service_sid)


def attach_number(conn: Connection, number_sid: str, service_sid: str, *, now: datetime) -> bool:
    """Put a number (or short code) into a pool. Guarded: False if it is in a pool already."""
    result = conn.execute(
        phone_numbers.update()
        .where(phone_numbers.c.sid == number_sid, phone_numbers.c.messaging_service_sid.is_(None))
        .values(messaging_service_sid=service_sid, date_updated=now)
    )
    return result.rowcount == 1


def detach_number(conn: Connection, number_sid: str, service_sid: str, *, now: datetime) -> bool:
    """Take a number (or short code) out of a pool. Guarded: False if it is not in that pool."""
    result = conn.execute(
        phone_numbers.update()
        .where(phone_numbers.c.sid == number_sid, phone_numbers.c.messaging_service_sid == service_sid)
        .values(messaging_service_sid=None, date_updated=now)
    )
    return result.rowcount == 1


def add_alpha_sender(
    conn: Connection, *, account_sid: str, service_sid: str, alpha_sender: str, now: datetime
) -> Row | None:
    """Put an alphanumeric sender into the pool; None, changing nothing, when the pool has one
    with this exact text already (the table's unique constraint, as a concurrent add that
    did not take the service's lock would find it)."""
    row: Row = {
        "sid": new_sid(Prefix.ALPHA_SENDER),
        "account_sid": account_sid,
        "messaging_service_sid": service_sid,
        "alpha_sender": alpha_sender,
        "date_created": now,
        "date_updated": now,
    }
    try:
        with conn.begin_nested():  # PostgreSQL: the refused insert must not end the transaction
            conn.execute(alpha_senders.insert().values(**row))
    except sa.exc.IntegrityError:
        return None
    return row


def get_alpha_sender(conn: Connection, sid: str, *, account_sid: str | None = None) -> Row | None:
    q = sa.select(alpha_senders).where(alpha_senders.c.sid == sid)
    if account_sid is not None:
        q = q.where(alpha_senders.c.account_sid == account_sid)
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def find_alpha_sender(conn: Connection, service_sid: str, alpha_sender: str) -> Row | None:
    """The service's alphanumeric sender with this text, compared without regard to case."""
    q = sa.select(alpha_senders).where(
        alpha_senders.c.messaging_service_sid == service_sid,
        sa.func.lower(alpha_senders.c.alpha_sender) == alpha_sender.lower(),
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


def count_alpha_senders(conn: Connection, service_sid: str) -> int:
    q = sa.select(sa.func.count()).where(alpha_senders.c.messaging_service_sid == service_sid)
    return int(conn.execute(q).scalar_one())


def list_alpha_senders(conn: Connection, service_sid: str, *, offset: int = 0, limit: int | None = None) -> list[Row]:
    q = (
        sa.select(alpha_senders)
        .where(alpha_senders.c.messaging_service_sid == service_sid)
        .order_by(alpha_senders.c.date_created, alpha_senders.c.sid)
        .offset(offset)
    )
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]


def delete_alpha_sender(conn: Connection, sid: str) -> None:
    conn.execute(alpha_senders.delete().where(alpha_senders.c.sid == sid))
