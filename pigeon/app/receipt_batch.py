"""Delivery receipts in batches: `receipts.apply_receipt` for many receipts, set-based.

The built-in network's receipt worker and carriers that report receipts in bursts hand over
hundreds at a time. Applying them one by one costs about eight statements each; here the
receipts of single-part messages (nearly all of them) are applied together, with the same
rules and the same result as `apply_receipt` called on each in turn:

- their carrier_refs rows and messages are read with one query each;
- the rules run in order on those rows in memory (a duplicate, or a second final answer for a
  part that already has one, changes nothing: `apply_receipt`'s `settled`);
- the writes are set-based: one executemany for the parts' receipts, one guarded UPDATE per
  target status and error code (only the rows it returns moved), one INSERT for the timeline
  entries (the status change, then the raw receipt, per receipt), one for the callbacks.

A receipt whose id matches nothing yet is parked, as `apply_receipt` parks it (one INSERT for
all of them). A receipt of a multipart message, or of a message a carrier took twice
(``late_copy``), takes `apply_receipt` itself, after everything before it has been written,
so order holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callbacks
from pigeon.app.failed_charges import withdraw_charges
from pigeon.app.receipts import apply_receipt, parked_row, receipt_detail, receipt_of_parked, take_simulated_receipts
from pigeon.domain.receipts import ReceiptOutcome, outcome_of
from pigeon.ports import Receipt
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as store
from pigeon.store import message_batch
from pigeon.store import simulator as simulator_store

__all__ = ["apply_receipts", "deliver_simulated_receipts", "rematch_parked"]

log = logging.getLogger(__name__)

Row = dict[str, Any]


@dataclass
class _Planned:
    receipt: Receipt
    ref: Row
    message: Row
    duplicate: bool
    final: ReceiptOutcome | None


def simulated_receipts_due(conn: Connection, *, now: datetime) -> bool:
    """Whether the built-in network owes a receipt now: a read, so that a worker that would
    find nothing does not take the writer lock (SQLite) to find it."""
    return simulator_store.any_due(conn, now=now)


def deliver_simulated_receipts(conn: Connection, *, now: datetime, limit: int = 500) -> int:
    """`receipts.deliver_simulated_receipts`, applied as one batch: taking the receipts from the
    spool and applying them happen in one transaction, so each is applied exactly once."""
    receipts = take_simulated_receipts(conn, now=now, limit=limit)
    apply_receipts(conn, receipts, now=now)
    return len(receipts)


def rematch_parked(conn: Connection, *, now: datetime, limit: int = 500) -> int:
    """Apply parked receipts whose submit answer has been recorded since, but which the
    recording transaction did not see (it ran alongside the one that parked them)."""
    rows = store.take_rematchable(conn, limit=limit)
    apply_receipts(conn, [receipt_of_parked(row) for row in rows], now=now)
    return len(rows)


def apply_receipts(conn: Connection, receipts: Sequence[Receipt], *, now: datetime) -> list[str | None]:
    """Apply receipts in order; for each, the message SID it matched or None (parked or gone)."""
    refs = store.find_carrier_refs(conn, [(r.carrier, r.carrier_id) for r in receipts])
    messages = message_batch.get_messages(conn, {ref["message_sid"] for ref in refs.values()})
    results: list[str | None] = []
    planned: list[_Planned] = []
    moving: set[str] = set()  # messages the planned receipts may move
    parked: list[Row] = []
    for receipt in receipts:
        ref = refs.get((receipt.carrier, receipt.carrier_id))
        if ref is None:
            # It overtook its submit's answer: parked until that answer is recorded. Nothing
            # else in the batch can match it either, so order with them does not matter.
            parked.append(parked_row(receipt, now=now))
            results.append(None)
            continue
        message = messages.get(ref["message_sid"])
        if ref["part_count"] != 1 or (message is not None and message["late_copy"]):
            # Its receipts count per copy: read with the rest of the message's parts.
            _write(conn, planned, now=now)
            planned, moving = [], set()
            results.append(apply_receipt(conn, receipt, now=now))
            continue
        if message is None:  # the message was deleted; the receipt has nowhere to go
            results.append(None)
            continue
        duplicate = ref["receipt_stat"] is not None and ref["receipt_stat"] == receipt.stat
        settled = ref["receipt_stat"] is not None and outcome_of(ref["receipt_stat"]).final
        part = outcome_of(receipt.stat, receipt.err, receipt.error_code)
        final = None if settled or not part.final else part
        if final is not None and message["sid"] in moving:
            # A resent message's other submit answered too: write what is planned first, so
            # that this receipt meets the status the earlier one left, as one by one it would.
            _write(conn, planned, now=now)
            planned, moving = [], set()
        if final is not None:
            moving.add(message["sid"])
        planned.append(_Planned(receipt, dict(ref), message, duplicate, final))
        if not settled:
            ref["receipt_stat"] = receipt.stat
        results.append(str(message["sid"]))
    _write(conn, planned, now=now)
    store.park_many_unmatched(conn, parked)
    if parked:
        log.info("%d receipts for unknown carrier ids parked", len(parked))
    return results


def _write(conn: Connection, planned: Sequence[_Planned], *, now: datetime) -> None:
    if not planned:
        return
    store.set_part_receipts(
        conn,
        [
            (p.receipt.carrier, p.receipt.carrier_id, p.receipt.stat)
            for p in planned
            if not (p.ref["receipt_stat"] is not None and outcome_of(p.ref["receipt_stat"]).final)
        ],
        at=now,
    )
    groups: dict[tuple[Any, int | None], list[str]] = {}
    for p in planned:
        if p.final is not None and p.final.status is not None:
            groups.setdefault((p.final.status, p.final.error_code), []).append(p.message["sid"])
    moved: dict[str, Row] = {}
    for (status, error_code), sids in groups.items():
        moved |= message_batch.transition_many(conn, sids, status, at=now, error_code=error_code)
    entries, changed = [], []
    for p in planned:
        r, sid = p.receipt, p.message["sid"]
        final = p.final
        updated = moved.get(sid) if final is not None and final.status is not None else None
        applied = updated is not None
        if updated is not None:
            assert final is not None and final.status is not None
            entries.append(
                message_batch.event(
                    message_sid=sid,
                    account_sid=p.message["account_sid"],
                    at=now,
                    kind="status",
                    status=str(final.status),
                    error_code=final.error_code,
                    detail={"by": "receipt", "carrier_id": r.carrier_id, "stat": r.stat, "err": r.err},
                )
            )
            changed.append((updated, r.done_date))
            if final.error_code is not None:
                alert_store.add_alert(
                    conn,
                    account_sid=p.message["account_sid"],
                    error_code=final.error_code,
                    at=now,
                    resource_sid=sid,
                    log_level="warning",
                    text=f"The carrier reported message {sid} {final.status} (stat {r.stat}, err {r.err}).",
                    request_variables={"receipt": r.raw},
                )
        detail = {**receipt_detail(r, p.ref, duplicate=p.duplicate), "applied": applied}
        entries.append(
            message_batch.event(
                message_sid=sid,
                account_sid=p.message["account_sid"],
                at=now,
                kind="receipt",
                status=str(final.status) if applied and final and final.status else None,
                error_code=final.error_code if applied and final else None,
                detail=detail,
            )
        )
    message_batch.add_events(conn, entries)
    # A message failed after the carrier took it is not charged (`failed_charges`); its
    # callback is queued as it is then.
    withdrawn = withdraw_charges(conn, moved.values(), now=now)
    enqueue_status_callbacks(conn, [(withdrawn.get(u["sid"], u), done) for u, done in changed], now=now)
