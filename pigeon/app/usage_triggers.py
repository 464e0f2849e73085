"""Usage Triggers: create, read, change and delete an account's thresholds, and evaluate them.

A trigger watches its account with the account's subaccounts, as Usage Records do by default.
Every worker process evaluates them (pigeon.workers.usage_triggers): `reached` finds, in a
read, each trigger of an active account whose current value has reached its threshold in a
period it has not fired in; `fire` marks it fired for the period and queues its signed
callback, in one transaction. The mark is a guarded update, so when several processes evaluate
at once exactly one of them queues the callback. The callback goes through the webhook outbox
like every other webhook: retried with backoff, its attempts kept, its final failure an 11200
alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.services import missing
from pigeon.domain import usage as usage_rules
from pigeon.domain import usage_triggers as rules
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, is_sid, new_sid
from pigeon.domain.urls import ascii_url, is_valid_http_url
from pigeon.store import accounts as account_store
from pigeon.store import usage as usage_store
from pigeon.store import usage_triggers as store
from pigeon.store import webhooks as outbox

Row = dict[str, Any]

#: webhook_deliveries.kind of a usage trigger's callback.
USAGE_TRIGGER = "usage_trigger"
#: Where the API's resources live, for the usage record URI a trigger names.
API_ROOT = "/2010-04-01"
MAX_FRIENDLY_NAME = 64
#: Triggers one account may have: each is evaluated every few seconds by every worker.
MAX_TRIGGERS_PER_ACCOUNT = 1000


def _callback(params: Mapping[str, str]) -> Row:
    """callback_url, callback_method and friendly_name from the parameters given (all three
    may be changed later)."""
    values: Row = {}
    if "CallbackUrl" in params:
        url = params["CallbackUrl"].strip()
        if not is_valid_http_url(url):
            raise ApiError(21502, f"CallbackUrl {params['CallbackUrl']!r} is not a valid http or https URL.")
        values["callback_url"] = ascii_url(url)
    if "CallbackMethod" in params:
        method = params["CallbackMethod"].strip().upper()
        if method not in {"GET", "POST"}:
            raise ApiError(20422, f"CallbackMethod must be GET or POST, not {params['CallbackMethod']!r}.")
        values["callback_method"] = method
    if "FriendlyName" in params:
        if len(params["FriendlyName"]) > MAX_FRIENDLY_NAME:
            raise ApiError(20422, f"FriendlyName may be at most {MAX_FRIENDLY_NAME} characters long.")
        values["friendly_name"] = params["FriendlyName"]
    return values


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...] | Mapping[str, str]) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise ApiError(20422, f"{name} {raw!r} is not one of {', '.join(allowed)}.")
    return raw


def _category(params: Mapping[str, str]) -> str | None:
    return _choice(params, "UsageCategory", tuple(usage_rules.CATEGORIES))


def watched_accounts(conn: Connection, account_sid: str) -> list[str]:
    """The account and its subaccounts: whose usage a trigger of the account adds up."""
    return [a["sid"] for a in account_store.list_accounts(conn, visible_to=account_sid)] or [account_sid]


def _totals(
    conn: Connection, accounts: Sequence[str], recurring: str | None, today: date
) -> dict[str, tuple[int, int, int]]:
    """The accounts' usage by ledger category over the period a trigger with `recurring`
    measures now."""
    first, last = rules.period_range(recurring, today)
    return usage_store.totals_by_category(
        conn, accounts, first=first.isoformat() if first else None, last=last.isoformat()
    )


def _value(trigger: Mapping[str, Any], totals: Mapping[str, tuple[int, int, int]]) -> Decimal:
    leaves = [totals.get(leaf, (0, 0, 0)) for leaf in usage_rules.CATEGORIES[trigger["usage_category"]].leaves]
    return rules.value_of(
        rules.compared_field(trigger["usage_category"], trigger["trigger_by"]),
        messages=sum(m for m, _, _ in leaves),
        segments=sum(s for _, s, _ in leaves),
        price_micros=sum(p for _, _, p in leaves),
    )


def current_value(conn: Connection, trigger: Mapping[str, Any], *, today: date) -> Decimal:
    """The watched field of the trigger's usage record for its current period."""
    return current_values(conn, [trigger], today=today)[0]


def current_values(conn: Connection, triggers: Sequence[Mapping[str, Any]], *, today: date) -> list[Decimal]:
    """`current_value` of each trigger; an account's triggers of one period share one read, and
    all its triggers one read of its subaccounts."""
    watched: dict[str, list[str]] = {}
    totals: dict[tuple[str, str | None], dict[str, tuple[int, int, int]]] = {}
    values = []
    for trigger in triggers:
        account = trigger["account_sid"]
        recurring = trigger["recurring"] if trigger["recurring"] != "alltime" else None
        if account not in watched:
            watched[account] = watched_accounts(conn, account)
        if (account, recurring) not in totals:
            totals[account, recurring] = _totals(conn, watched[account], recurring, today)
        values.append(_value(trigger, totals[account, recurring]))
    return values


def create(conn: Connection, account_sid: str, params: Mapping[str, str], now: datetime) -> Row:
    for name in ("CallbackUrl", "TriggerValue", "UsageCategory"):
        if not params.get(name):
            raise missing(name)
    category = _category(params)
    trigger_by = _choice(params, "TriggerBy", rules.TRIGGER_BY) or rules.DEFAULT_TRIGGER_BY
    recurring = _choice(params, "Recurring", rules.RECURRING)
    values = {"callback_method": "POST", "friendly_name": None} | _callback(params)
    try:
        wanted = rules.parse_trigger_value(
            params["TriggerValue"], trigger_by=rules.compared_field(category or "", trigger_by)
        )
    except rules.TriggerValueError as exc:
        raise ApiError(20422, str(exc)) from None
    if store.count_triggers(conn, account_sid) >= MAX_TRIGGERS_PER_ACCOUNT:
        raise ApiError(20422, f"This account has {MAX_TRIGGERS_PER_ACCOUNT} usage triggers, the most it may have.")
    row: Row = {
        "sid": new_sid(Prefix.USAGE_TRIGGER),
        "account_sid": account_sid,
        "usage_category": category,
        "trigger_by": trigger_by,
        "recurring": recurring,
        "trigger_value": "",
        "fired_period": None,
        "date_fired": None,
        "date_created": now,
        "date_updated": now,
        **values,
    }
    amount = wanted.amount
    if wanted.offset:  # "+30": thirty more than the value now
        amount += current_value(conn, row, today=now.date())
    row["trigger_value"] = rules.value_text(amount)
    store.insert_trigger(conn, row)
    return row


def fetch(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    row = store.get_trigger(conn, account_sid, sid) if is_sid(sid, Prefix.USAGE_TRIGGER) else None
    if row is None:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return row


def list_for_account(
    conn: Connection, account_sid: str, params: Mapping[str, str], *, offset: int, limit: int
) -> list[Row]:
    filters = {
        name: value
        for name, value in (
            ("Recurring", _choice(params, "Recurring", rules.RECURRING)),
            ("TriggerBy", _choice(params, "TriggerBy", rules.TRIGGER_BY)),
            ("UsageCategory", _category(params)),
        )
        if value is not None
    }
    return store.list_triggers(conn, account_sid, filters=filters, offset=offset, limit=limit)


def update(conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime) -> Row:
    """Change what Twilio lets change: CallbackUrl, CallbackMethod, FriendlyName."""
    fetch(conn, account_sid, sid, path)
    values = _callback(params)
    if values:
        store.update_trigger(conn, account_sid, sid, values | {"date_updated": now})
    return fetch(conn, account_sid, sid, path)


def delete(conn: Connection, account_sid: str, sid: str, path: str) -> None:
    if not (is_sid(sid, Prefix.USAGE_TRIGGER) and store.delete_trigger(conn, account_sid, sid)):
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)


def record_uri(trigger: Mapping[str, Any], *, today: date) -> str:
    """The Usage Records resource that holds the trigger's current value."""
    base = f"{API_ROOT}/Accounts/{trigger['account_sid']}/Usage/Records"
    category = f"Category={trigger['usage_category']}"
    recurring = trigger["recurring"]
    if recurring == "yearly":
        return f"{base}/Yearly.json?{category}&StartDate={today.replace(month=1, day=1).isoformat()}"
    if recurring in ("daily", "monthly"):
        return f"{base}/{rules.RECURRING[recurring]}.json?{category}"
    return f"{base}/AllTime.json?{category}"


def callback_params(trigger: Mapping[str, Any], *, value: Decimal, now: datetime, period: str) -> list[tuple[str, str]]:
    """What a trigger's callback carries (Twilio's parameter names)."""
    return [
        ("AccountSid", trigger["account_sid"]),
        ("UsageTriggerSid", trigger["sid"]),
        ("DateFired", now.strftime("%a, %d %b %Y %H:%M:%S +0000")),
        ("Recurring", trigger["recurring"] or ""),
        ("UsageCategory", trigger["usage_category"]),
        ("TriggerBy", trigger["trigger_by"]),
        ("TriggerValue", trigger["trigger_value"]),
        ("CurrentValue", rules.value_text(value)),
        ("UsageRecordUri", record_uri(trigger, today=now.date())),
        # The same on every retry of this firing, and new at the next one.
        ("IdempotencyToken", f"{trigger['sid']}-{period}"),
    ]


@dataclass(frozen=True)
class Reached:
    """A trigger whose threshold its current value has reached, in a period it has not fired in."""

    trigger: Row
    value: Decimal
    period: str


def reached(conn: Connection, *, today: date) -> list[Reached]:
    """The triggers to fire now (a read: the sums stay out of the writer's transaction)."""
    unfired = [
        (trigger, period)
        for trigger in store.triggers_of_active_accounts(conn)
        if trigger["fired_period"] != (period := rules.period_key(trigger["recurring"], today))
    ]
    values = current_values(conn, [trigger for trigger, _ in unfired], today=today)
    return [
        Reached(trigger, value, period)
        for (trigger, period), value in zip(unfired, values, strict=True)
        if value >= Decimal(trigger["trigger_value"])
    ]


def fire(conn: Connection, due: list[Reached], *, now: datetime) -> list[str]:
    """Mark each trigger fired for its period and queue its callback, in the caller's
    transaction; one that another process marked first is left to it. Returns the SIDs fired."""
    fired = []
    for r in due:
        if not store.mark_fired(conn, r.trigger["sid"], period=r.period, now=now):
            continue
        outbox.enqueue(
            conn,
            account_sid=r.trigger["account_sid"],
            message_sid=None,
            kind=USAGE_TRIGGER,
            url=r.trigger["callback_url"],
            method=r.trigger["callback_method"],
            params=callback_params(r.trigger, value=r.value, now=now, period=r.period),
            now=now,
        )
        fired.append(r.trigger["sid"])
    return fired
