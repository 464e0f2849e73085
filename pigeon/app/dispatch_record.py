"""Recording a group's submits: the carriers' answers written in one transaction.

What the carriers took goes to `sent` with its price and carrier ids, one guarded UPDATE per
carrier and price, its timeline entries with one INSERT, its status callbacks, usage and the
receipts that overtook the submit responses (`_record_sent`). An attempt that went through
more than one carrier gets a ``failover`` entry; a copy that may not be the only one (another
carrier never answered, or a hold was sent whole elsewhere) a ``resend`` entry (`_second_copy`).
A carrier that answers after the dispatcher's lease ran out, when another dispatcher has sent
the message again, leaves an ``accepted_late`` entry and its ids, not a status. A message whose
media went as links took more segments than the claim paced it for: its sender's next slot
moves on by the extra ones (`_pace_longer_texts`). Refusals take
the one-message path (`pigeon.app.dispatch_refusals`). The rules for what an attempt leaves at
a carrier are in `pigeon.app.dispatch_jobs`' docstring.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import usage
from pigeon.app.callbacks import enqueue_status_callbacks
from pigeon.app.dispatch_jobs import DispatchSettings, Outcome, carrier_detail, unanswered_carriers
from pigeon.app.dispatch_refusals import apply_early_receipts, record_refusal
from pigeon.app.reused_ids import note_reused_ids
from pigeon.domain.pacing import queue_key, reserve
from pigeon.domain.status import MessageStatus
from pigeon.store import dispatch as store
from pigeon.store import message_batch, pacing
from pigeon.store import messages as message_store

__all__ = ["prices_of", "record"]

log = logging.getLogger(__name__)

S = MessageStatus
Row = dict[str, Any]


def prices_of(outcomes: Sequence[Outcome], settings: DispatchSettings) -> dict[str, str | None]:
    """What each accepted message costs, by SID. Pure (a phone number parse each), so the
    dispatcher works it out before it takes the store's writer lock, not while holding it."""
    return {
        o.job.message["sid"]: settings.prices.price(
            o.job.message["to"],
            o.job.message["from_"] or "",
            o.segments or o.job.message["num_segments"],
            free=bool(o.job.message.get("keyword_reply")),
            mms=bool(o.job.message["num_media"]) and not o.media_as_links,
        )
        for o in outcomes
        if o.ack is not None
    }


def record(
    conn: Connection,
    outcomes: Sequence[Outcome],
    *,
    now: datetime,
    settings: DispatchSettings,
    prices: Mapping[str, str | None] | None = None,
) -> None:
    """Record the carriers' answers to a group of submits; `prices` (from `prices_of`) saves
    working them out here."""
    # A record stopped half-way holds the sent messages' rows and, for each of their accounts,
    # one of the eight usage rows of the day (`store.usage`), which one in eight of the other
    # dispatchers' records then wait for: not for 5 minutes.
    store.end_if_stopped(conn, settings.lease)
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
                detail={"refused_by": carrier_detail(outcome.tried)},
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
            record_refusal(conn, outcome, now=now, settings=settings)
    _record_sent(
        conn,
        accepted,
        now=now,
        settings=settings,
        prices=prices if prices is not None else prices_of(accepted, settings),
    )


def _pace_longer_texts(conn: Connection, sent: Sequence[Outcome], *, now: datetime, settings: DispatchSettings) -> None:
    """A message whose media went as links took more segments than the claim paced it for
    (the claim cannot know a route's carriers will not carry its media): its sender's next
    slot moves on by the extra segments, so that an MMS sent as text through SMPP, say,
    does not send at three times its sender's rate."""
    extra: dict[str, timedelta] = {}  # by queue (`domain.pacing.queue_key`)
    for o in sent:
        more = (o.segments or 0) - o.job.message["num_segments"]
        if o.media_as_links and more > 0:
            sender = o.job.message["from_"] or ""
            queue = queue_key(o.job.message["account_sid"], sender)
            extra[queue] = extra.get(queue, timedelta(0)) + settings.pacing.duration(sender, more)
    if extra:
        # Not waited for long: this transaction records what carriers took, which must not wait
        # behind a dispatcher stuck inside its claim (the messages' leases would run out, and
        # they would be sent again). A busy sender keeps the pace its claim gave.
        slots = pacing.lock_slots(conn, extra, wait=settings.pacing_wait)
        if slots.busy:
            log.warning(
                "a sender's next slot was not moved on for the media sent as links: another transaction holds it",
                extra={"senders": sorted(slots.busy)},
            )
        moved = {s: reserve(slots.free.get(s), now, more)[1] for s, more in extra.items() if s not in slots.busy}
        pacing.set_next_free(conn, moved, known=set(slots.free))


def _second_copy(outcome: Outcome) -> str | None:
    """Why the carrier that accepted the message may not be the only one that has it, if so."""
    ack, hold = outcome.ack, outcome.job.hold
    assert ack is not None
    reasons = []
    unanswered = unanswered_carriers(outcome.tried)
    if unanswered:
        reasons.append(
            f"{', '.join(unanswered)} never answered the submit and may have accepted it; "
            f"failover_on_unknown_outcome let {ack.carrier} take the message too"
        )
    if hold is not None and hold.accepted_ids and (ack.carrier != hold.carrier or ack.first_part != hold.next_part):
        reasons.append(f"{hold.describe()}; {ack.carrier} took the whole message again")
    return "; ".join(reasons) or None


def _record_sent(
    conn: Connection,
    accepted: Sequence[Outcome],
    *,
    now: datetime,
    settings: DispatchSettings,
    prices: Mapping[str, str | None],
) -> None:
    """The carriers took these: sent, with price and carrier ids, in one guarded UPDATE per
    carrier and price; then the receipts that overtook their submit responses. A message
    whose media went as links takes the segments that text took, which its price counts."""
    groups: dict[tuple[str, str | None, int | None], list[str]] = {}
    for outcome in accepted:
        assert outcome.ack is not None
        row = outcome.job.message
        price = prices[row["sid"]]
        groups.setdefault((outcome.ack.carrier, price, outcome.segments), []).append(row["sid"])
    sent: dict[str, Row] = {}
    for (carrier, price, segments), sids in groups.items():
        as_sent: dict[str, Any] = {"num_segments": segments} if segments is not None else {}
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
            **as_sent,
        )
    entries, refs, changed = [], [], []
    ids: dict[str, list[str]] = {}
    late = [o.job.message["sid"] for o in accepted if o.job.message["sid"] not in sent]
    # A late copy's ids and entry are kept for a message that still exists: one deleted (or
    # erased) since must leave nothing behind.
    existing = message_batch.get_messages(conn, late) if late else {}
    for outcome in accepted:
        ack, row, hold = outcome.ack, outcome.job.message, outcome.job.hold
        assert ack is not None
        updated = sent.get(row["sid"])
        if updated is None and row["sid"] not in existing:
            log.warning("submit acknowledged for a message that no longer exists", extra={"sid": row["sid"]})
            continue
        all_ids = list(ack.carrier_ids)
        parts = None
        if ack.first_part > 1 and hold is not None and hold.carrier == ack.carrier:
            # The rest of a message the carrier took in part: the ids of the earlier parts
            # are stored already; the timeline shows the message's ids in full.
            all_ids = [*hold.accepted_ids, *ack.carrier_ids]
            parts = hold.parts
        detail = {"carrier": ack.carrier, "carrier_ids": all_ids, "attempt": row["attempts"], **ack.raw}
        if outcome.media_as_links:
            detail |= {
                "media_as_links": outcome.media_as_links,
                "segments_sent": outcome.segments,
                "media_as_links_because": list(outcome.media_obstacles),
            }
        if updated is None:
            # The carrier took a copy after this dispatcher's lease ran out and another sent the
            # message again: the status stays as the other left it, but this copy's ids are
            # kept, so that its receipts find the message and the doctor can count both copies.
            log.warning("submit acknowledged for a message no longer sending", extra={"sid": row["sid"]})
            detail["reason"] = "the carrier answered after this attempt's lease ran out; the message was sent again"
        entries.append(
            message_batch.event(
                message_sid=row["sid"],
                account_sid=row["account_sid"],
                at=now,
                kind="status" if updated is not None else "accepted_late",
                status=str(S.SENT) if updated is not None else None,
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
        ids.setdefault(ack.carrier, []).extend(ack.carrier_ids)
        if updated is not None:
            changed.append((updated, None))
    message_batch.add_events(conn, entries)
    message_store.mark_late_copies(conn, [sid for sid in late if sid in existing])  # receipts count per copy
    note_reused_ids(conn, store.add_carrier_refs(conn, refs), now=now)
    enqueue_status_callbacks(conn, changed, now=now)
    recorded = [o for o in accepted if o.job.message["sid"] in sent]
    _pace_longer_texts(conn, recorded, now=now, settings=settings)
    usage.count(
        conn,
        (
            usage.Counted(
                account_sid=o.job.message["account_sid"],
                outbound=True,
                media=bool(o.job.message["num_media"]) and not o.media_as_links,
                segments=o.segments or o.job.message["num_segments"],
                price=prices[o.job.message["sid"]],
            )
            for o in recorded
            # The automatic reply to a keyword is free on Twilio: no billable usage either.
            if not o.job.message.get("keyword_reply")
        ),
        now=now,
    )
    apply_early_receipts(conn, ids, now=now)
