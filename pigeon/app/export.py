"""Export of message records with their timelines, as JSON or CSV, e.g. for a carrier.

JSON: one document, `{"exported_at", "filters", "messages": [...]}`, each message with its
timeline nested under "events". CSV: one row per message; its timeline is the last column,
as compact JSON; a cell that a spreadsheet would run as a formula gets a leading '
(pigeon.domain.spreadsheets). Dates are ISO 8601 in UTC with milliseconds (timelines need the order).

Records are read in batches (`export_batch`), each with one query for the batch's
timelines, so an export of any size streams in constant memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from pigeon.domain.spreadsheets import safe_cell
from pigeon.store.messages import MessageFilter, events_for_messages, list_messages

Row = dict[str, Any]
Cursor = tuple[datetime, str]

FORMATS = ("json", "csv")
BATCH = 500

#: The CSV columns, in order; the JSON records carry the same keys (and "events").
COLUMNS = (
    "sid",
    "account_sid",
    "direction",
    "from",
    "to",
    "status",
    "error_code",
    "error_message",
    "num_segments",
    "num_media",
    "price",
    "price_unit",
    "encoding",
    "messaging_service_sid",
    "carrier",
    "date_created",
    "date_sent",
    "date_updated",
    "content_hash",
    "body",
    "timeline",
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value is not None else None


def event_record(event: Mapping[str, Any]) -> Row:
    return {
        "at": iso(event["at"]),
        "kind": event["kind"],
        "status": event["status"],
        "error_code": event["error_code"],
        "detail": event["detail"] or {},
    }


def message_record(message: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> Row:
    """One message as exported: its fields and, under "events", its timeline in order."""
    return {
        "sid": message["sid"],
        "account_sid": message["account_sid"],
        "direction": message["direction"],
        "from": message["from_"],
        "to": message["to"],
        "status": message["status"],
        "error_code": message["error_code"],
        "error_message": message["error_message"],
        "num_segments": message["num_segments"],
        "num_media": message["num_media"],
        # As the message resource shows them: "-0.00790" charged, "0.00000" free, null unpriced.
        "price": message["price"],
        "price_unit": message["price_unit"],
        "encoding": message["encoding"],
        "messaging_service_sid": message["messaging_service_sid"],
        "carrier": message.get("carrier"),
        "date_created": iso(message["date_created"]),
        "date_sent": iso(message["date_sent"]),
        "date_updated": iso(message["date_updated"]),
        "content_hash": message["content_hash"],
        "body": message["body"],
        "events": [event_record(e) for e in events],
    }


def export_batch(
    conn: Connection, f: MessageFilter, *, after: Cursor | None, size: int = BATCH, limit: int | None = None
) -> tuple[list[Row], Cursor | None]:
    """Up to `size` records after `after` (newest first), and the cursor of the next batch
    (None at the end). `limit` is how many the caller still wants."""
    want = size if limit is None else min(size, limit)
    if want <= 0:
        return [], None
    rows = list_messages(conn, f, limit=want, after=after)
    timelines = events_for_messages(conn, [r["sid"] for r in rows])
    records = [message_record(r, timelines[r["sid"]]) for r in rows]
    more = len(rows) == want and (limit is None or limit > want)
    return records, ((rows[-1]["date_created"], rows[-1]["sid"]) if more and rows else None)


# -- formats ---------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def csv_row(record: Mapping[str, Any]) -> list[Any]:
    """A record's CSV cells. Every cell is made safe for a spreadsheet, not only the free text:
    an inbound message's From (an alphanumeric originator) is as much a stranger's as its body."""
    values = [safe_cell(record[column]) for column in COLUMNS[:-1]]
    return [*("" if v is None else v for v in values), safe_cell(_compact(record["events"]))]


class Format(Protocol):
    media_type: str

    def head(self) -> str: ...
    def item(self, record: Mapping[str, Any]) -> str: ...
    def tail(self) -> str: ...


class JsonFormat:
    """`{"exported_at": ..., "filters": {...}, "messages": [record, ...]}`, one record a line."""

    media_type = "application/json; charset=utf-8"

    def __init__(self, *, exported_at: datetime, filters: Mapping[str, Any]) -> None:
        self._head = _compact({"exported_at": iso(exported_at), "filters": dict(filters)})[:-1] + ',"messages":['
        self._first = True

    def head(self) -> str:
        return self._head

    def item(self, record: Mapping[str, Any]) -> str:
        sep, self._first = ("\n" if self._first else ",\n"), False
        return sep + _compact(record)

    def tail(self) -> str:
        return "\n]}\n"


class CsvFormat:
    """A header line, then one line per message; the timeline is the last column."""

    media_type = "text/csv; charset=utf-8"

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def _line(self, values: Iterable[Any]) -> str:
        self._writer.writerow(values)
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def head(self) -> str:
        return self._line(COLUMNS)

    def item(self, record: Mapping[str, Any]) -> str:
        return self._line(csv_row(record))

    def tail(self) -> str:
        return ""


def formatter(fmt: str, *, exported_at: datetime, filters: Mapping[str, Any]) -> Format:
    if fmt == "json":
        return JsonFormat(exported_at=exported_at, filters=filters)
    if fmt == "csv":
        return CsvFormat()
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def render(
    fmt: str, records: Iterable[Mapping[str, Any]], *, exported_at: datetime, filters: Mapping[str, Any]
) -> Iterator[str]:
    """The whole export in pieces: the head, one piece per record, the tail."""
    out = formatter(fmt, exported_at=exported_at, filters=filters)
    yield out.head()
    for record in records:
        yield out.item(record)
    yield out.tail()


def export_all(conn: Connection, f: MessageFilter, *, limit: int | None = None) -> Iterator[Row]:
    """Every record the filter matches (up to `limit`), batch by batch, on one connection."""
    cursor: Cursor | None = None
    left = limit
    while True:
        records, cursor = export_batch(conn, f, after=cursor, limit=left)
        yield from records
        if left is not None:
            left -= len(records)
        if cursor is None:
            return


def filter_view(f: MessageFilter) -> dict[str, Any]:
    """The filter as the export's header shows it: every field that was set (a new field of
    MessageFilter belongs here too, or the header misdescribes the export)."""
    view = {
        "account_sid": f.account_sid,
        "to": f.to,
        "from": f.from_,
        "number": f.number,  # either side: the console's phone-number filter
        "status": f.status,
        "direction": f.direction,
        "date_sent_after": iso(f.date_sent_after),
        "date_sent_before": iso(f.date_sent_before),
        "created_since": iso(f.created_since),
        "created_before": iso(f.created_before),
    }
    if f.date_sent_on is not None:
        view["date_sent_on"] = iso(f.date_sent_on[0])
    return {k: v for k, v in view.items() if v is not None}
