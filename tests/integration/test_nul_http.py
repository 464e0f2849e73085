"""A NUL character (%00) in a request's form, query or path is refused with 20422 on both
stores, changes nothing, and the request is still in the request log.

PostgreSQL's text types cannot hold NUL, so before this a NUL in a send's Body, a
FriendlyName, a filter or a SID was a 500 there (and a message sent with it on SQLite):
found by probing the API on PostgreSQL (pigeon.domain.storable)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.config import load_settings
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from pigeon.store.request_log import RequestFilter, list_requests

SENDER = "+14155550194"
SEND = {"To": "+14155557020", "From": SENDER, "Body": "hello"}


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        ("POST", "Messages.json", {**SEND, "Body": "a\x00b"}),
        ("POST", "Messages.json", {**SEND, "StatusCallback": "https://example.com/\x00"}),
        ("POST", "Messages.json", {**SEND, "To": "+1415555\x007020"}),
        ("POST", "Messages.json", {**SEND, "Unknown\x00": "x"}),
        ("POST", "{number}", {"FriendlyName": "mine\x00"}),
        ("POST", "/2010-04-01/Accounts.json", {"FriendlyName": "sub\x00"}),
        ("GET", "Messages.json?To=%00", {}),
        ("GET", "Messages/SM%00.json", {}),
        ("GET", "IncomingPhoneNumbers.json?FriendlyName=x%00", {}),
        ("GET", "/v1/Alerts?ResourceSid=%00", {}),
        ("POST", "/v1/Services", {"FriendlyName": "svc\x00"}),
    ],
)
def test_nul_is_refused_with_20422_and_changes_nothing(
    db: Database, database_url: str, method: str, path: str, form: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="Nul", now=now)
        number = number_use.provision(conn, account_sid=account["sid"], phone_number=SENDER, now=now)
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    base = f"/2010-04-01/Accounts/{account['sid']}/"
    path = path.format(number=f"IncomingPhoneNumbers/{number['sid']}.json")
    url = path if path.startswith("/") else base + path

    async def run() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            auth = (account["sid"], account["auth_token"])
            async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
                return await client.request(method, url, data=form or None)

    response = asyncio.run(run())
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 20422 and "NUL" in body["message"]
    with db.read() as conn:
        assert list_messages(conn, MessageFilter(account_sid=account["sid"]), limit=10) == []
        assert number_store.get_number(conn, number["sid"]) == number
        [logged] = list_requests(conn, RequestFilter(), limit=10)
    assert logged["status"] == 400 and logged["error_code"] == 20422
    assert "\x00" not in logged["path"]
    if "%00" in url.split("?")[0]:
        assert logged["path"].endswith("/Messages/SM%00.json")  # as it came on the wire
