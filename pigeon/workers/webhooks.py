"""Webhook worker: claim due deliveries from the outbox and deliver them, many at a time.

At most `concurrency` requests are in flight (slots). The loop claims rows for the free slots
and `prefetch` rows more, which wait in memory for a slot: a claim takes its turn of the
store's writer (SQLite has one), and without rows in hand the slots freed meanwhile would stand
empty (measured: with no prefetch, the e2e bench's deliveries fell from about 1,200 to 600-700
messages/s). The prefetch is small beside the lease, so a row waiting for a slot does not see
its lease run down. While three quarters of the slots are busy the loop lets more free up for
up to `poll_interval`, so that a claim takes a batch. When a claim comes back short, everything
due has been taken and the loop rests `poll_interval`.

A delivery frees its slot when its receiver has answered, not when its outcome is recorded:
status callbacks' outcomes are group-committed, and under load any commit waits for the
store's writer (SQLite has one), so slots held through it left the receivers idle; the e2e
bench's callbacks stalled at about 430/s that way, with a hundred slots mostly waiting for
commits. Every kind does this: a handler is given the `answered` to call when its exchange is
over (for an inbound webhook, the whole conversation with the application). Deliveries
answered and not yet recorded are capped too (`max_claimed` rows in this process at once).

Crash safety lives in the store: a claim is a lease (``claimed_until``); if this process dies
mid-delivery, the lease expires and any worker claims the row again. The receiver may then see
the request twice, with the same I-Twilio-Idempotency-Token. A delivery whose store went away
mid-write is logged and left to the same lease expiry; one that raises anything else (a bug)
is a failed attempt (12400), retried with the policy's backoff and ending in the final-failure
alert (`pigeon.app.unexpected_failures`), rather than claimed again at every lease's end.

Status callbacks go through `CallbackBatch`: the claim reads the auth tokens they are signed
with, and the outcomes of the attempts that finish together are recorded in one transaction.
Other kinds go to their handler (inbound webhooks, with TwiML), or to `deliver_one`.

Alongside, a sweep releases deliveries left waiting behind nothing (a rare race on PostgreSQL,
see `pigeon.store.webhook_lines`): every `sweep_interval` it looks at the waiting rows written since
the previous sweep (and in the second before it, for transactions that committed late), then
once more at those rows when they are `sweep_recent` old (for a finish that committed late),
and every `full_sweep_interval` (and at start) at all of them. A row is stranded, if at all,
by a finish that ran alongside its enqueue, so it need not be looked at again and again:
looking at every row of the last `sweep_recent` at every sweep made the sweep, under load,
a fifth of PostgreSQL's work (bench/RESULTS.md, thirteenth session).

Stopping: once `stop` is set no new rows are claimed, and `run` returns after the deliveries in
flight have finished and recorded their outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from pigeon.app.callback_batch import (
    CallbackBatch,
    Tokens,
    any_due,
    claim,
    find_stranded,
    give_back,
    release_stranded,
)
from pigeon.app.callback_delivery import deliver_one
from pigeon.app.callbacks import STATUS_CALLBACK
from pigeon.app.unexpected_failures import record_unexpected
from pigeon.domain.errors import StoreUnavailable
from pigeon.domain.retry import RetryPolicy
from pigeon.ports import Clock, WebhookSender
from pigeon.store.engine import Database
from pigeon.workers.loop import backoff, log_failure, rest
from pigeon.workers.receivers import Receivers

__all__ = ["Handler", "WebhookWorker"]

log = logging.getLogger(__name__)

#: How far before the previous sweep a sweep looks again: a row is stamped when it is written
#: and may commit a moment later, after a sweep that looked at its time.
SWEEP_OVERLAP = timedelta(seconds=1)

#: Delivers one claimed row of its kind end to end: (the row, `answered`), where `answered` is
#: to be called once the exchange is over, before the outcome is recorded (it frees the slot).
Handler = Callable[[dict[str, Any], Callable[[], None]], Awaitable[Any]]


class WebhookWorker:
    def __init__(
        self,
        db: Database,
        sender: WebhookSender,
        clock: Clock,
        *,
        policy: RetryPolicy,
        batch: int = 100,
        concurrency: int = 100,
        prefetch: int | None = None,
        max_claimed: int | None = None,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.05,
        timeout: float = 15.0,
        handlers: Mapping[str, Handler] | None = None,
        sweep_interval: float = 0.5,
        sweep_recent: timedelta = timedelta(seconds=10),
        full_sweep_interval: float = 300.0,
        receiver_share: int | None = None,
        slow_after: float = 2.0,
        given_back: Callable[[int], None] | None = None,
    ) -> None:
        """`receiver_share`: deliveries in hand at once for one receiver that is slow or has
        not shown it is fast (unless given: a quarter of `concurrency`, but at least eight, or
        every slot when there are fewer); `slow_after`: the exchange time from which a
        receiver counts as slow (`pigeon.workers.receivers`); `given_back`: told how many
        deliveries each give-back let go of (the composition root counts them for /metrics)."""
        if lease_seconds <= timeout:
            # A lease shorter than one request would hand a live delivery to a second worker.
            raise ValueError("lease_seconds must be longer than the request timeout")
        self.db = db
        self.sender = sender
        self.clock = clock
        self.policy = policy
        self.batch = batch
        self.concurrency = concurrency
        #: Rows claimed ahead of a free slot (one batch unless given).
        self.prefetch = prefetch if prefetch is not None else batch
        #: Claimed rows held at once: in an exchange, or answered and awaiting their record.
        self.max_claimed = max_claimed if max_claimed is not None else 4 * concurrency
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self._unanswered = 0  # claimed rows whose exchange is not over: in a slot or waiting for one
        self._freed = asyncio.Event()  # set when a slot or a claimed row's place frees up
        #: Deliveries whose kind needs more than a status callback (inbound webhooks with TwiML).
        self.handlers = dict(handlers or {})
        self.callbacks = CallbackBatch(db, sender, clock, policy=policy, timeout=timeout)
        self.sweep_interval = sweep_interval
        self.sweep_recent = sweep_recent
        self.full_sweep_interval = full_sweep_interval
        self._last_full_sweep: float | None = None
        self._last_sweep_at: datetime | None = None  # the store's clock at the previous sweep
        self.receivers = Receivers(
            share=receiver_share if receiver_share is not None else max(concurrency // 4, min(concurrency, 8)),
            slow_after=slow_after,
            longest_hold=timeout,
        )
        self._given_back = given_back

    def _sweep(self) -> int:
        """One sweep for stranded deliveries: the recent waiting rows, or all of them when a full
        sweep is due. A read finds them; only when it does, a write releases them (on SQLite,
        where none is ever stranded, the sweep never takes the writer lock). How many."""
        full = self._last_full_sweep is None or time.monotonic() - self._last_full_sweep >= self.full_sweep_interval
        now = self.clock.now()
        previous = self._last_sweep_at or now - self.sweep_recent
        with self.db.read() as conn:
            if full:
                stranded = find_stranded(conn, since=None)
            else:
                stranded = find_stranded(conn, since=previous - SWEEP_OVERLAP)
                stranded += find_stranded(conn, since=previous - self.sweep_recent, until=now - self.sweep_recent)
        if full:
            self._last_full_sweep = time.monotonic()
        self._last_sweep_at = now
        stranded = sorted(set(stranded))
        if not stranded:
            return 0
        with self.db.write() as conn:
            released = release_stranded(conn, stranded, now=now)
        if released:
            log.info("released %d webhook deliveries left waiting behind finished ones", released)
        return released

    async def sweep_once(self) -> int:
        return await asyncio.to_thread(self._sweep)

    async def _sweep_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                await self.sweep_once()
                failures = 0
            except Exception as exc:
                failures += 1
                # Backing off like the claims: with the store down, a sweep every half second
                # is two failures a second to log, in every process.
                pause = max(self.sweep_interval, backoff(failures))
                log_failure("webhook sweep", exc, pause)
                await rest(stop, pause)
                continue
            await rest(stop, self.sweep_interval)

    def _claim(self, limit: int) -> tuple[list[dict[str, Any]], Tokens]:
        with self.db.lookup() as conn:
            if not any_due(conn, now=self.clock.now()):
                return [], {}
        return self.db.transact(
            lambda conn: claim(conn, now=self.clock.now(), limit=limit, lease_seconds=self.lease_seconds)
        )

    def _admit(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The claimed rows to deliver now (counted in `_unanswered` from here) and those to give
        back, for receivers that are slow and have their share in hand already."""
        now = asyncio.get_running_loop().time()
        kept: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        for row in rows:
            (kept if self.receivers.admit(row, now) else held).append(row)
        self._unanswered += len(kept)
        return kept, held

    def _give_back_now(self, held: list[tuple[dict[str, Any], float | None]]) -> int:
        now = self.clock.now()
        groups: dict[tuple[Any, Any], list[int]] = {}
        for row, hold in held:
            until = row["next_attempt_at"] if hold is None else now + timedelta(seconds=hold)
            groups.setdefault((row["claimed_until"], until), []).append(row["id"])

        def write(conn: Any) -> int:
            return sum(
                give_back(conn, ids, lease=lease, until=until, now=now) for (lease, until), ids in groups.items()
            )

        return self.db.transact(write)

    async def _give_back(self, rows: list[dict[str, Any]]) -> None:
        now = asyncio.get_running_loop().time()
        held = [(row, self.receivers.hold_for(row, now)) for row in rows]
        try:
            released = await asyncio.to_thread(self._give_back_now, held)
        except Exception as exc:  # their leases run out and bring them back all the same
            log_failure("giving back deliveries for slow receivers", exc, self.lease_seconds)
            return
        if self._given_back is not None:
            self._given_back(released)

    async def _deliver(self, row: dict[str, Any], tokens: Tokens) -> None:
        """One claimed row (counted in `_unanswered` and by `receivers` by `_admit`): wait for a
        slot, deliver, and free the slot as soon as the exchange is over."""
        exchanging = True
        loop = asyncio.get_running_loop()

        def answered() -> None:
            nonlocal exchanging
            if exchanging:
                exchanging = False
                self.receivers.ended(row, loop.time())
                self._slots.release()
                self._unanswered -= 1
                self._freed.set()

        try:
            await self._slots.acquire()
        except BaseException:  # cancelled while waiting for a slot
            self.receivers.ended(row, loop.time())
            self._unanswered -= 1
            self._freed.set()
            raise
        self.receivers.began(row, loop.time())
        try:
            handler = self.handlers.get(row["kind"])
            if handler is not None:
                await handler(row, answered)
            elif row["kind"] == STATUS_CALLBACK:
                await self.callbacks.deliver(row, tokens.get(row["account_sid"]), answered=answered)
            else:
                await deliver_one(
                    self.db, self.sender, self.clock, row, policy=self.policy, timeout=self.timeout, answered=answered
                )
        except StoreUnavailable as exc:
            log.warning("webhook delivery %s could not be recorded: %s; its lease will bring it back", row["id"], exc)
        except Exception as exc:
            log.exception("webhook delivery %s raised; recording it as a failed attempt", row["id"])
            answered()
            await self._record_unexpected(row, exc)
        finally:
            answered()

    async def _record_unexpected(self, row: dict[str, Any], exc: Exception) -> None:
        """A failed attempt with backoff, ending in the final-failure alert: left to its lease,
        a delivery that raises every time would be claimed, and its receiver asked, for ever."""
        try:
            await asyncio.to_thread(record_unexpected, self.db, self.clock, row, exc, policy=self.policy)
        except Exception as again:  # the store went away too: the lease brings the row back
            log_failure(f"recording webhook delivery {row['id']}'s failure", again, self.lease_seconds)

    async def run_once(self) -> int:
        """Claim one round of due deliveries, deliver them all (or give back those of slow
        receivers), return how many were claimed."""
        rows, tokens = await asyncio.to_thread(self._claim, min(self.batch, self.concurrency))
        kept, held = self._admit(rows)
        if held:
            await self._give_back(held)
        await asyncio.gather(*(self._deliver(row, tokens) for row in kept))
        return len(rows)

    def _spawn(self, row: dict[str, Any], tokens: Tokens) -> None:
        task = asyncio.create_task(self._deliver(row, tokens), name=f"webhook-{row['id']}")
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._freed.set()

    def _free(self) -> int:
        """Rows the loop may claim now: free slots and the prefetch, within the claimed-rows cap."""
        return min(self.concurrency + self.prefetch - self._unanswered, self.max_claimed - len(self._in_flight))

    async def _until_freed(self, timeout: float | None = None) -> None:
        self._freed.clear()
        try:
            await asyncio.wait_for(self._freed.wait(), timeout)
        except TimeoutError:
            pass

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver (and sweep) until `stop` is set, then finish what is in flight."""
        await asyncio.gather(self._deliver_loop(stop), self._sweep_loop(stop))

    async def _deliver_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        try:
            while not stop.is_set():
                free = self._free()
                if free <= 0:
                    await self._until_freed()
                    continue
                # Claim in batches: while most slots are busy, let more of them free up (for a
                # poll interval at most, as slow receivers may hold them) rather than spend a
                # transaction on every delivery that finishes.
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self.poll_interval
                while free < self.concurrency // 4 and self._in_flight and loop.time() < deadline:
                    await self._until_freed(deadline - loop.time())
                    free = self._free()
                wanted = min(self.batch, free)
                try:
                    rows, tokens = await asyncio.to_thread(self._claim, wanted)
                except Exception as exc:
                    failures += 1
                    pause = backoff(failures)
                    log_failure("webhook claim", exc, pause)
                    await rest(stop, pause)
                    continue
                if failures:
                    log.info("webhook claims are working again after %d failures", failures)
                    failures = 0
                kept, held = self._admit(rows)
                for row in kept:
                    self._spawn(row, tokens)
                if held:
                    await self._give_back(held)
                if len(rows) < wanted or held:  # all taken, or the rest is for busy receivers
                    await rest(stop, self.poll_interval)
        finally:
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
