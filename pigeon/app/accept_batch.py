"""The accept path's write: a batch of new messages in one transaction, with what only the
batch can see (the group-commit writer's `write_batch`, `pigeon.store.accept`; wired by
`pigeon.bootstrap`).

- Late duplicate warnings (`send_guard.late_duplicates`): a send looks for an earlier one with
  the same content while it is validated, before its batch commits, so two identical
  requests at the same moment each missed the other. In the batch's transaction each send
  that found none is compared with the batch's earlier rows and with what was committed
  since: one query per account with such sends, per batch.
- Event Streams' ``queued`` event for the messages created queued (`events.publish_queued_events`):
  one query per batch, reading every account's subscriptions at once, and none for a batch
  whose sends all come from accounts that had no subscription when they were validated (the
  API reads that with the account, `NewMessage.streams_events`): a subscription made in the
  milliseconds between a send's validation and its commit misses that send's ``queued``.

Neither adds a query per request. If the batch fails, the writer writes its messages one by
one through this same function, each check made again (nothing is kept on the messages).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.engine import Connection

from pigeon.app import send_guard
from pigeon.app.events import publish_queued_events
from pigeon.store.alerts import add_alerts
from pigeon.store.messages import NewMessage, insert_messages


def write_new_messages(conn: Connection, batch: Sequence[NewMessage]) -> None:
    """Insert `batch` (`insert_messages`) with its late duplicate warnings and its events."""
    warnings = send_guard.late_duplicates(conn, batch)
    insert_messages(conn, batch)
    if warnings:
        add_alerts(conn, warnings)
    publish_queued_events(conn, [n.message for n in batch if n.streams_events is not False])
