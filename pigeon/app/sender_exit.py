"""A number leaving its account: the messages it must not take with it.

A number released (IncomingPhoneNumbers DELETE: back into the inventory, free for any account
to buy), or moved to another account of its family (`pigeon.app.number_transfer`), is no
longer the account's to send from, so the account's messages still waiting to go from it
must not go out later: they would reach people from a number that is someone else's by then,
whose replies and STOPs go to its new owner. They fail, in the same transaction, with 21606
(the From is not a number of the account), as a send from it would be refused now:

* only messages no carrier has yet: accepted (a Messaging Service's), queued and scheduled. A
  `sending` message is at the carrier, or being handed to it, and goes on as it would;
* not those whose Messaging Service's pool chose the number (sent without a From): the number
  was the pool's choice, not the application's. A scheduled one gets its sender at its SendAt
  from the pool as it is then (`pigeon.app.scheduled_senders`), and is left to that; an
  accepted one is given another sender of its pool now (the dispatcher keeps the sender an
  accepted message has), and fails only when the pool has none other for its recipient;
* each is moved by the guarded UPDATE (``WHERE status IN (…)``, `store.message_batch`), so a
  message a dispatcher moved on meanwhile (on PostgreSQL: claimed and marked `sending` in a
  transaction that commits while the release waits for its row) is left to it;
* each gets its timeline entry (``number_released``, ``number_transferred``), an alert, its
  status callback and its Event Streams event, as the dispatcher's failures do (30002, 30036;
  `pigeon.app.never_sent`);
* the sender's queue is read in batches off the (from_, status) index (`store.sender_queue`):
  a number's queue may hold ten hours of its traffic.

What the release's sweep cannot see. A send checks its From outside the transaction that
writes the message (group commit, `store.accept`), so a send whose check found the number on
the account can commit its message after the release swept the queue: a message waiting to go
from a number that is not its account's any more. So the dispatcher checks again, at the
claim (`check_claimed`): a claimed message whose From is a number (long code, toll-free or
short code; an alphanumeric sender ID is no one's) that its account does not hold fails the
same way, with 21606, a ``number_left_account`` entry, an alert, its callback and its event.
The check is one read per claim, for the claim's distinct numbers (`store.dispatch.holders_of`),
in the claim's transaction:

* on PostgreSQL the numbers' rows stay locked (FOR KEY SHARE) until the claim commits, so a
  release or move cannot commit between the check and the message's move to `sending`; a
  number whose release or move is in progress is not waited for (it may be waiting for a
  message the claim holds) and its messages are put back, to be claimed again in a few
  seconds (`busy_senders.RETRY`), once it has most likely ended. Not at once: a change left
  open by a process stopped inside it holds the row until the server ends its session, and
  its number's messages, due again at every claim, came first in every claim, ahead of every
  other sender's;
* on SQLite, one writer at a time, the claim reads what is committed;
* it covers a message left `sending` by a dispatcher that died too: resent, it would go out
  from a number the account no longer holds. A message already marked `sending` by a live
  dispatcher goes on, as the release leaves it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection

from pigeon.app import never_sent, scheduled_senders
from pigeon.app.busy_senders import RETRY
from pigeon.domain import numbers
from pigeon.domain.status import MessageStatus
from pigeon.store import dispatch as dispatch_store
from pigeon.store import sender_queue

log = logging.getLogger(__name__)

#: The error a message gets when its From is no longer the account's (as a send from it gets).
NOT_THE_ACCOUNTS = 21606
#: Messages failed per statement.
BATCH = 500
#: The timeline entry of a message the claim found from a number its account no longer holds.
LEFT_THE_ACCOUNT = "number_left_account"
_LEFT = "left the account after the message was accepted (released, or moved to another account)"

Row = dict[str, Any]


def fail_waiting(conn: Connection, number: Mapping[str, Any], *, now: datetime, kind: str, why: str) -> int:
    """Fail the messages of `number`'s account that still wait to go from it (21606), with
    `kind` as their timeline entry's kind and `why` ("was released", …) in their alerts; give
    those its pool chose another sender of the pool when it has one (module docstring).
    Returns how many failed."""
    account_sid, sender = str(number["account_sid"]), str(number["phone_number"])
    seen: set[str] = set()
    failed = rechosen = 0
    while True:
        found = sender_queue.waiting_from(conn, account_sid=account_sid, sender=sender, limit=BATCH)
        # A message seen already went back to waiting (a carrier's retry) after a dispatcher
        # took it from under the first batch: it is the dispatcher's, and the queue is done.
        fresh = [r for r in found if r["sid"] not in seen]
        if not fresh:
            break
        seen.update(r["sid"] for r in fresh)
        moved = _choose_again(conn, fresh, sender=sender, now=now, kind=kind)
        rechosen += len(moved)
        failed += _fail(
            conn,
            [r["sid"] for r in fresh if r["sid"] not in moved],
            now=now,
            kind=kind,
            why=f"{why} before it went out",
        )
        if len(found) < BATCH:
            break
    if failed or rechosen:
        log.info(
            "failed the messages waiting to go from a number that left its account",
            extra={"account_sid": account_sid, "sender": sender, "failed": failed, "rechosen": rechosen, "kind": kind},
        )
    return failed


def _choose_again(conn: Connection, rows: Sequence[Row], *, sender: str, now: datetime, kind: str) -> set[str]:
    """The SIDs of those of `rows` (accepted messages whose pool chose `sender`) given another
    sender of their pool; held first, so that no dispatcher claims one meanwhile."""
    pooled = [
        r["sid"]
        for r in rows
        if r["status"] == MessageStatus.ACCEPTED and r["sender_from_pool"] and r["messaging_service_sid"]
    ]
    held = sender_queue.hold(conn, pooled, status=MessageStatus.ACCEPTED, sender=sender)
    if not held:
        return set()
    return scheduled_senders.choose_instead_of(
        conn, [r for r in rows if r["sid"] in held], leaving=sender, reason=kind, now=now
    )


class Checked(NamedTuple):
    """What `check_claimed` found."""

    live: list[Row]  # the messages the dispatcher may send
    #: The Messaging Service each of their From numbers is in now (None: none), read with its
    #: holder, for the opt-out check that follows (`pigeon.app.dispatch_optouts`).
    services: dict[str, str | None]


def check_claimed(conn: Connection, rows: Sequence[Row], *, now: datetime, worker_id: str) -> Checked:
    """Of the messages `worker_id` just claimed, those it may send: the ones whose From is no
    number, or a number their account still holds. The others from a number that left their
    account fail (21606); those from a number a release or move is changing right now are put
    back, due again in a few seconds (module docstring). Run in the claim's transaction."""
    wanted = {r["from_"] for r in rows if r["from_"] and numbers.is_number_sender(r["from_"])}
    if not wanted:
        return Checked(list(rows), {})
    holders = dispatch_store.holders_of(conn, wanted)
    live, busy, gone = [], [], []
    for row in rows:
        sender = row["from_"]
        if sender not in wanted or holders.accounts.get(sender) == row["account_sid"]:
            live.append(row)
        elif sender in holders.busy:
            busy.append(row)
        else:
            gone.append(row)
    if busy:
        dispatch_store.put_back(
            conn, [(r["sid"], r.get("previous_claimer")) for r in busy], worker_id=worker_id, at=now + RETRY
        )
        log.info("claimed messages put back: their From number is being changed", extra={"messages": len(busy)})
    if gone:
        failed = _fail(
            conn,
            [r["sid"] for r in gone],
            now=now,
            kind=LEFT_THE_ACCOUNT,
            why=f"{_LEFT}, before it went out",
            reason=f"the number {_LEFT}",
            from_statuses=never_sent.CLAIMED,
        )
        log.info("failed claimed messages whose From number left their account", extra={"failed": failed})
    return Checked(live, holders.services)


def _fail(
    conn: Connection,
    sids: list[str],
    *,
    now: datetime,
    kind: str,
    why: str,
    reason: str | None = None,
    from_statuses: Iterable[MessageStatus] = sender_queue.NOT_YET_SENT,
) -> int:
    """Fail these messages (those still in `from_statuses`) with 21606: "its From number
    <sender> `why`" in their alerts, `reason` in their timeline entries."""
    failed = never_sent.fail_many(
        conn,
        sids,
        now=now,
        code=NOT_THE_ACCOUNTS,
        kind=kind,
        detail=lambda r: {"sender": r["from_"], **({"reason": reason} if reason else {})},
        text=lambda r: f"Message {r['sid']} was not sent: its From number {r['from_']} {why}.",
        from_statuses=from_statuses,
    )
    return len(failed)
