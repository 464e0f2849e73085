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
        # What the recipient texts to lift it: nothing Pigeon sees, for a short code outside any
        # Messaging Service (its application takes the keywords; `start_lifts` False).
        "opt_in_keywords": list(OPT_IN) if row.get("start_lifts", True) else [],
    }


def _where(row: Row) -> str:
    sender = row.get("sender")
    return f"any number of Messaging Service {sender}" if row.get("scope") == "service" else str(sender)


def _how_lifted(to: str, row: Row) -> str:
    """What lifts the opt-out `row`: the recipient's START, or for a short code outside any
    Messaging Service (whose keywords Pigeon leaves to its application) an operator."""
    if row.get("start_lifts", True):
        return f"Only the recipient can lift it: they text {', '.join(OPT_IN[:-1])} or {OPT_IN[-1]} to {_where(row)}."
    sender = row.get("sender")
    return (
        f"{sender} is a short code in none of the account's Messaging Services: Pigeon leaves the keywords "
        "texted to it to your application, so the recipient's START does not lift this opt-out. Once they have "
        f"opted back in with your application, an operator removes it: pigeon optouts remove --account "
        f"{row.get('account_sid')} --recipient {row.get('recipient')} --sender {sender} --yes (or put {sender} "
        f"in a Messaging Service, where START from {to} lifts it)."
    )


def opted_out_finding(to: str, opt_outs: Sequence[Row], refused: Sequence[Row] = ()) -> Finding:
    first = opt_outs[0]
    scope = first.get("scope")
    message = first.get("inbound_message_sid")
    summary = (
        f"{to} opted out of messages from {_where(first)} by texting {first.get('keyword')} at "
        f"{when(first.get('date_created'))}"
        + (f" (message {message})" if message else "")
        + ". Pigeon refuses sends to them with 21610."
    )
    advice = [
        # START to one sender lifts every opt-out of the pair that START lifts (the number's and
        # its service's, pigeon.app.inbound_keywords): one line says so.
        *unique(_how_lifted(to, row) for row in opt_outs if row.get("start_lifts", True))[:1],
        *(_how_lifted(to, row) for row in opt_outs if not row.get("start_lifts", True)),
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
