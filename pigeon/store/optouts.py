"""Opt-outs: recipients who asked a sender (or a whole Messaging Service) to stop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.prepared import Prepared
from pigeon.store.tables import opt_outs, phone_numbers

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
_n = phone_numbers.c

# The dispatcher's check of a claimed batch (`blocking_many`), one statement for the batch: the
# opt-outs of the batch's recipients from its senders and Messaging Services, and (second
# branch) those of the services its numbers are in now, each with the number it came through
# (`via`). Both branches are read on the (account_sid, sender, recipient) key.
_OPT_OUT = (_o.account_sid, _o.sender, _o.recipient, _o.scope, _o.keyword, _o.inbound_message_sid, _o.date_created)
_BLOCKING_MANY = Prepared(
    sa.union_all(
        sa.select(*_OPT_OUT, _o.sender.label("via")).where(
            _o.account_sid.in_(sa.bindparam("b_accounts", expanding=True)),
            _o.sender.in_(sa.bindparam("b_senders", expanding=True)),
            _o.recipient.in_(sa.bindparam("b_recipients", expanding=True)),
        ),
        sa.select(*_OPT_OUT, _n.phone_number.label("via"))
        .select_from(
            phone_numbers.join(
                opt_outs, sa.and_(_o.account_sid == _n.account_sid, _o.sender == _n.messaging_service_sid)
            )
        )
        .where(
            _n.phone_number.in_(sa.bindparam("b_numbers", expanding=True)),
            _n.account_sid.in_(sa.bindparam("b_number_accounts", expanding=True)),
            _o.recipient.in_(sa.bindparam("b_number_recipients", expanding=True)),
        ),
    )
)


class Sending(NamedTuple):
    """A message about to go out, as `blocking_many` asks about it."""

    account_sid: str
    sender: str  # its From: a number, a short code or an alphanumeric sender ID
    service_sid: str | None  # the Messaging Service it was sent through
    recipient: str


def blocking_many(conn: Connection, sends: Sequence[Sending]) -> list[Row | None]:
    """For each of `sends`, the opt-out that blocks it, as `find_opt_out` and the create's
    lookup (`store.send_lookup`) find it: of its sender, of the service it was sent through,
    and, from a number, of the service the number is in now; the newest when several do (None
    when none does). One statement for them all: each row found has the account, sender and
    recipient of the opt-out, and in `via` the sender it blocks (the number, for a service's)."""
    if not sends:
        return []
    accounts, recipients = sorted({s.account_sid for s in sends}), sorted({s.recipient for s in sends})
    senders = sorted({s.sender for s in sends})
    params = {
        "b_accounts": accounts,
        "b_senders": sorted({*senders, *(s.service_sid for s in sends if s.service_sid)}),
        "b_recipients": recipients,
        "b_numbers": senders,  # an alphanumeric sender matches no number
        "b_number_accounts": accounts,
        "b_number_recipients": recipients,
    }
    found: dict[tuple[str, str], list[Row]] = {}
    for row in _BLOCKING_MANY.all(conn, params):
        found.setdefault((row["account_sid"], row["recipient"]), []).append(row)
    blocking: list[Row | None] = []
    for s in sends:
        mine = [
            r
            for r in found.get((s.account_sid, s.recipient), ())
            if r["via"] == s.sender or (s.service_sid is not None and r["sender"] == s.service_sid)
        ]
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
