"""An account past its requests in progress gets 20429 from the real API, on both stores:
nothing is created, the refusal is in the request log for the doctor, and other accounts
carry on. The first sends are held in the accept writer until the test lets them through."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.config import load_settings
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from pigeon.store.request_log import RequestFilter, list_requests

Row = dict[str, Any]


def _accounts(db: Database) -> tuple[Row, Row]:
    now = datetime.now(UTC)
    with db.write() as conn:
        a = account_use.create_account(conn, friendly_name="Busy", now=now)
        b = account_use.create_account(conn, friendly_name="Quiet", now=now)
        number_use.provision(conn, account_sid=a["sid"], phone_number="+14155550191", now=now)
        number_use.provision(conn, account_sid=b["sid"], phone_number="+14155550192", now=now)
    return a, b


def _send(client: httpx.AsyncClient, account: Row, sender: str, to: str) -> Any:
    return client.post(
        f"/2010-04-01/Accounts/{account['sid']}/Messages.json",
        data={"To": to, "From": sender, "Body": "hello"},
        auth=(account["sid"], account["auth_token"]),
    )


def test_a_busy_account_is_refused_with_20429_and_nothing_is_created(db: Database, database_url: str) -> None:
    a, b = _accounts(db)
    settings = load_settings(environ={"PIGEON_API_CONCURRENCY_PER_ACCOUNT": "2"}, database_url=database_url)
    app = bootstrap.build_api(settings, db)
    gate = app.state.concurrency
    writer = app.state.ctx.writer
    write, held = writer.write, asyncio.Event()

    async def held_write(new: Any) -> None:
        if new.message["account_sid"] == a["sid"]:
            await held.wait()
        await write(new)

    writer.write = held_write

    async def run() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8080") as client:
                first = [asyncio.create_task(_send(client, a, "+14155550191", f"+1415555700{i}")) for i in range(2)]
                async with asyncio.timeout(10):
                    while gate.in_progress(a["sid"]) < 2:
                        await asyncio.sleep(0.005)
                refused = await _send(client, a, "+14155550191", "+14155557099")
                assert refused.status_code == 429, refused.text
                assert refused.headers["retry-after"] == "1"
                assert refused.json()["code"] == 20429

                quiet = await _send(client, b, "+14155550192", "+14155557098")
                assert quiet.status_code == 201, quiet.text

                held.set()
                assert [(await t).status_code for t in first] == [201, 201]
                again = await _send(client, a, "+14155550191", "+14155557099")
                assert again.status_code == 201, again.text
                assert gate.in_progress(a["sid"]) == 0

    asyncio.run(run())  # the lifespan's end writes out what the request log still holds

    with db.read() as conn:
        sent_to = sorted(m["to"] for m in list_messages(conn, MessageFilter(account_sid=a["sid"]), limit=10))
        assert sent_to == ["+14155557000", "+14155557001", "+14155557099"]  # the refused one made nothing
        refusals = list_requests(conn, RequestFilter(account_sid=a["sid"], error_code=20429), limit=10)
    assert [(r["status"], r["to"], r["source_ip"]) for r in refusals] == [(429, "+14155557099", "192.0.2.7")]
