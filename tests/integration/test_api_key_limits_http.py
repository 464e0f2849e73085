"""What a request made with an API key may do, through the whole application, as Twilio's
standard keys: every resource but Accounts, Keys and the account's auth tokens (20003, 401,
changing nothing); a main account's key reaches its subaccounts where its auth token does; a
subaccount's key never reaches its main account or a sibling (20003, 403)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.config import load_settings
from pigeon.store import accounts as account_store
from pigeon.store.engine import Database
from tests.integration.http_client import assert_twilio_error

V = "/2010-04-01"
Row = dict[str, Any]
Call = tuple[Row, str, str, dict[str, Any]]  # (credentials' row, method, path, httpx keywords)


def _run(db: Database, database_url: str, calls: Sequence[Call]) -> list[httpx.Response]:
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                out = []
                for who, method, path, kw in calls:
                    auth = (who["sid"], who.get("secret") or who["auth_token"])
                    out.append(await client.request(method, path, auth=auth, **kw))
                return out

    return asyncio.run(run())


@pytest.fixture
def family(db: Database) -> dict[str, Row]:
    now = datetime.now(UTC)
    with db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=now)
        sub = account_use.create_subaccount(conn, main["sid"], friendly_name="Sub", now=now)
        sibling = account_use.create_subaccount(conn, main["sid"], friendly_name="Sibling", now=now)
        return {
            "main": main,
            "sub": sub,
            "sibling": sibling,
            "key": account_use.create_key(conn, account_sid=main["sid"], friendly_name="main app", now=now),
            "sub_key": account_use.create_key(conn, account_sid=sub["sid"], friendly_name="sub app", now=now),
        }


def test_a_key_may_not_use_accounts_keys_or_auth_tokens(db: Database, database_url: str, family: Row) -> None:
    main, sub, key, sub_key = family["main"], family["sub"], family["key"], family["sub_key"]
    refused: list[Call] = [
        (key, "GET", f"{V}/Accounts.json", {}),
        (key, "POST", f"{V}/Accounts.json", {"data": {"FriendlyName": "made by a key"}}),
        (key, "GET", f"{V}/Accounts/{main['sid']}.json", {}),
        (key, "POST", f"{V}/Accounts/{main['sid']}.json", {"data": {"FriendlyName": "renamed"}}),
        (key, "POST", f"{V}/Accounts/{sub['sid']}.json", {"data": {"Status": "suspended"}}),
        (key, "POST", f"{V}/Accounts/{sub['sid']}.json", {"data": {"Status": "closed"}}),
        (key, "GET", f"{V}/Accounts/{main['sid']}/Keys.json", {}),
        (key, "POST", f"{V}/Accounts/{main['sid']}/Keys.json", {"data": {"FriendlyName": "another"}}),
        (key, "GET", f"{V}/Accounts/{main['sid']}/Keys/{key['sid']}.json", {}),
        (key, "POST", f"{V}/Accounts/{main['sid']}/Keys/{key['sid']}.json", {"data": {"FriendlyName": "x"}}),
        (key, "DELETE", f"{V}/Accounts/{main['sid']}/Keys/{key['sid']}.json", {}),
        (key, "POST", f"{V}/Accounts/{sub['sid']}/Keys.json", {}),  # a subaccount's keys neither
        (key, "DELETE", f"{V}/Accounts/{sub['sid']}/Keys/{sub_key['sid']}.json", {}),
        (key, "POST", "/v1/AuthTokens/Secondary", {}),
        (key, "DELETE", "/v1/AuthTokens/Secondary", {}),
        (key, "POST", "/v1/AuthTokens/Promote", {}),
        (sub_key, "GET", f"{V}/Accounts/{sub['sid']}.json", {}),
        (sub_key, "POST", f"{V}/Accounts/{sub['sid']}/Keys.json", {}),
        (sub_key, "POST", "/v1/AuthTokens/Secondary", {}),
    ]
    for response in _run(db, database_url, refused):
        assert_twilio_error(response, 401, 20003)
    with db.read() as conn:  # nothing changed
        assert len(account_store.list_accounts(conn)) == 3
        for account in (main, sub):
            now = account_store.get_account(conn, account["sid"]) or {}
            assert (now["friendly_name"], now["status"]) == (account["friendly_name"], "active")
            assert (now["auth_token"], now["secondary_auth_token"]) == (account["auth_token"], None)
        assert [k["sid"] for k in account_store.list_api_keys(conn, None)] == sorted([key["sid"], sub_key["sid"]])
    # The account's auth token still may.
    made = _run(db, database_url, [(main, "POST", f"{V}/Accounts/{main['sid']}/Keys.json", {})])[0]
    assert made.status_code == 201, made.text


def test_keys_reach_accounts_as_their_accounts_auth_token_does(db: Database, database_url: str, family: Row) -> None:
    main, sub, sibling, key, sub_key = (family[k] for k in ("main", "sub", "sibling", "key", "sub_key"))
    answers = _run(
        db,
        database_url,
        [
            (key, "GET", f"{V}/Accounts/{main['sid']}/Messages.json", {}),
            (key, "GET", f"{V}/Accounts/{sub['sid']}/Messages.json", {}),  # down, as the main token
            (key, "GET", f"{V}/Accounts/{sub['sid']}/IncomingPhoneNumbers.json", {}),
            (sub_key, "GET", f"{V}/Accounts/{sub['sid']}/Messages.json", {}),
            (sub_key, "GET", "/v1/Services", {}),
        ],
    )
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    upward = _run(
        db,
        database_url,
        [
            (sub_key, "GET", f"{V}/Accounts/{main['sid']}/Messages.json", {}),
            (sub_key, "POST", f"{V}/Accounts/{main['sid']}/Messages.json", {"data": {"To": "+14155550100"}}),
            (sub_key, "GET", f"{V}/Accounts/{sibling['sid']}/Messages.json", {}),
            (sub_key, "GET", f"{V}/Accounts/{main['sid']}/IncomingPhoneNumbers.json", {}),
        ],
    )
    for response in upward:
        assert_twilio_error(response, 403, 20003)
