"""The doctor's use cases: gather the facts from the store, let `pigeon.domain.diagnosis` judge.

Four flows (DESIGN.md §4), each returning a `Report`:

- `diagnose_message` / `diagnose_recipient`: "my message wasn't delivered" (by SID, or by
  recipient: its messages, or the refused requests in the request log, or nothing at all);
- `diagnose_number`: "my number receives nothing", with a signed test request to the
  webhook (see `pigeon.app.diagnose_probe`);
- `diagnose_blocked`: the opt-out behind a 21610;
- `diagnose_duplicates`: where a second text came from.

Everything here only reads; call it inside a read transaction (`diagnose_number` opens its own).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import optouts as optout_use
from pigeon.app import services
from pigeon.app.accounts import geo_permissions
from pigeon.app.callback_delivery import Transactions
from pigeon.app.diagnose_numbers import AskedNumber, logged_spellings, normalise, read_number
from pigeon.app.diagnose_probe import ProbePlan, plan_probe, probe_webhook
from pigeon.app.inbound import webhook_target
from pigeon.domain import diagnosis as rules
from pigeon.domain import numbers, sids
from pigeon.domain.diagnosis import Report, Thresholds
from pigeon.domain.diagnosis.erased import erased_since
from pigeon.domain.diagnosis.model import in_stored_form, unique
from pigeon.ports import WebhookSender
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import diagnosis as store
from pigeon.store import dispatch as dispatch_store
from pigeon.store import erasure_log
from pigeon.store import messages as message_store
from pigeon.store import services as service_store
from pigeon.store.numbers import find_by_number

Row = dict[str, Any]

DEFAULT_SINCE = timedelta(hours=24)
#: A recipient's messages that the recipient flow looks at: the newest changed in the window,
#: and as many again of those still open from before it (store.outbound_to).
RECIPIENT_MESSAGES = 5
#: Messages the duplicate search looks at, at most.
DUPLICATE_SCAN = 500
#: How far back the blocked flow looks for refused sends.
BLOCKED_REQUESTS = timedelta(days=30)


def message_facts(conn: Connection, row: Mapping[str, Any], now: datetime) -> rules.MessageFacts:
    sid, account_sid = row["sid"], row["account_sid"]
    ahead = unmatched = 0
    if row["status"] in {"accepted", "queued"} and row["from_"]:
        due = row["next_attempt_at"] or row["date_created"]
        ahead = store.queue_ahead(conn, sender=row["from_"], account_sid=account_sid, due=due, sid=sid)
    if row["status"] == "sent" and row["carrier"] and row["date_sent"]:
        unmatched = store.unmatched_since(conn, carrier=row["carrier"], since=row["date_sent"])
    return rules.MessageFacts(
        message=row,
        events=message_store.list_events(conn, sid, account_sid=account_sid),
        now=now,
        parts=dispatch_store.parts_of(conn, sid),
        alerts=alert_store.list_alerts(conn, account_sid=account_sid, resource_sid=sid, limit=20),
        queue_ahead=ahead,
        unmatched_receipts=unmatched,
    )


def _message_subject(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "message_sid": row["sid"],
        "direction": row["direction"],
        "from": row["from_"],
        "to": row["to"],
        "status": row["status"],
        "error_code": row["error_code"],
        "date_created": row["date_created"],
    }


# -- my message wasn't delivered --------------------------------------------------------------------


def diagnose_message(
    conn: Connection,
    account_sid: str,
    sid: str,
    *,
    now: datetime,
    thresholds: Thresholds | None = None,
    message_days: float = 0.0,
) -> Report:
    """`message_days`: PIGEON_MESSAGE_DAYS, to tell a message the retention removed."""
    row = message_store.get_message(conn, sid, account_sid=account_sid)
    if row is None:
        missing = rules.MissingFacts(
            sid=sid,
            account_sid=account_sid,
            now=now,
            made_at=sids.made_at(sid, now=now),
            deletions=store.deletions_of(conn, account_sid=account_sid, sid=sid),
            message_days=message_days,
            erasure=erasure_log.of_message(conn, account_sid=account_sid, sid=sid),
        )
        return Report("message", {"message_sid": sid}, [rules.diagnose_missing(missing)])
    facts = message_facts(conn, row, now)
    return Report("message", _message_subject(row), rules.diagnose_message(facts, thresholds))


def diagnose_recipient(
    conn: Connection,
    account_sid: str,
    to: str,
    since: datetime | None = None,
    *,
    now: datetime,
    thresholds: Thresholds | None = None,
) -> Report:
    since = since or now - DEFAULT_SINCE
    asked = read_number(conn, account_sid, to)
    recipient = asked.number
    rows = store.outbound_to(conn, account_sid=account_sid, to=asked.spellings, since=since, limit=RECIPIENT_MESSAGES)
    refused = store.refused_requests_to(conn, account_sid=account_sid, to=logged_spellings(recipient, to), since=since)
    facts = rules.RecipientFacts(
        to=recipient,
        since=since,
        now=now,
        messages=[message_facts(conn, r, now) for r in rows],
        refused_requests=refused,
        requests_in_window=store.count_send_requests(conn, account_sid=account_sid, since=since),
        opt_outs=_refusing_opt_outs(conn, account_sid, asked.spellings, refused),
        geo=_geo_facts(conn, account_sid, recipient) if any(r.get("error_code") == 21408 for r in refused) else None,
        erasures=erasure_log.of_number(conn, account_sid=account_sid, number=recipient),
    )
    subject = {**asked.subject("to"), "since": since, "messages": [r["sid"] for r in rows]}
    return Report("recipient", subject, rules.diagnose_recipient(facts, thresholds))


def _refusing_opt_outs(
    conn: Connection, account_sid: str, spellings: Collection[str], refused: Collection[Mapping[str, Any]]
) -> list[Row]:
    """The recipient's opt-outs that can be behind its 21610 refusals: those of each refused
    request's From and of the Messaging Service that number is in now. Another sender's
    opt-out refused none of them, and says nothing of whether those senders may text it now.
    A refusal with no From (a send through a Messaging Service: the request log keeps no
    service SID) cannot be narrowed, so then every opt-out of the recipient counts."""
    senders: list[str] = []
    for request in refused:
        if request.get("error_code") != 21610:
            continue
        sender = request.get("from_")
        if not sender:
            return _with_how_lifted(
                conn, store.opt_outs_with_messages(conn, account_sid=account_sid, recipient=spellings)
            )
        senders.append(sender)
        number = find_by_number(conn, sender)
        if number is not None and number["account_sid"] == account_sid and number["messaging_service_sid"]:
            senders.append(number["messaging_service_sid"])
    if not senders:
        return []
    found = store.opt_outs_with_messages(conn, account_sid=account_sid, recipient=spellings, senders=unique(senders))
    return _with_how_lifted(conn, found)


def _with_how_lifted(conn: Connection, opt_outs: list[Row]) -> list[Row]:
    """Each opt-out with whether the recipient's START lifts it (`start_lifts`): not one of a
    short code outside any Messaging Service, whose keywords go to its application."""
    return [{**row, "start_lifts": optout_use.lifted_by_start(conn, row)} for row in opt_outs]


def _geo_facts(conn: Connection, account_sid: str, recipient: str) -> dict[str, Any] | None:
    """The geo permissions that apply to the account now, for `rules.RecipientFacts.geo`."""
    account = account_store.get_account(conn, account_sid)
    if account is None:
        return None
    permissions = geo_permissions(conn, account)
    return {
        "country": numbers.region_of(recipient),
        "allowed": sorted(permissions.allowed) if permissions.allowed is not None else None,
        "set_by": permissions.set_by,
    }


# -- my number receives nothing ----------------------------------------------------------------------


def number_facts(
    conn: Connection, account_sid: str, asked: AskedNumber, *, now: datetime, since: datetime
) -> tuple[rules.NumberFacts, ProbePlan | None]:
    """The number's facts without the test request, and the plan for that request."""
    phone_number = asked.number
    number = find_by_number(conn, phone_number)
    if number is None or number["account_sid"] != account_sid:
        return rules.NumberFacts(phone_number=phone_number, now=now, since=since), None
    service_sid = number["messaging_service_sid"]
    service = service_store.get_service(conn, service_sid, account_sid=account_sid) if service_sid else None
    target = webhook_target(number, service)
    account = account_store.get_account(conn, account_sid)

    def _inbound_alerts(codes: Collection[int]) -> list[Row]:
        return store.inbound_alerts(conn, account_sid=account_sid, number=phone_number, since=since, codes=codes)

    hook_codes = rules.WEBHOOK_CODES | rules.TWIML_CODES
    facts = rules.NumberFacts(
        phone_number=phone_number,
        now=now,
        since=since,
        number=number,
        service=service,
        target=rules.WebhookTarget(target.url, target.method, target.fallback_url, target.source),
        webhook_alerts=[a for a in _inbound_alerts(hook_codes) if a["request_url"]],
        webhook_failures=store.inbound_events(
            conn, account_sid=account_sid, number=phone_number, since=since, kind="webhook_failed"
        ),
        fallback_answers=store.inbound_events(
            conn, account_sid=account_sid, number=phone_number, since=since, kind="webhook", with_error_code=True
        ),
        unannounced=[a for a in _inbound_alerts([11200]) if not a["request_url"]],
        inbound_received=store.count_inbound(conn, account_sid=account_sid, number=phone_number, since=since),
    )
    untold_count, untold_first, untold = store.untold_inbound(
        conn, account_sid=account_sid, number=phone_number, since=since
    )
    # Texts kept as unroutable belong to no account: only those since this account holds the
    # number are its own (before, they were to a number nobody held, or another account's).
    unroutable = store.unroutable_to(conn, number=asked.spellings, since=facts.unroutable_since)
    facts = dataclasses.replace(
        facts, unroutable=unroutable, untold_count=untold_count, untold_first=untold_first, untold=untold
    )
    plan = None
    if target.url and account is not None:
        plan = plan_probe(number, target, auth_token=account["auth_token"])
    return facts, plan


async def diagnose_number(
    db: Transactions,
    account_sid: str,
    phone_number: str,
    *,
    now: datetime,
    since: datetime | None = None,
    sender: WebhookSender | None = None,
    timeout: float = 15.0,
    thresholds: Thresholds | None = None,
) -> Report:
    """With a `sender`, the webhook gets a signed test request (marked PigeonDoctorTest=true)."""
    since = since or now - DEFAULT_SINCE

    def read() -> tuple[AskedNumber, rules.NumberFacts, ProbePlan | None]:
        with db.read() as conn:
            asked = read_number(conn, account_sid, phone_number)
            return asked, *number_facts(conn, account_sid, asked, now=now, since=since)

    asked, facts, plan = await asyncio.to_thread(read)
    if sender is not None and plan is not None:
        facts = dataclasses.replace(facts, probe=await probe_webhook(sender, plan, timeout=timeout))
    subject = {**asked.subject("phone_number"), "account_sid": account_sid, "since": since}
    return Report("number", subject, rules.diagnose_number(facts, thresholds), checks=rules.number_checks(facts))


# -- blocked ---------------------------------------------------------------------------------------


def diagnose_blocked(
    conn: Connection,
    account_sid: str,
    to: str,
    from_: str | None = None,
    service: str | None = None,
    *,
    now: datetime,
) -> Report:
    """Why sends from `from_` (a number) or `service` (a Messaging Service of the account; 20404
    for another's) to `to` are refused with 21610."""
    sender = normalise(from_) if from_ else None
    asked = read_number(conn, account_sid, to, sender=sender)
    recipient = asked.number
    senders: list[str] = []
    sender_service = None
    if sender is not None:
        senders.append(sender)
        number = find_by_number(conn, sender)
        if number is not None and number["account_sid"] == account_sid:
            sender_service = number["messaging_service_sid"]
    if service:
        # The caller's own service, or 20404: another account's sender pool is not shown.
        services.fetch(conn, account_sid, service, f"/v1/Services/{service}")
        senders.append(service)
        senders.extend(n["phone_number"] for n in service_store.sender_numbers(conn, service))
    if sender_service:
        senders.append(sender_service)
    facts = rules.BlockedFacts(
        to=recipient,
        now=now,
        from_=sender,
        service_sid=service,
        sender_service_sid=sender_service,
        opt_outs=_with_how_lifted(
            conn,
            store.opt_outs_with_messages(
                conn, account_sid=account_sid, recipient=asked.spellings, senders=unique(senders)
            ),
        ),
        refused_requests=store.refused_requests_to(
            conn,
            account_sid=account_sid,
            to=logged_spellings(recipient, to),
            since=now - BLOCKED_REQUESTS,
            error_code=21610,
            limit=20,
        ),
    )
    subject = {**asked.subject("to"), "from": sender, "messaging_service_sid": service}
    clear: bool | None = False
    if not facts.opt_outs:  # nothing found under a number not in E.164 is no clean result
        clear = True if in_stored_form(recipient) else None
    checks = [{"check": "opt_out", "ok": clear, "senders": unique(senders)}]
    return Report("blocked", subject, rules.diagnose_blocked(facts), checks=checks)


# -- duplicates --------------------------------------------------------------------------------------


def diagnose_duplicates(
    conn: Connection,
    account_sid: str,
    to: str | None = None,
    since: datetime | None = None,
    window_seconds: float = 10.0,
    *,
    now: datetime,
) -> Report:
    since = since or now - DEFAULT_SINCE
    asked = read_number(conn, account_sid, to) if to else None
    recipient = asked.number if asked else None
    rows: dict[str, Row] = {}
    examined_since = since
    for read in (store.similar_messages, store.resubmitted_messages):
        found = read(
            conn, account_sid=account_sid, since=since, to=asked.spellings if asked else None, limit=DUPLICATE_SCAN + 1
        )
        if len(found) > DUPLICATE_SCAN:  # cut short: the newest were read, the older ones not
            found = found[:DUPLICATE_SCAN]
            examined_since = max(examined_since, found[-1]["date_created"])
        for r in found:
            rows.setdefault(r["sid"], r)
    window = timedelta(seconds=window_seconds)
    groups = []
    for group in rules.group_similar(list(rows.values()), window_seconds):
        requests: list[Row] = []
        if len(group) > 1:
            requests = store.requests_creating(
                conn,
                account_sid=account_sid,
                sids=[m["sid"] for m in group],
                content_hash=group[0]["content_hash"],
                start=group[0]["date_created"] - window,
                end=group[-1]["date_created"] + window,
            )
        groups.append(rules.DuplicateGroup([message_facts(conn, m, now) for m in group], requests))
    erasures = erasure_log.of_number(conn, account_sid=account_sid, number=recipient) if recipient else []
    facts = rules.DuplicateFacts(
        since=since, now=now, window_seconds=window_seconds, to=recipient, groups=groups, erasures=erasures
    )
    subject = {**(asked.subject("to") if asked else {"to": None}), "since": since, "window_seconds": window_seconds}
    found_groups = sum(1 for g in groups if len(g.messages) > 1)
    complete = examined_since == since
    # Nothing found by a scan cut short, under a number not in E.164, or where an erasure took
    # messages of the window, is no clean result.
    established = (
        complete and (recipient is None or in_stored_form(recipient)) and not erased_since(erasures, since, now)
    )
    checks = [
        {
            "check": "similar_messages",
            "ok": False if found_groups else True if established else None,
            "groups": found_groups,
            "messages_examined": len(rows),
            "complete": complete,
            "examined_since": examined_since,
        }
    ]
    return Report("duplicates", subject, rules.diagnose_duplicates(facts), checks=checks)
