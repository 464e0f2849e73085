"""The opt-out list as customers read, export and import it."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, is_sid
from pigeon.domain.spreadsheets import safe_cell
from pigeon.store import optouts as store
from pigeon.store import services as service_store
from pigeon.store.numbers import find_by_number

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
    """The account's opt-outs (every account's for None), newest first; `recipient` and
    `sender` filter when given. An empty one (``?Recipient=``, ``--recipient ""``) is no
    filter, as an empty ``To=`` is none for Messages.json: before, it matched the opt-outs of
    the empty recipient, which are none."""
    return store.list_opt_outs(
        conn, account_sid=account_sid, recipient=recipient or None, sender=sender or None, offset=offset, limit=limit
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
    """The opt-outs as CSV (OptOuts.csv, the console's export, `pigeon optouts export`); a
    recipient or sender that a spreadsheet would run as a formula (an alphanumeric originator
    that said STOP) gets a leading apostrophe (pigeon.domain.spreadsheets)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: safe_cell(v) for k, v in view(row).items()})
    return out.getvalue()


_NOT_LIFTED_BY_START = (
    "START to {sender} will not lift it (a short code in none of the account's Messaging Services: its "
    "application takes the keywords); `pigeon optouts remove` does"
)


def lifted_by_start(conn: Connection, row: Mapping[str, Any]) -> bool:
    """Whether the recipient's START lifts the opt-out `row`. It does for a Messaging Service
    and for a number, but not for a short code in none of the account's services: Pigeon leaves
    the keywords texted to a standalone one to its application, as Twilio does
    (pigeon.app.inbound_keywords), so its opt-outs (copied when it left its service, or
    imported) stay until an operator removes them (`remove`), or until the short code is in a
    service and the recipient texts START to it."""
    if row["scope"] == "service" or not numbers.is_short_code(row["sender"]):
        return True
    number = find_by_number(conn, row["sender"])
    return number is not None and number["account_sid"] == row["account_sid"] and bool(number["messaging_service_sid"])


def _spellings(raw: str) -> list[str]:
    """`raw` as the list may hold it: as a number or short code is stored, else as written (a
    sender the carrier wrote nationally, kept so when its country could not be told)."""
    text = raw.strip()
    return list(dict.fromkeys(s for s in (numbers.number_or_short_code(text), text) if s))


def remove(conn: Connection, account_sid: str, *, recipient: str, sender: str) -> Row:
    """Lift the account's opt-out of `recipient` from `sender` (a number, a short code or a
    Messaging Service SID), each written as the list shows it or as a number in E.164; the row
    it was. For an operator (`pigeon optouts remove`), when the recipient opted back in where
    Pigeon does not see it: with the application of a short code outside a Messaging Service.
    20404 when the account has no such opt-out; nothing else is changed."""
    recipients = _spellings(recipient)
    senders = [sender.strip()] if is_sid(sender.strip(), Prefix.SERVICE) else _spellings(sender)
    for to in recipients:
        for by in senders:
            row = store.find_opt_out(conn, account_sid=account_sid, sender=by, recipient=to)
            if row is not None:
                store.remove_opt_out(conn, account_sid=account_sid, sender=by, recipient=to)
                return row
    raise ApiError(20404, f"No opt-out of {recipient.strip()} from {sender.strip()} on account {account_sid}.")


# -- import -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Imported:
    """What an import did with one row of the file (`line`: its line, or its place in a list)."""

    line: int
    recipient: str
    sender: str
    action: str  # made | here already | skipped
    why: str = ""
    #: For a row made: what the recipient's START does not do for it (`lifted_by_start`).
    note: str = ""


def read_rows(text: str) -> list[dict[str, str]]:
    """The rows of an opt-out file: JSON (a list of objects, as `pigeon optouts export --format
    json` writes) or CSV with a header (as the CSV export writes; `recipient` and `sender` are
    the columns that matter). ValueError for a file that is neither."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the file is not valid JSON: {exc}") from None
        if not all(isinstance(item, dict) for item in data):
            raise ValueError("a JSON file must be a list of objects")
        return [{str(k): "" if v is None else str(v) for k, v in item.items()} for item in data]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"recipient", "sender"} <= set(reader.fieldnames):
        raise ValueError("a CSV file needs a header naming at least the recipient and sender columns")
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _when(raw: str, now: datetime) -> datetime:
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else now
    except ValueError:
        return now
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _pair(
    conn: Connection, account_sid: str, row: Mapping[str, str], sender: str, taken: frozenset[str]
) -> tuple[str, str] | str:
    """(sender, scope) of a row, or why it cannot be imported into the account."""
    if row.get("account_sid") and row["account_sid"] not in taken:
        return f"the row is account {row['account_sid']}'s"
    if is_sid(sender, Prefix.SERVICE):
        if service_store.get_service(conn, sender, account_sid=account_sid) is None:
            return "the Messaging Service is not this account's"
        return sender, "service"
    normalised = numbers.number_or_short_code(sender)
    if normalised is None:
        return "the sender is neither a phone number, a short code nor a Messaging Service SID"
    return normalised, "number"


def import_rows(
    conn: Connection,
    rows: Sequence[Mapping[str, str]],
    *,
    account_sid: str,
    now: datetime,
    from_account: str | None = None,
) -> list[Imported]:
    """Add the file's opt-outs to the account, in the caller's transaction. A sender is a phone
    number or short code (the pair is blocked) or one of the account's Messaging Services (the
    recipient is blocked service-wide). A pair already opted out is left as it is; a row that
    names another account (than this one, or `from_account`: an export from another install
    names the account there), or a number or service that is not valid here, is skipped with
    the reason. The inbound message behind an opt-out elsewhere is not here: it is not kept."""
    taken = frozenset(a for a in (account_sid, from_account) if a)
    done = []
    for line, row in enumerate(rows, start=2):
        recipient_raw, sender_raw = row.get("recipient", ""), row.get("sender", "")
        recipient = numbers.to_e164(recipient_raw)
        pair = _pair(conn, account_sid, row, sender_raw, taken)
        if isinstance(pair, str) or recipient is None:
            why = pair if isinstance(pair, str) else "the recipient is not a phone number"
            done.append(Imported(line, recipient_raw, sender_raw, "skipped", why))
            continue
        sender, scope = pair
        if store.find_opt_out(conn, account_sid=account_sid, sender=sender, recipient=recipient) is not None:
            done.append(Imported(line, recipient, sender, "here already"))
            continue
        keyword = (row.get("keyword") or "STOP").upper()[:32]
        store.record_opt_out(
            conn,
            account_sid=account_sid,
            sender=sender,
            recipient=recipient,
            scope=scope,
            keyword=keyword,
            inbound_message_sid=None,
            now=_when(row.get("date_created", ""), now),
        )
        made = {"account_sid": account_sid, "sender": sender, "scope": scope}
        note = "" if lifted_by_start(conn, made) else _NOT_LIFTED_BY_START.format(sender=sender)
        done.append(Imported(line, recipient, sender, "made", note=note))
    return done
