"""An inbound message: was the application told, did its webhook answer with usable TwiML,
did its replies go out?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.domain.diagnosis.hops import redirected, timeline_hop_rows
from pigeon.domain.diagnosis.model import (
    Finding,
    alert_row,
    explained,
    message_row,
    remedy,
    timeline,
    unique,
)
from pigeon.domain.error_catalogue import explain

#: Codes of an application's answer that was not usable TwiML.
TWIML_CODES = frozenset({11100, 11750, 12100, 12200, 12300, 14101, 14102, 14103, 14104, 14105, 14106, 14109, 14110})
#: Codes of a webhook that could not be reached or answered with an error.
WEBHOOK_CODES = frozenset({11200, 11205, 11206, 11210, 11215, 11216, 11220, 11235, 11236, 11237})
#: Alerts about a TwiML reply that could not be sent (besides the send's own refusals).
REPLY_CODES = frozenset({14101, 14102, 14103, 14105, 14107, 14108})


#: Where an inbound message's webhook URL was missing, by the ``source`` of its ``no_webhook`` entry.
_NO_URL: dict[str | None, str] = {
    "number": "has no SmsUrl",
    "service": "is in a Messaging Service that has no InboundRequestUrl (and does not use the number's own)",
    None: "has no webhook (on the number or its Messaging Service)",
}


def _about_a_reply(alert: Mapping[str, Any]) -> bool:
    """Whether an alert on an inbound message says one of the application's TwiML replies was
    not sent: a 141xx code, or the code the send refused it with (21610 for a recipient who
    just texted STOP, 21611, 21408 …), which is otherwise only ever an API answer."""
    if alert.get("request_url"):
        return False
    code = alert.get("error_code")
    if not isinstance(code, int):
        return False
    info = explain(code)
    return code in REPLY_CODES or (info is not None and info.kind == "api")


def diagnose_inbound(f: MessageFacts) -> list[Finding]:
    m = f.message
    failed = [e for e in f.events if e.get("kind") == "webhook_failed"]
    answered = [e for e in f.events if e.get("kind") == "webhook"]
    hook_alerts = [a for a in f.alerts if a.get("request_url")]
    untold = [a for a in f.alerts if a.get("error_code") == 11200 and not a.get("request_url")]
    # The timeline entry outlasts the alert (the error log is pruned sooner) and names where the
    # URL was missing; messages received before it was written have the alert only.
    told_no_one = [e for e in f.events if e.get("kind") == "no_webhook"]
    out: list[Finding] = []
    if (told_no_one or untold) and not failed and not answered:
        source = (told_no_one[0].get("detail") or {}).get("source") if told_no_one else None
        out.append(
            Finding(
                cause="no_webhook",
                severity="error",
                summary=f"{m['sid']} from {m.get('from_')} was stored, but no application was told: {m.get('to')} "
                f"{_NO_URL.get(source, _NO_URL[None])}.",
                evidence=[message_row(m), *timeline(told_no_one), *[alert_row(a) for a in untold]],
                advice=["Set SmsUrl on the number, or the InboundRequestUrl of its Messaging Service."],
            )
        )
    if hook_alerts:
        code = hook_alerts[0].get("error_code")
        twiml = code in TWIML_CODES
        out.append(
            Finding(
                cause="invalid_twiml" if twiml else "webhook_failing",
                severity="warning" if answered and not failed else "error",
                summary=f"The application's webhook {'answered with unusable TwiML' if twiml else 'failed'} for "
                f"{m['sid']}: {code} {explained(code)['name'] or ''}"
                + (" (the fallback URL answered)." if answered and not failed else "."),
                evidence=[
                    message_row(m),
                    explained(code),
                    *[alert_row(a) for a in hook_alerts],
                    *timeline_hop_rows(f.events),
                    *timeline(f.events),
                ],
                advice=unique(remedy(code)),
            )
        )
    hops = timeline_hop_rows(answered)
    if hops and not hook_alerts and not failed:
        out.append(redirected(f"The application's webhook for {m['sid']}", hops, None))
    replies = [a for a in f.alerts if _about_a_reply(a)]
    if replies:
        codes = ", ".join(
            f"{c} {explained(c)['name'] or ''}".strip() for c in sorted({a["error_code"] for a in replies})
        )
        out.append(
            Finding(
                cause="reply_not_sent",
                severity="warning",
                summary=f"{len(replies)} reply(ies) from the application's TwiML to {m['sid']} were not sent: {codes}.",
                evidence=[alert_row(a) for a in replies],
                advice=unique(r for a in replies for r in remedy(a.get("error_code"))),
            )
        )
    return out
