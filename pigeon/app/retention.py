"""What is kept for how long: the rules of retention, and one chunk of a purge.

Each rule removes what is older than its `keep` (pigeon/store/retention.py and
pigeon/store/webhook_history.py say exactly what goes and what stays); a rule whose setting is
0 is left out, and that history is kept for ever."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import retention, webhook_history
from pigeon.store.engine import Database

Purge = Callable[..., int]  # (conn, *, before, limit, progress) -> how many went


@dataclass(frozen=True)
class Rule:
    what: str  # as the log says it: "messages", "finished webhook deliveries", ...
    keep: timedelta
    purge: Purge
    #: Most rows (messages for the messages rule) one transaction removes.
    chunk: int = 1000


def rules(*, message_days: float, webhook_history_days: float, error_log_days: float) -> list[Rule]:
    """The rules for these settings (in days; 0: kept for ever). Messages first: they take
    their own webhook deliveries with them."""
    candidates = (
        # A message takes about sixteen rows with it: a hundred is a transaction of 9 ms on
        # SQLite (bench/retention.py), short enough for the traffic that waits behind it.
        ("messages", message_days, retention.purge_messages, 100),
        ("finished webhook deliveries", webhook_history_days, webhook_history.purge_finished, 1000),
        ("error log entries", error_log_days, retention.purge_error_log, 1000),
    )
    return [Rule(what, timedelta(days=days), purge, chunk) for what, days, purge, chunk in candidates if days > 0]


def purge_chunk(
    db: Database, rule: Rule, *, before: datetime, limit: int, progress: dict[str, Any] | None = None
) -> int:
    """One short transaction: at most `limit` of what `rule` keeps, older than `before`, go.
    `progress`: the same dict for every chunk of one purge, where it notes how far it got."""
    conn: Connection
    with db.write() as conn:
        return rule.purge(conn, before=before, limit=limit, progress={} if progress is None else progress)
