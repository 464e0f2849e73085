"""Keyed fingerprints for the record of an erasure (pigeon/store/erasure_log.py): enough to
recognise the number erased, or one of the messages that went, when someone asks about it
again; not enough to tell what they were.

A phone number is no secret to guess: a country's plan has a few billion of them, and a
plain SHA-256 of each is minutes of work. So the fingerprint is an HMAC under a key of the
install's, kept in its store: someone with the whole store can still test a number they have
in mind (as the doctor does), but a copy of the record alone tells nothing.

The key is derived from the install's content key (pigeon/store/settings.py) for this one
purpose, rather than being that key. The content key fingerprints messages' content, and
those fingerprints are listed in the request log, exported and compared; an erasure record is
kept for ever and shown to whoever audits erasures. With a key of its own, neither kind of
fingerprint can be matched against the other, and neither purpose's inputs can ever collide
with the other's. Derived, it needs no secret of its own to make, keep or back up: it lives
and goes with the content key, which is made once and never changes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

#: What the derived key is for; a new purpose takes a new label, never this one.
PURPOSE = b"pigeon erasure records v1"

Kind = Literal["number", "sid"]


def erasure_key(content_key: bytes) -> bytes:
    """The key of the erasure records, derived from the install's content key."""
    return hmac.digest(content_key, PURPOSE, "sha256")


def fingerprint(key: bytes, kind: Kind, value: str) -> str:
    """The keyed fingerprint of a number or a SID (64 hex digits). The kind is part of what is
    hashed, so that a number and a SID never share a fingerprint."""
    return hmac.new(key, f"{kind}\x1f{value}".encode(), hashlib.sha256).hexdigest()
