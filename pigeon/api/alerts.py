"""The error log in the shape of Twilio's Monitor Alerts (monitor.twilio.com/v1), and
Pigeon's explanations of error codes.

GET /v1/Alerts          the authenticated account's alerts, newest first; filters LogLevel,
                        StartDate, EndDate (Twilio's), ResourceSid and ErrorCode (Pigeon's);
                        v1 paging (PageSize, Page) with absolute URLs in `meta`
GET /v1/Alerts/{Sid}    one alert
GET /v1/Errors/{Code}   what a code means, its likely causes and what to do (Pigeon addition)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import ctx, in_thread
from pigeon.api.paging import parse_page
from pigeon.api.query import moment, whole_number
from pigeon.api.schemas import API_VERSION
from pigeon.api.v1 import acting_account, envelope, iso8601
from pigeon.domain import integers, periods
from pigeon.domain.error_catalogue import ErrorInfo, explain, more_info_url
from pigeon.domain.errors import ApiError, NotFound
from pigeon.domain.quoted import shown
from pigeon.domain.sids import Prefix, is_sid
from pigeon.store.alerts import get_alert, list_alerts

JSON = "application/json; charset=utf-8"
LOG_LEVELS = ("error", "warning", "notice", "debug")


def _absolute(base_url: str, url: str) -> str:
    return base_url + url if url.startswith("/") else url


def _encoded(value: Any) -> str | None:
    """Twilio gives request variables and response headers as form-encoded strings."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return urlencode([(str(k), str(v)) for k, v in value.items()])
    if isinstance(value, list):
        return urlencode([(str(p[0]), str(p[1])) for p in value if isinstance(p, list | tuple) and len(p) == 2])
    return str(value)


def alert_json(row: Mapping[str, Any], base_url: str) -> dict[str, Any]:
    created = iso8601(row["date_created"])
    return {
        "account_sid": row["account_sid"],
        "alert_text": row["alert_text"],
        "api_version": API_VERSION,
        "date_created": created,
        "date_generated": created,
        "date_updated": created,
        "error_code": str(row["error_code"]),
        "log_level": row["log_level"],
        "more_info": _absolute(base_url, more_info_url(row["error_code"])),
        "request_method": row["request_method"],
        "request_url": row["request_url"],
        "request_variables": _encoded(row["request_variables"]),
        "resource_sid": row["resource_sid"],
        "response_body": row["response_body"],
        "response_headers": _encoded(row["response_headers"]),
        "sid": row["sid"],
        "service_sid": None,
        "request_headers": None,
        "url": f"{base_url}/v1/Alerts/{row['sid']}",
    }


def error_json(info: ErrorInfo, base_url: str) -> dict[str, Any]:
    return {
        "code": info.code,
        "name": info.name,
        "kind": info.kind,
        "http_status": info.http_status,
        "meaning": info.meaning,
        "causes": list(info.causes),
        "remedy": list(info.remedy),
        "more_info": _absolute(base_url, info.more_info),
        "url": f"{base_url}/v1/Errors/{info.code}",
    }


def _alert_filters(params: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    values: dict[str, Any] = {}
    kept: list[tuple[str, str]] = []
    level = params.get("LogLevel")
    if level:
        if level.lower() not in LOG_LEVELS:
            raise ApiError(20422, f"LogLevel must be one of {', '.join(LOG_LEVELS)}, not {level!r}.")
        values["log_level"] = level.lower()
        kept.append(("LogLevel", level))
    if params.get("StartDate"):
        values["since"] = moment("StartDate", params["StartDate"])[0]
        kept.append(("StartDate", params["StartDate"]))
    if params.get("EndDate"):
        end, whole_day = moment("EndDate", params["EndDate"])
        values["until"] = periods.end_of(end, whole_day=whole_day)
        kept.append(("EndDate", params["EndDate"]))
    if params.get("ResourceSid"):
        values["resource_sid"] = params["ResourceSid"]
        kept.append(("ResourceSid", params["ResourceSid"]))
    code = whole_number(params, "ErrorCode")
    if code is not None:
        values["error_code"] = code
        kept.append(("ErrorCode", params["ErrorCode"]))
    return values, kept


async def alerts_list(request: Request) -> Response:
    account = await acting_account(request)
    params = dict(request.query_params)
    req = parse_page(params)
    values, kept = _alert_filters(params)
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.history() as conn:
            return list_alerts(conn, account_sid=account, limit=req.page_size + 1, offset=req.offset, **values)

    rows = await in_thread(run)
    items = [alert_json(r, c.base_url) for r in rows]
    body = envelope("alerts", items, base_url=c.base_url, path=request.url.path, req=req, filters=kept)
    return JSONResponse(body, media_type=JSON)


async def alerts_fetch(request: Request) -> Response:
    account = await acting_account(request)
    sid = request.path_params["sid"]
    if not is_sid(sid, Prefix.ALERT):
        raise NotFound(request.url.path)
    c = ctx(request)

    def run() -> dict[str, Any] | None:
        with c.db.read() as conn:
            return get_alert(conn, sid, account_sid=account)

    row = await in_thread(run)
    if row is None:
        raise NotFound(request.url.path)
    return JSONResponse(alert_json(row, c.base_url), media_type=JSON)


async def errors_fetch(request: Request) -> Response:
    await acting_account(request)
    raw = request.path_params["code"]
    code = integers.whole_number(raw)
    info = explain(code) if code is not None else None
    if info is None:
        raise ApiError(20404, f"Pigeon has no explanation for error code {shown(raw)}.", status=404)
    return JSONResponse(error_json(info, ctx(request).base_url), media_type=JSON)


routes = [
    Route("/v1/Alerts", alerts_list, methods=["GET"]),
    Route("/v1/Alerts/{sid}", alerts_fetch, methods=["GET"]),
    Route("/v1/Errors/{code}", errors_fetch, methods=["GET"]),
]
