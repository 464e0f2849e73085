"""A message that ended without reaching the handset: why, in the carrier's words or Pigeon's.

`undelivered`: the carrier's receipt said so. `failed`: the carrier refused the submit or
reported failed, or Pigeon never sent the message (its account was inactive, its country left
the geo permissions, its From number left the account, its recipient opted out, its service's
pool had no sender for it at its SendAt, it expired in the queue, dispatchers kept stopping
mid-submit, its media could not go as MMS and nothing converted them: `media`).
`canceled`: canceled before it went out. Each takes the facts and thresholds of
`diagnose_message` and returns its findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pigeon.domain.diagnosis.blocked import OPT_IN, opt_out_row
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.domain.diagnosis.in_flight import QUEUE_ADVICE
from pigeon.domain.diagnosis.media import media_refused
from pigeon.domain.diagnosis.model import (
    Finding,
    Thresholds,
    alert_row,
    explained,
    message_row,
    part_row,
    remedy,
    timeline,
    unique,
    when,
)


def undelivered(f: MessageFacts, th: Thresholds) -> list[Finding]:
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


#: Timeline entries of a message failed because its From number left the account before it went
#: out: what happened, and when (the release or move, or the claim that found the number gone).
_SENDER_LEFT = {
    "number_released": "was released from the account at {at}, before a dispatcher reached it",
    "number_transferred": "moved to another account at {at}, before a dispatcher reached it",
    "number_left_account": "had left the account after the message was accepted (released, or moved to "
    "another account), as the dispatcher that took it found at {at}",
}


def _sender_released(f: MessageFacts, event: Mapping[str, Any]) -> Finding:
    m = f.message
    sender = (event.get("detail") or {}).get("sender") or m.get("from_")
    said = _SENDER_LEFT[event["kind"]].format(at=when(event.get("at")))
    return Finding(
        cause="sender_released",
        severity="error",
        summary=f"{m['sid']} was never sent: its From number {sender} {said} (21606). It cost nothing.",
        evidence=_never_sent(21606, f),
        advice=[
            "Send it again from a number the account holds (or through a Messaging Service): messages waiting "
            "to go from a number fail when the number leaves the account, so that they never reach anyone "
            "from a number that is not the account's any more.",
        ],
    )


def _when_iso(text: Any) -> str:
    """A time kept in a timeline entry's detail (ISO 8601), as the doctor writes times."""
    try:
        return when(datetime.fromisoformat(str(text))) if text else when(None)
    except ValueError:
        return str(text)


def _opted_out_while_waiting(f: MessageFacts, event: Mapping[str, Any]) -> Finding:
    """A message failed at the claim (21610): its recipient opted out after it was accepted."""
    m = f.message
    d = event.get("detail") or {}
    opted_out_of = d.get("opted_out_of") or m.get("from_")
    service = d.get("scope") == "service"
    where = f"any number of Messaging Service {opted_out_of}" if service else str(opted_out_of)
    inbound = d.get("inbound_message_sid")
    advice = [
        f"Only the recipient can lift it: they text {', '.join(OPT_IN[:-1])} or {OPT_IN[-1]} to {where}. "
        "Do not send it again until they do, nor from another number (carriers treat that as spam).",
        "Messages accepted before a STOP fail when they would go out, as on Twilio: a scheduled message, or one "
        "waiting in a sender's queue, is checked again then.",
    ]
    if service:
        advice.append("The opt-out covers every sender of the Messaging Service, whichever one the message had.")
    return Finding(
        cause="opted_out_while_waiting",
        severity="error",
        summary=f"{m['sid']} was never sent: {m.get('to')} opted out of messages from {where} by texting "
        f"{d.get('keyword')} at {_when_iso(d.get('opted_out_at'))}"
        + (f" (message {inbound})" if inbound else "")
        + f", after the message was accepted; the dispatcher that reached it at {when(event.get('at'))} failed it "
        "(21610). It cost nothing.",
        evidence=[
            opt_out_row(
                {
                    "recipient": m.get("to"),
                    "sender": opted_out_of,
                    "scope": d.get("scope"),
                    "keyword": d.get("keyword"),
                    "date_created": d.get("opted_out_at"),
                    "inbound_message_sid": inbound,
                }
            ),
            *_never_sent(21610, f),
        ],
        advice=advice,
    )


#: What to do about a scheduled message whose service had no sender for it at its SendAt, by code.
_NO_POOL_SENDER = {
    21701: "The Messaging Service was deleted after the message was scheduled: schedule it again through a "
    "service that exists, or from a number of the account.",
    21704: "The service's pool was emptied after the message was scheduled: put a number, short code or "
    "alphanumeric sender in it, then schedule the message again.",
    21703: "No sender left in the service's pool can reach the recipient (its country, short codes' "
    "countries, where alphanumeric senders are taken): add one that can, then schedule the message again.",
}


def _no_pool_sender(f: MessageFacts, event: Mapping[str, Any]) -> Finding:
    """A scheduled message failed at its SendAt: its service's pool had no sender for it then."""
    m, d = f.message, event.get("detail") or {}
    code = int(event.get("error_code") or m.get("error_code") or 0)
    return Finding(
        cause="no_pool_sender",
        severity="error",
        summary=f"{m['sid']} was never sent: when its SendAt came, at {when(event.get('at'))}, its Messaging "
        f"Service {d.get('messaging_service_sid')} had no sender for {m.get('to')} ({code}: {d.get('reason')}). "
        f"The pool chooses a scheduled message's sender then, not when it is created (it had chosen "
        f"{d.get('sender_was')}). It cost nothing.",
        evidence=_never_sent(code, f),
        advice=unique([*([_NO_POOL_SENDER[code]] if code in _NO_POOL_SENDER else []), *remedy(code)]),
    )


def failed(f: MessageFacts, th: Thresholds) -> list[Finding]:
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
    released = next((e for e in f.events if e.get("kind") in _SENDER_LEFT), None)
    if released is not None:
        return [_sender_released(f, released)]
    opted_out = next((e for e in f.events if e.get("kind") == "opted_out"), None)
    if opted_out is not None:
        return [_opted_out_while_waiting(f, opted_out)]
    no_sender = next((e for e in f.events if e.get("kind") == "no_pool_sender"), None)
    if no_sender is not None:
        return [_no_pool_sender(f, no_sender)]
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
                        *QUEUE_ADVICE,
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
    media = media_refused(f, refusal)
    if media:
        return media
    detail = (refusal or {}).get("detail") or {}
    if refusal is None:
        how = "reported it failed"
    elif detail.get("outcome_unknown"):
        later = f.events[f.events.index(refusal) + 1 :]
        late = next((e for e in later if e.get("kind") == "refused_late"), None)
        how = (
            "never answered the last submit (it may have the message after all)"
            if late is None
            else f"answered the last submit only after giving up on it, with a refusal "
            f"({(late.get('detail') or {}).get('carrier_code')}): it does not have the message"
        )
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


def canceled(f: MessageFacts, th: Thresholds) -> list[Finding]:
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
