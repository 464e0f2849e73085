"""How a message repeats a value a client sent: quoted, and cut short when long, so that a
refusal of a 5,000-character parameter does not carry the 5,000 characters back."""

from __future__ import annotations

__all__ = ["shown"]


def shown(raw: str, limit: int = 40) -> str:
    """`raw` quoted as Python quotes it, its first `limit` characters and "…" when longer."""
    return repr(raw) if len(raw) <= limit else repr(raw[:limit]) + "…"
