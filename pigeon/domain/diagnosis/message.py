""" "My message wasn't delivered": the rules for one message, and for a recipient's messages.

A delivered message submitted once with one receipt has nothing to report. Otherwise the
message's status and timeline say where it stopped: the carrier's answer (undelivered,
failed), the queue (expired, stuck, retrying), no receipt yet, a schedule, a cancel; and for
an inbound message, what became of the application's webhook.

The rule for each status is in `outcomes` (a final status) or `in_flight` (still on its way);
inbound messages are `inbound`'s. Here: the choice among them, and the findings that hold
whatever the status (Pigeon's resends, a carrier id reused, media sent as links, failing
status callbacks). Media sent as links are `media`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from pigeon.domain.diagnosis import in_flight, outcomes
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.domain.diagnosis.inbound import WEBHOOK_CODES, diagnose_inbound
from pigeon.domain.diagnosis.media import media_as_links
from pigeon.domain.diagnosis.model import WAITING, Finding, Thresholds, alert_row, event_row, unique
from pigeon.domain.diagnosis.submits import submit_findings


def diagnose_message(f: MessageFacts, th: Thresholds | None = None) -> list[Finding]:
    th = th or Thresholds()
    m = f.message
    if m.get("direction") == "inbound":
        return diagnose_inbound(f)
    rule = _BY_STATUS.get(str(m.get("status")))
    found = rule(f, th) if rule else []
    return [*found, *submit_findings(f), *_reused_ids(f), *media_as_links(f), *_callbacks(f)]


_BY_STATUS: dict[str, Callable[[MessageFacts, Thresholds], list[Finding]]] = {
    "undelivered": outcomes.undelivered,
    "failed": outcomes.failed,
    "canceled": outcomes.canceled,
    "sending": in_flight.sending,
    "sent": in_flight.sent,
    "scheduled": in_flight.scheduled,
    **dict.fromkeys(WAITING, in_flight.waiting),
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
