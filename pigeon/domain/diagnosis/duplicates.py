"""Duplicates: where did the second text come from?

Messages with the same sender, recipient and content (content_hash) created within a few
seconds of each other are a group. Several records: the application made several requests
(each one is in the request log: time, source address, user agent, idempotency key). One
record: count Pigeon's submits to the carrier; one submit with two delivered receipts is the
carrier's duplicate, two or more submits are Pigeon's own resend, and the timeline says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pigeon.domain.decimals import decimal_number
from pigeon.domain.diagnosis.erased import erased_since, number_erased
from pigeon.domain.diagnosis.facts import DuplicateFacts, DuplicateGroup, Row
from pigeon.domain.diagnosis.model import (
    Finding,
    Thresholds,
    in_stored_form,
    message_row,
    not_e164,
    request_row,
    unique,
    when,
)
from pigeon.domain.diagnosis.submits import submit_findings
from pigeon.domain.quoted import shown

#: The widest window the search takes, in seconds (a day): past it, a daily reminder would be
#: grouped with yesterday's as a duplicate.
MAX_WINDOW_SECONDS = 86_400.0


def parse_window(text: str) -> float:
    """The seconds between texts that count as duplicates, as typed: a decimal
    (pigeon.domain.decimals) above 0 and at most a day. Raises ValueError, with the sentence
    to show, for anything else ("1e3", "nan", " 10 " and "1_0" too)."""
    seconds = decimal_number(text)
    if seconds is None or not 0 < seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"Window {shown(text)} is not a number of seconds above 0 and at most {MAX_WINDOW_SECONDS:g}.")
    return float(seconds)


def group_similar(messages: Sequence[Row], window_seconds: float) -> list[list[Row]]:
    """Messages with the same (from, to, content_hash), each within `window_seconds` of the
    previous one in its group, oldest first. Singletons are groups too."""
    window = timedelta(seconds=window_seconds)
    ordered = sorted(
        messages, key=lambda m: (m.get("from_") or "", m["to"], m.get("content_hash") or m["sid"], m["date_created"])
    )
    groups: list[list[Row]] = []
    for m in ordered:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and m.get("content_hash")
            and (last.get("from_"), last["to"], last.get("content_hash"))
            == (m.get("from_"), m["to"], m["content_hash"])
            and m["date_created"] - last["date_created"] <= window
        ):
            groups[-1].append(m)
        else:
            groups.append([m])
    return groups


_MULTIPLE_ADVICE = [
    "Send an Idempotency-Key header with each create and reuse it when the application retries: Pigeon then "
    "answers with the first message instead of sending another.",
    "Look for what repeats the request: an HTTP client that retries after a timeout, a job queue that runs a task "
    "twice, a form submitted twice.",
]


def _multiple(group: DuplicateGroup) -> Finding:
    msgs = [mf.message for mf in group.messages]
    first, last = msgs[0], msgs[-1]
    span = (last["date_created"] - first["date_created"]).total_seconds()
    reqs = list(group.requests)
    advice = list(_MULTIPLE_ADVICE)
    if reqs:
        sources = unique(str(r.get("source_ip")) for r in reqs)
        agents = unique(str(r.get("user_agent")) for r in reqs)
        keys = unique(str(r.get("idempotency_key")) for r in reqs if r.get("idempotency_key"))
        said = (
            f" The request log has {len(reqs)} request(s) for them from {len(sources)} address(es) "
            f"({', '.join(sources)}) with {len(agents)} user agent(s)"
            + (f" and idempotency keys {', '.join(keys)}." if keys else " and no idempotency key.")
        )
        if len(sources) > 1:
            advice.append(
                f"The requests came from {len(sources)} different addresses: more than one instance of the "
                "application sent this text."
            )
        if len(keys) > 1:
            advice.append(
                "Each request carried a different Idempotency-Key: reuse the key of the first attempt on retries, "
                "or Pigeon cannot know they are the same message."
            )
    else:
        said = " The request log has no entry for them (older than its retention, or created outside the API)."
    return Finding(
        cause="app_sent_multiple_requests",
        severity="warning",
        summary=f"{len(msgs)} messages from {first.get('from_')} to {first['to']} with the same text were created "
        f"within {span:.1f} s (from {when(first['date_created'])}): the application asked for each of them." + said,
        evidence=[*[message_row(m) for m in msgs], *[request_row(r) for r in reqs]],
        advice=advice,
    )


def diagnose_duplicates(f: DuplicateFacts, th: Thresholds | None = None) -> list[Finding]:
    if not f.groups and f.to is not None and not in_stored_form(f.to):
        return [not_e164(f.to, "the message log")]
    out: list[Finding] = []
    for group in f.groups:
        if len(group.messages) > 1:
            out.append(_multiple(group))
        for mf in group.messages:
            out.extend(submit_findings(mf))
    erased = erased_since(f.erasures, f.since, f.now)
    if f.to is not None and erased:  # what was erased cannot be compared: no clean result
        out.append(number_erased(f.to, erased))
    return out
