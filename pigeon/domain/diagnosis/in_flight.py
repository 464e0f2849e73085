"""A message still on its way: waiting in the queue, being submitted, sent without a receipt
yet, or scheduled; and whether it is late.

`waiting` (accepted, queued), `sending`, `sent` and `scheduled` each take the facts and
thresholds of `diagnose_message` and return its findings: in progress when nothing is late
yet, otherwise where it stopped (no dispatcher, a dead dispatcher, carrier retries, paced
behind its sender's queue, left for the process holding its carrier's bind, no receipt).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pigeon.domain.diagnosis.facts import MessageFacts, Row
from pigeon.domain.diagnosis.model import (
    Finding,
    Thresholds,
    event_row,
    message_row,
    part_row,
    seconds,
    timeline,
    unique,
    when,
)

QUEUE_ADVICE = [
    "Check that a dispatcher runs: `pigeon serve` with workers (PIGEON_RUN_WORKERS=true) or `pigeon worker`.",
    "`pigeon carriers` shows whether any worker reports in, and the state of each carrier bind.",
]


def _in_progress(f: MessageFacts, text: str) -> Finding:
    return Finding(
        cause="in_progress",
        severity="info",
        summary=text,
        evidence=[message_row(f.message), *timeline(f.events)],
        advice=["Nothing is wrong yet; ask again in a minute, or follow it with a StatusCallback."],
    )


def _left_for_bind_holder(f: MessageFacts, th: Thresholds) -> Finding:
    """The process that claimed the message had no bind to its carrier and left it for the one
    that has (`offered_to`): only that process may take it until the offer runs out
    (`claimed_until`), then any may."""
    m, now = f.message, f.now
    holder, until = m["offered_to"], m.get("claimed_until")
    due: datetime = m.get("next_attempt_at") or m["date_created"]
    late = due + th.stall < now
    resend = " (a dispatcher stopped mid-submit: it is a resend)" if m.get("status") == "sending" else ""
    summary = (
        f"{m['sid']}{resend} waits for the worker process {holder}, which holds the bind to its carrier: the "
        f"process that claimed it has no bind of its own and left it there, due at {when(due)}."
    )
    if late:
        summary += f" {holder} has not taken it in {seconds(now - due)} s."
    if until is not None:
        summary += (
            f" If it has not by {when(until)}, any worker process may take it."
            if until >= now
            else f" The offer ran out at {when(until)}: any worker process may take it now."
        )
    return Finding(
        cause="waiting_for_bind_holder",
        severity="warning" if late else "info",
        summary=summary,
        evidence=[
            message_row(m),
            {"source": "routing", "offered_to": holder, "offer_until": until, "due_at": due},
            *timeline(f.events),
        ],
        advice=[
            "`pigeon carriers` shows which worker process holds each carrier's bind, and until when its lease runs.",
            "If that process has stopped, its lease runs out, another process binds the carrier and sends the "
            "message; nothing needs doing unless no process can bind it (check the carrier's credentials and how "
            "many binds the SMSC allows).",
        ],
    )


def _retries_said(retries: Sequence[Row]) -> str:
    """Why each attempt went back to the queue: the carrier's refusal (its code), no carrier
    reached (no carrier code: what Pigeon recorded instead, such as no bind), or no answer."""
    details = [e.get("detail") or {} for e in retries]
    # An unanswered submit carries a code of Pigeon's ("smpp:response_timeout"), not a refusal.
    silent = [d for d in details if d.get("outcome_unknown")]
    refused = [d for d in details if d.get("carrier_code") and not d.get("outcome_unknown")]
    unreached = [d for d in details if not d.get("carrier_code") and not d.get("outcome_unknown")]
    said = []
    if refused:
        codes = ", ".join(unique(str(d["carrier_code"]) for d in refused))
        said.append(f"the carrier turned it away {len(refused)} time(s) ({codes})")
    if unreached:
        errors = unique(
            f"{r.get('carrier')}: {r['error']}" for d in unreached for r in d.get("refused_by") or () if r.get("error")
        )
        said.append(
            f"Pigeon could not reach the carrier {len(unreached)} time(s)"
            + (f" ({'; '.join(errors)})" if errors else "")
        )
    if silent:
        said.append(f"the carrier did not answer {len(silent)} submit(s) ({len(silent)} unanswered: it may have them)")
    return ", ".join(said)


def waiting(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m, now = f.message, f.now
    if m.get("offered_to"):
        return [_left_for_bind_holder(f, th)]
    due: datetime = m.get("next_attempt_at") or m["date_created"]
    retries = [e for e in f.events if e.get("kind") == "retry"]
    if due + th.stall < now:
        return [
            Finding(
                cause="stuck_in_queue",
                severity="error",
                summary=f"{m['sid']} has been due since {when(due)} ({seconds(now - due)} s) and no dispatcher has "
                "taken it: nothing is sending from the queue.",
                evidence=[
                    message_row(m),
                    *timeline(f.events),
                    {"source": "queue", "due_at": due, "queue_ahead": f.queue_ahead},
                ],
                advice=list(QUEUE_ADVICE),
            )
        ]
    if retries:
        hold = (retries[-1].get("detail") or {}).get("hold") or {}
        held = (
            f" {(retries[-1].get('detail') or {}).get('reason')}, so Pigeon sends it to {hold.get('carrier')} only."
            if hold.get("exclusive")
            else ""
        )
        return [
            Finding(
                cause="carrier_retrying",
                severity="warning",
                summary=f"{m['sid']} is not out yet: {_retries_said(retries)}; Pigeon tries again at {when(due)}."
                f"{held}",
                evidence=[message_row(m), *[event_row(e) for e in retries]],
                advice=[
                    "Temporary refusals (throttling, a carrier that is down) clear by themselves; Pigeon retries "
                    "with backoff until the message's validity period runs out.",
                    "If they persist, check the carrier's bind and throughput with `pigeon carriers`.",
                ],
            )
        ]
    if now - m["date_created"] > th.stall:
        return [
            Finding(
                cause="stuck_in_queue",
                severity="warning",
                summary=f"{m['sid']} waits for its sender's turn: {f.queue_ahead} message(s) from {m.get('from_')} go "
                f"out before it, and its slot is {when(due)}.",
                evidence=[message_row(m), {"source": "queue", "due_at": due, "queue_ahead": f.queue_ahead}],
                advice=[
                    "Each sender is paced (a US long code sends 1 segment per second, toll-free 3, a short code "
                    "100): spread bulk sends over a Messaging Service's pool, or use a faster sender type.",
                    "Set a ValidityPeriod on time-sensitive messages so that they fail (30036) instead of arriving "
                    "too late.",
                ],
            )
        ]
    return [_in_progress(f, f"{m['sid']} is {m['status']} and goes out at {when(due)}; it is not late yet.")]


def sending(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m, now = f.message, f.now
    if m.get("offered_to"):
        return [_left_for_bind_holder(f, th)]
    lease = m.get("claimed_until")
    if lease is not None and lease >= now:
        return [_in_progress(f, f"{m['sid']} is being submitted to the carrier by {m.get('claimed_by')}.")]
    dead = lease is None or lease + th.stall < now
    return [
        Finding(
            cause="stuck_in_queue",
            severity="error" if dead else "warning",
            summary=f"Dispatcher {m.get('claimed_by')} marked {m['sid']} sending and stopped before recording the "
            f"carrier's answer; its lease ran out at {when(lease)}. "
            + (
                "No dispatcher has reclaimed it since."
                if dead
                else "A dispatcher will reclaim and resend it shortly (the first submit may or may not have "
                "reached the carrier)."
            ),
            evidence=[
                message_row(m),
                {"source": "claim", "claimed_by": m.get("claimed_by"), "claimed_until": lease},
                *timeline(f.events),
            ],
            advice=list(QUEUE_ADVICE),
        )
    ]


def sent(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m, now = f.message, f.now
    sent_at: datetime = m.get("date_sent") or m["date_updated"]
    carrier = m.get("carrier") or "the carrier"
    if now - sent_at <= th.receipt_wait:
        return [
            _in_progress(
                f, f"{carrier} accepted {m['sid']} {seconds(now - sent_at)} s ago; its delivery receipt is to come."
            )
        ]
    advice = [
        "Not every carrier or destination returns delivery receipts; ask the carrier whether receipts are "
        "enabled for your account (registered_delivery).",
        "A receipt can come hours later; the message moves on by itself when it does.",
    ]
    evidence = [message_row(m), *[part_row(p) for p in f.parts], *timeline(f.events)]
    answered = {p["part_index"] for p in f.parts if p.get("receipt_stat")}
    count = max((p["part_count"] for p in f.parts), default=1)
    if answered and count > 1:
        # Some parts' receipts came and the rest never will: a carrier that reports on a long
        # message once, for one of its parts.
        advice.insert(
            0,
            f"{carrier} reported on {len(answered)} of its {count} parts and not on the others. If it sends one "
            'receipt per long message, set multipart_receipts = "any_part" on the carrier, so that any part\'s '
            "final receipt settles the message.",
        )
    if f.unmatched_receipts:
        advice.insert(
            0,
            f"{f.unmatched_receipts} receipt(s) from {carrier} since this submit matched no message: the carrier "
            "may write message ids differently in receipts than in submit responses (hex or decimal, leading "
            "zeros, case). Compare them with the carrier_id above.",
        )
        evidence.append({"source": "unmatched_receipts", "carrier": carrier, "since_submit": f.unmatched_receipts})
    summary = (
        f"{carrier} accepted {m['sid']} at {when(sent_at)} and has not reported on it for "
        f"{seconds(now - sent_at) // 60} min: 'sent' is all Pigeon knows."
    )
    feedback = [e for e in f.events if e.get("kind") == "feedback"]
    confirmed = bool(feedback) and (feedback[-1].get("detail") or {}).get("outcome") == "confirmed"
    if confirmed:
        # The application's Message Feedback says the recipient acted on it: it arrived.
        summary += (
            f" But your application reported feedback 'confirmed' at {when(feedback[-1].get('at'))}: "
            "the recipient acted on the message, so it did arrive."
        )
    return [
        Finding(
            cause="no_receipt_yet",
            severity="info" if confirmed else "warning",
            summary=summary,
            evidence=evidence,
            advice=advice,
        )
    ]


def scheduled(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m = f.message
    send_at = m.get("send_at")
    if send_at is not None and send_at + th.stall < f.now:
        return [
            Finding(
                cause="stuck_in_queue",
                severity="error",
                summary=f"{m['sid']} was scheduled for {when(send_at)} and has not been queued since.",
                evidence=[message_row(m), *timeline(f.events)],
                advice=list(QUEUE_ADVICE),
            )
        ]
    return [
        Finding(
            cause="scheduled",
            severity="info",
            summary=f"{m['sid']} is scheduled for {when(send_at)}; it is queued then.",
            evidence=[message_row(m), {"source": "schedule", "send_at": send_at}],
            advice=["Cancel it with Status=canceled on the message if it should not go out."],
        )
    ]
