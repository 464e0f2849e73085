""" "My message to this number wasn't delivered": the API's refusals (codes explained), the
opt-out behind a 21610, an application that never asked, and each message to the number."""

from __future__ import annotations

from pigeon.domain.diagnosis.blocked import opted_out_finding
from pigeon.domain.diagnosis.facts import RecipientFacts
from pigeon.domain.diagnosis.message import diagnose_message
from pigeon.domain.diagnosis.model import Finding, Thresholds, explained, remedy, request_row, unique, when


def diagnose_recipient(f: RecipientFacts, th: Thresholds | None = None) -> list[Finding]:
    out: list[Finding] = []
    if f.refused_requests:
        out.append(_rejected(f))
        if any(r.get("error_code") == 21610 for r in f.refused_requests) and f.opt_outs:
            out.append(
                opted_out_finding(f.to, f.opt_outs, [r for r in f.refused_requests if r.get("error_code") == 21610])
            )
    if not f.messages and not f.refused_requests:
        out.append(_never_requested(f))
    for mf in f.messages:
        out.extend(diagnose_message(mf, th))
    return out


def _rejected(f: RecipientFacts) -> Finding:
    reqs = f.refused_requests
    codes = unique(int(r["error_code"]) for r in reqs if r.get("error_code"))
    newest_refused = max(r["at"] for r in reqs)
    newest_message = max((mf.message["date_created"] for mf in f.messages), default=None)
    later_success = newest_message is not None and newest_message > newest_refused
    named = ", ".join(f"{c} {explained(c)['name'] or ''}".strip() for c in codes) or "HTTP errors"
    unchecked = sum(1 for r in reqs if r.get("account_sid") is None)
    return Finding(
        cause="rejected_by_api",
        severity="warning" if later_success else "error",
        summary=f"The API refused {len(reqs)} request(s) to send to {f.to} since {when(f.since)}: {named}."
        + (" A later request went through." if later_success else " No message was created for them.")
        + (
            f" {unchecked} of them name this account in their URL but were refused before their credentials "
            "were accepted (wrong credentials, or the database out of reach): most likely your application's, "
            "but anyone can name an account."
            if unchecked
            else ""
        ),
        evidence=[
            *[explained(c) for c in codes],
            *[request_row(r) for r in reqs],
        ],
        advice=unique(a for c in codes for a in remedy(c)),
    )


def _never_requested(f: RecipientFacts) -> Finding:
    if f.requests_in_window == 0:
        summary = (
            f"No request to send a message reached Pigeon from this account since {when(f.since)}, and there is "
            f"no message to {f.to}: the application never called the API."
        )
        advice = [
            "Check the base URL the application's SDK uses: it must point at this Pigeon (only the base URL "
            "changes from Twilio).",
            "Check the application's own logs for an error before its request, and anything between it and Pigeon "
            "(proxy, firewall, DNS).",
            "Requests that fail authentication are logged without an account: `pigeon requests` shows them.",
        ]
    else:
        summary = (
            f"{f.requests_in_window} request(s) to send reached Pigeon from this account since {when(f.since)}, "
            f"none for {f.to}: the application never asked to text this number."
        )
        advice = [
            f"Check the number the application uses for this recipient; write it in E.164 ({f.to}).",
            "Check the application's logic that decides to send (a job that did not run, a condition not met).",
        ]
    return Finding(
        cause="never_requested",
        severity="error",
        summary=summary,
        evidence=[
            {
                "source": "request_log",
                "to": f.to,
                "since": f.since,
                "requests_for_number": 0,
                "requests_in_window": f.requests_in_window,
            }
        ],
        advice=advice,
    )
