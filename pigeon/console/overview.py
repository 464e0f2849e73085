"""Overview: outbound messages by status over time, queue depth per sender, carrier binds, this
month's usage, and the rules an operator set for the account (where it may send; texts from
short codes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pigeon.app import accounts as account_use
from pigeon.app import usage, usage_triggers
from pigeon.domain.usage_triggers import value_text
from pigeon.store import accounts as account_store
from pigeon.store import carriers as carrier_store
from pigeon.store import stats

from .auth import require
from .charts import Chart, line_chart
from .web import console, render

STATUSES = ("sent", "delivered", "undelivered", "failed")
#: range -> (bucket size, number of buckets)
RANGES: dict[str, tuple[stats.Granularity, int]] = {"24h": ("hour", 24), "7d": ("day", 7), "30d": ("day", 30)}
#: A process that has not reported its binds for this long is gone.
FRESH = timedelta(seconds=30)


def bucket_keys(now: datetime, granularity: stats.Granularity, count: int) -> list[tuple[str, str]]:
    """(store bucket key, axis label) for the last `count` hours or days, oldest first."""
    if granularity == "hour":
        end = now.replace(minute=0, second=0, microsecond=0)
        times = [end - timedelta(hours=i) for i in reversed(range(count))]
        return [(t.strftime("%Y-%m-%dT%H"), t.strftime("%H:00")) for t in times]
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    times = [end - timedelta(days=i) for i in reversed(range(count))]
    return [(t.strftime("%Y-%m-%d"), t.strftime("%m-%d")) for t in times]


def status_chart(rows: list[tuple[str, str, int]], keys: list[tuple[str, str]]) -> Chart:
    index = {k: i for i, (k, _) in enumerate(keys)}
    counts = {s: [0] * len(keys) for s in STATUSES}
    for bucket, status, n in rows:
        if bucket in index and status in counts:
            counts[status][index[bucket]] += n
    return line_chart([k for k, _ in keys], counts, labels=[label for _, label in keys])


def _load(conn: Any, account_sid: str, now: datetime, span: str) -> dict[str, Any]:
    granularity, count = RANGES[span]
    keys = bucket_keys(now, granularity, count)
    first = datetime.fromisoformat(keys[0][0] + (":00:00+00:00" if granularity == "hour" else "T00:00:00+00:00"))
    rows = stats.status_counts(
        conn, account_sid, since=first, until=now + timedelta(seconds=1), statuses=STATUSES, granularity=granularity
    )
    return {
        "chart": status_chart(rows, keys),
        "queues": stats.queue_depth(conn, account_sid),
        "carriers": carrier_store.list_status(conn, fresh_within=FRESH, now=now),
        "rules": _rules(conn, account_sid),
        "usage": _usage(conn, account_sid, now),
    }


#: The usage card's rows: each direction of each kind, as the ledger keeps them.
USAGE_ROWS = ("sms-outbound", "sms-inbound", "mms-outbound", "mms-inbound")


def _usage(conn: Any, account_sid: str, now: datetime) -> dict[str, Any]:
    """This account's usage this month (UTC), as Usage/Records/ThisMonth.json reports it."""
    records = usage.usage_records(conn, account_sid, "ThisMonth", {"IncludeSubaccounts": "false"}, today=now.date())
    rows = [r for r in records if r.category in USAGE_ROWS]
    return {
        "since": rows[0].start if rows else now.date(),
        "rows": [
            {
                "category": r.category,
                "messages": r.messages,
                "segments": r.segments,
                "price": usage.price_text(r.price_micros),
            }
            for r in rows
        ],
        "total": usage.price_text(sum(r.price_micros for r in rows)),
        "triggers": _triggers(conn, account_sid, now),
    }


#: Triggers the card lists; the API lists them all.
TRIGGERS_SHOWN = 20


def _triggers(conn: Any, account_sid: str, now: datetime) -> list[dict[str, Any]]:
    """The account's usage triggers with their current values (Usage/Triggers.json's)."""
    rows = usage_triggers.list_for_account(conn, account_sid, {}, offset=0, limit=TRIGGERS_SHOWN)
    values = usage_triggers.current_values(conn, rows, today=now.date())
    return [
        {
            "sid": r["sid"],
            "name": r["friendly_name"] or "",
            "watches": f"{r['usage_category']} {r['trigger_by']}",
            "recurring": r["recurring"] or "once",
            "value": value_text(v),
            "threshold": r["trigger_value"],
            "fired": r["date_fired"].strftime("%Y-%m-%d %H:%M UTC") if r["date_fired"] else "",
        }
        for r, v in zip(rows, values, strict=True)
    ]


def _rules(conn: Any, account_sid: str) -> dict[str, Any]:
    """What the account may do that only an operator changes (`pigeon accounts geo`,
    `pigeon accounts short-code-inbound`): shown, so that a 21408 or a text that never
    arrived has its reason on the page."""
    account = account_store.get_account(conn, account_sid)
    if account is None:  # signed in a moment ago; accounts are closed, never removed
        return {"countries": None, "set_by": None, "short_code_inbound": False}
    geo = account_use.geo_permissions(conn, account)
    return {
        "countries": sorted(geo.allowed) if geo.allowed is not None else None,
        "set_by": geo.set_by if geo.set_by != account_sid else None,  # a parent's list
        "short_code_inbound": bool(account["allow_short_code_inbound"]),
    }


async def overview_page(request: Request) -> Response:
    session = await require(request)
    span = request.query_params.get("range", "24h")
    span = span if span in RANGES else "24h"
    c = console(request)
    now = c.clock.now()
    view = await c.history(_load, session.account_sid, now, span)
    return render(request, "overview.html", span=span, ranges=list(RANGES), now=now, **view)
