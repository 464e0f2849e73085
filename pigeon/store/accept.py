"""Group commit for accepted messages: a 201 is sent only after the message's batch commits."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from pigeon.store.batch import GroupCommitter
from pigeon.store.messages import NewMessage, insert_messages


class AcceptWriter(GroupCommitter[NewMessage]):
    def __init__(self, engine: Engine, *, max_batch: int = 200, max_wait: float = 0.001) -> None:
        super().__init__(engine, insert_messages, name="accept-writer", max_batch=max_batch, max_wait=max_wait)
