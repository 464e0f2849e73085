"""Idempotent sends and duplicate warnings: the pure rules.

An `Idempotency-Key` header on POST Messages names one send. The key is remembered for
`KEY_TTL` with a hash of the request's parameters: the same key with the same parameters
returns the message the first request made; with other parameters it is refused (20409).

Without a key, the same content (sender, recipient and body: the message's content hash)
sent again by one account within `DUPLICATE_WINDOW` still goes out, and raises a warning
alert (`DUPLICATE_WARNING`) that points at `pigeon doctor duplicates`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import timedelta

#: How long a key names its message (Stripe's and the issue's 24 hours).
KEY_TTL = timedelta(hours=24)
#: The longest key the store keeps (idempotency_keys.key is VARCHAR(255)).
MAX_KEY_LENGTH = 255
#: Same content from one account within this long, without a key, is flagged as a duplicate.
DUPLICATE_WINDOW = timedelta(seconds=10)
#: The alert's code: Pigeon's own, in a block Twilio's error dictionary does not use (79xxx).
DUPLICATE_WARNING = 79001


def key_problem(key: str) -> str | None:
    """Why `key` cannot be an Idempotency-Key, or None when it can: 1 to 255 visible ASCII
    characters (a header value; spaces inside are allowed)."""
    if not key.strip():
        return "The Idempotency-Key header is empty."
    if len(key) > MAX_KEY_LENGTH:
        return f"The Idempotency-Key header is {len(key)} characters long; at most {MAX_KEY_LENGTH} are allowed."
    if not all(" " <= c <= "~" for c in key):
        return "The Idempotency-Key header may only hold visible ASCII characters."
    return None


def request_hash(fields: Iterable[tuple[str, str]]) -> str:
    """A fingerprint of a create request's parameters: the form fields sorted by name.

    The sort is stable, so repeated fields (MediaUrl) keep their order, which matters: it is
    the order of the media. Field order otherwise does not matter, nor how the client
    encoded the form. JSON keeps the pairs unambiguous (no separator can be forged)."""
    pairs = sorted(((str(k), str(v)) for k, v in fields), key=lambda kv: kv[0])
    encoded = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()
