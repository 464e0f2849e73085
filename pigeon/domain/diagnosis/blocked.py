"""A From/To pair that gets 21610: the opt-out behind it and how the recipient opts back in."""

from __future__ import annotations

from collections.abc import Sequence

from pigeon.domain.diagnosis.facts import BlockedFacts, Row
from pigeon.domain.diagnosis.model import Finding, in_stored_form, not_e164, request_row, unique, when

#: What the recipient texts to opt back in (pigeon.domain.optout.OPT_IN_KEYWORDS, in the order we say them).
OPT_IN = ("START", "YES", "UNSTOP")


def opt_out_row(row: Row) -> dict[str, object]:
    return {
        "source": "opt_out",
        "recipient": row.get("recipient"),
        "sender": row.get("sender"),
        "scope": row.get("scope"),
        "keyword": row.get("keyword"),
        "at": row.get("date_created"),
        "inbound_message_sid": row.get("inbound_message_sid"),
        "inbound_body": row.get("inbound_body"),
        "inbound_at": row.get("inbound_at"),
        "opt_in_keywords": list(OPT_IN),
    }


def opted_out_finding(to: str, opt_outs: Sequence[Row], refused: Sequence[Row] = ()) -> Finding:
    first = opt_outs[0]
    scope = first.get("scope")
    sender = first.get("sender")
    where = f"any number of Messaging Service {sender}" if scope == "service" else str(sender)
    message = first.get("inbound_message_sid")
    summary = (
        f"{to} opted out of messages from {where} by texting {first.get('keyword')} at {when(first.get('date_created'))}"
        + (f" (message {message})" if message else "")
        + ". Pigeon refuses sends to them with 21610."
    )
    advice = [
        f"Only the recipient can lift it: they text {', '.join(OPT_IN[:-1])} or {OPT_IN[-1]} to {where}.",
        "Pigeon does not send to or charge for an opted-out recipient; do not work around an opt-out by texting "
        "them from another number (carriers treat that as spam).",
    ]
    if scope == "service":
        advice.append(
            "The opt-out covers every sender in the Messaging Service: another number of the same service is "
            "blocked too."
        )
    if len(opt_outs) > 1:
        advice.append(
            f"{len(opt_outs)} opt-outs apply to this pair (the number's and its service's); each must be lifted."
        )
    return Finding(
        cause="opted_out",
        severity="error",
        summary=summary,
        evidence=[*[opt_out_row(r) for r in opt_outs], *[request_row(r) for r in refused]],
        advice=unique(advice),
    )


def diagnose_blocked(f: BlockedFacts) -> list[Finding]:
    if not f.opt_outs:
        return [] if in_stored_form(f.to) else [not_e164(f.to, "the opt-out list")]
    return [opted_out_finding(f.to, f.opt_outs, f.refused_requests)]
