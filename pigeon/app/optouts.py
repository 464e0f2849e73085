"""The opt-out list as customers read and export it."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import optouts as store

Row = dict[str, Any]

EXPORT_FIELDS = ("account_sid", "recipient", "sender", "scope", "keyword", "inbound_message_sid", "date_created")


def list_for_account(
    conn: Connection,
    account_sid: str | None,
    *,
    recipient: str | None = None,
    sender: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[Row]:
    return store.list_opt_outs(
        conn, account_sid=account_sid, recipient=recipient, sender=sender, offset=offset, limit=limit
    )


def view(row: Row) -> Row:
    """One opt-out as the API and the CLI show it."""
    return {
        "account_sid": row["account_sid"],
        "recipient": row["recipient"],
        "sender": row["sender"],
        "scope": row["scope"],
        "keyword": row["keyword"],
        "inbound_message_sid": row["inbound_message_sid"],
        "date_created": row["date_created"].isoformat().replace("+00:00", "Z"),
        "opt_in_keywords": ["START", "YES", "UNSTOP"],
    }


def to_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(view(row))
    return out.getvalue()
