"""Twilio's booleans in requests: "true" or "false", in any case, and nothing else.

Before, each parameter had its own reading: SmartEncoded took "true", "1" and "yes" and
read anything else ("maybe", a typo) as false without a word, while a Service refused
StickySender=yes with 20422. Every request's boolean is now read here, and a value that is
neither is refused by the caller, naming the parameter.
"""

from __future__ import annotations

from pigeon.domain.errors import ApiError
from pigeon.domain.quoted import shown

__all__ = ["flag", "read_flag"]


def flag(text: str) -> bool | None:
    """True for "true", False for "false" (any case); None for anything else."""
    value = text.lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


def read_flag(name: str, raw: str | None) -> bool | None:
    """A request's boolean parameter `name`: None when absent or empty; 20422 naming it when it
    is neither true nor false."""
    if raw is None or raw == "":
        return None
    value = flag(raw)
    if value is None:
        raise ApiError(20422, f"{name} must be true or false, not {shown(raw)}.")
    return value
