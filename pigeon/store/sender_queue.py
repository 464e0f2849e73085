"""One account's messages still waiting to go from one sender: what a number leaving the account
(`pigeon.app.sender_exit`) must not send any more.

Read off the (from_, status) index, the sender's queue as the dispatcher's pacing and the 21611
limit read it: a few statuses of one sender, never the sender's history. The account is only
checked (`unindexed`): as an equality it would let SQLite take the (account_sid, from_,
date_created) index instead, which holds every message the account ever sent from the number.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.status import MessageStatus
from pigeon.store.engine import unindexed
from pigeon.store.prepared import Prepared
from pigeon.store.tables import messages

m = messages.c

#: Not yet at a carrier: accepted (a Messaging Service's, not yet queued), queued, scheduled.
#: A `sending` message has been handed to a carrier, or is being handed right now.
NOT_YET_SENT = (MessageStatus.ACCEPTED, MessageStatus.QUEUED, MessageStatus.SCHEDULED)

_WAITING_FROM = Prepared(
    sa.select(m.sid)
    .where(
        m.from_ == sa.bindparam("b_sender"),
        m.status.in_([str(s) for s in NOT_YET_SENT]),
        unindexed(m.account_sid) == sa.bindparam("b_account_sid"),
    )
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)


def waiting_from(conn: Connection, *, account_sid: str, sender: str, limit: int) -> list[str]:
    """Up to `limit` SIDs of the account's messages from `sender` that no carrier has yet, in
    no particular order."""
    rows: list[dict[str, Any]] = _WAITING_FROM.all(
        conn, {"b_sender": sender, "b_account_sid": account_sid, "b_limit": limit}
    )
    return [str(r["sid"]) for r in rows]
