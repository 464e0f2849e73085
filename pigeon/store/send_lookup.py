"""What a send from a number needs to know, read in one statement: the number's record, whether
an opt-out blocks the pair, and an earlier message with the same content (duplicate warning).

Each create used to ask these as three point lookups. On SQLite that is three statements; on
PostgreSQL three round trips, each a wait in the API's thread and a few dozen microseconds of
the driver's Python, which `bench/accept.py` showed as most of the difference between the two
stores (1.2 ms of CPU per request against 0.8). The opt-out and the duplicate are scalar
subqueries of the number's row: the opt-out's scope follows the number's Messaging Service,
as `optouts.find_opt_out` with `service_sid` does, and covers the number's own service when the
message names another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store.messages import recent_duplicate
from pigeon.store.prepared import Prepared
from pigeon.store.tables import messages, opt_outs, phone_numbers

Row = dict[str, Any]

_o, _m, _n = opt_outs.c, messages.c, phone_numbers.c


# Built once: every send from a number asks.
_LOOKUP = Prepared(
    sa.select(
        phone_numbers,
        sa.select(_o.id)
        .where(
            _o.account_sid == sa.bindparam("b_account_sid"),
            _o.recipient == sa.bindparam("b_to"),
            # The number, the service the message names, and the number's own service: a send
            # naming another service than the number's must not slip past a service-wide STOP.
            _o.sender.in_(
                [
                    sa.bindparam("b_sender"),
                    sa.func.coalesce(sa.bindparam("b_service"), _n.messaging_service_sid),
                    _n.messaging_service_sid,
                ]
            ),
        )
        .limit(1)
        .scalar_subquery()
        .label("blocking_opt_out_id"),
        recent_duplicate(_m.sid).scalar_subquery().label("duplicate_sid"),
        recent_duplicate(_m.date_created).scalar_subquery().label("duplicate_date_created"),
    ).where(_n.phone_number == sa.bindparam("b_sender"))
)


@dataclass(frozen=True)
class SenderLookup:
    number: Row | None  # the number's record, on whichever account holds it
    opted_out: bool  # an opt-out of `recipient` from the number or its (or the given) service
    duplicate: Row | None  # sid and date_created of the newest matching message, if asked


def lookup_sender(
    conn: Connection,
    *,
    account_sid: str,
    sender: str,
    recipient: str,
    service_sid: str | None,
    content_hash: str | None,
    since: datetime,
) -> SenderLookup:
    """The number `sender` with the account's opt-out of `recipient` and, when `content_hash`
    is given, its newest message to `recipient` with that hash created at or after `since`.
    The opt-out and the duplicate are the account's own, whoever holds the number (the caller
    refuses a number of another account anyway)."""
    row = _LOOKUP.first(
        conn,
        {
            "b_account_sid": account_sid,
            "b_to": recipient,
            "b_sender": sender,
            "b_service": service_sid,
            "b_since": since,
            "b_content_hash": content_hash,
        },
    )
    if row is None:
        return SenderLookup(number=None, opted_out=False, duplicate=None)
    opt_out = row.pop("blocking_opt_out_id")
    duplicate = {"sid": row.pop("duplicate_sid"), "date_created": row.pop("duplicate_date_created")}
    return SenderLookup(number=row, opted_out=opt_out is not None, duplicate=duplicate if duplicate["sid"] else None)
