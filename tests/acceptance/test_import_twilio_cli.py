"""`pigeon import twilio` against a server that speaks Twilio's API (another Pigeon, set up
through the real `twilio` SDK): numbers with their webhooks, a Messaging Service with its pool
come over; a dry run changes nothing; a second run finds everything here already."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import PIGEON, Server, _serving
from tests.acceptance.support import fresh_number, new_tenant, raises_twilio, stock

pytestmark = pytest.mark.acceptance


# One source and one target for the module: each test works in accounts of its own.
@pytest.fixture(scope="module", params=["sqlite"])
def source(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serving(request, tmp_path_factory, {"PIGEON_RUN_WORKERS": "false"})


@pytest.fixture(scope="module", params=["sqlite"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serving(request, tmp_path_factory, {"PIGEON_RUN_WORKERS": "false"})


def run_import(target: Server, sid: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PIGEON), "import", "twilio", *args],
        env={**target.env, "TWILIO_ACCOUNT_SID": sid, "TWILIO_AUTH_TOKEN": token},
        cwd=target.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_accounts_numbers_and_services_come_over(source: Server, target: Server) -> None:
    tenant = new_tenant(source, numbers=3)
    client = tenant.client()
    first, second, third = tenant.numbers
    sids = {n.phone_number: n.sid for n in client.incoming_phone_numbers.list()}
    client.incoming_phone_numbers(sids[first]).update(
        friendly_name="Support line",
        sms_url="https://app.example.com/sms?x=1",
        sms_method="GET",
        sms_fallback_url="https://app.example.com/fallback",
        status_callback="https://app.example.com/status",
    )
    service = client.messaging.v1.services.create(
        friendly_name="Notifications",
        inbound_request_url="https://app.example.com/inbound",
        sticky_sender=False,
        validity_period=600,
    )
    client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=sids[second])
    client.messaging.v1.services(service.sid).alpha_senders.create(alpha_sender="Acme")

    into = json.loads(target.cli("accounts", "create", "--friendly-name", "migrated", "--json").stdout)
    args = ("--into", into["sid"], "--api-url", source.base_url, "--messaging-url", source.base_url, "--json")
    there = target.client(into["sid"], into["auth_token"])

    dry = run_import(target, tenant.sid, tenant.auth_token, *args)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert report["applied"] is False
    assert report["counts"] == {"made": 6, "here already": 0, "skipped": 0}
    assert there.incoming_phone_numbers.list() == []  # a dry run changes nothing

    done = run_import(target, tenant.sid, tenant.auth_token, *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert [(s["what"], s["action"]) for s in json.loads(done.stdout)["steps"]] == [
        ("number", "made"),
        ("number", "made"),
        ("number", "made"),
        ("service", "made"),
        ("pool number", "made"),
        ("alpha sender", "made"),
    ]
    numbers = {n.phone_number: n for n in there.incoming_phone_numbers.list()}
    assert set(numbers) == {first, second, third}
    support = numbers[first]
    assert (support.friendly_name, support.sms_url, support.sms_method) == (
        "Support line",
        "https://app.example.com/sms?x=1",
        "GET",
    )
    assert (support.sms_fallback_url, support.status_callback) == (
        "https://app.example.com/fallback",
        "https://app.example.com/status",
    )
    [moved] = there.messaging.v1.services.list()
    assert (moved.friendly_name, moved.inbound_request_url, moved.sticky_sender, moved.validity_period) == (
        "Notifications",
        "https://app.example.com/inbound",
        False,
        600,
    )
    assert [p.phone_number for p in there.messaging.v1.services(moved.sid).phone_numbers.list()] == [second]
    assert [a.alpha_sender for a in there.messaging.v1.services(moved.sid).alpha_senders.list()] == ["Acme"]

    again = run_import(target, tenant.sid, tenant.auth_token, *args, "--yes")
    assert json.loads(again.stdout)["counts"] == {"made": 0, "here already": 6, "skipped": 0}

    refused = run_import(target, tenant.sid, "f" * 32, *args)
    assert refused.returncode == 2 and "refused the account SID and auth token" in refused.stderr
    assert "f" * 32 not in refused.stderr + refused.stdout


def test_a_number_another_account_holds_is_skipped_and_said(source: Server, target: Server) -> None:
    tenant = new_tenant(source, numbers=1)
    holder = json.loads(target.cli("accounts", "create", "--friendly-name", "holder", "--json").stdout)
    target.cli("numbers", "add", tenant.numbers[0], "--account", holder["sid"])
    into = json.loads(target.cli("accounts", "create", "--friendly-name", "migrated", "--json").stdout)
    args = ("--into", into["sid"], "--api-url", source.base_url, "--messaging-url", source.base_url)
    result = run_import(target, tenant.sid, tenant.auth_token, *args, "--yes")
    assert result.returncode == 1
    assert "another account holds it" in result.stdout and "0 made, 0 here already, 1 skipped" in result.stdout


def test_the_same_account_keeps_the_applications_credentials(source: Server, target: Server) -> None:
    tenant = new_tenant(source, numbers=1)
    args = ("--same-account", "--api-url", source.base_url, "--messaging-url", source.base_url, "--json")
    same = target.client(tenant.sid, tenant.auth_token)  # the application's credentials, unchanged

    dry = run_import(target, tenant.sid, tenant.auth_token, *args)
    assert json.loads(dry.stdout)["steps"][0] == {
        "account": tenant.sid,
        "what": "account",
        "name": tenant.sid,
        "action": "made",
        "why": "",
    }
    raises_twilio(lambda: same.api.accounts(tenant.sid).fetch(), 20003, 401)  # the dry run made nothing

    done = run_import(target, tenant.sid, tenant.auth_token, *args, "--yes")
    assert done.returncode == 0, done.stderr
    account = same.api.accounts(tenant.sid).fetch()
    assert (account.sid, account.friendly_name) == (tenant.sid, "acceptance tenant")
    assert [n.phone_number for n in same.incoming_phone_numbers.list()] == tenant.numbers

    again = run_import(target, tenant.sid, tenant.auth_token, *args, "--yes")
    assert json.loads(again.stdout)["steps"][0]["action"] == "here already"
    neither = run_import(target, tenant.sid, tenant.auth_token, "--api-url", source.base_url)
    assert neither.returncode == 2 and "--into" in neither.stderr


def test_subaccounts_come_over_under_their_main_account(source: Server, target: Server) -> None:
    main = json.loads(source.cli("accounts", "create", "--friendly-name", "ISV", "--json").stdout)
    parent = source.client(main["sid"], main["auth_token"])
    customer = parent.api.accounts.create(friendly_name="customer one")
    gone = parent.api.accounts.create(friendly_name="customer gone")
    parent.api.accounts(gone.sid).update(status="closed")
    paused = parent.api.accounts.create(friendly_name="customer paused")
    parent.api.accounts(paused.sid).update(status="suspended")
    theirs, ours = stock(source, fresh_number(), fresh_number())
    as_customer = source.client(customer.sid, customer.auth_token)
    number = as_customer.incoming_phone_numbers.create(phone_number=theirs, sms_url="https://one.example.com/sms")
    parent.incoming_phone_numbers.create(phone_number=ours)
    pool = as_customer.messaging.v1.services.create(friendly_name="Customer pool")
    as_customer.messaging.v1.services(pool.sid).phone_numbers.create(phone_number_sid=number.sid)

    args = ("--same-account", "--with-subaccounts", "--api-url", source.base_url, "--messaging-url", source.base_url)
    done = run_import(target, main["sid"], main["auth_token"], *args, "--yes", "--json")
    assert done.returncode == 1, done.stderr  # something was skipped
    accounts_made = [(s["account"], s["action"]) for s in json.loads(done.stdout)["steps"] if s["what"] == "account"]
    # Not the closed one; the suspended one is said, and left behind (its records cannot be read).
    assert accounts_made == [(paused.sid, "skipped"), (main["sid"], "made"), (customer.sid, "made")]

    there = target.client(customer.sid, customer.auth_token)  # the customer's own credentials, unchanged
    assert there.api.accounts(customer.sid).fetch().owner_account_sid == main["sid"]
    assert [(n.phone_number, n.sms_url) for n in there.incoming_phone_numbers.list()] == [
        (theirs, "https://one.example.com/sms")
    ]
    [moved] = there.messaging.v1.services.list()
    assert [p.phone_number for p in there.messaging.v1.services(moved.sid).phone_numbers.list()] == [theirs]
    as_parent = target.client(main["sid"], main["auth_token"])
    assert [n.phone_number for n in as_parent.incoming_phone_numbers.list()] == [ours]
    assert {a.sid for a in as_parent.api.accounts.list()} == {main["sid"], customer.sid}

    alone = run_import(target, main["sid"], main["auth_token"], "--with-subaccounts", "--into", main["sid"])
    assert alone.returncode == 2 and "give --same-account" in alone.stderr
