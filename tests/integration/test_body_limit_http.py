"""Request bodies past the API's limit get 20413 from the real app on both stores, announced
or sent in chunks, and change nothing; the largest send the API takes stays under it."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from pigeon import bootstrap
from pigeon.api.body_limit import MAX_BODY_BYTES
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.config import load_settings
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from pigeon.store.request_log import RequestFilter, list_requests

SENDER = "+14155550193"


def test_bodies_past_the_limit_are_refused_with_20413(db: Database, database_url: str) -> None:
    now = datetime.now(UTC)
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="Big", now=now)
        number_use.provision(conn, account_sid=account["sid"], phone_number=SENDER, now=now)
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    path = f"/2010-04-01/Accounts/{account['sid']}/Messages.json"
    auth = (account["sid"], account["auth_token"])
    # The largest send there is: 1,600 characters that each take nine bytes encoded (three in
    # UTF-8, each a %XX; an emoji counts as two characters for twelve bytes), and ten media
    # URLs of 2,000 characters.
    largest = urllib.parse.urlencode(
        [("To", "+14155557020"), ("From", SENDER), ("Body", "\u20ac" * 1600)]
        + [("MediaUrl", f"https://media.example.com/{i}/" + "x" * 1970) for i in range(10)]
    ).encode()
    assert len(largest) < MAX_BODY_BYTES
    huge = urllib.parse.urlencode({"To": "+14155557021", "From": SENDER, "Body": "x" * MAX_BODY_BYTES}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(huge), 8192):
            yield huge[i : i + 8192]

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
                form = {"content-type": "application/x-www-form-urlencoded"}
                return [
                    await client.post(path, content=largest, headers=form, auth=auth),
                    await client.post(path, content=huge, headers=form, auth=auth),
                    await client.post(path, content=chunks(), headers=form, auth=auth),
                    await client.post("/console/login", content=huge, headers=form),
                    await client.post("/console/login", content=chunks(), headers=form),
                ]

    fits, announced, chunked, console, console_chunked = asyncio.run(run())
    assert fits.status_code == 201, fits.text
    for refused in (announced, chunked, console):
        assert refused.status_code == 413, refused.text
        body: dict[str, Any] = refused.json()
        assert (body["code"], body["status"]) == (20413, 413)
    assert str(len(huge)) in announced.json()["message"]
    assert f"more than the {MAX_BODY_BYTES} bytes" in chunked.json()["message"]
    # The console reads its forms as they come, and shows the refusal as its own error page.
    assert console_chunked.status_code == 413 and "20413" in console_chunked.text

    with db.read() as conn:
        made = list_messages(conn, MessageFilter(account_sid=account["sid"]), limit=10)
        logged = list_requests(conn, RequestFilter(error_code=20413), limit=10)
    assert [m["to"] for m in made] == ["+14155557020"]  # nothing from the refused ones
    assert len(logged) == 2  # the API's two; the console is not in the request log
    assert all(r["status"] == 413 for r in logged)
