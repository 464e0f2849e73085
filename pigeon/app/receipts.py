"""Delivery receipts: match a carrier's receipt to our message and apply it.

Each receipt is recorded raw on the message's timeline whether or not it changes anything,
so a duplicate or late receipt is visible as such. Status changes are guarded: a receipt can
never move a message backwards (a late `sent` after `delivered`).

Multipart messages: each part has its own carrier id and receipt. The message is
`delivered` when every part is delivered, and `undelivered` (or `failed`) with the code of
the first part that failed for good; each part's receipt stays in the timeline. Parts a
carrier accepted before it refused a later one (`pigeon.app.dispatch_jobs`) have their ids stored
too: their receipts are recorded, and count once the rest of the message is out, not before.
A receipt whose id matches nothing yet is parked and re-matched when the submit response
that carries that id is recorded (receipts can overtake submit responses).

A message can be at its carrier twice: a submit went unanswered, the message was sent again,
and the carrier's late answer to the first submit was recorded too (`accepted_late`, which
marks the message ``late_copy``). Each copy of a part has its own id and receipt; the part
reached the handset when any copy did, and failed only when every copy did (`_aggregate`).
A single-part message follows the same rule: a copy's failure waits while another copy has
no final receipt (and while the message is being sent again, that copy is one of those); a
delivered copy delivers it. The status machine never moves a message from undelivered to
delivered, so a failure must wait rather than be undone. Only messages marked ``late_copy``
read their copies: a single-part message the carrier took once costs no extra query.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.failed_charges import withdraw_charges
from pigeon.domain import storable
from pigeon.domain.errors import InvalidTransition
from pigeon.domain.receipts import ReceiptOutcome, format_receipt_text, outcome_of
from pigeon.domain.status import MessageStatus
from pigeon.ports import Clock, InboundSms, Receipt
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as store
from pigeon.store import messages as message_store
from pigeon.store import simulator as simulator_store
from pigeon.store.batch import AsyncGroupCommitter
from pigeon.store.engine import Database

log = logging.getLogger(__name__)

Row = dict[str, Any]

S = MessageStatus

#: A message that has been at a carrier and is in one of these statuses is being sent again.
_SENT_AGAIN = frozenset({str(S.QUEUED), str(S.SENDING)})

#: The built-in network's carrier name (pigeon.carriers.simulator.NAME; app may not import carriers).
SIMULATOR = "simulator"


def _aggregate(parts: Sequence[Row]) -> ReceiptOutcome | None:
    """The message's outcome from its parts' receipts, or None while parts are still open.

    A part may have been taken twice (a copy the carrier accepted after its answer was given
    up on: `accepted_late`), each copy with its own id and receipt: the part reached the
    handset when either copy did, and failed only when every copy did."""
    by_index: dict[int, list[Row]] = {}
    for p in parts:
        by_index.setdefault(p["part_index"], []).append(p)
    delivered: ReceiptOutcome | None = None
    for copies in by_index.values():
        outcomes = [outcome_of(p["receipt_stat"]) if p["receipt_stat"] else None for p in copies]
        reached = next((o for o in outcomes if o is not None and o.status is MessageStatus.DELIVERED), None)
        if reached is not None:
            delivered = delivered or reached
            continue
        if all(o is not None and o.final for o in outcomes):
            p = next((c for c in copies if "_err" in c), copies[0])  # this receipt's, if it is one
            return outcome_of(p["receipt_stat"], p.get("_err"), p.get("_error_code"))
    # A message the carrier took in pieces has refs only for the parts accepted so far: it is
    # not delivered until a part of every index is.
    if len(by_index) < max(p["part_count"] for p in parts):
        return None
    if all(
        any(p["receipt_stat"] and outcome_of(p["receipt_stat"]).status is MessageStatus.DELIVERED for p in copies)
        for copies in by_index.values()
    ):
        return delivered
    return None


def apply_receipt(conn: Connection, receipt: Receipt, *, now: datetime) -> str | None:
    """Apply one receipt; returns the message SID it matched, or None (parked)."""
    ref = store.find_carrier_ref(conn, receipt.carrier, receipt.carrier_id)
    if ref is None:
        store.park_unmatched(conn, parked_row(receipt, now=now))
        log.info("receipt for an unknown carrier id parked", extra={"carrier": receipt.carrier})
        return None
    message = message_store.get_message(conn, ref["message_sid"]) if ref["part_count"] == 1 else None
    # A single-part message the carrier took once (nearly all) is settled by its receipt; any
    # other counts its parts' copies, read from the store. The mark is read unlocked: a late
    # copy recorded by another process in the same instant is not seen by this receipt.
    per_copy = ref["part_count"] != 1 or (message is not None and bool(message["late_copy"]))
    if per_copy:
        # Parts' receipts can be applied at once by two processes (binds held in each). Each
        # would read the other's part as still open (READ COMMITTED) and neither would move
        # the message: it would stay sent for ever. Locked, the second waits for the first and
        # reads its part, as read again here.
        message_store.lock_message(conn, ref["message_sid"])
        ref = store.find_carrier_ref(conn, receipt.carrier, receipt.carrier_id) or ref
        message = message_store.get_message(conn, ref["message_sid"])
    if message is None:  # the message was deleted; the receipt has nowhere to go
        return None
    duplicate = ref["receipt_stat"] is not None and ref["receipt_stat"] == receipt.stat
    # A part's first final answer stands: a late or contradictory receipt for it (an ENROUTE
    # overtaken by its DELIVRD, a DELIVRD then an UNDELIV) is recorded but changes nothing,
    # as the guarded transition already ensures for a single-part message.
    settled = ref["receipt_stat"] is not None and outcome_of(ref["receipt_stat"]).final
    part = outcome_of(receipt.stat, receipt.err, receipt.error_code)
    if not settled:
        store.set_part_receipt(conn, receipt.carrier, receipt.carrier_id, stat=receipt.stat, at=now)
    detail = receipt_detail(receipt, ref, duplicate=duplicate)
    if settled:
        final = None
    elif not per_copy or (receipt.whole_message and ref["part_count"] != 1):
        final = part if part.final else None
    else:
        final = _outcome_of_copies(conn, receipt, ref, message, detail)
    applied = False
    updated: Row | None = None
    if final is not None and final.status is not None:
        try:
            updated = message_store.transition(
                conn,
                message["sid"],
                final.status,
                at=now,
                error_code=final.error_code,
                detail={"by": "receipt", "carrier_id": receipt.carrier_id, "stat": receipt.stat, "err": receipt.err},
            )
            applied = True
            if final.error_code is not None:
                alert_store.add_alert(
                    conn,
                    account_sid=message["account_sid"],
                    error_code=final.error_code,
                    at=now,
                    resource_sid=message["sid"],
                    log_level="warning",
                    text=f"The carrier reported message {message['sid']} {final.status} "
                    f"(stat {receipt.stat}, err {receipt.err}).",
                    request_variables={"receipt": receipt.raw},
                )
        except InvalidTransition:
            pass
    message_store.add_event(
        conn,
        message_sid=message["sid"],
        account_sid=message["account_sid"],
        at=now,
        kind="receipt",
        status=str(final.status) if applied and final and final.status else None,
        error_code=final.error_code if applied and final else None,
        detail={**detail, "applied": applied},
    )
    if updated is not None:
        # A message failed after the carrier took it is not charged (`failed_charges`); its
        # callback is queued as it is then.
        updated = withdraw_charges(conn, [updated], now=now).get(updated["sid"], updated)
        enqueue_status_callback(conn, updated, now=now, raw_dlr_done_date=receipt.done_date)
    return str(message["sid"])


def _outcome_of_copies(
    conn: Connection, receipt: Receipt, ref: Row, message: Row, detail: Row
) -> ReceiptOutcome | None:
    """The message's outcome from every copy of each of its parts (`_aggregate`), with this
    receipt's err on its own copy. The receipt's entry (``detail``) says how many copies its
    part has, when more than one."""
    parts = store.parts_of(conn, message["sid"])
    for p in parts:
        if (p["carrier"], p["carrier_message_id"]) == (receipt.carrier, receipt.carrier_id):
            p["_err"], p["_error_code"] = receipt.err, receipt.error_code
    copies = sum(p["part_index"] == ref["part_index"] for p in parts)
    if copies > 1:
        detail["copies"] = copies
    final = _aggregate(parts)
    if final is None or final.status is S.DELIVERED:
        return final
    if ref["part_count"] == 1 and message["status"] in _SENT_AGAIN:
        return None  # the message is being sent again: that copy has no receipt yet either
    return final


def receipt_detail(receipt: Receipt, ref: Row, *, duplicate: bool) -> Row:
    """A receipt's timeline entry: what the carrier said, raw too, and which part it was for.
    ``err_means``: the code the carrier's receipt_errors gave its err value, when it did, so
    that the timeline says where a message's error code came from."""
    detail = {
        "carrier": receipt.carrier,
        "carrier_id": receipt.carrier_id,
        "part": ref["part_index"] + 1,
        "parts": ref["part_count"],
        "stat": receipt.stat,
        "err": receipt.err,
        "done_date": receipt.done_date,
        "raw": receipt.raw,
        "duplicate": duplicate,
    }
    if receipt.error_code is not None:
        detail["err_means"] = receipt.error_code
    return detail


def storable_receipt(receipt: Receipt) -> Receipt:
    """`receipt` as the store can keep it (pigeon.domain.storable): a carrier's fields without
    NUL and cut to their columns, so that an odd receipt is recorded rather than refused by
    PostgreSQL on every resend."""
    field = storable.RECEIPT_FIELD_LENGTH
    return Receipt(
        carrier=receipt.carrier,
        carrier_id=storable.fitted(receipt.carrier_id, storable.CARRIER_ID_LENGTH),
        stat=storable.fitted(receipt.stat, field) or "UNKNOWN",
        err=None if receipt.err is None else storable.fitted(receipt.err, field),
        done_date=None if receipt.done_date is None else storable.fitted(receipt.done_date, field),
        raw=storable.without_nul(receipt.raw),
        error_code=receipt.error_code,
    )


def parked_row(receipt: Receipt, *, now: datetime) -> Row:
    """The unmatched_receipts row that keeps a receipt until its carrier id is recorded."""
    return {
        "carrier": receipt.carrier,
        "carrier_message_id": receipt.carrier_id,
        "stat": receipt.stat,
        "err": receipt.err,
        "error_code": receipt.error_code,
        "done_date": receipt.done_date,
        "raw": receipt.raw,
        "received_at": now,
        "whole_message": receipt.whole_message,
    }


def receipt_of_parked(row: Row) -> Receipt:
    """The receipt an unmatched_receipts row holds."""
    return Receipt(
        carrier=row["carrier"],
        carrier_id=row["carrier_message_id"],
        stat=row["stat"] or "UNKNOWN",
        err=row["err"],
        done_date=row["done_date"],
        raw=row["raw"],
        error_code=row.get("error_code"),
        whole_message=bool(row.get("whole_message")),
    )


def apply_receipt_row(conn: Connection, row: Row, *, now: datetime) -> str | None:
    """Apply a parked receipt (an unmatched_receipts row)."""
    return apply_receipt(conn, receipt_of_parked(row), now=now)


class ReceiptSink:
    """The CarrierEvents every carrier reports to: receipts are applied in the store before
    the call returns, so a connector acknowledges only what is durable.

    An SMPP carrier hands receipts over one deliver_sm at a time, many at once. They are
    group-committed: the receipts that arrive while a transaction commits are applied
    together in the next one, each caller returning after its own receipt's commit. With one
    transaction per receipt, end-to-end SMPP traffic offered at 200/s on SQLite was delivered
    at 42/s; group-committed, at 202/s (bench/smpp.py --end-to-end, bench/RESULTS.md)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._committer: AsyncGroupCommitter[Receipt] = AsyncGroupCommitter(db.engine, self._apply, name="receipts")

    def _apply(self, conn: Connection, receipts: Sequence[Receipt]) -> None:
        for receipt in receipts:
            apply_receipt(conn, receipt, now=self.clock.now())

    def apply_many(self, receipts: Sequence[Receipt]) -> None:
        with self.db.write() as conn:
            self._apply(conn, receipts)

    async def on_receipt(self, receipt: Receipt) -> None:
        await self._committer.write(storable_receipt(receipt))

    async def on_inbound(self, message: InboundSms) -> None:
        # Two-way messaging (the inbound intake) is built on top of this sink; until then an
        # inbound message is kept in the log as unroutable so it is never silently lost.
        log.warning("inbound message received but inbound intake is not configured", extra={"to": message.recipient})


def deliver_simulated_receipts(conn: Connection, *, now: datetime, limit: int = 500) -> int:
    """The built-in network reports its due receipts. Taking a receipt from the spool and
    applying it happen in one transaction: each is applied exactly once."""
    receipts = take_simulated_receipts(conn, now=now, limit=limit)
    for receipt in receipts:
        apply_receipt(conn, receipt, now=now)
    return len(receipts)


def take_simulated_receipts(conn: Connection, *, now: datetime, limit: int = 500) -> list[Receipt]:
    """Take the built-in network's due receipts from its spool, as the carrier would word them.
    Call in the transaction that applies them."""
    receipts = []
    for row in simulator_store.take_due(conn, now=now, limit=limit):
        done_date = now.strftime("%y%m%d%H%M")
        text = format_receipt_text(
            row["carrier_message_id"], row["stat"], err=row["err"], submit_date=row["submit_date"], done_date=done_date
        )
        receipts.append(
            Receipt(
                carrier=SIMULATOR,
                carrier_id=row["carrier_message_id"],
                stat=row["stat"],
                err=row["err"],
                done_date=done_date,
                raw=text,
            )
        )
    return receipts
