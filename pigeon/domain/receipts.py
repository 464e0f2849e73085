"""Delivery receipts: the carrier's receipt text and states, mapped to our statuses and codes.

SMPP carriers send receipts as deliver_sm with a text body in the de-facto format of SMPP 3.4
Appendix B: ``id:IIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
stat:DDDDDDD err:E text:...``. Carriers disagree on case, padding and id formats, so the
parser is lenient and keeps the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pigeon.domain.status import MessageStatus

_KEYS = r"id|sub|dlvrd|submit[\s_]*date|done[\s_]*date|stat|err|text"
# A key starts the text or follows a blank; a value runs to the next key or the end. A value may
# be empty ("err: text:"), so the blanks after a colon belong to the value, stripped later.
_FIELD = re.compile(
    rf"(?<!\S)(?P<key>{_KEYS})\s*:(?P<value>.*?)(?=\s+(?:{_KEYS})\s*:|$)",
    re.IGNORECASE | re.DOTALL,
)
_SEPARATORS = re.compile(r"[\s_]+")


@dataclass(frozen=True)
class ParsedReceipt:
    carrier_id: str | None
    stat: str | None
    err: str | None
    submit_date: str | None
    done_date: str | None
    text: str | None


def parse_receipt_text(text: str) -> ParsedReceipt:
    fields: dict[str, str] = {}
    # NUL terminators (C strings) and surrounding blanks are padding, never content.
    for match in _FIELD.finditer(text.replace("\x00", " ").strip()):
        key = _SEPARATORS.sub("", match.group("key").lower())  # "submit_date" -> "submitdate"
        fields.setdefault(key, match.group("value").strip())
    return ParsedReceipt(
        carrier_id=fields.get("id") or None,
        stat=(fields.get("stat") or "").upper() or None,
        err=fields.get("err") or None,
        submit_date=fields.get("submitdate") or None,
        done_date=fields.get("donedate") or None,
        text=fields.get("text"),
    )


def looks_like_receipt(text: str) -> bool:
    parsed = parse_receipt_text(text)
    return parsed.carrier_id is not None and parsed.stat is not None


@dataclass(frozen=True)
class ReceiptOutcome:
    """What a receipt state means for a message: its new status (None: no change) and code."""

    status: MessageStatus | None
    error_code: int | None
    final: bool


#: SMPP receipt states -> outcome. Error codes for failures come from `ERR_CODES` when the
#: carrier's err field is known, else from the default here.
STATES: dict[str, ReceiptOutcome] = {
    "DELIVRD": ReceiptOutcome(MessageStatus.DELIVERED, None, True),
    "UNDELIV": ReceiptOutcome(MessageStatus.UNDELIVERED, 30003, True),
    "EXPIRED": ReceiptOutcome(MessageStatus.UNDELIVERED, 30003, True),
    "DELETED": ReceiptOutcome(MessageStatus.UNDELIVERED, 30008, True),
    "REJECTD": ReceiptOutcome(MessageStatus.UNDELIVERED, 30007, True),
    "UNKNOWN": ReceiptOutcome(MessageStatus.UNDELIVERED, 30008, True),
    "FAILED": ReceiptOutcome(MessageStatus.FAILED, 30008, True),
    # Intermediate states: recorded in the timeline, no status change.
    "ACCEPTD": ReceiptOutcome(None, None, False),
    "ENROUTE": ReceiptOutcome(None, None, False),
    "BUFFRED": ReceiptOutcome(None, None, False),
}

#: Network error values carried in the receipt's err field (the simulator and common SMSC
#: conventions) -> Twilio error code. A carrier's own table (its receipt_errors) comes first.
ERR_CODES: dict[str, int] = {
    "001": 30003,  # absent subscriber / handset unreachable
    "002": 30005,  # unknown subscriber
    "003": 30006,  # landline or unreachable carrier
    "004": 30007,  # filtered as spam by the carrier
    "005": 30008,  # unknown error
    "006": 30004,  # blocked by the recipient or the carrier
    "007": 30036,  # validity period expired in the network
}


#: Spelled-out states some gateways send instead of SMPP's seven-letter ones. Without them a
#: "DELIVERED" would read as UNKNOWN and a delivered message would be reported undelivered.
ALIASES: dict[str, str] = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERED": "UNDELIV",
    "UNDELIVERABLE": "UNDELIV",
    "REJECTED": "REJECTD",
    "ACCEPTED": "ACCEPTD",
    "BUFFERED": "BUFFRED",
}


def _clean(value: str | None) -> str:
    return (value or "").replace("\x00", "").strip()


def normalise_stat(stat: str | None) -> str:
    """The SMPP state a receipt's stat field means: upper case, unpadded, aliases resolved."""
    text = _clean(stat).upper()
    return ALIASES.get(text, text)


def err_key(err: str | None) -> str | None:
    """An err value in one form, however it is padded ("2", "02", "002", "0002" → "002"), or
    None when it is not a decimal number."""
    text = _clean(err)
    if not (text.isascii() and text.isdigit()):
        return None
    return f"{int(text):03d}"


def table_key(err: str | None) -> str | None:
    """How a carrier's receipt_errors table keys an err value: a decimal one in `err_key`'s
    form, any other (some SMSCs write hex, "00B") as written, in upper case."""
    key = err_key(err)
    if key is not None:
        return key
    return _clean(err).upper() or None


def receipt_errors_key(raw: str) -> str | None:
    """How a carrier's receipt_errors table keys one of its entries: an err value (`table_key`),
    or a receipt state and an err value together ("UNDELIV:001"), for a carrier whose err
    values mean one thing in one state and another in another. None for a key that is neither."""
    stat, colon, err = raw.rpartition(":")
    key = table_key(err)
    if not colon or key is None:
        return key
    state = normalise_stat(stat)
    return f"{state}:{key}" if state in STATES else None


def carrier_error_code(table: Mapping[str, int], stat: str | None, err: str | None) -> int | None:
    """The code a carrier's receipt_errors gives a receipt: its state and err value together
    first, then its err value alone; None when the table names neither."""
    key = table_key(err)
    if key is None:
        return None
    both = table.get(f"{normalise_stat(stat)}:{key}")
    return both if both is not None else table.get(key)


def outcome_of(stat: str | None, err: str | None = None, error_code: int | None = None) -> ReceiptOutcome:
    """The status and code a receipt implies. An unknown state is treated as UNKNOWN.
    `error_code`: what the carrier's own table says its err value means; it comes first."""
    base = STATES.get(normalise_stat(stat), STATES["UNKNOWN"])
    if base.status is None or base.status is MessageStatus.DELIVERED:
        return base
    key = err_key(err)
    code = error_code or (ERR_CODES.get(key) if key else None) or base.error_code
    return ReceiptOutcome(base.status, code, base.final)


def format_receipt_text(
    carrier_id: str, stat: str, *, err: str = "000", submit_date: str = "", done_date: str = "", text: str = ""
) -> str:
    """The standard receipt text, as carriers (and our simulator) send it."""
    dlvrd = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{carrier_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} done date:{done_date} "
        f"stat:{stat} err:{err} text:{text[:20]}"
    )
