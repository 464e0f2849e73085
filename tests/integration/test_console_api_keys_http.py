"""The console signed in with an API key: what such a session may do to the account's other
sessions. Twilio's console takes no API key; Pigeon's does, with a standard key's limits: it
reaches what the account's auth token reaches in the console, but never the sessions made
with the auth token (nor those of another key)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # as in test_console_http: Starlette's test client and httpx
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.config import load_settings
from pigeon.store.engine import Database

Row = dict[str, Any]
BASE = "http://127.0.0.1:8080"


@pytest.fixture
def family(db: Database, database_url: str) -> Iterator[tuple[TestClient, dict[str, Row]]]:
    now = datetime.now(UTC)
    with db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=now)
        sub = account_use.create_subaccount(conn, main["sid"], friendly_name="Sub", now=now)
        made: dict[str, Row] = {
            "main": main,
            "sub": sub,
            "key": account_use.create_key(conn, account_sid=main["sid"], friendly_name="app", now=now),
            "other_key": account_use.create_key(conn, account_sid=main["sid"], friendly_name="ci", now=now),
            "sub_key": account_use.create_key(conn, account_sid=sub["sid"], friendly_name="sub", now=now),
        }
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    with TestClient(app, base_url=BASE) as client:
        yield client, made


def browser(client: TestClient, username: str, password: str, account: str = "") -> TestClient:
    """A new browser on the same app, signed in with these credentials."""
    other = TestClient(client.app, base_url=BASE)
    page = other.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"username": username, "password": password, "account": account, "csrf_token": token.group(1)}
    assert other.post("/console/login", data=form, follow_redirects=False).status_code == 303
    return other


def signed_in(client: TestClient) -> bool:
    response = client.get("/console/logs", follow_redirects=False)
    assert response.status_code in (200, 303), response.text
    return bool(response.status_code == 200)


def sign_out(client: TestClient) -> None:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/logs").text)
    assert found
    assert (
        client.post("/console/logout", data={"csrf_token": found.group(1)}, follow_redirects=False).status_code == 303
    )


def test_signing_out_with_a_key_ends_that_keys_sessions_only(family: tuple[TestClient, dict[str, Row]]) -> None:
    """A key's sign-out ended every console session of the account, the auth token's
    included: a leaked key could keep the account's owner out of the console."""
    client, d = family
    main, key, other_key = d["main"], d["key"], d["other_key"]
    owner = browser(client, str(main["sid"]), str(main["auth_token"]))
    by_key = browser(client, str(key["sid"]), str(key["secret"]))
    same_key = browser(client, str(key["sid"]), str(key["secret"]))  # another browser, or a copied cookie
    by_other_key = browser(client, str(other_key["sid"]), str(other_key["secret"]))
    sign_out(by_key)
    assert not signed_in(by_key) and not signed_in(same_key)
    assert signed_in(owner) and signed_in(by_other_key)
    # The key signs in again, and the account's own sign-out still ends every session.
    again = browser(client, str(key["sid"]), str(key["secret"]))
    sign_out(owner)
    assert not signed_in(again) and not signed_in(by_other_key)


def test_a_subaccounts_key_never_reaches_its_main_account(family: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = family
    sub_key, main, sub = d["sub_key"], d["main"], d["sub"]
    refused = TestClient(client.app, base_url=BASE)
    page = refused.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"username": sub_key["sid"], "password": sub_key["secret"], "account": main["sid"], "csrf_token": token[1]}
    assert refused.post("/console/login", data=form, follow_redirects=False).status_code == 401
    by_sub_key = browser(client, str(sub_key["sid"]), str(sub_key["secret"]))
    found = re.search(r'name="csrf_token" value="([^"]+)"', by_sub_key.get("/console/logs").text)
    assert found
    switch = {"account_sid": main["sid"], "csrf_token": found.group(1)}
    assert by_sub_key.post("/console/switch", data=switch, follow_redirects=False).status_code == 403
    assert str(main["sid"]) not in by_sub_key.get("/console/logs").text
    assert str(sub["sid"]) in by_sub_key.get("/console/logs").text


def test_a_main_accounts_key_switches_to_its_subaccount_as_its_auth_token_does(
    family: tuple[TestClient, dict[str, Row]],
) -> None:
    client, d = family
    key, sub = d["key"], d["sub"]
    by_key = browser(client, str(key["sid"]), str(key["secret"]))
    found = re.search(r'name="csrf_token" value="([^"]+)"', by_key.get("/console/logs").text)
    assert found
    switch = {"account_sid": sub["sid"], "csrf_token": found.group(1)}
    assert by_key.post("/console/switch", data=switch, follow_redirects=False).status_code == 303
    assert signed_in(by_key)
