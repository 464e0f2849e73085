"""Status callbacks at volume: the webhook worker's path for claimed status callbacks.

`callback_delivery.deliver_one` makes one attempt and spends two transactions on it: one to
read the account's auth token, one to record the outcome. A message sends three status
callbacks (sending, sent, delivered), so at a thousand messages a second that is six thousand
small transactions a second. `CallbackBatch` makes the same attempts under the same rules with
two changes that do not alter what is stored or sent:

- the auth tokens come with the claim (`claim`): one query per account per claimed batch,
  in the claim's transaction, instead of one transaction per attempt; the same row says
  whether the account (or its main account) is closed, and then its deliveries end unsent;
- the outcomes of the attempts that finish together are recorded in one transaction (group
  commit): one INSERT for every attempt row, one UPDATE for the deliveries that succeeded
  (fenced by their lease, as `store.webhooks.mark_delivered` is), one INSERT for their
  timeline entries. An attempt that failed takes `callback_delivery.record_outcome` inside
  that transaction: retries, final failures, alerts and timeline entries are exactly
  `deliver_one`'s.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callback_delivery import (
    ACCOUNT_GONE,
    Attempt,
    Outcome,
    attempt_row,
    attempt_rows,
    build_request,
    classify,
    follow_redirect,
    record_outcome,
    signing_token,
    timeline_entry,
)
from pigeon.app.webhook_requests import Followed
from pigeon.domain.errors import WebhookError
from pigeon.domain.redirects import is_redirect
from pigeon.domain.retry import RetryPolicy
from pigeon.ports import Clock, WebhookResponse, WebhookSender
from pigeon.store import accounts as account_store
from pigeon.store import message_batch, webhook_lines
from pigeon.store import webhooks as outbox
from pigeon.store.batch import AsyncGroupCommitter
from pigeon.store.engine import Database

__all__ = ["CallbackBatch", "Tokens", "claim", "find_stranded", "give_back", "release_stranded"]

Row = dict[str, Any]


def find_stranded(conn: Connection, *, since: datetime | None, until: datetime | None = None) -> list[int]:
    """The deliveries left waiting behind nothing (`store.webhook_lines` says how one can be):
    those written since `since` (and before `until`), or every one when it is None. A read."""
    return webhook_lines.find_orphans(conn, since=since, until=until)


def release_stranded(conn: Connection, ids: Sequence[int], *, now: datetime) -> int:
    """Send those of `ids` (from `find_stranded`) that are still stranded; how many."""
    return webhook_lines.promote_orphans(conn, ids, now=now)


def give_back(conn: Connection, ids: Sequence[int], *, lease: datetime, until: datetime, now: datetime) -> int:
    """Let go of claimed deliveries unattempted, due again at `until` (a worker gives back
    those of a receiver that is slow: `pigeon.workers.receivers`); how many were still ours."""
    return outbox.give_back(conn, ids, lease=lease, until=until, now=now)


def any_due(conn: Connection, *, now: datetime) -> bool:
    """Whether a claim would find a delivery due now: a read, so that an idle worker's polls
    do not each take the store's writer lock (SQLite) to find nothing."""
    return outbox.any_due(conn, now=now)


#: What a claim gives for each account: its auth token, or why its deliveries end unsent.
Tokens = dict[str, str | WebhookError]


def claim(conn: Connection, *, now: datetime, limit: int, lease_seconds: float) -> tuple[list[Row], Tokens]:
    """Claim due deliveries (`store.webhooks.claim_due`) and read the auth tokens of their
    accounts in the same transaction: (rows, account SID -> auth token, or the failure the
    account's deliveries end with unsent: it is gone or closed, `signing_token`)."""
    rows = outbox.claim_due(conn, now=now, limit=limit, lease_seconds=lease_seconds)
    tokens: Tokens = {}
    for account_sid in sorted({r["account_sid"] for r in rows}):
        tokens[account_sid] = signing_token(account_store.get_account(conn, account_sid))
    return rows, tokens


@dataclass
class _Recording:
    attempt: Attempt
    #: The attempt's row, and its timeline entry should it turn out delivered: made on the
    #: event loop, so that the recording thread spends its turn of the writer lock writing.
    row: dict[str, Any]
    entry: dict[str, Any] | None
    outcome: Outcome | None = None
    #: The rows of the requests before `row`, when the attempt followed redirects (then every
    #: row has a ``location``); None when it followed none.
    hops: list[dict[str, Any]] | None = None


class CallbackBatch:
    """Delivers claimed status callbacks; records their outcomes with group commit."""

    def __init__(
        self,
        db: Database,
        sender: WebhookSender,
        clock: Clock,
        *,
        policy: RetryPolicy,
        timeout: float = 15.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.sender = sender
        self.clock = clock
        self.policy = policy
        self.timeout = timeout
        self.rand = rand
        self._recorder: AsyncGroupCommitter[_Recording] = AsyncGroupCommitter(
            db.engine, self._write, name="callback-recorder"
        )

    async def deliver(
        self, delivery: Row, token: str | WebhookError | None, *, answered: Callable[[], None] | None = None
    ) -> Outcome:
        """One attempt at a claimed delivery, signed with `token` (from `claim`: a failure, or
        None, when the account cannot sign it: it ends unsent). `answered` is called once the
        exchange is over (before its outcome is recorded)."""
        started = self.clock.now()
        perf = time.perf_counter()
        response: WebhookResponse | None = None
        followed: Followed | None = None
        if isinstance(token, str):
            try:
                response = await self.sender.send(build_request(delivery, token, timeout=self.timeout))
                error = classify(response)
            except WebhookError as exc:
                error = exc
            if error is not None and response is not None and is_redirect(response.status):
                response, error, followed = await follow_redirect(
                    self.sender, delivery, token, response, timeout=self.timeout
                )
        else:  # no token to sign with: fail without sending
            error = token or WebhookError(11200, ACCOUNT_GONE, retryable=False)
        if answered is not None:
            answered()
        attempt = Attempt(
            delivery=delivery,
            at=started,
            duration_ms=response.elapsed_ms if response and followed is None else (time.perf_counter() - perf) * 1000,
            response=response,
            error=error,
            followed=followed,
        )
        entry = timeline_entry(attempt, self.clock.now(), success=True) if error is None else None
        if followed is None:
            recording = _Recording(attempt, attempt_row(attempt), entry)
        else:
            *hops, last = attempt_rows(attempt)
            recording = _Recording(attempt, last, entry, hops=hops)
        await self._recorder.write(recording)
        assert recording.outcome is not None
        return recording.outcome

    def _write(self, conn: Connection, batch: Sequence[_Recording]) -> None:
        now = self.clock.now()
        if any(r.hops is not None for r in batch):
            # A row of a followed redirect has a location; the others are given one (None),
            # so that the batch is one multi-row INSERT.
            rows = [{"location": None, **row} for r in batch for row in (*(r.hops or ()), r.row)]
        else:
            rows = [r.row for r in batch]
        outbox.record_attempts(conn, rows)
        answered = [r.attempt for r in batch if r.attempt.error is None]
        held = outbox.mark_many_delivered(
            conn,
            [(a.delivery["id"], a.delivery.get("claimed_until"), a.status_code or 0) for a in answered],
            now=now,
        )
        alive = message_batch.existing(
            conn,
            [a.delivery["message_sid"] for a in answered if a.delivery["id"] in held and a.delivery["message_sid"]],
        )
        entries = []
        for r in batch:
            a = r.attempt
            if a.error is not None:
                r.outcome = record_outcome(conn, a, now, self.policy, self.rand)
            elif a.delivery["id"] not in held:
                r.outcome = Outcome.SUPERSEDED
            else:
                r.outcome = Outcome.DELIVERED
                if a.delivery["message_sid"] in alive and r.entry is not None:
                    entries.append(r.entry)
        message_batch.add_events(conn, entries)
