"""`--since` / `Since=`: a duration back from now ('90s', '15m', '2h', '3d') or an ISO date-time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str, now: datetime) -> datetime:
    """The moment `value` names; an ISO date-time without a zone is UTC. Raises ValueError."""
    text = value.strip()
    if text and text[-1] in _UNITS and text[:-1].isdigit():
        return now - timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (15m, 2h, 1d) nor an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
