"""The workers' guarded batch writes find their rows by key, on SQLite, whatever the backlog.

`UPDATE … WHERE sid IN (…) AND status IN (…)` moves a batch of messages; the status only
guards the move. SQLite plans without statistics and, given five keys or more, rated the
(status, next_attempt_at) index the better way in: every receipt batch then read every message
still `sent` (for good, where receipts never come), every batch of callback outcomes every
pending delivery. The cost grew with the history and the backlog, not with the batch.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.domain.pacing import DEFAULT_RATES, PacingPolicy
from pigeon.domain.retry import STATUS_CALLBACKS
from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.pipeline import Pipeline

#: An UPDATE that picks its rows by a list of keys (not by a subquery).
_BY_KEYS = re.compile(r"WHERE (messages\.sid|webhook_deliveries\.id) IN \((\?(, \?)*)\)")

FAST = PacingPolicy(rates={kind: 1000.0 for kind in DEFAULT_RATES})


def _run_pipeline(pipe: Pipeline, count: int) -> list[tuple[str, Any]]:
    """Send, dispatch, receive and call back `count` messages; the key-list UPDATEs run."""
    for _ in range(count):
        pipe.send(pacing=FAST)
    updates: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith("UPDATE") and _BY_KEYS.search(statement):
            updates.append((statement, parameters))

    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        dispatcher = pipe.round(pacing=FAST, batch=100, lookahead=timedelta(seconds=1))
        while asyncio.run(dispatcher.run_once()):
            pass
        assert pipe.receipts(advance=5) == count
        worker = WebhookWorker(pipe.db, RecordingWebhookSender(), pipe.clock, policy=STATUS_CALLBACKS, concurrency=100)
        while asyncio.run(worker.run_once()):
            pass
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)
    return updates


def test_batch_moves_and_callback_outcomes_are_planned_by_key(pipe: Pipeline) -> None:
    if not pipe.db.is_sqlite:
        pytest.skip("query plans are checked on SQLite")
    updates = _run_pipeline(pipe, 12)
    tables = set()
    with pipe.db.read() as conn:
        for statement, parameters in updates:
            match = _BY_KEYS.search(statement)
            assert match is not None
            if match.group(2).count("?") < 5:
                continue  # a short list is planned by key anyway
            tables.add(match.group(1).split(".")[0])
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(parameters))]
            assert not [step for step in plan if "status" in step], (statement, plan)
    # The statements this guards ran with long enough lists: the dispatcher's and the receipts'
    # moves, and the callback outcomes.
    assert tables == {"messages", "webhook_deliveries"}
