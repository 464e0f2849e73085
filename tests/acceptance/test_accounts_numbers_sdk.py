"""Accounts, subaccounts, API keys and IncomingPhoneNumbers through the real `twilio` SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException

from tests.acceptance.conftest import Server
from tests.acceptance.support import Tenant, fresh_number, new_tenant, raises_twilio, stock

pytestmark = pytest.mark.acceptance


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server)


# -- accounts -----------------------------------------------------------------------------------


def test_fetch_own_account(shared_server: Server) -> None:
    sid = shared_server.account_sid
    account = shared_server.client().api.accounts(sid).fetch()
    assert (account.sid, account.owner_account_sid, account.auth_token) == (sid, sid, shared_server.auth_token)
    assert (account.status, account.type) == ("active", "Full")
    assert account.friendly_name and account.date_created is not None
    assert account.uri == f"/2010-04-01/Accounts/{sid}.json"
    assert account.subresource_uris["messages"] == f"/2010-04-01/Accounts/{sid}/Messages.json"


def test_create_subaccount(shared_server: Server) -> None:
    parent = shared_server.client()
    sub = parent.api.accounts.create(friendly_name="Team A")
    assert sub.sid.startswith("AC") and sub.sid != shared_server.account_sid
    assert sub.owner_account_sid == shared_server.account_sid
    assert sub.friendly_name == "Team A" and sub.status == "active"
    assert sub.auth_token and sub.auth_token != shared_server.auth_token
    # The subaccount's own credentials work, and so do its parent's.
    assert shared_server.client(sub.sid, sub.auth_token).api.accounts(sub.sid).fetch().friendly_name == "Team A"
    assert parent.api.accounts(sub.sid).fetch().owner_account_sid == shared_server.account_sid


def test_list_accounts(shared_server: Server) -> None:
    parent = shared_server.client()
    sub = parent.api.accounts.create(friendly_name="Listed Team")
    listed = {a.sid for a in parent.api.accounts.list()}
    assert {shared_server.account_sid, sub.sid} <= listed
    assert [a.sid for a in parent.api.accounts.list(friendly_name="Listed Team")] == [sub.sid]
    # A subaccount sees itself only.
    as_sub = shared_server.client(sub.sid, sub.auth_token)
    assert [a.sid for a in as_sub.api.accounts.list()] == [sub.sid]
    # Paging follows next_page_uri.
    assert {a.sid for a in parent.api.accounts.list(page_size=1)} == listed
    # A status no account can have is refused, as an update to it is (before: an empty list).
    with pytest.raises(TwilioException) as refused:  # the SDK's list raises this for any error page
        parent.api.accounts.list(status="bogus")
    page = refused.value.args[1]
    assert (page.status_code, json.loads(page.text)["code"]) == (400, 21475)


def test_update_account_friendly_name(tenant: Tenant) -> None:
    updated = tenant.server.client().api.accounts(tenant.sid).update(friendly_name="Renamed")
    assert updated.friendly_name == "Renamed"
    assert tenant.client().api.accounts(tenant.sid).fetch().friendly_name == "Renamed"


def test_a_subaccount_cannot_create_subaccounts(tenant: Tenant) -> None:
    # Its subaccount would be out of the main account's reach.
    raises_twilio(lambda: tenant.client().api.accounts.create(friendly_name="grandchild"), 20003, 403)


def test_suspended_subaccount_is_refused_until_its_parent_reactivates_it(tenant: Tenant) -> None:
    parent = tenant.server.client()
    assert parent.api.accounts(tenant.sid).update(status="suspended").status == "suspended"

    def send() -> Any:
        return tenant.client().messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x")

    raises_twilio(send, 20005, 403)
    as_parent = tenant.server.client(account_sid=tenant.sid)
    raises_twilio(lambda: as_parent.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 20005, 403)
    # The Account resource itself stays reachable, or it could never be reactivated.
    assert tenant.client().api.accounts(tenant.sid).fetch().status == "suspended"
    assert parent.api.accounts(tenant.sid).update(status="active").status == "active"
    assert send().status == "queued"


def test_only_the_parent_changes_a_subaccounts_status(tenant: Tenant) -> None:
    own = tenant.client().api.accounts(tenant.sid)
    raises_twilio(lambda: own.update(status="closed"), 20003, 403)
    parent = tenant.server.client().api.accounts(tenant.sid)
    assert parent.update(status="suspended").status == "suspended"
    # Suspended, it may not undo its parent's suspension, nor rename itself.
    raises_twilio(lambda: own.update(status="active"), 20003, 403)
    raises_twilio(lambda: own.update(friendly_name="still here"), 20005, 403)
    raises_twilio(lambda: parent.update(friendly_name="renamed while suspended"), 20005, 403)
    assert (parent.fetch().status, parent.fetch().friendly_name) == ("suspended", "acceptance tenant")
    # The parent reactivates it, and may rename it in the same request.
    reactivated = parent.update(status="active", friendly_name="back")
    assert (reactivated.status, reactivated.friendly_name) == ("active", "back")
    assert own.update(friendly_name="mine again").friendly_name == "mine again"


def test_an_operators_suspension_is_not_undone_through_the_api(shared_server: Server) -> None:
    made = json.loads(shared_server.cli("accounts", "create", "--friendly-name", "held", "--json").stdout)
    main = shared_server.client(made["sid"], made["auth_token"])
    sub = main.api.accounts.create(friendly_name="held's customer")
    shared_server.cli("accounts", "status", sub.sid, "--suspend")
    as_sub = shared_server.client(sub.sid, sub.auth_token).api.accounts(sub.sid)
    raises_twilio(lambda: as_sub.update(status="active"), 20003, 403)
    # Nor its main account: the operator suspended it (before, this made it active again).
    raises_twilio(lambda: main.api.accounts(sub.sid).update(status="active"), 21478, 400)
    raises_twilio(lambda: main.api.accounts(sub.sid).update(status="closed"), 21478, 400)
    assert main.api.accounts(sub.sid).fetch().status == "suspended"
    shared_server.cli("accounts", "status", made["sid"], "--suspend")
    raises_twilio(lambda: main.api.accounts(made["sid"]).update(status="active"), 21477, 400)
    raises_twilio(lambda: main.api.accounts(made["sid"]).update(friendly_name="unheld"), 20005, 403)
    raises_twilio(lambda: main.api.accounts(sub.sid).update(status="active"), 21476, 400)
    raises_twilio(lambda: as_sub.update(friendly_name="unheld"), 20005, 403)
    shown = json.loads(shared_server.cli("accounts", "status", made["sid"], "--json").stdout)
    assert {r["account_sid"]: r["status"] for r in shown} == {made["sid"]: "suspended", sub.sid: "suspended"}
    assert main.api.accounts(made["sid"]).fetch().friendly_name == "held"


def test_a_suspended_main_account_makes_no_subaccounts(shared_server: Server) -> None:
    made = json.loads(shared_server.cli("accounts", "create", "--friendly-name", "idle", "--json").stdout)
    main = shared_server.client(made["sid"], made["auth_token"])
    shared_server.cli("accounts", "status", made["sid"], "--suspend")
    raises_twilio(lambda: main.api.accounts.create(friendly_name="made while suspended"), 20005, 403)
    assert [a.sid for a in main.api.accounts.list()] == [made["sid"]]


def test_a_suspended_account_cannot_text_itself_from_the_simulator(tenant: Tenant) -> None:
    tenant.server.client().api.accounts(tenant.sid).update(status="suspended")
    sent = httpx.post(
        tenant.server.base_url + "/simulator/inbound",
        data={"From": "+14155550100", "To": tenant.numbers[0], "Body": "injected"},
        auth=(tenant.sid, tenant.auth_token),
        timeout=10,
    )
    assert (sent.status_code, sent.json()["code"]) == (403, 20005)
    tenant.server.client().api.accounts(tenant.sid).update(status="active")
    assert tenant.client().messages.list() == []


def test_closed_subaccount_loses_its_credentials_and_keys(tenant: Tenant, shared_server: Server) -> None:
    # A name longer than its column: refused on both stores (PostgreSQL's refusal was a traceback).
    too_long = shared_server.cli("keys", "create", "--account", tenant.sid, "--friendly-name", "k" * 65, check=False)
    assert too_long.returncode != 0 and "at most 64 characters" in too_long.stderr
    key = json.loads(shared_server.cli("keys", "create", "--account", tenant.sid, "--json").stdout)
    parent = shared_server.client()
    assert parent.api.accounts(tenant.sid).update(status="closed").status == "closed"
    raises_twilio(lambda: tenant.client().api.accounts(tenant.sid).fetch(), 20003, 401)
    by_key = shared_server.client(key["sid"], key["secret"], tenant.sid)
    raises_twilio(lambda: by_key.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 20003, 401)
    as_parent = shared_server.client(account_sid=tenant.sid)
    raises_twilio(lambda: as_parent.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 20005, 403)
    assert parent.api.accounts(tenant.sid).fetch().status == "closed"
    raises_twilio(lambda: parent.api.accounts(tenant.sid).update(status="active"), 21479, 400)
    # No new key for it either: it could never authenticate (before, one was printed).
    refused = shared_server.cli("keys", "create", "--account", tenant.sid, check=False)
    assert refused.returncode == 1 and "21479" in refused.stderr + refused.stdout


def test_a_closed_subaccounts_history_stays_readable_and_its_numbers_are_released(
    tenant: Tenant, shared_server: Server
) -> None:
    """Before, its parent's reads were refused (20005), and its numbers stayed on it for ever:
    not listed, moved or released by the parent (20005), nor bought by anyone (21422)."""
    as_parent = shared_server.client(account_sid=tenant.sid)
    sent = as_parent.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="before the close")
    parent = shared_server.client()
    assert parent.api.accounts(tenant.sid).update(status="closed").status == "closed"
    assert [m.sid for m in as_parent.messages.list()] == [sent.sid]
    assert as_parent.messages(sent.sid).fetch().body == "before the close"
    assert as_parent.incoming_phone_numbers.list() == []
    raises_twilio(lambda: as_parent.messages(sent.sid).update(body=""), 20005, 403)
    successor = parent.api.accounts.create(friendly_name="successor")
    as_successor = shared_server.client(account_sid=successor.sid)
    bought = as_successor.incoming_phone_numbers.create(phone_number=tenant.numbers[0])
    assert (bought.phone_number, bought.account_sid) == (tenant.numbers[0], successor.sid)


def test_parent_acts_on_its_subaccounts_messages(tenant: Tenant, shared_server: Server) -> None:
    as_parent = shared_server.client(account_sid=tenant.sid)
    msg = as_parent.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="from the parent")
    assert msg.account_sid == tenant.sid
    assert msg.uri.startswith(f"/2010-04-01/Accounts/{tenant.sid}/")
    assert as_parent.messages(msg.sid).fetch().body == "from the parent"
    assert [m.sid for m in as_parent.messages.list()] == [msg.sid]
    # The subaccount sees the same message; the parent's own log does not hold it.
    assert tenant.client().messages(msg.sid).fetch().sid == msg.sid
    raises_twilio(lambda: shared_server.client().messages(msg.sid).fetch(), 20404, 404)


def test_api_key_authenticates_for_its_account(tenant: Tenant, shared_server: Server) -> None:
    key = json.loads(shared_server.cli("keys", "create", "--account", tenant.sid, "--json").stdout)
    assert key["sid"].startswith("SK") and key["account_sid"] == tenant.sid
    client = shared_server.client(key["sid"], key["secret"], tenant.sid)
    msg = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="via key")
    assert msg.account_sid == tenant.sid
    assert client.messages(msg.sid).fetch().body == "via key"
    assert [m.sid for m in client.messages.list()] == [msg.sid]

    wrong = shared_server.client(key["sid"], "not-the-secret", tenant.sid)
    raises_twilio(lambda: wrong.messages(msg.sid).fetch(), 20003, 401)
    # A subaccount's key does not reach the parent.
    upward = shared_server.client(key["sid"], key["secret"], shared_server.account_sid)
    raises_twilio(
        lambda: upward.messages.create(to=fresh_number(), from_=shared_server.numbers[0], body="x"), 20003, 403
    )


def test_an_api_key_cannot_use_the_account_resource(tenant: Tenant, shared_server: Server) -> None:
    # The Account shows the auth token, makes subaccounts and closes them (for good): as with
    # Keys, only the account's auth token (or its parent's) may use it, never an API key.
    key = json.loads(shared_server.cli("keys", "create", "--account", shared_server.account_sid, "--json").stdout)
    by_key = shared_server.client(key["sid"], key["secret"], shared_server.account_sid)
    raises_twilio(lambda: by_key.api.accounts(shared_server.account_sid).fetch(), 20003, 401)
    raises_twilio(lambda: by_key.api.accounts(tenant.sid).fetch(), 20003, 401)
    raises_twilio(lambda: by_key.api.accounts.create(friendly_name="made by a key"), 20003, 401)
    raises_twilio(lambda: by_key.api.accounts(tenant.sid).update(status="closed"), 20003, 401)
    raises_twilio(lambda: by_key.api.accounts(tenant.sid).update(friendly_name="renamed by a key"), 20003, 401)
    listed = httpx.get(f"{shared_server.base_url}/2010-04-01/Accounts.json", auth=(key["sid"], key["secret"]))
    assert (listed.status_code, listed.json()["code"]) == (401, 20003)
    assert "auth_token" not in listed.text
    after = shared_server.client().api.accounts(tenant.sid).fetch()
    assert (after.status, after.friendly_name) == ("active", "acceptance tenant")
    # The key still works where keys do.
    assert by_key.messages.list(limit=1) is not None
    shared_server.cli("keys", "revoke", key["sid"])


def test_api_keys_are_made_listed_and_revoked_through_the_api(tenant: Tenant, shared_server: Server) -> None:
    client = tenant.client()
    made = client.new_keys.create(friendly_name="ci deploys")
    assert made.sid.startswith("SK") and len(made.secret) >= 32 and made.friendly_name == "ci deploys"
    by_key = shared_server.client(made.sid, made.secret, tenant.sid)
    assert by_key.messages.list() == []
    assert [k.sid for k in client.keys.list()] == [made.sid]
    fetched = client.keys(made.sid).fetch()
    assert (fetched.friendly_name, fetched.date_created) == ("ci deploys", made.date_created)
    assert not hasattr(fetched, "secret") or getattr(fetched, "secret", None) is None
    renamed = client.keys(made.sid).update(friendly_name="ci deploys (old)")
    assert (renamed.friendly_name, renamed.date_created) == ("ci deploys (old)", made.date_created)
    assert renamed.date_updated >= made.date_updated
    raises_twilio(lambda: client.keys(made.sid).update(friendly_name="k" * 65), 20422, 400)
    # A key cannot manage keys (a leaked one must not make itself new ones).
    raises_twilio(lambda: by_key.new_keys.create(friendly_name="more"), 20003, 401)
    listed = httpx.get(f"{tenant.base()}/Keys.json", auth=(made.sid, made.secret), timeout=10)
    assert (listed.status_code, listed.json()["code"]) == (401, 20003)
    # Another account's keys are not there; the parent may manage its subaccount's.
    other = new_tenant(shared_server, numbers=0)
    raises_twilio(lambda: other.client().keys(made.sid).fetch(), 20404, 404)
    assert [k.sid for k in shared_server.client(account_sid=tenant.sid).keys.list()] == [made.sid]
    raises_twilio(lambda: client.new_keys.create(friendly_name="k" * 65), 20422, 400)

    assert client.keys(made.sid).delete() is True
    refused = httpx.get(f"{tenant.base()}/Messages.json", auth=(made.sid, made.secret), timeout=10)
    assert (refused.status_code, refused.json()["code"]) == (401, 20003)  # revoked at once
    assert client.keys.list() == []


def test_api_keys_are_listed_and_revoked_from_the_command_line(tenant: Tenant, shared_server: Server) -> None:
    key = json.loads(shared_server.cli("keys", "create", "--account", tenant.sid, "--json").stdout)
    listed = json.loads(shared_server.cli("keys", "list", "--account", tenant.sid, "--json").stdout)
    assert [k["sid"] for k in listed] == [key["sid"]] and "secret_hash" not in listed[0]
    assert key["sid"] in shared_server.cli("keys", "list", "--account", tenant.sid).stdout
    by_key = shared_server.client(key["sid"], key["secret"], tenant.sid)
    assert by_key.messages.list() == []
    revoked = json.loads(shared_server.cli("keys", "revoke", key["sid"], "--json").stdout)
    assert revoked == {"sid": key["sid"], "account_sid": tenant.sid, "revoked": True}
    refused = httpx.get(f"{tenant.base()}/Messages.json", auth=(key["sid"], key["secret"]), timeout=10)
    assert refused.status_code == 401
    again = shared_server.cli("keys", "revoke", key["sid"], check=False)
    assert again.returncode == 1 and "error 20404" in again.stderr


# -- IncomingPhoneNumbers --------------------------------------------------------------------------


def test_incoming_phone_number_lifecycle(tenant: Tenant) -> None:
    client = tenant.client()
    [wanted] = stock(tenant.server, fresh_number())
    number = client.incoming_phone_numbers.create(
        phone_number=wanted, friendly_name="Support line", sms_url="https://app.example.com/sms"
    )
    assert number.sid.startswith("PN") and number.phone_number == wanted
    assert number.account_sid == tenant.sid and number.friendly_name == "Support line"
    assert number.capabilities == {"fax": False, "mms": True, "sms": True, "voice": True}
    assert (number.sms_url, number.sms_method) == ("https://app.example.com/sms", "POST")
    assert number.uri == f"/2010-04-01/Accounts/{tenant.sid}/IncomingPhoneNumbers/{number.sid}.json"

    listed = client.incoming_phone_numbers.list()
    assert [n.phone_number for n in listed] == [*tenant.numbers, wanted]
    assert [n.sid for n in client.incoming_phone_numbers.list(phone_number=wanted)] == [number.sid]
    assert [n.sid for n in client.incoming_phone_numbers.list(friendly_name="Support line")] == [number.sid]
    assert [n.sid for n in client.incoming_phone_numbers.list(page_size=1)] == [n.sid for n in listed]

    fetched = client.incoming_phone_numbers(number.sid).fetch()
    assert (fetched.sid, fetched.phone_number, fetched.sms_url) == (number.sid, wanted, "https://app.example.com/sms")

    updated = client.incoming_phone_numbers(number.sid).update(
        sms_url="https://app.example.com/v2/sms", sms_method="GET", sms_fallback_url="https://backup.example.com/sms"
    )
    assert (updated.sms_url, updated.sms_method) == ("https://app.example.com/v2/sms", "GET")
    assert updated.sms_fallback_url == "https://backup.example.com/sms"
    assert client.incoming_phone_numbers(number.sid).fetch().sms_method == "GET"

    # A number on the account sends; once released it cannot, and it is free to provision again.
    assert client.messages.create(to=fresh_number(), from_=wanted, body="from the new line").status == "queued"
    assert client.incoming_phone_numbers(number.sid).delete() is True
    raises_twilio(lambda: client.incoming_phone_numbers(number.sid).fetch(), 20404, 404)
    raises_twilio(lambda: client.messages.create(to=fresh_number(), from_=wanted, body="x"), 21606, 400)
    assert client.incoming_phone_numbers.create(phone_number=wanted).phone_number == wanted


def test_incoming_phone_number_errors(tenant: Tenant, shared_server: Server) -> None:
    client = tenant.client()
    raises_twilio(lambda: client.incoming_phone_numbers.create(phone_number="12ab"), 21421, 400)
    raises_twilio(lambda: client.incoming_phone_numbers.create(phone_number=shared_server.numbers[0]), 21422, 400)
    raises_twilio(lambda: client.incoming_phone_numbers.create(phone_number=tenant.numbers[0]), 21422, 400)
    raises_twilio(
        lambda: client.incoming_phone_numbers.create(phone_number=fresh_number(), sms_url="not a url"), 21402, 400
    )
    raises_twilio(
        lambda: client.incoming_phone_numbers.create(phone_number=fresh_number(), sms_method="PUT"), 21403, 400
    )
    sid = client.incoming_phone_numbers.list()[0].sid
    raises_twilio(lambda: client.incoming_phone_numbers(sid).update(sms_url="ftp://x.example.com"), 21402, 400)
    raises_twilio(lambda: client.incoming_phone_numbers(sid).update(sms_method="DELETE"), 21403, 400)
    # No TwiML Applications here: a number's texts would go nowhere the caller expects.
    application = "AP" + "0" * 32
    raises_twilio(lambda: client.incoming_phone_numbers(sid).update(sms_application_sid=application), 20422, 400)
    raises_twilio(
        lambda: client.incoming_phone_numbers.create(phone_number=fresh_number(), sms_application_sid=application),
        20422,
        400,
    )
    raises_twilio(
        lambda: client.incoming_phone_numbers.create(
            phone_number=fresh_number(), sms_fallback_url="https://backup.example.com/sms"
        ),
        21406,
        400,
    )
    # A fallback with nothing to fall back from is refused on update too, as on create.
    raises_twilio(
        lambda: client.incoming_phone_numbers(sid).update(sms_fallback_url="https://backup.example.com/sms"),
        21406,
        400,
    )
    # None of the refused requests changed the account's numbers.
    assert [n.phone_number for n in client.incoming_phone_numbers.list()] == tenant.numbers


def test_another_accounts_number_is_not_found(tenant: Tenant, shared_server: Server) -> None:
    other = new_tenant(shared_server, numbers=1)
    theirs = other.client().incoming_phone_numbers.list()[0].sid
    client = tenant.client()
    raises_twilio(lambda: client.incoming_phone_numbers(theirs).fetch(), 20404, 404)
    raises_twilio(lambda: client.incoming_phone_numbers(theirs).update(sms_url="https://x.example.com"), 20404, 404)
    raises_twilio(lambda: client.incoming_phone_numbers(theirs).delete(), 20404, 404)
    assert theirs not in {n.sid for n in client.incoming_phone_numbers.list()}
    assert other.client().incoming_phone_numbers(theirs).fetch().sms_url is None


def test_a_main_account_moves_a_number_between_its_accounts(tenant: Tenant, shared_server: Server) -> None:
    """Twilio's number transfer: an update with AccountSid, made with the main account's
    credentials, between it and its subaccounts. The number keeps its settings."""
    sibling = new_tenant(shared_server, numbers=0)
    as_parent = shared_server.client(account_sid=tenant.sid)
    [number] = [n for n in as_parent.incoming_phone_numbers.list() if n.phone_number == tenant.numbers[0]]
    as_parent.incoming_phone_numbers(number.sid).update(sms_url="https://app.example.com/sms")

    moved = as_parent.incoming_phone_numbers(number.sid).update(account_sid=sibling.sid)
    assert (moved.sid, moved.account_sid, moved.sms_url) == (number.sid, sibling.sid, "https://app.example.com/sms")
    assert moved.uri == f"/2010-04-01/Accounts/{sibling.sid}/IncomingPhoneNumbers/{number.sid}.json"
    assert [n.sid for n in sibling.client().incoming_phone_numbers.list()] == [number.sid]
    raises_twilio(lambda: tenant.client().incoming_phone_numbers(number.sid).fetch(), 20404, 404)
    raises_twilio(
        lambda: tenant.client().messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 21606, 400
    )
    assert sibling.client().messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x").status == "queued"

    # A subaccount's own credentials move nothing, to its parent or to a sibling; nor does an
    # account outside the family take it.
    back = sibling.client().incoming_phone_numbers(number.sid)
    raises_twilio(lambda: back.update(account_sid=shared_server.account_sid), 21474, 403)
    raises_twilio(lambda: back.update(account_sid=tenant.sid), 21474, 403)
    moving = shared_server.client(account_sid=sibling.sid).incoming_phone_numbers(number.sid)
    raises_twilio(lambda: moving.update(account_sid="AC" + "0" * 32), 21471, 400)
    assert back.update(account_sid=sibling.sid).account_sid == sibling.sid  # its own: no change
    assert moving.update(account_sid=shared_server.account_sid).account_sid == shared_server.account_sid
