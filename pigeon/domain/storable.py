"""What text from outside becomes before the store keeps it.

Carriers and webhooks send whatever their software writes, and some of it no store can hold
as it is. PostgreSQL's text types refuse the NUL character (U+0000) outright, and its
VARCHAR(n) columns refuse anything longer than n; SQLite takes both. Left alone, one receipt
with a NUL-padded text, or an error field longer than SMPP allows, fails its transaction on
PostgreSQL every time. The carrier, never told it was recorded, sends it again and again, and
it never lands.

So text from a carrier or a webhook is made storable on the way in, the same way on both
stores:
- NUL is dropped from message text and addresses. SMSCs pad C strings and UCS-2 text with it,
  and it carries nothing a reader could see. In a webhook's answer, kept only as evidence, it
  becomes U+FFFD, as bytes that are not UTF-8 already do.
- Fields the store keeps in bounded columns are cut to their bound. A carrier id longer than
  `CARRIER_ID_LENGTH` is cut the same way wherever it is seen (the submit's answer and the
  receipt), so that the two still match.

What a client sends to the API is not changed: a NUL in a parameter is refused there (20422).
"""

from __future__ import annotations

from collections.abc import Iterable

NUL = "\x00"
REPLACEMENT = "\ufffd"

#: The longest carrier message id kept (SMPP 3.4 allows 65 octets).
CARRIER_ID_LENGTH = 80
#: The longest receipt field kept: stat, err and the dates (SMPP 3.4 writes 7, 3 and 10).
RECEIPT_FIELD_LENGTH = 16
#: The longest phone number or sender kept for a message or an inbound part.
ADDRESS_LENGTH = 64
#: The longest carrier name (an operator's configuration, checked when it is read).
CARRIER_NAME_LENGTH = 32
#: The longest worker process name (who claimed a message, who holds a bind).
PROCESS_NAME_LENGTH = 64


def without_nul(text: str) -> str:
    return text.replace(NUL, "") if NUL in text else text


def fitted(text: str, limit: int) -> str:
    """`text` without NUL, cut to `limit` characters."""
    return without_nul(text)[:limit]


def excerpt(body: bytes, limit: int) -> str:
    """The first `limit` bytes of an answer's body, as text for the record: bytes that are not
    UTF-8, and NUL, show as U+FFFD."""
    text = body[:limit].decode("utf-8", errors="replace")
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def nul_parameter(fields: Iterable[tuple[str, str]]) -> str | None:
    """The name of the first parameter whose name or value holds NUL, if any (the API and the
    console refuse such a request with 20422)."""
    for name, value in fields:
        if NUL in name or NUL in value:
            return name
    return None
