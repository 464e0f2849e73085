"""Recording a refused attempt: retried with backoff, handed over to the process that has
the next carrier bound, or failed (with its alert), keeping the carrier ids of the parts
accepted before the refusal. The rules are in `pigeon.app.dispatch_jobs`' docstring (what an
attempt leaves at a carrier) and `pigeon.app.dispatch`'s (hand-overs)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.callbacks import enqueue_status_callback
from pigeon.app.dispatch_jobs import (
    DispatchSettings,
    Hold,
    Job,
    Outcome,
    carrier_detail,
    hold_after,
    unanswered_carriers,
)
from pigeon.app.placement import HandOver
from pigeon.app.receipt_batch import apply_receipts
from pigeon.app.receipts import receipt_of_parked
from pigeon.app.reused_ids import note_reused_ids
from pigeon.domain.errors import CarrierError, CarrierOutcomeUnknown, InvalidTransition
from pigeon.domain.refusals import Refusals, unreached_delay
from pigeon.domain.status import MessageStatus
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as store
from pigeon.store import messages as message_store

S = MessageStatus
Row = dict[str, Any]
log = logging.getLogger(__name__)


def fail(
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


def apply_early_receipts(conn: Connection, ids: dict[str, list[str]], *, now: datetime) -> None:
    early = [
        receipt_of_parked(row)
        for carrier, carrier_ids in ids.items()
        for row in store.take_unmatched(conn, carrier, carrier_ids)
    ]
    apply_receipts(conn, early, now=now)


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
    note_reused_ids(conn, store.add_carrier_refs(conn, refs), now=now)
    return kept


def record_refusal(conn: Connection, outcome: Outcome, *, now: datetime, settings: DispatchSettings) -> None:
    job, error, tried = outcome.job, outcome.error, outcome.tried
    assert error is not None
    row = job.message
    detail: dict[str, Any] = {
        "attempt": row["attempts"],
        "refused_by": carrier_detail(tried),
        "carrier_code": error.carrier_code,
    }
    media_refused = bool(outcome.media_obstacles and not outcome.media_as_links)
    if media_refused:  # refused before any submit, not sent as links
        detail["media_refused_because"] = list(outcome.media_obstacles)
    kept = _keep_accepted_parts(conn, row, tried, now=now)
    if kept:
        detail["accepted_parts"] = kept
    unanswered = unanswered_carriers(tried)
    if unanswered:
        # Not a refusal: the doctor counts this attempt as one that may have reached the network.
        detail["outcome_unknown"] = True
    hold = hold_after(job, tried)
    if hold is not None:
        detail["hold"] = hold.detail()
        detail["reason"] = hold.describe() or f"{hold.carrier} holds part of the message"
    holder = hold.carrier if hold is not None else None
    if job.hand_over is not None and _goes_on(error) and not media_refused:
        _record_hand_over(conn, job, job.hand_over, detail, holder=holder, now=now, settings=settings)
    else:
        _retry_or_fail(conn, outcome, detail, hold, now=now, settings=settings)
    if kept:
        by_carrier: dict[str, list[str]] = {}
        for part in kept:
            by_carrier.setdefault(part["carrier"], []).append(part["carrier_id"])
        apply_early_receipts(conn, by_carrier, now=now)


def _retry_or_fail(
    conn: Connection,
    outcome: Outcome,
    detail: dict[str, Any],
    hold: Hold | None,
    *,
    now: datetime,
    settings: DispatchSettings,
) -> None:
    """Every carrier tried refused: wait for a bind, retry later (`RetryPolicy`), or fail with
    an alert, by what the refusals say together (`pigeon.domain.refusals`)."""
    row, error = outcome.job.message, outcome.error
    assert error is not None
    refusals = Refusals(outcome.tried or [("", error)])  # no carrier tried: no route
    holder = hold.carrier if hold is not None else None
    if refusals.unreached:
        _wait_for_a_bind(conn, row, detail, holder=holder, now=now)
        return
    retry_with = refusals.retry_with
    decision = settings.retry.decide(row["attempts"], retry_with) if retry_with is not None else None
    if decision is not None:
        retry_at = now + timedelta(seconds=decision.delay)
        _requeue(
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
    error = refusals.telling()
    code = error.error_code
    if retry_with is not None and hold is not None and hold.unknown_part is not None:
        # Retries ran out while a submit was never answered: the carrier may have delivered it
        # (CarrierOutcomeUnknown's promise), whatever the later attempts were refused with.
        code = 30410
    if len(outcome.tried) > 1:
        detail = {**detail, "error_from": _named(outcome.tried, error)}
    if retry_with is not None:
        text = f"Message {row['sid']} was refused {row['attempts']} times and Pigeon stopped retrying: {error.message}."
    elif len(outcome.tried) > 1 and not error.stops_route:
        said = "; ".join(f"{e.message} ({e.carrier_code})" for _, e in outcome.tried)
        text = f"Every carrier of its route refused message {row['sid']}: {said}."
    else:
        text = f"The carrier refused message {row['sid']}: {error.message} ({error.carrier_code})."
    if hold is not None and hold.describe():
        text += f" Before that, {hold.describe()}: the recipient may get that much of it."
    fail(conn, row, now=now, code=code, kind="status", detail=detail, text=text, carrier=holder)


def _named(tried: Sequence[tuple[str, CarrierError]], error: CarrierError) -> str:
    return next(name for name, e in tried if e is error)


def _wait_for_a_bind(conn: Connection, row: Row, detail: dict[str, Any], *, holder: str | None, now: datetime) -> None:
    """No carrier of the route could be reached: nothing happened on the network, so the
    attempt is given back (it does not count against the retry budget), and the message waits,
    its backoff capped, until a bind comes back or its ValidityPeriod runs out (30036, at the
    claim). `pigeon.domain.refusals`."""
    waited = (now - (row.get("send_at") or row["date_created"])).total_seconds()  # as the claim counts it
    retry_at = now + timedelta(seconds=unreached_delay(waited, rand=random.random()))
    _requeue(
        conn,
        row["sid"],
        S.QUEUED,
        at=now,
        kind="retry",
        detail={**detail, "retry_at": retry_at.isoformat(), "unreached": True},
        from_statuses=[S.SENDING],
        next_attempt_at=retry_at,
        claimed_by=None,
        claimed_until=None,
        paced_at=None,
        carrier=holder,
        attempts=max(row["attempts"] - 1, 0),
    )


def _requeue(conn: Connection, sid: str, to: MessageStatus, **kw: Any) -> None:
    """Back to the queue from `sending`, unless the message has moved on: its dispatcher's
    lease ran out while the carrier answered, and another dispatcher sent it meanwhile. The
    refusal then changes nothing; raising would undo the record of the whole group, the
    messages the carrier took among them, and they would be sent again."""
    try:
        message_store.transition(conn, sid, to, **kw)
    except InvalidTransition:
        log.warning(
            "a refusal came after the message moved on (its lease ran out); nothing to retry", extra={"sid": sid}
        )


def _goes_on(error: CarrierError) -> bool:
    """Whether `submit` would have tried the next carrier after this error (nothing is held)."""
    if error.stops_route or error.accepted_carrier_ids:
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
    _requeue(
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
