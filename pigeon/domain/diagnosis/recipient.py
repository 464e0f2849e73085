""" "My message to this number wasn't delivered": the API's refusals (codes explained), the
opt-out behind a 21610, an erasure of the number, an application that never asked, and each
message to the number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pigeon.domain.diagnosis.blocked import OPT_IN, opted_out_finding
from pigeon.domain.diagnosis.erased import erased_before, erased_since, erasure_row, number_erased
from pigeon.domain.diagnosis.facts import RecipientFacts
from pigeon.domain.diagnosis.message import diagnose_message
from pigeon.domain.diagnosis.model import (
    Finding,
    Thresholds,
    explained,
    in_stored_form,
    not_e164,
    remedy,
    request_row,
    unique,
    when,
)
from pigeon.domain.geo import refusal


def diagnose_recipient(f: RecipientFacts, th: Thresholds | None = None) -> list[Finding]:
    out: list[Finding] = []
    if f.refused_requests:
        out.append(_rejected(f))
        if any(r.get("error_code") == 21610 for r in f.refused_requests):
            refused = [r for r in f.refused_requests if r.get("error_code") == 21610]
            out.append(opted_out_finding(f.to, f.opt_outs, refused) if f.opt_outs else _opted_back_in(f))
        if any(r.get("error_code") == 21408 for r in f.refused_requests) and f.geo is not None:
            out.append(_geo(f, f.geo))
    erased = erased_since(f.erasures, f.since, f.now)
    if erased:  # nothing found could mean nothing was there: it says what went, and when
        out.append(number_erased(f.to, erased))
    elif not f.messages and not f.refused_requests:
        found_nothing = "the message log (and the request log, for a number the API could read)"
        out.append(_never_requested(f) if in_stored_form(f.to) else not_e164(f.to, found_nothing))
    for mf in f.messages:
        out.extend(diagnose_message(mf, th))
    return out


def _geo(f: RecipientFacts, geo: Mapping[str, Any]) -> Finding:
    """The geo permissions behind the 21408s, as they are now: still refused, or allowed since."""
    country, allowed, set_by = geo.get("country"), geo.get("allowed"), geo.get("set_by")
    where = country or "no country (a non-geographic range)"
    whose = "no list applies" if set_by is None else f"the list of {set_by}"
    evidence = [{"source": "geo_permissions", "to": f.to, "country": country, "allowed": allowed, "set_by": set_by}]
    if allowed is None or refusal(f.to, country, frozenset(allowed)) is None:
        return Finding(
            cause="geo_not_permitted",
            severity="info",
            summary=f"{f.to} ({where}) was outside the account's geo permissions when it was refused, and is "
            f"allowed now ({whose}): a new request would not be refused for it.",
            evidence=evidence,
            advice=["Send the message again if it is still wanted."],
        )
    return Finding(
        cause="geo_not_permitted",
        severity="error",
        summary=f"{f.to} is in {where}, and this account may send to {', '.join(allowed)} only ({whose}).",
        evidence=evidence,
        advice=[
            "Check that the number carries the country code you intended.",
            f"If {country} is wanted, an operator adds it to that list: pigeon accounts geo {set_by} --allow "
            f"{','.join([*allowed, country])}."
            if country
            else "No list admits a number of no country: send to a national number, or let the account send "
            f"anywhere (pigeon accounts geo {set_by} --any).",
        ],
    )


def _rejected(f: RecipientFacts) -> Finding:
    reqs = f.refused_requests
    codes = unique(int(r["error_code"]) for r in reqs if r.get("error_code"))
    newest_refused = max(r["at"] for r in reqs)
    # The application's own sends: Pigeon's automatic replies to STOP and START are messages
    # to the number too, and no later request of the application's.
    sent = [mf.message["date_created"] for mf in f.messages if mf.message.get("direction") == "outbound-api"]
    later_success = bool(sent) and max(sent) > newest_refused
    # A 21610 whose opt-out is gone (the recipient opted back in) needs no "stop sending".
    lifted = {21610} if not f.opt_outs else set()
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
        advice=unique(a for c in codes if c not in lifted for a in remedy(c)),
    )


def _opted_back_in(f: RecipientFacts) -> Finding:
    """No opt-out is left of the senders the 21610s were for (`f.opt_outs` holds only theirs,
    or every one of the recipient's when a refusal named no From)."""
    senders = unique(str(r["from_"]) for r in f.refused_requests if r.get("error_code") == 21610 and r.get("from_"))
    of = f" of messages from {', '.join(senders)}" if senders else ""
    return Finding(
        cause="opted_back_in",
        severity="info",
        summary=f"{f.to} is not opted out{of} now: after the 21610 refusals it opted back in "
        f"({', '.join(OPT_IN)}), or its opt-out was removed. A new request would not be refused for that.",
        evidence=[{"source": "opt_outs", "to": f.to, "opted_out": False, "senders": senders}],
        advice=["Send the message again if it is still wanted."],
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
            },
            *[erasure_row(e) for e in f.erasures],
        ],
        advice=advice + erased_before(f.to, f.erasures),
    )
