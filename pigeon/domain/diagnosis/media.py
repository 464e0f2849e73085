"""A message with media that could not go as MMS: sent as an SMS with links (MmsConverter), or
failed with 30011 before any submit. Either way for one of two reasons, which the dispatcher
records (`pigeon.domain.mms.obstacles`): its sender cannot send MMS, or no carrier routed for
its recipient carries media. The advice is the one that helps with that reason: a carrier for
media does not help a sender that cannot send MMS, nor an MMS-capable sender a route that
carries text only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pigeon.domain import mms
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.domain.diagnosis.model import Finding, alert_row, event_row, explained, message_row, timeline, unique

#: The codes of the dispatcher's refusal of media, by what stood in their way.
REFUSAL_CODES = {"media:sender": mms.SENDER, "media:unsupported": mms.ROUTE}

_WHY = {
    mms.SENDER: "its sender {sender} cannot send MMS (not an MMS-capable number: a number without the "
    "capability, a short code or an alphanumeric sender)",
    mms.ROUTE: "no carrier routed for {to} carries media (SMPP carries text only)",
}
_FIX = {
    mms.SENDER: "To send MMS, send from an MMS-capable number: add one to the Messaging Service's pool (a "
    "message with media takes one first), or turn MMS on for the number.",
    mms.ROUTE: "To send MMS, route the recipient to a carrier that carries media.",
}


def _because(why: Sequence[str], m: Mapping[str, Any]) -> str:
    return " and ".join(_WHY[w].format(sender=m.get("from_"), to=m.get("to")) for w in why if w in _WHY)


def media_as_links(f: MessageFacts) -> list[Finding]:
    converted = [e for e in f.events if (e.get("detail") or {}).get("media_as_links")]
    if not converted:
        return []
    sent = converted[-1]["detail"]
    why = [w for w in sent.get("media_as_links_because") or () if w in _WHY]
    if why:
        reason = f"{_because(why, f.message)}, and its Messaging Service converts MMS (MmsConverter)"
    else:  # recorded before the dispatcher said which
        reason = (
            "its Messaging Service converts MMS (MmsConverter), and either no carrier routed for the "
            "recipient carries media or its sender cannot send MMS"
        )
    fixes = [_FIX[w] for w in why] if why else [_FIX[mms.ROUTE], _FIX[mms.SENDER]]
    return [
        Finding(
            cause="media_as_links",
            severity="info",
            summary=f"{f.message['sid']} went out as an SMS with links to its {sent['media_as_links']} media "
            f"file(s), in {sent.get('segments_sent')} segment(s), not as an MMS: {reason}.",
            evidence=[event_row(e) for e in converted],
            advice=[
                *fixes,
                "Turning MmsConverter off does not make such a message an MMS: it fails (30011) instead of "
                "going as links.",
            ],
        )
    ]


def media_refused(f: MessageFacts, refusal: Mapping[str, Any] | None) -> list[Finding]:
    """The finding for a message failed with 30011 by the dispatcher's refusal of its media
    (`refusal`: its `failed` entry); empty for any other failure."""
    detail = (refusal or {}).get("detail") or {}
    refused = detail.get("refused_by") or ()
    codes = unique(REFUSAL_CODES[r["carrier_code"]] for r in refused if r.get("carrier_code") in REFUSAL_CODES)
    # The dispatcher's own account of it; a refusal recorded before it gave one: its carriers' codes.
    why = [w for w in detail.get("media_refused_because") or () if w in _WHY] if codes else []
    why = why or codes
    if not why:
        return []
    m = f.message
    converting = (
        "Turn MmsConverter on for its Messaging Service: such media then go as links in an SMS."
        if m.get("messaging_service_sid")
        else "Send through a Messaging Service with MmsConverter on (the default): such media then go as "
        "links in an SMS."
    )
    return [
        Finding(
            cause="media_refused",
            severity="error",
            summary=f"{m['sid']} was never sent (30011): {_because(why, m)}, and nothing converted its media "
            "to links. No carrier was asked; it cost nothing.",
            evidence=[message_row(m), explained(30011), *timeline(f.events), *[alert_row(a) for a in f.alerts]],
            advice=[*(_FIX[w] for w in why), converting],
        )
    ]
