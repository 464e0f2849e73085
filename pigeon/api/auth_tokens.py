"""Accounts v1 AuthTokens (accounts.twilio.com/v1, the SDK's `client.accounts.v1`): change an
account's auth token without a moment when its applications' requests fail.

    POST   /v1/AuthTokens/Secondary   a secondary token, which authenticates as the first does
                                      (a new one replaces the one before)
    DELETE /v1/AuthTokens/Secondary   remove it
    POST   /v1/AuthTokens/Promote     the secondary becomes the only auth token; the one before
                                      stops working, and webhooks are signed with the new one

The account is the one the credentials name, with one of its own auth tokens: an API key may
not change them, nor a parent its subaccount's. `pigeon accounts rotate-token` remains for a
token that leaked: it replaces the token at once and removes any secondary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.concurrency import admit
from pigeon.api.context import basic_credentials, ctx, in_thread
from pigeon.api.v1 import iso8601
from pigeon.app import accounts

JSON = "application/json; charset=utf-8"
SECONDARY = "/v1/AuthTokens/Secondary"
PROMOTE = "/v1/AuthTokens/Promote"

Row = dict[str, Any]


def _change(request: Request, change: Callable[[Any, Row, datetime], Any]) -> Callable[[], Any]:
    """What the handler runs in a write transaction: authenticate, then `change`."""
    username, password = basic_credentials(request)
    c = ctx(request)

    def run() -> Any:
        with c.db.write() as conn:
            account = accounts.own_account(conn, username, password)
            request.state.account_sid = account["sid"]
            admit(request, account["sid"])
            return change(conn, account, c.clock.now())

    return run


async def create_secondary(request: Request) -> Response:
    row = await in_thread(_change(request, lambda conn, a, now: accounts.create_secondary_token(conn, a, now=now)))
    body = {
        "account_sid": row["sid"],
        "date_created": iso8601(row["secondary_auth_token_created"]),
        "date_updated": iso8601(row["secondary_auth_token_created"]),
        "secondary_auth_token": row["secondary_auth_token"],
        "url": ctx(request).base_url + SECONDARY,
    }
    return JSONResponse(body, status_code=201, media_type=JSON)


async def delete_secondary(request: Request) -> Response:
    await in_thread(_change(request, lambda conn, a, now: accounts.delete_secondary_token(conn, a, now=now)))
    return Response(status_code=204)


async def promote(request: Request) -> Response:
    row = await in_thread(_change(request, lambda conn, a, now: accounts.promote_secondary_token(conn, a, now=now)))
    body = {
        "account_sid": row["sid"],
        "auth_token": row["auth_token"],
        "date_created": iso8601(row["date_created"]),
        "date_updated": iso8601(row["date_updated"]),
        "url": ctx(request).base_url + PROMOTE,
    }
    return JSONResponse(body, media_type=JSON)


routes = [
    Route(SECONDARY, create_secondary, methods=["POST"]),
    Route(SECONDARY, delete_secondary, methods=["DELETE"]),
    Route(PROMOTE, promote, methods=["POST"]),
]
