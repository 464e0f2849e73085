"""/2010-04-01/Accounts/{AccountSid}/Usage/Records: what an account sent and received, and
what it cost, as Twilio's UsageRecord resources (the SDK's `client.usage.records`).

Records.json covers all time (or StartDate..EndDate) with one record per category; Daily,
Monthly and Yearly cut the range into days, months or years; AllTime, Today, Yesterday,
ThisMonth and LastMonth are fixed ranges. IncludeSubaccounts (true by default, as on Twilio)
adds the account's subaccounts. Categories: sms, sms-outbound, sms-inbound, mms,
mms-outbound, mms-inbound. `count` is messages, `usage` the segments they were billed as.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import authorized_account, ctx, in_thread
from pigeon.api.paging import offset_envelope, parse_page
from pigeon.api.schemas import API_VERSION, V
from pigeon.app import usage as use
from pigeon.domain import usage as rules

JSON = "application/json; charset=utf-8"
BASE = V + "/Accounts/{account_sid}/Usage/Records"
#: The SDK's names for the subresources, as subresource_uris keys.
_SUBRESOURCES = {
    "AllTime": "all_time",
    "Today": "today",
    "Yesterday": "yesterday",
    "ThisMonth": "this_month",
    "LastMonth": "last_month",
    "Daily": "daily",
    "Monthly": "monthly",
    "Yearly": "yearly",
}


def record_json(record: use.UsageRecord, *, period: str, as_of: str, price_unit: str) -> dict[str, Any]:
    base = f"{V}/Accounts/{record.account_sid}/Usage/Records"
    category = f"?{urlencode({'Category': record.category})}"
    dates = urlencode({"StartDate": record.start.isoformat(), "EndDate": record.end.isoformat()})
    own = base + (".json" if period == "Records" else f"/{period}.json")
    return {
        "account_sid": record.account_sid,
        "api_version": API_VERSION,
        "as_of": as_of,
        "category": record.category,
        "count": str(record.messages),
        "count_unit": "messages",
        "description": rules.CATEGORIES[record.category].description,
        "end_date": record.end.isoformat(),
        "price": use.price_text(record.price_micros),
        "price_unit": price_unit.lower(),
        "start_date": record.start.isoformat(),
        "subresource_uris": {key: f"{base}/{name}.json{category}" for name, key in _SUBRESOURCES.items()},
        "uri": f"{own}{category}&{dates}",
        **(
            {"usage": use.price_text(record.price_micros), "usage_unit": price_unit.lower()}
            if record.category == rules.TOTAL_PRICE
            else {"usage": str(record.segments), "usage_unit": "segments"}
        ),
    }


def _list(period: str) -> Any:
    async def list_(request: Request) -> Response:
        account_sid = request.path_params["account_sid"]
        await authorized_account(request, account_sid)
        params = dict(request.query_params)
        req = parse_page(params)
        c = ctx(request)
        now = c.clock.now().astimezone(UTC)

        def run() -> list[use.UsageRecord]:
            with c.db.history() as conn:
                return use.usage_records(conn, account_sid, period, params, today=now.date())

        records = await in_thread(run)
        as_of = now.replace(microsecond=0).isoformat()
        page = records[req.offset : req.offset + req.page_size + 1]
        body = offset_envelope(
            "usage_records",
            [record_json(r, period=period, as_of=as_of, price_unit=c.price_unit) for r in page],
            path=request.url.path,
            filters=[(k, params[k]) for k in ("Category", "StartDate", "EndDate", "IncludeSubaccounts") if k in params],
            req=req,
        )
        return JSONResponse(body, media_type=JSON)

    list_.__name__ = f"usage_{period.lower()}"
    return list_


routes = [
    Route(BASE + ".json", _list("Records"), methods=["GET"]),
    *(Route(f"{BASE}/{period}.json", _list(period), methods=["GET"]) for period in _SUBRESOURCES),
]
