"""The real HTTP application (bootstrap.build_api) on a fresh store with one account, for
tests that send it raw requests: malformed forms, odd paths, odd methods."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.routing import Route

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.config import load_settings
from pigeon.store.engine import Database

SENDER = "+14155550194"


@dataclass
class Api:
    db: Database
    database_url: str
    account: dict[str, Any]
    service_sid: str

    @property
    def base(self) -> str:
        return f"/2010-04-01/Accounts/{self.account['sid']}"

    def call(
        self, *requests: tuple[str, str, dict[str, Any]], extra_routes: Sequence[Route] = ()
    ) -> list[httpx.Response]:
        """Each (method, url, httpx keyword arguments) in turn, as the account, through the
        app's whole middleware stack and error handlers (`extra_routes` added to its own)."""
        app = bootstrap.build_api(load_settings(environ={}, database_url=self.database_url), self.db)
        app.router.routes.extend(extra_routes)

        async def run() -> list[httpx.Response]:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
                auth = (self.account["sid"], self.account["auth_token"])
                async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
                    return [await client.request(m, url, **kw) for m, url, kw in requests]

        return asyncio.run(run())

    def one(self, method: str, url: str, *, extra_routes: Sequence[Route] = (), **kw: Any) -> httpx.Response:
        return self.call((method, url, kw), extra_routes=extra_routes)[0]


def make_api(db: Database, database_url: str) -> Api:
    now = datetime.now(UTC)
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="Http", now=now)
        number_use.provision(conn, account_sid=account["sid"], phone_number=SENDER, now=now)
        service = service_use.create(conn, account["sid"], {"FriendlyName": "svc"}, now)
    return Api(db=db, database_url=database_url, account=dict(account), service_sid=str(service["sid"]))


def assert_twilio_error(response: httpx.Response, status: int, code: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert {"code", "message", "more_info", "status"} <= set(body)
    assert (body["code"], body["status"]) == (code, status), body
    for word in words:
        assert word in body["message"], body
