"""One account's messages still waiting to go from one sender: what a number leaving the account
(`pigeon.app.sender_exit`) must not send any more, or must send from another of its pool.

Read off the (from_, status) index, the sender's queue as the dispatcher's pacing and the 21611
limit read it: a few statuses of one sender, never the sender's history. The account is only
checked (`unindexed`): as an equality it would let SQLite take the (account_sid, from_,
date_created) index instead, which holds every message the account ever sent from the number.
"""

from __future__ import annotations

from collections.abc import Sequence
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

#: What the release's sweep reads of each message: enough to choose its sender again from its pool.
_COLUMNS = (
    m.sid,
    m.account_sid,
    m.messaging_service_sid,
    m.status,
    m.sender_from_pool,
    m.from_,
    m.to,
    m.body,
    m.num_media,
)

_WAITING_FROM = Prepared(
    sa.select(*_COLUMNS)
    .where(
        m.from_ == sa.bindparam("b_sender"),
        m.status.in_([str(s) for s in NOT_YET_SENT]),
        unindexed(m.account_sid) == sa.bindparam("b_account_sid"),
        # A scheduled message whose pool chose its sender gets it at its SendAt, from the pool
        # as it is then (`pigeon.app.scheduled_senders`): the sender it holds now is no promise.
        sa.not_(
            sa.and_(
                unindexed(m.status) == str(MessageStatus.SCHEDULED),
                m.sender_from_pool.is_(True),
                m.messaging_service_sid.is_not(None),
            )
        ),
    )
    .limit(sa.bindparam("b_limit", type_=sa.Integer))
)


def waiting_from(conn: Connection, *, account_sid: str, sender: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` of the account's messages from `sender` that no carrier has yet (their
    `_COLUMNS`), in no particular order; not the scheduled ones whose pool chose `sender`."""
    rows: list[dict[str, Any]] = _WAITING_FROM.all(
        conn, {"b_sender": sender, "b_account_sid": account_sid, "b_limit": limit}
    )
    return rows


_HOLD = Prepared(
    sa.select(m.sid)
    .where(
        m.sid.in_(sa.bindparam("sids", expanding=True)),
        unindexed(m.status) == sa.bindparam("b_status"),
        unindexed(m.from_) == sa.bindparam("b_sender"),
    )
    .with_for_update()
)


def hold(conn: Connection, sids: Sequence[str], *, status: MessageStatus, sender: str) -> set[str]:
    """Those of `sids` still in `status` and from `sender`, their rows held until the
    transaction ends (PostgreSQL; SQLite has one writer at a time): a dispatcher's claim,
    which skips rows held, cannot take them while their sender is changed."""
    if not sids:
        return set()
    rows = _HOLD.all(conn, {"sids": list(sids), "b_status": str(status), "b_sender": sender})
    return {str(r["sid"]) for r in rows}
