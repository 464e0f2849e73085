"""A message that fails after a carrier took it is not charged.

On Twilio `failed` means the message could not be sent, and costs nothing (REFERENCE.md).
A carrier's receipt can still say so after the carrier took the message: ``stat:FAILED`` maps
to `failed` with 30008 (`pigeon.domain.receipts`; the built-in network's "0105 unknown error"
says the same), when the message is `sent`, priced and counted in usage already
(`pigeon.app.dispatch_record`). So, in the transaction that moves it to `failed`:

- its price becomes "0.00000" (`pricing.FREE`, as Pigeon shows a message it does not charge,
  the automatic reply to STOP); a message that had no price (its route is unpriced) keeps null;
- what the ledger counted for it (one message, its segments, its price) is taken back out of
  the usage of the day it was counted, the UTC day it was sent (`usage.withdraw`); the
  automatic reply to a keyword was never counted, and is left alone;
- its timeline gets a ``charge_withdrawn`` entry saying what was withdrawn.

The status guard lets a message reach `failed` once, so this happens once per message.
Every path that can fail a message after it was sent is a receipt, applied one by one
(`pigeon.app.receipts`) or in batches (`pigeon.app.receipt_batch`); both call `withdraw_charges`
with the rows their guarded UPDATE moved, before the status callbacks are queued.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import usage
from pigeon.domain.pricing import FREE
from pigeon.domain.status import MessageStatus
from pigeon.store import message_batch
from pigeon.store import messages as message_store

__all__ = ["CHARGE_WITHDRAWN", "withdraw_charges"]

Row = dict[str, Any]

#: The timeline entry's kind.
CHARGE_WITHDRAWN = "charge_withdrawn"


def _counted(row: Row) -> bool:
    """Whether the message was counted in usage when it was sent: an outbound message a carrier
    took (it has a date_sent, set only then) that is not a free keyword reply."""
    return (
        row["status"] == str(MessageStatus.FAILED)
        and row["direction"] != "inbound"
        and row["date_sent"] is not None
        and not row["keyword_reply"]
    )


def _went_as_mms(conn: Connection, row: Row) -> bool:
    """Whether the message was counted as an MMS: it has media, and its `sent` entry does not
    say the media went as links in a text (`dispatch_record`), which counted it as an SMS."""
    if not row["num_media"]:
        return False
    sent = [e for e in message_store.list_events(conn, row["sid"]) if e["kind"] == "status" and e["status"] == "sent"]
    return not (sent and (sent[-1]["detail"] or {}).get("media_as_links"))


def withdraw_charges(conn: Connection, failed: Iterable[Row], *, now: datetime) -> dict[str, Row]:
    """Withdraw the charge and usage of messages just moved to `failed` (`failed`: their rows
    as the guarded UPDATE returned them), in the caller's transaction. Returns the rows of the
    messages whose charge was withdrawn, as they are now (price "0.00000"), by SID."""
    rows = [r for r in failed if _counted(r)]
    if not rows:
        return {}
    usage.withdraw(
        conn,
        [
            (
                r["date_sent"].astimezone(UTC).date(),
                usage.Counted(
                    account_sid=r["account_sid"],
                    outbound=True,
                    media=_went_as_mms(conn, r),
                    segments=r["num_segments"],
                    price=r["price"],
                ),
            )
            for r in rows
        ],
    )
    message_batch.set_prices(conn, [r["sid"] for r in rows], price=FREE)
    message_batch.add_events(conn, [_entry(r, now=now) for r in rows])
    return {r["sid"]: r | {"price": FREE if r["price"] is not None else None} for r in rows}


def _entry(row: Row, *, now: datetime) -> Row:
    price = row["price"]
    what = f"its price {price} {row['price_unit']}" if price is not None else "no price (its route is unpriced)"
    return message_batch.event(
        message_sid=row["sid"],
        account_sid=row["account_sid"],
        at=now,
        kind=CHARGE_WITHDRAWN,
        detail={
            "reason": "the message failed after the carrier took it: a failed message is not charged",
            "withdrawn": f"{what}, and 1 message of {row['num_segments']} segment(s) from usage",
            "price": price,
            "price_unit": row["price_unit"],
            "segments": row["num_segments"],
            "usage_day": row["date_sent"].astimezone(UTC).date().isoformat(),
        },
    )
