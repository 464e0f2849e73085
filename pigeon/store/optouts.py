"""Opt-outs: recipients who asked a sender (or a whole Messaging Service) to stop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.prepared import Prepared
from pigeon.store.tables import opt_outs

Row = dict[str, Any]


# Built once (every send asks): the sender and the service, or the sender twice.
_BLOCKING = Prepared(
    sa.select(opt_outs)
    .where(
        opt_outs.c.account_sid == sa.bindparam("b_account_sid"),
        opt_outs.c.recipient == sa.bindparam("b_recipient"),
        opt_outs.c.sender.in_([sa.bindparam("b_sender"), sa.bindparam("b_service")]),
    )
    .limit(1)
)


def find_opt_out(
    conn: Connection, *, account_sid: str, sender: str | None, recipient: str, service_sid: str | None = None
) -> Row | None:
    """The opt-out that blocks `sender` (or `service_sid`) from texting `recipient`, if any."""
    senders = [s for s in (sender, service_sid) if s]
    if not senders:
        return None
    params = {"b_account_sid": account_sid, "b_recipient": recipient, "b_sender": senders[0], "b_service": senders[-1]}
    return _BLOCKING.first(conn, params)


_o = opt_outs.c

# The dispatcher's check of a claimed batch (`blocking_many`): the opt-outs of the batch's
# recipients from any of its senders and services, read on the (account_sid, sender,
# recipient) key, each column a list (on PostgreSQL an array: the key's three columns are all
# index conditions).
_BLOCKING_MANY = Prepared(
    sa.select(
        _o.account_sid, _o.sender, _o.recipient, _o.scope, _o.keyword, _o.inbound_message_sid, _o.date_created
    ).where(
        _o.account_sid.in_(sa.bindparam("b_accounts", expanding=True)),
        _o.sender.in_(sa.bindparam("b_senders", expanding=True)),
        _o.recipient.in_(sa.bindparam("b_recipients", expanding=True)),
    )
)


class Sending(NamedTuple):
    """A message about to go out, as `blocking_many` asks about it."""

    account_sid: str
    #: What an opt-out may name to block it: its sender, and Messaging Services (the caller's
    #: scope rules: `pigeon.app.dispatch_optouts`).
    senders: tuple[str, ...]
    recipient: str


def blocking_many(conn: Connection, sends: Sequence[Sending]) -> list[Row | None]:
    """For each of `sends`, the account's opt-out of its recipient from any of its `senders`;
    the newest when several do (None when none does). One statement for them all."""
    if not sends:
        return []
    params = {
        "b_accounts": sorted({s.account_sid for s in sends}),
        "b_senders": sorted({x for s in sends for x in s.senders}),
        "b_recipients": sorted({s.recipient for s in sends}),
    }
    found: dict[tuple[str, str], list[Row]] = {}
    for row in _BLOCKING_MANY.all(conn, params):
        found.setdefault((row["account_sid"], row["recipient"]), []).append(row)
    blocking: list[Row | None] = []
    for s in sends:
        mine = [r for r in found.get((s.account_sid, s.recipient), ()) if r["sender"] in s.senders]
        blocking.append(max(mine, key=lambda r: r["date_created"]) if mine else None)
    return blocking


_held = opt_outs.alias("held")
# Copy a sender's opt-outs (a service's, or a number's) as `b_number`'s own on `b_to_account`,
# keeping each one's keyword, time and inbound message; a pair that has its row already keeps it.
# Both sides are read on the (account_sid, sender, recipient) key.
_COPY_AS_NUMBER_SCOPE = opt_outs.insert().from_select(
    ["account_sid", "sender", "recipient", "scope", "keyword", "inbound_message_sid", "date_created"],
    sa.select(
        sa.cast(sa.bindparam("b_to_account"), _o.account_sid.type),
        sa.cast(sa.bindparam("b_number"), _o.sender.type),
        _o.recipient,
        sa.cast(sa.literal("number"), _o.scope.type),
        _o.keyword,
        _o.inbound_message_sid,
        _o.date_created,
    ).where(
        _o.account_sid == sa.bindparam("b_account"),
        _o.sender == sa.bindparam("b_sender"),
        ~sa.exists().where(
            _held.c.account_sid == sa.bindparam("b_to_account"),
            _held.c.sender == sa.bindparam("b_number"),
            _held.c.recipient == _o.recipient,
        ),
    ),
)


def copy_as_number_scope(
    conn: Connection, *, account_sid: str, sender: str, number: str, to_account_sid: str | None = None
) -> int:
    """Give `number` (on `to_account_sid`, by default the same account) an opt-out of its own
    for each recipient opted out of `sender` on `account_sid` (a Messaging Service's SID, or a
    number), unless the pair has one already. Returns how many it made."""
    params = {
        "b_account": account_sid,
        "b_sender": sender,
        "b_number": number,
        "b_to_account": to_account_sid or account_sid,
    }
    return int(conn.execute(_COPY_AS_NUMBER_SCOPE, params).rowcount or 0)


def record_opt_out(
    conn: Connection,
    *,
    account_sid: str,
    sender: str,
    recipient: str,
    scope: str,
    keyword: str,
    inbound_message_sid: str | None,
    now: datetime,
) -> bool:
    """Record (or refresh) an opt-out. Returns True when the pair was not opted out before."""
    existing = find_opt_out(conn, account_sid=account_sid, sender=sender, recipient=recipient)
    if existing is not None:
        conn.execute(
            opt_outs.update()
            .where(opt_outs.c.id == existing["id"])
            .values(keyword=keyword, inbound_message_sid=inbound_message_sid, date_created=now, scope=scope)
        )
        return False
    conn.execute(
        opt_outs.insert().values(
            account_sid=account_sid,
            sender=sender,
            recipient=recipient,
            scope=scope,
            keyword=keyword,
            inbound_message_sid=inbound_message_sid,
            date_created=now,
        )
    )
    return True


def remove_opt_out(conn: Connection, *, account_sid: str, sender: str, recipient: str) -> bool:
    result = conn.execute(
        opt_outs.delete().where(
            opt_outs.c.account_sid == account_sid, opt_outs.c.sender == sender, opt_outs.c.recipient == recipient
        )
    )
    return bool(result.rowcount)


def list_opt_outs(
    conn: Connection,
    *,
    account_sid: str | None = None,
    recipient: str | None = None,
    sender: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Row]:
    q = sa.select(opt_outs).order_by(opt_outs.c.date_created.desc(), opt_outs.c.id.desc())
    if account_sid is not None:
        q = q.where(opt_outs.c.account_sid == account_sid)
    if recipient is not None:
        q = q.where(opt_outs.c.recipient == recipient)
    if sender is not None:
        q = q.where(opt_outs.c.sender == sender)
    if offset:
        q = q.offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return [dict(r) for r in conn.execute(q).mappings()]
