"""Dispatching: claimed messages -> pacing -> carrier submit -> sent, retried, failed over or failed.

A dispatcher works in rounds. `claim` takes due messages in one transaction, fails the ones
whose validity period ran out (30036), reserves each sender's next slot and hands back the
jobs due within the look-ahead; later ones go back to the queue with their slot reserved.
`dispatch` then, for a group of jobs due now: marks them `sending` (one transaction), submits
them to their carriers concurrently, and records every outcome (one transaction).

Each step is set-based: one guarded UPDATE moves all the group's messages (`sending`, then
`sent` per carrier and price), their timeline entries and status callbacks are written with
one INSERT each (`store.message_batch`, `callbacks.enqueue_status_callbacks`). Refusals,
expiries and failovers, which are rare, take the one-message path.

A message is marked `sending` just before its submit. If the dispatcher dies after that, its
lease runs out and another dispatcher resends it; the timeline records the resend and why.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callback, enqueue_status_callbacks
from pigeon.app.receipt_batch import apply_receipts, receipt_of_parked
from pigeon.domain.errors import CarrierError, CarrierPermanentError, InvalidTransition
from pigeon.domain.pacing import PacingPolicy, reserve
from pigeon.domain.pricing import PriceTable
from pigeon.domain.retry import CARRIER_SUBMITS, RetryPolicy
from pigeon.domain.segments import plan_segments
from pigeon.domain.status import MessageStatus
from pigeon.ports import Carrier, Clock, OutboundMessage, SubmitAck
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as store
from pigeon.store import message_batch
from pigeon.store import messages as message_store
from pigeon.store.engine import Database

log = logging.getLogger(__name__)

S = MessageStatus
Row = dict[str, Any]
Router = Callable[[str], Sequence[Carrier]]


@dataclass
class Job:
    message: Row
    slot: datetime
    resend_reason: str | None = None


@dataclass
class Outcome:
    job: Job
    ack: SubmitAck | None = None
    error: CarrierError | None = None
    tried: list[tuple[str, CarrierError]] = field(default_factory=list)


@dataclass(frozen=True)
class DispatchSettings:
    batch: int = 200
    lease: timedelta = timedelta(seconds=30)
    lookahead: timedelta = timedelta(seconds=1)
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    prices: PriceTable = field(default_factory=PriceTable)
    retry: RetryPolicy = CARRIER_SUBMITS


def _expired(row: Row, now: datetime) -> bool:
    validity = row["validity_period"]
    return validity is not None and now > row["date_created"] + timedelta(seconds=validity)


def _fail(
    conn: Connection, row: Row, *, now: datetime, code: int, kind: str, detail: dict[str, Any], text: str
) -> None:
    try:
        updated = message_store.transition(
            conn,
            row["sid"],
            S.FAILED,
            at=now,
            kind=kind,
            error_code=code,
            detail=detail,
            claimed_by=None,
            claimed_until=None,
        )
    except InvalidTransition:
        return
    enqueue_status_callback(conn, updated, now=now)
    alert_store.add_alert(
        conn, account_sid=row["account_sid"], error_code=code, text=text, at=now, resource_sid=row["sid"]
    )


def claim(conn: Connection, *, now: datetime, worker_id: str, settings: DispatchSettings) -> list[Job]:
    """One claim round; returns the jobs to submit within the look-ahead, in slot order."""
    rows = store.claim_due(conn, now=now, limit=settings.batch, lease=settings.lease, worker_id=worker_id)
    if not rows:
        return []
    known = store.next_free(conn, [r["from_"] for r in rows if r["from_"]])
    free = dict(known)
    durations: dict[tuple[str, int], timedelta] = {}  # a sender's kind costs a number parse: once a round
    jobs: list[Job] = []
    horizon = now + settings.lookahead
    live = []
    for row in rows:
        if _expired(row, now):
            age = int((now - row["date_created"]).total_seconds())
            _fail(
                conn,
                row,
                now=now,
                code=30036,
                kind="expired",
                detail={"validity_period": row["validity_period"], "waited_seconds": age},
                text=f"Message {row['sid']} waited {age} s in the queue, longer than its validity period of "
                f"{row['validity_period']} s, and was not sent.",
            )
            continue
        live.append(row)
    queued = _queue_accepted(conn, [r for r in live if r["status"] == S.ACCEPTED], now=now)
    releases = []
    for row in live:
        if row["status"] == S.ACCEPTED:
            if row["sid"] not in queued:
                continue  # changed since the claim
            row = queued[row["sid"]]
        resend = None
        if row["status"] == S.SENDING:
            resend = (
                f"the dispatcher {row.get('previous_claimer') or row['claimed_by']} marked it sending and stopped before recording the carrier's "
                "answer; the earlier submit may or may not have reached the carrier"
            )
        sender = row["from_"] or ""
        if row["paced_at"] is not None:
            slot = row["paced_at"]
        else:
            key = (sender, row["num_segments"])
            if key not in durations:
                durations[key] = settings.pacing.duration(sender, row["num_segments"])
            slot, free[sender] = reserve(free.get(sender), now, durations[key])
        if slot > horizon:
            releases.append((row["sid"], slot))
            continue
        jobs.append(Job(message=row, slot=slot, resend_reason=resend))
    store.release_paced(conn, releases)
    changed = {k: v for k, v in free.items() if known.get(k) != v}
    store.set_next_free(conn, changed, known=set(known))
    jobs.sort(key=lambda j: j.slot)
    return jobs


def _queue_accepted(conn: Connection, rows: Sequence[Row], *, now: datetime) -> dict[str, Row]:
    """Move messages a Messaging Service accepted to queued (one guarded UPDATE), with their
    timeline entries and callbacks; returns the moved rows by SID."""
    moved = message_batch.transition_many(conn, [r["sid"] for r in rows], S.QUEUED, at=now)
    order = [moved[r["sid"]] for r in rows if r["sid"] in moved]
    message_batch.add_events(
        conn,
        [
            message_batch.event(
                message_sid=r["sid"],
                account_sid=r["account_sid"],
                at=now,
                kind="status",
                status=str(S.QUEUED),
                detail={"sender": r["from_"]},
            )
            for r in order
        ],
    )
    enqueue_status_callbacks(conn, [(r, None) for r in order], now=now)
    return moved


def mark_sending(conn: Connection, jobs: Sequence[Job], *, now: datetime) -> list[Job]:
    """Record that these jobs are about to be submitted: one guarded UPDATE (queued -> sending)
    per attempt number, their timeline entries and callbacks. Returns the jobs still ours."""
    by_attempt: dict[int, list[str]] = {}
    for job in jobs:
        if job.resend_reason is None:
            by_attempt.setdefault(job.message["attempts"] + 1, []).append(job.message["sid"])
    moved: dict[str, Row] = {}
    for attempt, sids in by_attempt.items():
        moved |= message_batch.transition_many(
            conn, sids, S.SENDING, at=now, from_statuses=[S.QUEUED], attempts=attempt
        )
    ready = []
    entries = []
    for job in jobs:
        row = job.message
        attempt = row["attempts"] + 1
        if job.resend_reason is None:
            if row["sid"] not in moved:
                continue  # canceled or changed since the claim
            job.message = moved[row["sid"]]
            entries.append(
                message_batch.event(
                    message_sid=row["sid"],
                    account_sid=row["account_sid"],
                    at=now,
                    kind="status",
                    status=str(S.SENDING),
                    detail={"attempt": attempt},
                )
            )
            ready.append(job)
            continue
        message_store.add_event(
            conn,
            message_sid=row["sid"],
            account_sid=row["account_sid"],
            at=now,
            kind="resend",
            status=str(S.SENDING),
            detail={"reason": job.resend_reason, "attempt": attempt},
        )
        message_store.update_fields(conn, row["sid"], attempts=attempt, date_updated=now)
        row["attempts"] = attempt
        ready.append(job)
    message_batch.add_events(conn, entries)
    enqueue_status_callbacks(conn, [(j.message, None) for j in ready if j.resend_reason is None], now=now)
    return ready


def outbound(row: Row) -> OutboundMessage:
    plan = plan_segments(row["body"])
    media = tuple(row.get("media_urls") or ())
    return OutboundMessage(
        message_sid=row["sid"],
        account_sid=row["account_sid"],
        sender=row["from_"] or "",
        recipient=row["to"],
        body=row["body"],
        encoding=plan.encoding,
        parts=plan.parts,
        media_urls=media,
        validity_period=row["validity_period"],
        attempt=row["attempts"],
    )


async def submit(job: Job, route: Sequence[Carrier]) -> Outcome:
    """Submit through the route's carriers in order: a retryable refusal fails over to the next."""
    outcome = Outcome(job=job)
    message = outbound(job.message)
    for carrier in route:
        try:
            outcome.ack = await carrier.submit(message)
            outcome.error = None
            return outcome
        except CarrierError as exc:
            outcome.tried.append((carrier.name, exc))
            outcome.error = exc
            if not exc.retryable:
                return outcome
        except Exception as exc:  # a connector bug must not lose the message
            log.exception("carrier submit crashed", extra={"carrier": carrier.name, "sid": job.message["sid"]})
            err = CarrierError(f"{type(exc).__name__}: {exc}", carrier_code="INTERNAL", error_code=30008)
            err.retryable = True
            outcome.tried.append((carrier.name, err))
            outcome.error = err
    if outcome.error is None:
        err = CarrierError("no carrier is routed for this destination", carrier_code="NO_ROUTE", error_code=30008)
        outcome.error = err
    return outcome


def _carrier_detail(tried: Sequence[tuple[str, CarrierError]]) -> list[dict[str, Any]]:
    return [
        {"carrier": name, "carrier_code": e.carrier_code, "error": e.message, "retryable": e.retryable}
        for name, e in tried
    ]


def record(conn: Connection, outcomes: Sequence[Outcome], *, now: datetime, settings: DispatchSettings) -> None:
    accepted = []
    for outcome in outcomes:
        row = outcome.job.message
        if len(outcome.tried) > 1 or (outcome.ack and outcome.tried):
            message_store.add_event(
                conn,
                message_sid=row["sid"],
                account_sid=row["account_sid"],
                at=now,
                kind="failover",
                detail={"refused_by": _carrier_detail(outcome.tried)},
            )
        if outcome.ack is not None:
            accepted.append(outcome)
        else:
            assert outcome.error is not None
            _record_refusal(conn, row, outcome.error, outcome.tried, now=now, settings=settings)
    _record_sent(conn, accepted, now=now, settings=settings)


def _record_sent(conn: Connection, accepted: Sequence[Outcome], *, now: datetime, settings: DispatchSettings) -> None:
    """The carriers took these: sent, with price and carrier ids, in one guarded UPDATE per
    carrier and price; then the receipts that overtook their submit responses."""
    groups: dict[tuple[str, str | None], list[str]] = {}
    for outcome in accepted:
        assert outcome.ack is not None
        row = outcome.job.message
        price = settings.prices.price(row["to"], row["from_"] or "", row["num_segments"])
        groups.setdefault((outcome.ack.carrier, price), []).append(row["sid"])
    sent: dict[str, Row] = {}
    for (carrier, price), sids in groups.items():
        sent |= message_batch.transition_many(
            conn,
            sids,
            S.SENT,
            at=now,
            carrier=carrier,
            date_sent=now,
            price=price,
            price_unit=settings.prices.unit,
            claimed_by=None,
            claimed_until=None,
            paced_at=None,
        )
    entries, refs, changed = [], [], []
    ids: dict[str, list[str]] = {}
    for outcome in accepted:
        ack, row = outcome.ack, outcome.job.message
        assert ack is not None
        updated = sent.get(row["sid"])
        if updated is None:
            log.warning("submit acknowledged for a message no longer sending", extra={"sid": row["sid"]})
            continue
        detail = {"carrier": ack.carrier, "carrier_ids": list(ack.carrier_ids), "attempt": row["attempts"], **ack.raw}
        entries.append(
            message_batch.event(
                message_sid=row["sid"],
                account_sid=row["account_sid"],
                at=now,
                kind="status",
                status=str(S.SENT),
                detail=detail,
            )
        )
        refs += store.carrier_ref_rows(
            carrier=ack.carrier, ids=ack.carrier_ids, message_sid=row["sid"], account_sid=row["account_sid"], at=now
        )
        changed.append((updated, None))
        ids.setdefault(ack.carrier, []).extend(ack.carrier_ids)
    message_batch.add_events(conn, entries)
    store.add_carrier_refs(conn, refs)
    enqueue_status_callbacks(conn, changed, now=now)
    early = [
        receipt_of_parked(row)
        for carrier, carrier_ids in ids.items()
        for row in store.take_unmatched(conn, carrier, carrier_ids)
    ]
    apply_receipts(conn, early, now=now)


def _record_refusal(
    conn: Connection,
    row: Row,
    error: CarrierError,
    tried: Sequence[tuple[str, CarrierError]],
    *,
    now: datetime,
    settings: DispatchSettings,
) -> None:
    detail = {"attempt": row["attempts"], "refused_by": _carrier_detail(tried), "carrier_code": error.carrier_code}
    decision = (
        None
        if isinstance(error, CarrierPermanentError) or not error.retryable
        else settings.retry.decide(row["attempts"], error)
    )
    if decision is not None:
        retry_at = now + timedelta(seconds=decision.delay)
        message_store.transition(
            conn,
            row["sid"],
            S.QUEUED,
            at=now,
            kind="retry",
            detail={**detail, "retry_at": retry_at.isoformat()},
            from_statuses=[S.SENDING],
            next_attempt_at=retry_at,
            claimed_by=None,
            claimed_until=None,
            paced_at=None,
        )
        return
    code = error.error_code
    text = f"The carrier refused message {row['sid']}: {error.message} ({error.carrier_code})."
    if error.retryable:
        text = f"Message {row['sid']} was refused {row['attempts']} times and Pigeon stopped retrying: {error.message}."
    _fail(conn, row, now=now, code=code, kind="status", detail=detail, text=text)


class DispatchRound:
    """Claim, wait for each group's slot, submit and record. One instance per dispatcher."""

    def __init__(
        self, db: Database, route: Router, clock: Clock, *, worker_id: str, settings: DispatchSettings | None = None
    ) -> None:
        self.db = db
        self.route = route
        self.clock = clock
        self.worker_id = worker_id
        self.settings = settings or DispatchSettings()

    def _claim(self) -> list[Job]:
        with self.db.write() as conn:
            return claim(conn, now=self.clock.now(), worker_id=self.worker_id, settings=self.settings)

    def _mark(self, jobs: Sequence[Job]) -> list[Job]:
        with self.db.write() as conn:
            return mark_sending(conn, jobs, now=self.clock.now())

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        with self.db.write() as conn:
            record(conn, outcomes, now=self.clock.now(), settings=self.settings)

    async def run_once(self) -> int:
        """One round; returns how many messages were submitted (or refused)."""
        jobs = await asyncio.to_thread(self._claim)
        done = 0
        for group in _groups(jobs):
            wait = (group[0].slot - self.clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            ready = await asyncio.to_thread(self._mark, group)
            outcomes = await asyncio.gather(*(submit(j, self.route(j.message["to"])) for j in ready))
            await asyncio.to_thread(self._record, outcomes)
            done += len(outcomes)
        return done


def _groups(jobs: Sequence[Job], tick: timedelta = timedelta(milliseconds=50)) -> list[list[Job]]:
    """Jobs whose slots fall within one tick go out together (one transaction each side)."""
    groups: list[list[Job]] = []
    for job in jobs:
        if groups and job.slot - groups[-1][0].slot < tick:
            groups[-1].append(job)
        else:
            groups.append([job])
    return groups
