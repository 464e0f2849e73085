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

What an attempt may leave at a carrier, and what the next attempt does about it:

* *Refused, nothing accepted* (a refusal, no bind): nothing is on the network. The next
  carrier of the route is tried at once; when every carrier refused, the message is retried
  later from the first, with backoff (`RetryPolicy`).
* *Some parts accepted, a later part refused* (multipart): the accepted parts' carrier ids
  are stored at once, so their receipts find the message, and listed in the attempt's
  `retry` (or `failed`) timeline entry. The message is then *held* by that carrier: it is
  not failed over (another carrier would send those parts again, with a reference the
  handset cannot join to them), and its retry asks the carrier for the missing parts only,
  with the same concatenation reference (`ports.Continuation`). A permanent refusal fails
  the message, the accepted parts' ids kept; their receipts are recorded on its timeline.
* *No answer* (`CarrierOutcomeUnknown`: response timeout, connection lost after writing):
  the carrier may have the message. It is held by that carrier too and retried there, once
  the bind works again, from the unanswered part on, with the same reference (many handsets
  drop a part of a concatenated message they already have, whereas a new reference would
  make it a second message). That retry is a `resend` entry whose reason says it may duplicate the
  unanswered part. Only a carrier configured with ``failover_on_unknown_outcome`` lets the
  message move on to the next carrier at once; that second submission is a `resend` entry
  too.

A hold lives in the store, not in a dispatcher: the message's ``carrier`` column names the
holding carrier while the message waits, and its newest `retry` entry has the detail
(``hold``: parts, reference, accepted ids, the unanswered part). It ends when the message is
sent or fails. If the holding carrier is no longer routed for the destination (its
configuration changed), the message goes to the route whole, and a `resend` entry says which
parts may arrive twice. A held message that runs out of retries fails like any other.
The doctor counts submits from these entries (`pigeon.domain.diagnosis.submits`): a `retry`
marked ``outcome_unknown`` is not a refusal, and every `resend` is a possible duplicate.

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
  and the failover and retries above apply as they always did.
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
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callback, enqueue_status_callbacks
from pigeon.app.placement import HandOver, needs_elsewhere, place
from pigeon.app.receipt_batch import apply_receipts, receipt_of_parked
from pigeon.domain.errors import CarrierError, CarrierOutcomeUnknown, CarrierPermanentError, InvalidTransition
from pigeon.domain.pacing import PacingPolicy, reserve
from pigeon.domain.pricing import PriceTable
from pigeon.domain.retry import CARRIER_SUBMITS, RetryPolicy
from pigeon.domain.segments import SubmitProgress, plan_segments
from pigeon.domain.status import MessageStatus
from pigeon.ports import Carrier, Clock, Continuation, OutboundMessage, Reach, SubmitAck
from pigeon.store import alerts as alert_store
from pigeon.store import binds as bind_store
from pigeon.store import dispatch as store
from pigeon.store import message_batch
from pigeon.store import messages as message_store
from pigeon.store.engine import Database

log = logging.getLogger(__name__)

S = MessageStatus
Row = dict[str, Any]
Router = Callable[[str], Sequence[Carrier]]


@dataclass(frozen=True)
class Hold:
    """What a carrier may already have of a message after an attempt (module docstring)."""

    carrier: str
    parts: int  # as the carrier split the message
    reference: int | None  # the concatenation reference of those parts
    next_part: int  # the first part not known to be accepted (1-based)
    accepted_ids: tuple[str, ...]  # carrier ids of parts 1 .. next_part - 1
    unknown_part: int | None  # a part sent and never answered: the carrier may have it
    exclusive: bool  # only this carrier may take the message

    def continuation(self) -> Continuation:
        return Continuation(reference=self.reference, parts=self.parts, first_part=self.next_part)

    def describe(self) -> str:
        """What the carrier has, in words, for timeline reasons and alerts."""
        said = []
        if self.accepted_ids:
            last = self.next_part - 1
            said.append(f"{self.carrier} accepted {_parts(1, last, self.parts)}")
        if self.unknown_part is not None:
            said.append(
                f"{self.carrier} never answered the submit of {_parts(self.unknown_part, self.unknown_part, self.parts)}"
                " and may have accepted it"
            )
        return "; ".join(said)

    def detail(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "parts": self.parts,
            "reference": self.reference,
            "next_part": self.next_part,
            "accepted_ids": list(self.accepted_ids),
            "unknown_part": self.unknown_part,
            "exclusive": self.exclusive,
        }

    @classmethod
    def from_detail(cls, d: Row) -> Hold:
        return cls(
            carrier=str(d["carrier"]),
            parts=int(d["parts"]),
            reference=d.get("reference"),
            next_part=int(d["next_part"]),
            accepted_ids=tuple(d.get("accepted_ids") or ()),
            unknown_part=d.get("unknown_part"),
            exclusive=bool(d.get("exclusive", True)),
        )


def _parts(first: int, last: int, total: int) -> str:
    if total == 1:
        return "the message"
    return f"part {first} of {total}" if first == last else f"parts {first}-{last} of {total}"


@dataclass
class Job:
    message: Row
    slot: datetime
    resend_reason: str | None = None
    hold: Hold | None = None
    continue_at: str | None = None  # an attempt handed over: it goes on at this carrier
    route: list[Carrier] | None = None  # the carriers to try, when placed at the claim
    hand_over: HandOver | None = None  # where the attempt goes on if those all refuse


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
    offer: timedelta = timedelta(seconds=5)  # how long a message left for another process is its alone
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    prices: PriceTable = field(default_factory=PriceTable)
    retry: RetryPolicy = CARRIER_SUBMITS


def _expired(row: Row, now: datetime) -> bool:
    validity = row["validity_period"]
    return validity is not None and now > row["date_created"] + timedelta(seconds=validity)


def _fail(
    conn: Connection,
    row: Row,
    *,
    now: datetime,
    code: int,
    kind: str,
    detail: dict[str, Any],
    text: str,
    **values: Any,
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
            **values,
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
    held = [j for j in jobs if j.message.get("carrier")]
    if held:
        notes = store.retry_notes_of(conn, [j.message["sid"] for j in held])
        for job in held:
            note = notes.get(job.message["sid"]) or {}
            job.hold = Hold.from_detail(note["hold"]) if note.get("hold") else None
            job.continue_at = (note.get("hand_over") or {}).get("carrier")
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
    per attempt number, their timeline entries and callbacks. Returns the jobs still ours.

    A job with a ``resend_reason`` may put the message on the network a second time: its
    entry is a `resend` with that reason instead of a `status` one (a job reclaimed from a
    dead dispatcher is already `sending` and only gets the entry)."""
    by_attempt: dict[int, list[str]] = {}
    for job in jobs:
        if not _reclaimed(job):
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
        detail: dict[str, Any] = {"attempt": attempt}
        if job.hold is not None:
            detail |= {"carrier": job.hold.carrier, "from_part": job.hold.next_part, "parts": job.hold.parts}
        if job.resend_reason is not None:
            detail["reason"] = job.resend_reason
        if not _reclaimed(job):
            if row["sid"] not in moved:
                continue  # canceled or changed since the claim
            job.message = moved[row["sid"]]
            entries.append(
                message_batch.event(
                    message_sid=row["sid"],
                    account_sid=row["account_sid"],
                    at=now,
                    kind="status" if job.resend_reason is None else "resend",
                    status=str(S.SENDING),
                    detail=detail,
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
            detail=detail,
        )
        message_store.update_fields(conn, row["sid"], attempts=attempt, date_updated=now)
        row["attempts"] = attempt
        ready.append(job)
    message_batch.add_events(conn, entries)
    enqueue_status_callbacks(conn, [(j.message, None) for j in ready if j.message["sid"] in moved], now=now)
    return ready


def _reclaimed(job: Job) -> bool:
    """Taken over from a dispatcher that marked it sending and stopped."""
    return bool(job.message["status"] == S.SENDING)


def plan_route(job: Job, route: Sequence[Carrier]) -> list[Carrier]:
    """The carriers to try for this job, given what a carrier may already hold of it.

    An exclusive hold keeps the message on its carrier while that carrier is routed; a hold
    on an unanswered part makes this attempt a possible duplicate (``resend_reason``). An
    attempt handed over (``continue_at``) starts at that carrier. Call before `mark_sending`,
    which records the reason."""
    carriers = list(route)
    names = [c.name for c in carriers]
    if job.continue_at in names:
        carriers = carriers[names.index(job.continue_at) :]
    hold = job.hold
    if hold is None:
        return carriers
    holder = [c for c in route if c.name == hold.carrier]
    if holder and hold.exclusive:
        carriers = holder
    if hold.unknown_part is not None:
        if any(c.name == hold.carrier for c in carriers):
            where = f"sent to {hold.carrier} again"
        elif holder and carriers:
            where = f"the attempt goes on at {carriers[0].name}"  # handed over, failover_on_unknown_outcome
        else:
            where = f"{hold.carrier} is no longer routed for {job.message['to']}"
        reason = f"{hold.describe()}: {where}"
        job.resend_reason = f"{job.resend_reason}; {reason}" if job.resend_reason else reason
    return carriers


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
    """Submit through the route's carriers in order (the route `plan_route` gave for the job).

    A refusal that left nothing at the carrier fails over to the next one. An error after
    which the carrier holds part of the message (parts accepted) stops here, and so does one
    whose outcome is unknown unless that carrier allows failing over (``may_fail_over``)."""
    outcome = Outcome(job=job)
    message = outbound(job.message)
    hold = job.hold
    for carrier in route:
        attempt = message
        if hold is not None and carrier.name == hold.carrier:
            attempt = dataclasses.replace(message, continuation=hold.continuation())
        try:
            outcome.ack = await carrier.submit(attempt)
            outcome.error = None
            return outcome
        except CarrierError as exc:
            outcome.tried.append((carrier.name, exc))
            outcome.error = exc
            if not exc.retryable or exc.accepted_carrier_ids:
                return outcome
            if isinstance(exc, CarrierOutcomeUnknown) and not exc.may_fail_over:
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
    rows = []
    for name, e in tried:
        row = {"carrier": name, "carrier_code": e.carrier_code, "error": e.message, "retryable": e.retryable}
        if isinstance(e, CarrierOutcomeUnknown):
            row["outcome_unknown"] = True
        rows.append(row)
    return rows


def _unanswered(tried: Sequence[tuple[str, CarrierError]]) -> list[str]:
    return [name for name, e in tried if isinstance(e, CarrierOutcomeUnknown)]


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
            reason = _second_copy(outcome)
            if reason is not None:
                message_store.add_event(
                    conn,
                    message_sid=row["sid"],
                    account_sid=row["account_sid"],
                    at=now,
                    kind="resend",
                    detail={"reason": reason, "attempt": row["attempts"], "carrier": outcome.ack.carrier},
                )
            accepted.append(outcome)
        else:
            assert outcome.error is not None
            _record_refusal(conn, outcome, now=now, settings=settings)
    _record_sent(conn, accepted, now=now, settings=settings)


def _second_copy(outcome: Outcome) -> str | None:
    """Why the carrier that accepted the message may not be the only one that has it, if so."""
    ack, hold = outcome.ack, outcome.job.hold
    assert ack is not None
    reasons = []
    unanswered = _unanswered(outcome.tried)
    if unanswered:
        reasons.append(
            f"{', '.join(unanswered)} never answered the submit and may have accepted it; "
            f"failover_on_unknown_outcome let {ack.carrier} take the message too"
        )
    if hold is not None and hold.accepted_ids and (ack.carrier != hold.carrier or ack.first_part != hold.next_part):
        reasons.append(f"{hold.describe()}; {ack.carrier} took the whole message again")
    return "; ".join(reasons) or None


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
        ack, row, hold = outcome.ack, outcome.job.message, outcome.job.hold
        assert ack is not None
        updated = sent.get(row["sid"])
        if updated is None:
            log.warning("submit acknowledged for a message no longer sending", extra={"sid": row["sid"]})
            continue
        all_ids = list(ack.carrier_ids)
        parts = None
        if ack.first_part > 1 and hold is not None and hold.carrier == ack.carrier:
            # The rest of a message the carrier took in part: the ids of the earlier parts
            # are stored already; the timeline shows the message's ids in full.
            all_ids = [*hold.accepted_ids, *ack.carrier_ids]
            parts = hold.parts
        detail = {"carrier": ack.carrier, "carrier_ids": all_ids, "attempt": row["attempts"], **ack.raw}
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
            carrier=ack.carrier,
            ids=ack.carrier_ids,
            message_sid=row["sid"],
            account_sid=row["account_sid"],
            at=now,
            first_part=ack.first_part if parts is not None else 1,
            parts=parts,
        )
        changed.append((updated, None))
        ids.setdefault(ack.carrier, []).extend(ack.carrier_ids)
    message_batch.add_events(conn, entries)
    store.add_carrier_refs(conn, refs)
    enqueue_status_callbacks(conn, changed, now=now)
    _apply_early_receipts(conn, ids, now=now)


def _apply_early_receipts(conn: Connection, ids: dict[str, list[str]], *, now: datetime) -> None:
    early = [
        receipt_of_parked(row)
        for carrier, carrier_ids in ids.items()
        for row in store.take_unmatched(conn, carrier, carrier_ids)
    ]
    apply_receipts(conn, early, now=now)


def _hold_after(job: Job, tried: Sequence[tuple[str, CarrierError]]) -> Hold | None:
    """What a carrier may hold of the message after this attempt: the latest carrier that
    accepted parts or never answered, else what the job was held by before."""
    prior = job.hold
    for name, exc in reversed(tried):
        progress = exc.progress
        unknown = isinstance(exc, CarrierOutcomeUnknown)
        if not (unknown or exc.accepted_carrier_ids):
            continue
        if progress is None:  # a carrier that does not report parts: the whole message
            progress = SubmitProgress(parts=1, reference=None, first_part=1, accepted_ids=(), stopped_at=1)
        continued = (
            prior is not None
            and prior.carrier == name
            and (progress.first_part, progress.parts, progress.reference)
            == (prior.next_part, prior.parts, prior.reference)
        )
        accepted = (prior.accepted_ids if continued and prior is not None else ()) + progress.accepted_ids
        next_part = progress.first_part + len(progress.accepted_ids)
        exclusive = bool(accepted)
        unknown_part = None
        if unknown:
            assert isinstance(exc, CarrierOutcomeUnknown)
            unknown_part = progress.stopped_at
            exclusive = exclusive or not exc.may_fail_over
        elif continued and prior is not None and prior.unknown_part is not None and prior.unknown_part >= next_part:
            unknown_part = prior.unknown_part  # still not resent successfully: the next resend may duplicate it
            exclusive = exclusive or prior.exclusive
        return Hold(name, progress.parts, progress.reference, next_part, accepted, unknown_part, exclusive)
    return prior


def _keep_accepted_parts(
    conn: Connection, row: Row, tried: Sequence[tuple[str, CarrierError]], *, now: datetime
) -> list[dict[str, Any]]:
    """Store the carrier ids of parts accepted before the attempt stopped, so that their
    receipts find the message; returns them for the timeline."""
    kept: list[dict[str, Any]] = []
    refs = []
    ids: dict[str, list[str]] = {}
    for name, exc in tried:
        progress = exc.progress
        if progress is None or not progress.accepted_ids:
            continue
        refs += store.carrier_ref_rows(
            carrier=name,
            ids=progress.accepted_ids,
            message_sid=row["sid"],
            account_sid=row["account_sid"],
            at=now,
            first_part=progress.first_part,
            parts=progress.parts,
        )
        ids.setdefault(name, []).extend(progress.accepted_ids)
        kept += [
            {"carrier": name, "part": progress.first_part + i, "parts": progress.parts, "carrier_id": cid}
            for i, cid in enumerate(progress.accepted_ids)
        ]
    store.add_carrier_refs(conn, refs)
    return kept


def _record_refusal(conn: Connection, outcome: Outcome, *, now: datetime, settings: DispatchSettings) -> None:
    job, error, tried = outcome.job, outcome.error, outcome.tried
    assert error is not None
    row = job.message
    detail: dict[str, Any] = {
        "attempt": row["attempts"],
        "refused_by": _carrier_detail(tried),
        "carrier_code": error.carrier_code,
    }
    kept = _keep_accepted_parts(conn, row, tried, now=now)
    if kept:
        detail["accepted_parts"] = kept
    unanswered = _unanswered(tried)
    if unanswered:
        # Not a refusal: the doctor counts this attempt as one that may have reached the network.
        detail["outcome_unknown"] = True
    hold = _hold_after(job, tried)
    if hold is not None:
        detail["hold"] = hold.detail()
        detail["reason"] = hold.describe() or f"{hold.carrier} holds part of the message"
    holder = hold.carrier if hold is not None else None
    if job.hand_over is not None and _goes_on(error):
        _record_hand_over(conn, job, job.hand_over, detail, holder=holder, now=now, settings=settings)
    else:
        _retry_or_fail(conn, outcome, detail, hold, now=now, settings=settings)
    if kept:
        by_carrier: dict[str, list[str]] = {}
        for part in kept:
            by_carrier.setdefault(part["carrier"], []).append(part["carrier_id"])
        _apply_early_receipts(conn, by_carrier, now=now)


def _retry_or_fail(
    conn: Connection,
    outcome: Outcome,
    detail: dict[str, Any],
    hold: Hold | None,
    *,
    now: datetime,
    settings: DispatchSettings,
) -> None:
    """Every carrier tried refused: retry later (`RetryPolicy`), or fail with an alert."""
    row, error = outcome.job.message, outcome.error
    assert error is not None
    decision = (
        None
        if isinstance(error, CarrierPermanentError) or not error.retryable
        else settings.retry.decide(row["attempts"], error)
    )
    holder = hold.carrier if hold is not None else None
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
            carrier=holder,
        )
        return
    code = error.error_code
    text = f"The carrier refused message {row['sid']}: {error.message} ({error.carrier_code})."
    if error.retryable:
        text = f"Message {row['sid']} was refused {row['attempts']} times and Pigeon stopped retrying: {error.message}."
    if hold is not None and hold.describe():
        text += f" Before that, {hold.describe()}: the recipient may get that much of it."
    _fail(conn, row, now=now, code=code, kind="status", detail=detail, text=text, carrier=holder)


def _goes_on(error: CarrierError) -> bool:
    """Whether `submit` would have tried the next carrier after this error (nothing is held)."""
    if not error.retryable or error.accepted_carrier_ids:
        return False
    return not isinstance(error, CarrierOutcomeUnknown) or error.may_fail_over


def _record_hand_over(
    conn: Connection,
    job: Job,
    hand_over: HandOver,
    detail: dict[str, Any],
    *,
    holder: str | None,
    now: datetime,
    settings: DispatchSettings,
) -> None:
    """The carriers here refused and the next one is bound in another process: back to the
    queue at once, for that process, the attempt to go on at that carrier (module docstring).
    It keeps the sender slot it was sent in, as a failover within one process would."""
    detail = {**detail, "hand_over": {"carrier": hand_over.carrier, "holder": hand_over.holder}}
    detail.setdefault("reason", f"{hand_over.carrier} is bound in {hand_over.holder}, where the attempt goes on")
    message_store.transition(
        conn,
        job.message["sid"],
        S.QUEUED,
        at=now,
        kind="retry",
        detail={**detail, "retry_at": now.isoformat()},
        from_statuses=[S.SENDING],
        next_attempt_at=now,
        claimed_by=None,
        claimed_until=now + settings.offer,
        offered_to=hand_over.holder,
        paced_at=job.slot,
        carrier=holder or hand_over.carrier,  # read back at the claim: the hold, and where to go on
    )


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
        lock (SQLite) saved."""
        with self.db.write() as conn:
            now = self.clock.now()
            jobs = claim(conn, now=now, worker_id=self.worker_id, settings=self.settings)
            if reach is not None and jobs:
                jobs = self._place(conn, jobs, reach, now=now)
            groups = _groups(jobs)
            if groups and groups[0][0].slot <= now:
                routes = self._routes(groups[0])
                return groups, (mark_sending(conn, groups[0], now=now), routes)
            return groups, None

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
            keep = job.message.get("previous_claimer") if _reclaimed(job) else None
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
        with self.db.write() as conn:
            return mark_sending(conn, jobs, now=self.clock.now())

    def _record(self, outcomes: Sequence[Outcome]) -> None:
        with self.db.write() as conn:
            record(conn, outcomes, now=self.clock.now(), settings=self.settings)

    async def run_once(self) -> int:
        """One round; returns how many messages were submitted (or refused)."""
        reach = self.reach() if self.reach is not None else None
        if reach is not None and await asyncio.to_thread(self._idle_here, reach):
            return 0
        groups, marked = await asyncio.to_thread(self._claim, reach)
        done = 0
        for i, group in enumerate(groups):
            if i == 0 and marked is not None:
                ready, routes = marked
            else:
                wait = (group[0].slot - self.clock.now()).total_seconds()
                if wait > 0:
                    await asyncio.sleep(wait)
                routes = self._routes(group)
                ready = await asyncio.to_thread(self._mark, group)
            outcomes = await asyncio.gather(*(submit(j, routes[j.message["sid"]]) for j in ready))
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
