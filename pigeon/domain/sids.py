"""Twilio-style resource identifiers: two uppercase letters and 32 lowercase hex digits."""

from __future__ import annotations

import re
import secrets
from enum import StrEnum


class Prefix(StrEnum):
    ACCOUNT = "AC"
    API_KEY = "SK"
    SMS = "SM"
    MMS = "MM"
    MEDIA = "ME"
    PHONE_NUMBER = "PN"
    SERVICE = "MG"
    SHORT_CODE = "SC"
    ALPHA_SENDER = "AI"
    ALERT = "NO"
    REQUEST = "RQ"
    EVENT = "EZ"
    SINK = "DG"
    SUBSCRIPTION = "DF"
    WEBHOOK = "WH"


_SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


def new_sid(prefix: Prefix | str) -> str:
    """A fresh random SID. 128 random bits make collisions a non-issue across hosts."""
    return f"{prefix}{secrets.token_hex(16)}"


def is_sid(value: str, *prefixes: Prefix | str) -> bool:
    """True when `value` is a well-formed SID, optionally with one of `prefixes`."""
    if not _SID.match(value):
        return False
    return not prefixes or value[:2] in {str(p) for p in prefixes}
