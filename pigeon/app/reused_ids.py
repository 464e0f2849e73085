"""A carrier id given to two messages: both timelines say so.

SMSCs reuse ids (a counter that wraps, or starts again after a restart). The id then names
the newer message (`store.dispatch.add_carrier_refs`), so a receipt for it goes there; if the
older message was still waiting for its receipt, that receipt can no longer find it, and a late
one of its own would be applied to the newer message. Each such message gets a
`carrier_id_reused` entry, which the doctor explains. A message of another account is not
named: one account never learns another's SIDs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import message_batch

Row = dict[str, Any]


def note_reused_ids(conn: Connection, taken: Sequence[Row], *, now: datetime) -> None:
    """Timeline entries for ids that `add_carrier_refs` took from a message still waiting."""
    entries = []
    for t in taken:
        same_account = t["account_sid"] == t["taken_by_account"]
        about = {"carrier": t["carrier"], "carrier_id": t["carrier_message_id"]}
        entries.append(
            message_batch.event(
                message_sid=t["message_sid"],
                account_sid=t["account_sid"],
                at=now,
                kind="carrier_id_reused",
                detail={**about, "part": t["part_index"] + 1, "taken_by": t["taken_by"] if same_account else None},
            )
        )
        entries.append(
            message_batch.event(
                message_sid=t["taken_by"],
                account_sid=t["taken_by_account"],
                at=now,
                kind="carrier_id_reused",
                detail={**about, "previous_holder": t["message_sid"] if same_account else None},
            )
        )
    if entries:
        message_batch.add_events(conn, entries)
