"""The account rules an operator sets from the command line, against a real store: short-code
inbound (`pigeon accounts short-code-inbound`), seen through `pigeon simulate inbound`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import new_tenant

pytestmark = pytest.mark.acceptance


def _text(server: Server, sender: str, to: str) -> dict[str, Any]:
    done = server.cli("simulate", "inbound", "--from", sender, "--to", to, "--body", "promo", "--json", check=False)
    result: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if result["message_sid"] else 1), done.stderr  # 1: no account took it
    return result


def test_short_code_inbound_is_turned_on_and_off(shared_server: Server) -> None:
    tenant = new_tenant(shared_server, numbers=1)
    number = tenant.numbers[0]
    shown = json.loads(shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--json").stdout)
    assert shown == {"account_sid": tenant.sid, "allow_short_code_inbound": False}
    refused = _text(shared_server, "22395", number)
    assert refused["message_sid"] is None and "option is off" in refused["unroutable_reason"]

    on = shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--on")
    assert "take texts from short codes" in on.stdout
    taken = _text(shared_server, "22395", number)
    assert taken["message_sid"] and taken["account_sid"] == tenant.sid

    shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--off")
    assert _text(shared_server, "22395", number)["message_sid"] is None

    missing = shared_server.cli("accounts", "short-code-inbound", "AC" + "0" * 32, check=False)
    assert missing.returncode == 1 and "was not found" in missing.stderr


def _refusal(server: Server, sid: str, token: str) -> tuple[int, int] | None:
    """(HTTP status, Twilio code) of the refusal of a send by the account, or None when the
    account may send (the empty send is then refused for what it lacks: 400). A read is
    answered all the same unless the credentials ended (401)."""
    url = f"{server.base_url}/2010-04-01/Accounts/{sid}/Messages.json"
    read = httpx.get(url, auth=(sid, token), timeout=10)
    answer = httpx.post(url, data={}, auth=(sid, token), timeout=10)
    assert read.status_code == (401 if answer.status_code == 401 else 200)
    if answer.status_code == 400:
        return None
    return answer.status_code, int(answer.json()["code"])


def test_an_operator_suspends_reactivates_and_closes_an_account(shared_server: Server) -> None:
    made = json.loads(shared_server.cli("accounts", "create", "--friendly-name", "tenant", "--json").stdout)
    main = (made["sid"], made["auth_token"])
    sub = shared_server.client(*main).api.accounts.create(friendly_name="its customer")
    sub_creds = (sub.sid, sub.auth_token)

    suspended = json.loads(shared_server.cli("accounts", "status", made["sid"], "--suspend", "--json").stdout)
    assert suspended == [{"account_sid": made["sid"], "status": "suspended", "owner_account_sid": made["sid"]}]
    assert _refusal(shared_server, *main) == (403, 20005)
    # As on Twilio, the main account's suspension holds its subaccounts too; their own status
    # is unchanged, and the main account may not change it meanwhile (21476).
    assert _refusal(shared_server, *sub_creds) == (403, 20005)
    held = httpx.post(f"{shared_server.base_url}/2010-04-01/Accounts/{sub.sid}/Messages.json", auth=sub_creds)
    assert f"main account {made['sid']} is suspended" in held.json()["message"]
    change = httpx.post(
        f"{shared_server.base_url}/2010-04-01/Accounts/{sub.sid}.json", data={"Status": "closed"}, auth=main
    )
    assert (change.status_code, change.json()["code"]) == (400, 21476)
    assert shared_server.client(*main).api.accounts(sub.sid).fetch().status == "active"

    shared_server.cli("accounts", "status", made["sid"], "--activate")
    assert _refusal(shared_server, *main) is None
    assert _refusal(shared_server, *sub_creds) is None
    both = shared_server.cli("accounts", "status", made["sid"], "--suspend", "--with-subaccounts").stdout
    assert f"{sub.sid} (subaccount of {made['sid']}): suspended" in both
    assert _refusal(shared_server, *sub_creds) == (403, 20005)
    shown = json.loads(shared_server.cli("accounts", "status", made["sid"], "--json").stdout)
    assert {r["account_sid"]: r["status"] for r in shown} == {made["sid"]: "suspended", sub.sid: "suspended"}
    # With --with-subaccounts each keeps its own suspension after the main account is back,
    # which the main account cannot lift (21478): the operator suspended it.
    shared_server.cli("accounts", "status", made["sid"], "--activate")
    assert _refusal(shared_server, *main) is None
    assert _refusal(shared_server, *sub_creds) == (403, 20005)
    lift = httpx.post(
        f"{shared_server.base_url}/2010-04-01/Accounts/{sub.sid}.json", data={"Status": "active"}, auth=main
    )
    assert (lift.status_code, lift.json()["code"]) == (400, 21478)
    assert _refusal(shared_server, *sub_creds) == (403, 20005)

    shared_server.cli("accounts", "status", made["sid"], "--close")
    assert _refusal(shared_server, *main) == (401, 20003)  # a closed account's credentials stop working
    assert _refusal(shared_server, *sub_creds) == (401, 20003)  # and its subaccounts' with them
    reopened = shared_server.cli("accounts", "status", made["sid"], "--activate", check=False)
    assert reopened.returncode == 1 and "cannot be reopened" in reopened.stderr
    both_flags = shared_server.cli("accounts", "status", made["sid"], "--suspend", "--close", check=False)
    assert both_flags.returncode == 2


def test_a_leaked_auth_token_is_replaced(shared_server: Server) -> None:
    made = json.loads(shared_server.cli("accounts", "create", "--friendly-name", "leaky", "--json").stdout)
    old = (made["sid"], made["auth_token"])
    assert _refusal(shared_server, *old) is None
    # Whoever has the leaked token can make a secondary one: rotating removes it too.
    secondary = shared_server.client(*old).accounts.v1.secondary_auth_token().create().secondary_auth_token
    assert _refusal(shared_server, made["sid"], secondary) is None
    rotated = json.loads(shared_server.cli("accounts", "rotate-token", made["sid"], "--json").stdout)
    assert _refusal(shared_server, made["sid"], secondary) == (401, 20003)
    assert rotated["account_sid"] == made["sid"] and rotated["auth_token"] != made["auth_token"]
    assert _refusal(shared_server, *old) == (401, 20003)
    assert _refusal(shared_server, made["sid"], rotated["auth_token"]) is None
    missing = shared_server.cli("accounts", "rotate-token", "AC" + "0" * 32, check=False)
    assert missing.returncode == 1 and "was not found" in missing.stderr
