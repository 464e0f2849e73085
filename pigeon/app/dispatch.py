"""Dispatching: claimed messages -> pacing -> carrier submit -> sent, retried, failed over or failed.

A dispatcher works in rounds (`DispatchRound`). `claim` takes due messages in one transaction,
fails the ones that must not go out any more (validity period run out, account suspended, From
number no longer the account's, recipient opted out since, ...), reserves each sender's next slot and hands back the jobs
due within the look-ahead; later ones go back to the queue with their slot reserved. The round
then, for a group of jobs due now: marks them `sending` (one transaction), submits them to
their carriers concurrently, and records every outcome (one transaction).

Each step is set-based: one guarded UPDATE moves all the group's messages (`sending`, then
`sent` per carrier and price), their timeline entries and status callbacks are written with
one INSERT each (`store.message_batch`, `callbacks.enqueue_status_callbacks`). Refusals,
expiries and failovers, which are rare, take the one-message path.

Where the rules are, each in its module's docstring:

    dispatch_claim     what a claim fails, queues and paces; marking `sending`; resends after a
                       dispatcher died
    dispatch_jobs      a job's route and its submit: what an attempt may leave at a carrier
                       (holds, continuations, unanswered submits), and media
    dispatch_refusals  a refused attempt: retried, handed over or failed
    dispatch_record    the carriers' answers: sent, copies accepted late or twice
    dispatch_outage    the carriers' answers kept through a store outage, and at a stop
    placement          which process tries a message's carriers (the rule below, pure)

Carriers bound in other processes. An SMPP carrier allows only so many binds, shared by every
process as leases in the store (`pigeon.workers.bind_leases`), so the process that claims a
message may not be the one bound to its carrier. "Not bound here" is not "carrier down":

* A carrier bound in another process (its lease current, its bind up or being brought up) is
  not tried here. When the first such carrier of the message's route comes before any carrier
  this process can reach, the message is *left for that process*: it goes back to the queue
  due at the sender slot it already reserved, offered to that process (``offered_to``), which
  alone may claim it for ``DispatchSettings.offer`` (after that, anyone). No attempt is
  counted and the timeline gets no entry: nothing happened to the message. Carriers of the
  route that no process has bound are not tried either; the holder will try them, in order.
* When carriers this process can reach come first, they are tried here; if they all refuse in
  a way that would fail over, the attempt *goes on at the carrier bound elsewhere*: the
  message goes back to the queue at once (a `retry` entry with the refusals and
  ``hand_over``, like any refused attempt, but without backoff and whatever the count of
  attempts), offered to that carrier's holder, and its next attempt starts at that carrier.
* Only a carrier that no process has bound is tried and refused here (`CarrierUnavailable`),
  and the failover and retries of `pigeon.app.dispatch_jobs` apply as they always did.
* A dispatcher whose process has no carrier bound does not claim at all while a carrier is
  bound, or being bound, by any process: it would only hand every message over, or try a
  carrier whose bind is a moment away (`DispatchRound.run_once`).

Which processes have which carriers bound is read from the store (`store.binds.live_binds`):
in the claim's transaction, only for messages whose route holds a carrier this process cannot
reach. A lease that ran out unrenewed still counts for a third of its length, the time a
process standing by needs to take the slot over: a holder's crash makes traffic wait for the
takeover rather than fail over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from pigeon.app.busy_senders import BusySenders
from pigeon.app.dispatch_claim import claim, mark_sending
from pigeon.app.dispatch_jobs import (
    DispatchSettings,
    Hold,
    Job,
    Outcome,
    outbound,
    plan_route,
    reclaimed,
    submit,
)
from pigeon.app.dispatch_outage import record_through_outage
from pigeon.app.dispatch_record import prices_of, record
from pigeon.app.placement import needs_elsewhere, place
from pigeon.domain.errors import StoreUnavailable
from pigeon.ports import Carrier, Clock, Reach
from pigeon.store import binds as bind_store
from pigeon.store import dispatch as store
from pigeon.store.engine import Database

__all__ = [
    "DispatchRound",
    "DispatchSettings",
    "Hold",
    "Job",
    "Outcome",
    "claim",
    "mark_sending",
    "outbound",
    "plan_route",
    "record",
    "submit",
]

log = logging.getLogger(__name__)

Router = Callable[[str], Sequence[Carrier]]


#: Leases a group's submits may keep their messages for by renewing them (`DispatchRound._send`).
MAX_RENEWED = 10


class DispatchRound:
    """Claim, wait for each group's slot, submit and record. One instance per dispatcher.

    With `reach` (carriers' binds leased, `pigeon.workers.bind_leases`), each claimed job is
    placed at the claim: tried here, or left for the process that has its carrier bound."""

    def __init__(
        self,
        db: Database,
        route: Router,
        clock: Clock,
        *,
        worker_id: str,
        settings: DispatchSettings | None = None,
        reach: Callable[[], Reach] | None = None,
    ) -> None:
        self.db = db
        self.route = route
        self.clock = clock
        self.worker_id = worker_id
        self.settings = settings or DispatchSettings()
        self.reach = reach
        self._turn: asyncio.Lock | None = None  # see run_once
        self._quiet_until = 0.0  # event-loop time before which no round looks (see run_once)
        self._busy = BusySenders()  # senders whose pacing rows its claims do not wait for, for now

    def _routes(self, group: Sequence[Job]) -> dict[str, list[Carrier]]:
        """Each job's carriers: as placed, or planned from the message as claimed (before
        `mark_sending`)."""
        return {
            j.message["sid"]: j.route if j.route is not None else plan_route(j, self.route(j.message["to"]))
            for j in group
        }

    def _claim(
        self, reach: Reach | None = None
    ) -> tuple[list[list[Job]], tuple[list[Job], dict[str, list[Carrier]]] | None]:
        """Claim (leaving to other processes what they have the carriers for), and mark the
        first group sending in the same transaction when its slot has come: (the groups in
        slot order, the first group's jobs still ours with their routes, or None when that
        group waits for its slot and is marked later). Under load most rounds find their
        first group due at once, and a transaction saved is a turn of the store's only writer
        lock (SQLite) saved.

        A read first checks that anything is due, so that a round that would find nothing
        does not take the writer lock: an idle process's rounds poll twenty times a second
        each, and under load a round often comes just after another process took what was
        due."""
        with self.db.lookup() as conn:
            if not store.any_due(conn, now=self.clock.now(), worker_id=self.worker_id):
                return [], None

        def claim_and_mark(
            conn: Connection,
        ) -> tuple[list[list[Job]], tuple[list[Job], dict[str, list[Carrier]]] | None]:
            now = self.clock.now()
            jobs = claim(conn, now=now, worker_id=self.worker_id, settings=self.settings, busy=self._busy)
            if reach is not None and jobs:
                jobs = self._place(conn, jobs, reach, now=now)
            groups = _groups(jobs)
            if groups and groups[0][0].slot <= now:
                routes = self._routes(groups[0])
                return groups, (mark_sending(conn, groups[0], now=now), routes)
            return groups, None

        return self.db.transact(claim_and_mark)

    def _place(self, conn: Connection, jobs: list[Job], reach: Reach, *, now: datetime) -> list[Job]:
        """Route each job and keep those tried here; leave the others for the processes that
        have their carriers bound (module docstring)."""
        elsewhere: dict[str, list[str]] | None = None
        mine, offers = [], []
        for job in jobs:
            route = plan_route(job, self.route(job.message["to"]))
            if needs_elsewhere(route, reach) and elsewhere is None:
                elsewhere = self._elsewhere(bind_store.live_binds(conn, now=now))
            placed = place(route, reach, elsewhere or {}, key=job.message["sid"])
            if placed.offer_to is None:
                job.route, job.hand_over = placed.carriers, placed.hand_over
                mine.append(job)
                continue
            keep = job.message.get("previous_claimer") if reclaimed(job) else None
            offers.append((job.message["sid"], placed.offer_to, job.slot, keep))
        if offers:
            store.offer(conn, offers, worker_id=self.worker_id, until=now + self.settings.offer)
            log.debug("left for the processes bound to their carriers", extra={"messages": len(offers)})
        return mine

    def _elsewhere(self, live: dict[str, list[str]]) -> dict[str, list[str]]:
        others = {carrier: [h for h in holders if h != self.worker_id] for carrier, holders in live.items()}
        return {carrier: holders for carrier, holders in others.items() if holders}

    def _idle_here(self, reach: Reach) -> bool:
        """Nothing is bound here while a carrier is bound, or being bound, by another process or
        this one: do not claim (every message would only be handed over, or wait for the bind)."""
        if reach.bound_here or not reach.leased:
            return False
        with self.db.read() as conn:
            return bool(bind_store.live_binds(conn, now=self.clock.now()))

    def _mark(self, jobs: Sequence[Job]) -> list[Job]:
        return self.db.transact(lambda conn: mark_sending(conn, jobs, now=self.clock.now()))

    def _record(self, outcomes: Sequence[Outcome], prices: dict[str, str | None]) -> None:
        # Run again if PostgreSQL aborts it for another's sake: lost, the carriers' answers would
        # leave the messages sending until their lease ran out, and then they would go again.
        # The store out of reach is `record_through_outage`'s to wait for.
        self.db.transact(
            lambda conn: record(conn, outcomes, now=self.clock.now(), settings=self.settings, prices=prices),
            conflict_retries=3,
        )

    async def run_once(self, *, rest: float = 0.0, stopping: asyncio.Event | None = None) -> int:
        """One round; returns how many messages were submitted (or refused). `stopping`: set
        when the process is asked to stop, which bounds the wait for a store out of reach
        (`pigeon.app.dispatch_outage`).

        A round that finds nothing due keeps this process's other rounds from looking again
        for `rest` seconds, and so do the rounds that were waiting for the turn meanwhile:
        they share its look instead of each asking the store twenty times a second (an idle
        worker process spent most of its CPU on those looks). Under load a look finds work,
        so no round waits on another's.

        The rounds of one process take turns to claim: a round keeps the turn until its first
        group is submitted and recorded (or `settings.turn` has passed), so the next claim
        comes after it and finds a full batch. Rounds that claimed at once would split what is
        due into small batches, each a transaction of its own; under load in the e2e bench
        most found nothing at all. The turn is not kept while a round waits for a later
        group's slot: another round claims meanwhile."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._quiet_until:
            return 0
        reach = self.reach() if self.reach is not None else None
        if reach is not None and await asyncio.to_thread(self._idle_here, reach):
            self._quiet_until = loop.time() + rest
            return 0
        if self._turn is None:
            self._turn = asyncio.Lock()  # made in the loop that uses it
        async with self._turn:
            if loop.time() < self._quiet_until:
                return 0  # the round before this one in the turn found nothing just now
            groups, marked = await asyncio.to_thread(self._claim, reach)
            if not groups:
                self._quiet_until = loop.time() + rest
            first: asyncio.Task[int] | None = None
            if marked is not None:
                first = asyncio.ensure_future(self._send(*marked, stopping=stopping))
                try:
                    await asyncio.wait({first}, timeout=self.settings.turn.total_seconds())
                except asyncio.CancelledError:
                    first.cancel()
                    raise
        done = await first if first is not None else 0
        for group in groups[1 if marked is not None else 0 :]:
            wait = (group[0].slot - self.clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            routes = self._routes(group)
            ready = await asyncio.to_thread(self._mark, group)
            done += await self._send(ready, routes, stopping=stopping)
        return done

    async def _send(
        self, ready: Sequence[Job], routes: dict[str, list[Carrier]], *, stopping: asyncio.Event | None = None
    ) -> int:
        """Submit a group marked sending, concurrently, and record every outcome.

        A carrier may take longer than the lease to answer: an SMSC that throttles (the SMPP
        connector's pauses add up to half a minute by default), or a queue behind a bind's
        window or throughput. While the submits are out, the lease of what is still this
        dispatcher's is renewed every third of it, so that no other dispatcher takes the
        messages for a dead one's and sends them again. Most groups are answered long before
        the first renewal, which then costs nothing.

        A renewal that fails (the store out of reach a moment) is logged and the wait goes on:
        the carrier's answers must still be recorded, or what it took would be sent again. And
        renewals stop after `MAX_RENEWED` leases: a submit that never ends (a connector's bug)
        then lets its lease run out, and another dispatcher takes the message over, as before.

        The answers are recorded in one transaction; with the store out of reach they are kept
        and the record tried again, the lease renewed meanwhile (`pigeon.app.dispatch_outage`)."""
        submits = asyncio.ensure_future(asyncio.gather(*(submit(j, routes[j.message["sid"]]) for j in ready)))
        every = self.settings.lease.total_seconds() / 3
        renewals = 3 * MAX_RENEWED
        sids = [j.message["sid"] for j in ready]
        try:
            while not (await asyncio.wait({submits}, timeout=every))[0]:
                if renewals > 0:
                    renewals -= 1
                    await asyncio.to_thread(self._renew, sids)
        except asyncio.CancelledError:
            submits.cancel()
            raise
        outcomes = submits.result()
        prices = prices_of(outcomes, self.settings)
        await record_through_outage(
            lambda: self._record(outcomes, prices),
            lambda: self._renew(sids, quiet=True),
            messages=len(outcomes),
            renew_every=every,
            grace=self.settings.record_grace.total_seconds(),
            stopping=stopping,
        )
        return len(outcomes)

    def _renew(self, sids: Sequence[str], *, quiet: bool = False) -> int | None:
        """Renew the lease of what is still this dispatcher's; how many that is (None: the
        renewal failed). `quiet`: while the record waits for the store, which said so once."""
        until = self.clock.now() + self.settings.lease
        try:
            held = self.db.transact(lambda conn: store.renew_leases(conn, sids, worker_id=self.worker_id, until=until))
        except StoreUnavailable as exc:
            if not quiet:
                log.warning(
                    "renewing the lease of messages with the carrier failed: %s", exc, extra={"messages": len(sids)}
                )
            return None
        except Exception:
            log.exception("renewing the lease of messages with the carrier failed", extra={"messages": len(sids)})
            return None
        if not quiet:
            log.info("submits slower than a third of the lease: lease renewed", extra={"messages": held})
        return held


def _groups(jobs: Sequence[Job], tick: timedelta = timedelta(milliseconds=50)) -> list[list[Job]]:
    """Jobs whose slots fall within one tick go out together (one transaction each side)."""
    groups: list[list[Job]] = []
    for job in jobs:
        if groups and job.slot - groups[-1][0].slot < tick:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
