"""Twilio's booleans in requests: "true" or "false", in any case, and nothing else.

Before, each parameter had its own reading: SmartEncoded took "true", "1" and "yes" and
read anything else ("maybe", a typo) as false without a word, while a Service refused
StickySender=yes with 20422. Every request's boolean is now read here, and a value that is
neither is refused by the caller, naming the parameter.
"""

from __future__ import annotations

__all__ = ["flag"]


def flag(text: str) -> bool | None:
    """True for "true", False for "false" (any case); None for anything else."""
    value = text.lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None
