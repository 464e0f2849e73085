"""Group commit for accepted messages: a 201 is sent only after the message's batch commits.

`write_batch` writes one batch in its transaction: `insert_messages` by default; the API's
writer is given `pigeon.app.accept_batch.write_new_messages` (the store does not import use
cases), which adds what is checked and published per batch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection, Engine

from pigeon.store.batch import GroupCommitter
from pigeon.store.messages import NewMessage, insert_messages


class AcceptWriter(GroupCommitter[NewMessage]):
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 200,
        max_wait: float = 0.001,
        write_batch: Callable[[Connection, Sequence[NewMessage]], None] = insert_messages,
    ) -> None:
        super().__init__(engine, write_batch, name="accept-writer", max_batch=max_batch, max_wait=max_wait)
