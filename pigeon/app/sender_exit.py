"""A number leaving its account: the messages it must not take with it.

A number released (IncomingPhoneNumbers DELETE: back into the inventory, free for any account
to buy), or moved to another account of its family (`pigeon.app.number_transfer`), is no
longer the account's to send from, so the account's messages still waiting to go from it
must not go out later: they would reach people from a number that is someone else's by then,
whose replies and STOPs go to its new owner. They fail, in the same transaction, with 21606
(the From is not a number of the account), as a send from it would be refused now:

* only messages no carrier has yet: accepted (a Messaging Service's), queued and scheduled. A
  `sending` message is at the carrier, or being handed to it, and goes on as it would;
* each is moved by the guarded UPDATE (``WHERE status IN (…)``, `store.message_batch`), so a
  message a dispatcher moved on meanwhile (on PostgreSQL: claimed and marked `sending` in a
  transaction that commits while the release waits for its row) is left to it;
* each gets its timeline entry (``number_released``, ``number_transferred``), an alert, its
  status callback and its Event Streams event, as the dispatcher's failures do (30002, 30036);
* the sender's queue is read in batches off the (from_, status) index (`store.sender_queue`):
  a number's queue may hold ten hours of its traffic.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callbacks
from pigeon.domain.status import MessageStatus
from pigeon.store import alerts as alert_store
from pigeon.store import message_batch, sender_queue

log = logging.getLogger(__name__)

#: The error a message gets when its From is no longer the account's (as a send from it gets).
NOT_THE_ACCOUNTS = 21606
#: Messages failed per statement.
BATCH = 500


def fail_waiting(conn: Connection, number: Mapping[str, Any], *, now: datetime, kind: str, why: str) -> int:
    """Fail the messages of `number`'s account that still wait to go from it (21606), with
    `kind` as their timeline entry's kind and `why` ("was released", …) in their alerts.
    Returns how many failed."""
    account_sid, sender = str(number["account_sid"]), str(number["phone_number"])
    seen: set[str] = set()
    failed = 0
    while True:
        found = sender_queue.waiting_from(conn, account_sid=account_sid, sender=sender, limit=BATCH)
        # A message seen already went back to waiting (a carrier's retry) after a dispatcher
        # took it from under the first batch: it is the dispatcher's, and the queue is done.
        fresh = [sid for sid in found if sid not in seen]
        if not fresh:
            break
        seen.update(fresh)
        failed += _fail(conn, fresh, sender=sender, now=now, kind=kind, why=why)
        if len(found) < BATCH:
            break
    if failed:
        log.info(
            "failed the messages waiting to go from a number that left its account",
            extra={"account_sid": account_sid, "sender": sender, "failed": failed, "kind": kind},
        )
    return failed


def _fail(conn: Connection, sids: list[str], *, sender: str, now: datetime, kind: str, why: str) -> int:
    moved = message_batch.transition_many(
        conn,
        sids,
        MessageStatus.FAILED,
        at=now,
        error_code=NOT_THE_ACCOUNTS,
        from_statuses=sender_queue.NOT_YET_SENT,
        claimed_by=None,
        claimed_until=None,
        offered_to=None,
        fail_code=None,
    )
    rows = [moved[sid] for sid in sids if sid in moved]
    message_batch.add_events(
        conn,
        [
            message_batch.event(
                message_sid=r["sid"],
                account_sid=r["account_sid"],
                at=now,
                kind=kind,
                status=str(MessageStatus.FAILED),
                error_code=NOT_THE_ACCOUNTS,
                detail={"sender": sender},
            )
            for r in rows
        ],
    )
    alert_store.add_alerts(
        conn,
        [
            alert_store.alert_row(
                account_sid=r["account_sid"],
                error_code=NOT_THE_ACCOUNTS,
                text=f"Message {r['sid']} was not sent: its From number {sender} {why} before it went out.",
                at=now,
                resource_sid=r["sid"],
            )
            for r in rows
        ],
    )
    enqueue_status_callbacks(conn, [(r, None) for r in rows], now=now)
    return len(rows)
