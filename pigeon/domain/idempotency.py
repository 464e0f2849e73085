"""Idempotent sends and duplicate warnings: the pure rules.

An `Idempotency-Key` header on POST Messages names one send. The key is remembered for
`KEY_TTL` with a fingerprint of the request's parameters: the same key with the same
parameters returns the message the first request made; with other parameters it is refused
(20409).

The fingerprint covers the Body, so it is keyed (`request_hash`): a plain SHA-256 of a short
text gave a redacted six-digit code back in seconds to anyone trying every candidate. Redacting
the message replaces it with `REDACTED`, which nothing equals: a replay of the key then
answers the message, redacted, as it can no longer be compared (`same_request`).

Without a key, the same content (sender, recipient and body: the message's content hash)
sent again by one account within `DUPLICATE_WINDOW` still goes out, and raises a warning
alert (`DUPLICATE_WARNING`) that points at `pigeon doctor duplicates`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from datetime import timedelta

#: How long a key names its message (Stripe's and the issue's 24 hours).
KEY_TTL = timedelta(hours=24)
#: The longest key the store keeps (idempotency_keys.key is VARCHAR(255)).
MAX_KEY_LENGTH = 255
#: Same content from one account within this long, without a key, is flagged as a duplicate.
DUPLICATE_WINDOW = timedelta(seconds=10)
#: The alert's code: Pigeon's own, in a block Twilio's error dictionary does not use (79xxx).
DUPLICATE_WARNING = 79001
#: What the fingerprint of a redacted message's request becomes: no hex digest is equal to it.
REDACTED = "redacted"
#: What the fingerprints' key is derived for; a new purpose takes a new label, never this one.
PURPOSE = b"pigeon idempotency requests v1"


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


@functools.lru_cache(maxsize=4)
def fingerprint_key(content_key: bytes) -> bytes:
    """The key of the requests' fingerprints, derived from the install's content key: one
    purpose, one key (as `pigeon.domain.erasure.erasure_key`), nothing more to make or keep."""
    return hmac.digest(content_key, PURPOSE, "sha256")


def _encoded(fields: Iterable[tuple[str, str]]) -> bytes:
    """The form fields sorted by name. The sort is stable, so repeated fields (MediaUrl) keep
    their order, which matters: it is the order of the media. Field order otherwise does not
    matter, nor how the client encoded the form. JSON keeps the pairs unambiguous (no separator
    can be forged)."""
    pairs = sorted(((str(k), str(v)) for k, v in fields), key=lambda kv: kv[0])
    return json.dumps(pairs, ensure_ascii=False, separators=(",", ":")).encode()


def request_hash(fields: Iterable[tuple[str, str]], *, key: bytes) -> str:
    """A fingerprint of a create request's parameters: an HMAC-SHA256 under
    `fingerprint_key(key)`, `key` being the install's content key."""
    return hmac.new(fingerprint_key(key), _encoded(fields), hashlib.sha256).hexdigest()


def unkeyed_request_hash(fields: Iterable[tuple[str, str]]) -> str:
    """The fingerprint as releases before the keyed one made it (a plain SHA-256). Only to
    recognise a replay of a key stored by such a release: one is kept 24 hours, so after a
    day on this release none is left and this can go."""
    return hashlib.sha256(_encoded(fields)).hexdigest()


def same_request(stored: str, fields: Sequence[tuple[str, str]], *, key: bytes) -> bool:
    """Whether a request with `fields` is the one whose fingerprint is `stored`: keyed, or
    unkeyed when stored before the upgrade. A redacted one (`REDACTED`) matches any: its
    parameters cannot be compared any more, and the key names that one send."""
    if stored == REDACTED:
        return True
    if hmac.compare_digest(stored, request_hash(fields, key=key)):
        return True
    return hmac.compare_digest(stored, unkeyed_request_hash(fields))
