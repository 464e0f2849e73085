""" "My message wasn't delivered": the rules for one message, and for a recipient's messages.

A delivered message submitted once with one receipt has nothing to report. Otherwise the
message's status and timeline say where it stopped: the carrier's answer (undelivered,
failed), the queue (expired, stuck, retrying), no receipt yet, a schedule, a cancel; and for
an inbound message, what became of the application's webhook.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from pigeon.domain.diagnosis.facts import MessageFacts, Row
from pigeon.domain.diagnosis.inbound import WEBHOOK_CODES, diagnose_inbound
from pigeon.domain.diagnosis.model import (
    WAITING,
    Finding,
    Thresholds,
    alert_row,
    event_row,
    explained,
    message_row,
    part_row,
    remedy,
    seconds,
    timeline,
    unique,
    when,
)
from pigeon.domain.diagnosis.submits import submit_findings

_QUEUE_ADVICE = [
    "Check that a dispatcher runs: `pigeon serve` with workers (PIGEON_RUN_WORKERS=true) or `pigeon worker`.",
    "`pigeon carriers` shows whether any worker reports in, and the state of each carrier bind.",
]


def diagnose_message(f: MessageFacts, th: Thresholds | None = None) -> list[Finding]:
    th = th or Thresholds()
    m = f.message
    if m.get("direction") == "inbound":
        return diagnose_inbound(f)
    rule = _BY_STATUS.get(str(m.get("status")))
    found = rule(f, th) if rule else []
    return [*found, *submit_findings(f), *_reused_ids(f), *_media_as_links(f), *_callbacks(f)]


# -- final outcomes -------------------------------------------------------------------------------


def _undelivered(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m = f.message
    code = m.get("error_code")
    receipts = [e for e in f.events if e.get("kind") == "receipt"]
    last = (receipts[-1].get("detail") or {}) if receipts else {}
    said = f" (receipt stat {last.get('stat')}, err {last.get('err')})" if receipts else ""
    if last.get("err_means"):  # the carrier's receipt_errors, not Pigeon's own table, read the err
        said = f" (receipt stat {last.get('stat')}, err {last.get('err')}, which {last.get('carrier')}'s receipt_errors reads as {last['err_means']})"
    info = explained(code)
    return [
        Finding(
            cause="carrier_undelivered",
            severity="error",
            summary=f"The carrier could not deliver {m['sid']} to {m.get('to')}: {code} {info['name'] or ''}"
            f"{said}.".replace("  ", " "),
            evidence=[message_row(m), info, *timeline(f.events), *[part_row(p) for p in f.parts]],
            advice=unique([*remedy(code), "Sending the same text again at once rarely helps; fix the cause first."]),
        )
    ]


def _never_sent(code: int, f: MessageFacts) -> list[dict[str, Any]]:
    """The evidence for a message Pigeon failed before any submit: the message, its code
    explained, its timeline and its alerts."""
    return [message_row(f.message), explained(code), *timeline(f.events), *[alert_row(a) for a in f.alerts]]


def _failed(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m = f.message
    code = m.get("error_code")
    inactive = next((e for e in f.events if e.get("kind") == "account_inactive"), None)
    if inactive is not None:
        detail = inactive.get("detail") or {}
        status = detail.get("account_status", "not active")
        whose = f"its main account {detail['main_account_sid']}" if detail.get("main_account_sid") else "its account"
        return [
            Finding(
                cause="account_inactive",
                severity="error",
                summary=f"{m['sid']} was never sent: {whose} was {status} before a dispatcher reached it, "
                f"at {when(inactive.get('at'))} (30002). It cost nothing.",
                evidence=_never_sent(30002, f),
                advice=unique(remedy(30002)),
            )
        ]
    geo_refused = next((e for e in f.events if e.get("kind") == "geo_not_permitted"), None)
    if geo_refused is not None:
        d = geo_refused.get("detail") or {}
        where = f"in {d['country']}" if d.get("country") else "in no country (a non-geographic range)"
        allowed = ", ".join(d.get("allowed_countries") or []) or "no country"
        return [
            Finding(
                cause="geo_not_permitted",
                severity="error",
                summary=f"{m['sid']} was never sent: {m.get('to')} is {where}, and by the time a dispatcher "
                f"reached it, at {when(geo_refused.get('at'))}, the account's geo permissions allowed {allowed} "
                "only (21408). It cost nothing.",
                evidence=_never_sent(21408, f),
                advice=unique(remedy(21408)),
            )
        ]
    expiry = next((e for e in f.events if e.get("kind") == "expired"), None)
    if expiry is not None or code == 30036:
        d = (expiry or {}).get("detail") or {}
        waited = d.get("waited_seconds")
        return [
            Finding(
                cause="expired",
                severity="error",
                summary=f"{m['sid']} waited {waited} s in the queue, longer than its validity period of "
                f"{d.get('validity_period', m.get('validity_period'))} s, and was never sent (30036).",
                evidence=_never_sent(30036, f),
                advice=unique(
                    [
                        *remedy(30036),
                        "Raise ValidityPeriod (at most 36000 s) only if the message is still useful that late.",
                        "A sender's queue drains at its pacing rate (a US long code sends 1 segment/s): spread "
                        "bulk sends over more senders (a Messaging Service pool) or use a faster sender type.",
                        *_QUEUE_ADVICE,
                    ]
                ),
            )
        ]
    gave_up = next((e for e in f.events if e.get("kind") == "resend_limit"), None)
    if gave_up is not None:
        d = gave_up.get("detail") or {}
        return [
            Finding(
                cause="resend_limit",
                severity="error",
                summary=f"Pigeon stopped sending {m['sid']} at {when(gave_up.get('at'))}: dispatchers marked it "
                f"sending {d.get('attempts')} times and each stopped before recording the carrier's answer "
                f"(the last was {d.get('last_dispatcher')}). It was failed (30008) rather than sent once more.",
                evidence=[message_row(m), explained(30008), *timeline(f.events), *[alert_row(a) for a in f.alerts]],
                advice=[
                    "Look in the workers' log, around each resend in the timeline, for what stopped the "
                    "dispatcher: a store error while recording the carrier's answer, or a worker that was killed.",
                    "Each of those submits may have reached the recipient: see the resends below.",
                ],
            )
        ]
    refusal = next(
        (e for e in reversed(f.events) if e.get("status") == "failed" and (e.get("detail") or {}).get("refused_by")),
        None,
    )
    detail = (refusal or {}).get("detail") or {}
    if refusal is None:
        how = "reported it failed"
    elif detail.get("outcome_unknown"):
        how = "never answered the last submit (it may have the message after all)"
    else:
        how = "refused the submit"
    carrier_code = detail.get("carrier_code")
    info = explained(code)
    return [
        Finding(
            cause="carrier_failed",
            severity="error",
            summary=f"The carrier {how} for {m['sid']}: {code} {info['name'] or ''}"
            + (f" (carrier answer {carrier_code})" if carrier_code else "")
            + ".",
            evidence=[message_row(m), info, *timeline(f.events), *[alert_row(a) for a in f.alerts]],
            advice=unique([*remedy(code), "A failed message is final: create a new one once the cause is fixed."]),
        )
    ]


def _canceled(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m = f.message
    event = next((e for e in f.events if e.get("kind") == "canceled"), None)
    return [
        Finding(
            cause="canceled",
            severity="info",
            summary=f"{m['sid']} was canceled before it was sent"
            + (f", at {when(event.get('at'))}" if event else "")
            + "; nothing went to the carrier.",
            evidence=[message_row(m), *timeline(f.events)],
            advice=["Create the message again if it should still go out."],
        )
    ]


# -- still on its way -------------------------------------------------------------------------------


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


def _waiting(f: MessageFacts, th: Thresholds) -> list[Finding]:
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
                advice=list(_QUEUE_ADVICE),
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


def _sending(f: MessageFacts, th: Thresholds) -> list[Finding]:
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
            advice=list(_QUEUE_ADVICE),
        )
    ]


def _sent(f: MessageFacts, th: Thresholds) -> list[Finding]:
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


def _scheduled(f: MessageFacts, th: Thresholds) -> list[Finding]:
    m = f.message
    send_at = m.get("send_at")
    if send_at is not None and send_at + th.stall < f.now:
        return [
            Finding(
                cause="stuck_in_queue",
                severity="error",
                summary=f"{m['sid']} was scheduled for {when(send_at)} and has not been queued since.",
                evidence=[message_row(m), *timeline(f.events)],
                advice=list(_QUEUE_ADVICE),
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


_BY_STATUS: dict[str, Callable[[MessageFacts, Thresholds], list[Finding]]] = {
    "undelivered": _undelivered,
    "failed": _failed,
    "canceled": _canceled,
    "sending": _sending,
    "sent": _sent,
    "scheduled": _scheduled,
    **dict.fromkeys(WAITING, _waiting),
}


def _reused_ids(f: MessageFacts) -> list[Finding]:
    reused = [e for e in f.events if e.get("kind") == "carrier_id_reused"]
    if not reused:
        return []
    said = []
    for e in reused:
        d = e.get("detail") or {}
        the_id = f"{d.get('carrier')} id {d.get('carrier_id')}"
        if "taken_by" in d:
            later = d.get("taken_by") or "a message of another account"
            said.append(
                f"the carrier gave this message's {the_id} to a later message ({later}) before this one's "
                "receipt came: a receipt for that id now goes to the later message, so this one may never get one"
            )
        else:
            earlier = d.get("previous_holder") or "a message of another account"
            said.append(
                f"the carrier had given its {the_id} before, to {earlier}, which was still waiting for its "
                "receipt: a receipt for that id is applied here, but it may be the earlier message's"
            )
    return [
        Finding(
            cause="carrier_id_reused",
            severity="warning",
            summary=f"{f.message['sid']}: " + "; ".join(unique(said)) + ".",
            evidence=[event_row(e) for e in reused],
            advice=[
                "SMSCs reuse message ids when their counter wraps or starts again after a restart. Ask the "
                "carrier for ids that stay unique for longer than a receipt can take.",
                "Each receipt is in the timeline of the message it was applied to, with the carrier's raw "
                "text: its submit and done dates tell whose it more likely was.",
            ],
        )
    ]


def _media_as_links(f: MessageFacts) -> list[Finding]:
    converted = [e for e in f.events if (e.get("detail") or {}).get("media_as_links")]
    if not converted:
        return []
    sent = converted[-1]["detail"]
    return [
        Finding(
            cause="media_as_links",
            severity="info",
            summary=f"{f.message['sid']} went out as an SMS with links to its {sent['media_as_links']} media "
            f"file(s), in {sent.get('segments_sent')} segment(s), not as an MMS: its Messaging Service converts "
            "MMS (MmsConverter), and either no carrier routed for the recipient carries media or its sender "
            "cannot send MMS.",
            evidence=[event_row(e) for e in converted],
            advice=[
                "To send MMS, route the recipient to a carrier that carries media and send from an MMS-capable number.",
                "To have such messages fail (30011) instead, turn MmsConverter off on the Messaging Service.",
            ],
        )
    ]


def _callbacks(f: MessageFacts) -> list[Finding]:
    failed = [e for e in f.events if e.get("kind") == "callback_failed"]
    if not failed:
        return []
    alerts = [a for a in f.alerts if a.get("error_code") in WEBHOOK_CODES]
    return [
        Finding(
            cause="status_callback_failing",
            severity="warning",
            summary=f"{len(failed)} status callback(s) of {f.message['sid']} never reached the application: "
            "its StatusCallback URL did not accept them.",
            evidence=[*[event_row(e) for e in failed], *[alert_row(a) for a in alerts]],
            advice=[
                "Make the StatusCallback URL answer 2xx quickly; Pigeon retries 408, 429 and 5xx answers with "
                "backoff, but a 4xx is the receiver's configuration and is not retried.",
                "The message's own status is in the log either way (fetch the message).",
            ],
        )
    ]
