"""A message the store does not have: erased with a phone number's data, deleted through the
API, removed by the retention, or never there (a wrong SID or account).

The erasure's record says when it went (it keeps the SID as a keyed fingerprint only).

The request log says who deleted it (it keeps DELETE requests for `PIGEON_REQUEST_LOG_DAYS`);
the SID itself says when it was made (its leading digits are the time), which is enough to
tell that the retention removed it."""

from __future__ import annotations

from datetime import timedelta

from pigeon.domain.diagnosis.erased import message_erased
from pigeon.domain.diagnosis.facts import MissingFacts
from pigeon.domain.diagnosis.model import Finding, request_row, when


def diagnose_missing(f: MissingFacts) -> Finding:
    if f.erasure is not None:
        return message_erased(f.sid, f.erasure)
    made = [{"source": "sid", "sid": f.sid, "made_at": f.made_at}] if f.made_at else []
    if f.deletions:
        first = f.deletions[0]
        who = ", ".join(str(v) for v in (first.get("source_ip"), first.get("user_agent")) if v)
        return Finding(
            cause="message_deleted",
            severity="warning",
            summary=f"Message {f.sid} was deleted through the API at {when(first.get('at'))}"
            f" (request {first.get('sid')}{', from ' + who if who else ''}).",
            evidence=[request_row(d) for d in f.deletions] + made,
            advice=[
                "A deleted message is gone with its timeline and cannot be brought back.",
                "If nobody meant to delete it, the request's source address and user agent say which"
                ' program did. To keep the record but not the text, redact it instead (Body="").',
            ],
        )
    if f.made_at and f.message_days > 0 and f.made_at < f.now - timedelta(days=f.message_days):
        return Finding(
            cause="message_past_retention",
            severity="warning",
            summary=f"Message {f.sid} was made on {when(f.made_at)}, more than {f.message_days:g} days ago:"
            f" if it was this account's, the retention (PIGEON_MESSAGE_DAYS={f.message_days:g}) has removed"
            " it with its timeline.",
            evidence=made,
            advice=[
                "Raise PIGEON_MESSAGE_DAYS to keep messages longer, or export them before they go"
                " (`pigeon logs --export`).",
            ],
        )
    return Finding(
        cause="message_not_found",
        severity="error",
        summary=f"There is no message {f.sid} on account {f.account_sid}.",
        evidence=[{"source": "message", "sid": f.sid, "found": False}, *made],
        advice=[
            "Check the SID and the account (--account). The request log has no DELETE of it on"
            " this account (it keeps requests for PIGEON_REQUEST_LOG_DAYS), and no erasure removed it.",
            "Without a SID, ask about the recipient instead: `pigeon doctor message --to NUMBER`.",
        ],
    )
