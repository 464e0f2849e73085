"""Every refused request reaches the `twilio` SDK as TwilioRestException with Twilio's code and
HTTP status, changes nothing, and never shows one account another's data (issue 2, item 7)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from pigeon.domain.sids import Prefix, new_sid
from tests.acceptance.conftest import Server
from tests.acceptance.support import (
    Tenant,
    add_opt_out,
    add_service,
    fresh_number,
    new_tenant,
    raises_twilio,
    row_counts,
    store,
)

pytestmark = pytest.mark.acceptance

#: Create refusals whose HTTP status is not 400: Twilio's dictionary gives 404 for 21701.
NOT_FOUND = {21701: 404}


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server)


def _create(tenant: Tenant, **kw: Any) -> Callable[[], Any]:
    """A create call with good defaults; `kw` overrides them, and a None value leaves one out."""
    params: dict[str, Any] = {"to": fresh_number(), "from_": tenant.numbers[0], "body": "hi", **kw}
    params = {k: v for k, v in params.items() if v is not None}
    return lambda: tenant.client().messages.create(**params)


# -- 20003: credentials -------------------------------------------------------------------------


def test_wrong_auth_token_is_401(tenant: Tenant) -> None:
    client = tenant.server.client(tenant.sid, "0" * 32)
    err = raises_twilio(
        lambda: client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 20003, 401
    )
    assert "Authenticate" in err.msg
    raises_twilio(lambda: client.api.accounts(tenant.sid).fetch(), 20003, 401)


@pytest.mark.parametrize("password", ["pässwörd", "\u00e9" * 32, "\U0001f426"])
def test_a_password_beyond_ascii_is_401_not_a_server_error(tenant: Tenant, password: str) -> None:
    # Found by probing: the token comparison raised on such text, and the API answered 500.
    response = httpx.get(f"{tenant.base()}/Messages.json", auth=(tenant.sid, password), timeout=10)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 20003


def test_unknown_account_sid_as_username_is_401(shared_server: Server) -> None:
    client = shared_server.client(new_sid(Prefix.ACCOUNT), "whatever")
    raises_twilio(lambda: client.messages.create(to=fresh_number(), from_="+14155550100", body="x"), 20003, 401)


def test_no_credentials_is_401(tenant: Tenant) -> None:
    response = httpx.post(f"{tenant.base()}/Messages.json", data={"To": fresh_number(), "Body": "x"}, timeout=10)
    assert response.status_code == 401
    body = response.json()
    assert (body["code"], body["status"]) == (20003, 401)
    assert response.headers["www-authenticate"].startswith("Basic")


def test_subaccount_acting_on_its_parent_is_403(tenant: Tenant, shared_server: Server) -> None:
    parent_msg = shared_server.client().messages.create(
        to=fresh_number(), from_=shared_server.numbers[0], body="parent's"
    )
    as_child = shared_server.client(tenant.sid, tenant.auth_token, shared_server.account_sid)
    raises_twilio(
        lambda: as_child.messages.create(to=fresh_number(), from_=shared_server.numbers[0], body="x"), 20003, 403
    )
    raises_twilio(lambda: as_child.messages(parent_msg.sid).fetch(), 20003, 403)
    raises_twilio(lambda: as_child.api.accounts(shared_server.account_sid).fetch(), 20003, 403)


def test_sibling_subaccounts_cannot_reach_each_other(tenant: Tenant, shared_server: Server) -> None:
    sibling = new_tenant(shared_server, numbers=0)
    as_sibling = shared_server.client(sibling.sid, sibling.auth_token, tenant.sid)
    raises_twilio(lambda: as_sibling.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x"), 20003, 403)


# -- 20404: not found, and other accounts' messages ------------------------------------------------


def test_unknown_message_is_20404(tenant: Tenant) -> None:
    client = tenant.client()
    raises_twilio(lambda: client.messages(new_sid(Prefix.SMS)).fetch(), 20404, 404)
    raises_twilio(lambda: client.messages("SMnot-a-sid").fetch(), 20404, 404)
    raises_twilio(lambda: client.messages(new_sid(Prefix.SMS)).update(body=""), 20404, 404)
    raises_twilio(lambda: client.messages(new_sid(Prefix.SMS)).delete(), 20404, 404)
    response = tenant.http("GET", f"/Messages/{new_sid(Prefix.MMS)}/Media.json")
    assert response.status_code == 404 and response.json()["code"] == 20404


def test_another_accounts_message_is_20404(tenant: Tenant, shared_server: Server) -> None:
    """A separate main account (made by the operator's CLI) sees none of this tenant's messages."""
    made = json.loads(shared_server.cli("accounts", "create", "--json").stdout)
    stranger = shared_server.client(made["sid"], made["auth_token"])
    mine = tenant.client().messages.create(
        to=fresh_number(), from_=tenant.numbers[0], body="private", media_url=["https://e.example.com/a.png"]
    )
    media_sid = tenant.client().messages(mine.sid).media.list()[0].sid

    # The stranger's own account in the URL, my message's SID: not found, not forbidden.
    raises_twilio(lambda: stranger.messages(mine.sid).fetch(), 20404, 404)
    raises_twilio(lambda: stranger.messages(mine.sid).update(body=""), 20404, 404)
    raises_twilio(lambda: stranger.messages(mine.sid).delete(), 20404, 404)
    raises_twilio(lambda: stranger.messages(mine.sid).media(media_sid).fetch(), 20404, 404)
    assert mine.sid not in {m.sid for m in stranger.messages.list()}
    # My account in the URL with the stranger's credentials: forbidden.
    as_me = shared_server.client(made["sid"], made["auth_token"], tenant.sid)
    raises_twilio(lambda: as_me.messages(mine.sid).fetch(), 20003, 403)
    # And my message is untouched.
    assert tenant.client().messages(mine.sid).fetch().body == "private"


# -- 20007: page size ------------------------------------------------------------------------------


def test_page_size_over_1000_is_20007(tenant: Tenant) -> None:
    # List pages that are not 200 raise a plain TwilioException in the SDK (REFERENCE.md §b)...
    with pytest.raises(TwilioException) as info:
        tenant.client().messages.list(page_size=1001)
    assert not isinstance(info.value, TwilioRestException)
    # ... so the code is checked on the wire.
    response = tenant.http("GET", "/Messages.json", params={"PageSize": "1001"})
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["status"]) == (20007, 400)
    assert tenant.http("GET", "/Messages.json", params={"PageSize": "1000"}).status_code == 200


@pytest.mark.parametrize("path", ["/Messages.json", "/IncomingPhoneNumbers.json"])
def test_a_page_past_any_offset_is_20422_not_a_server_error(tenant: Tenant, path: str) -> None:
    # Found by schemathesis: a Page whose offset does not fit in 64 bits made SQLite raise.
    for page in ("100000000000000000000", str(2**63 // 50 + 1)):
        response = tenant.http("GET", path, params={"Page": page, "PageSize": "50"})
        assert response.status_code == 400, (page, response.text)
        assert response.json()["code"] == 20422
    # A page far past the records, but one the store can count to, is simply empty.
    far = tenant.http("GET", path, params={"Page": str((2**63 - 1) // 50), "PageSize": "50"})
    assert far.status_code == 200, far.text
    key = {"/Messages.json": "messages", "/IncomingPhoneNumbers.json": "incoming_phone_numbers"}[path]
    assert far.json()["end"] == 0 and far.json()[key] == []


# -- create validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "code"),
    [
        pytest.param({"to": "not a number"}, 21211, id="21211-bad-to"),
        pytest.param({"to": "+1234"}, 21211, id="21211-short-to"),
        pytest.param({"from_": "123abc!"}, 21212, id="21212-bad-from"),
        pytest.param({"body": None}, 21602, id="21602-no-body"),
        pytest.param({"body": ""}, 21602, id="21602-empty-body"),
        pytest.param({"from_": None}, 21603, id="21603-no-from"),
        pytest.param({"to": ""}, 21604, id="21604-empty-to"),
        pytest.param({"status_callback": "ftp://hooks.example.com/cb"}, 21609, id="21609-ftp"),
        pytest.param({"status_callback": "not a url"}, 21609, id="21609-text"),
        pytest.param({"status_callback": "https://bad_host.example.com/cb"}, 21609, id="21609-underscore"),
        pytest.param({"body": "x" * 1601}, 21617, id="21617-1601"),
        pytest.param({"media_url": ["ftp://media.example.com/a.png"]}, 21620, id="21620-ftp"),
        pytest.param({"media_url": ["https://ok.example.com/a.png", "nope"]}, 21620, id="21620-second"),
        pytest.param({"media_url": [f"https://m.example.com/{i}.png" for i in range(11)]}, 21623, id="21623"),
        pytest.param({"validity_period": 0}, 21624, id="21624-zero"),
        pytest.param({"validity_period": 36001}, 21624, id="21624-too-long"),
        pytest.param({"validity_period": "abc"}, 21624, id="21624-text"),
        pytest.param({"from_": None, "messaging_service_sid": new_sid(Prefix.SERVICE)}, 21701, id="21701"),
        pytest.param({"from_": None, "messaging_service_sid": "MGnope"}, 21705, id="21705"),
        pytest.param({"send_at": datetime(2030, 1, 1), "schedule_type": "fixed"}, 35118, id="35118-no-service"),
        # What Pigeon cannot do as asked is refused, not ignored (`domain.send_options`).
        pytest.param({"content_retention": "discard"}, 20422, id="20422-content-retention"),
        pytest.param({"address_retention": "obfuscate"}, 20422, id="20422-address-retention"),
        pytest.param({"send_as_mms": True}, 20422, id="20422-send-as-mms"),
        pytest.param({"shorten_urls": True}, 20422, id="20422-shorten-urls"),
        pytest.param({"body": None, "content_sid": "HX" + "0" * 32}, 20422, id="20422-content-sid"),
        pytest.param({"application_sid": "AP" + "0" * 32}, 20422, id="20422-application-sid"),
    ],
)
def test_create_refusals(tenant: Tenant, params: dict[str, Any], code: int) -> None:
    err = raises_twilio(_create(tenant, **params), code, NOT_FOUND.get(code, 400))
    assert err.msg  # Twilio's message text reaches the SDK ("Unable to create record: ...")


def test_what_pigeon_does_anyway_is_taken(tenant: Tenant) -> None:
    msg = _create(tenant, content_retention="retain", address_retention="retain", send_as_mms=False)()
    assert msg.status == "queued"


def test_21211_to_equals_from(tenant: Tenant) -> None:
    raises_twilio(_create(tenant, to=tenant.numbers[0]), 21211, 400)


def test_21606_from_not_a_number_of_this_account(tenant: Tenant, shared_server: Server) -> None:
    raises_twilio(_create(tenant, from_=fresh_number()), 21606, 400)
    voice_only = fresh_number()
    shared_server.cli("numbers", "add", "--account", tenant.sid, voice_only, "--no-sms")
    raises_twilio(_create(tenant, from_=voice_only), 21606, 400)


def test_21621_media_from_a_number_without_mms(tenant: Tenant, shared_server: Server) -> None:
    sms_only = fresh_number()
    shared_server.cli("numbers", "add", "--account", tenant.sid, sms_only, "--no-mms")
    media = ["https://media.example.com/cat.png"]
    raises_twilio(_create(tenant, from_=sms_only, media_url=media), 21621, 400)
    assert tenant.client().messages.create(to=fresh_number(), from_=sms_only, body="text only").status == "queued"


def test_21610_opted_out_pair(tenant: Tenant) -> None:
    recipient = fresh_number()
    with store(tenant.server) as db:
        add_opt_out(db, tenant.sid, tenant.numbers[0], recipient)
    raises_twilio(_create(tenant, to=recipient), 21610, 400)
    # Only that pair: the other number may still text the recipient.
    assert tenant.client().messages.create(to=recipient, from_=tenant.numbers[1], body="hi").status == "queued"


def test_21701_another_accounts_service(tenant: Tenant, shared_server: Server) -> None:
    with store(shared_server) as db:
        theirs = add_service(db, shared_server.account_sid)
    raises_twilio(_create(tenant, from_=None, messaging_service_sid=theirs), 21701, 404)


def test_35115_send_at_too_soon(tenant: Tenant) -> None:
    with store(tenant.server) as db:
        service = add_service(db, tenant.sid, tenant.numbers[0])
    soon = datetime.now(UTC) + timedelta(seconds=60)
    raises_twilio(_create(tenant, messaging_service_sid=service, send_at=soon, schedule_type="fixed"), 35115, 400)


def test_boundaries_that_are_accepted(tenant: Tenant) -> None:
    client = tenant.client()
    ok = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x" * 1600, validity_period=36000)
    assert ok.num_segments == "11"
    media = [f"https://m.example.com/{i}.png" for i in range(10)]
    assert client.messages.create(to=fresh_number(), from_=tenant.numbers[0], validity_period=1, media_url=media)


def test_a_refused_request_stores_nothing(tenant: Tenant) -> None:
    with store(tenant.server) as db:
        before = row_counts(db, tenant.sid)
        attempts = [
            _create(tenant, to="bad"),
            _create(tenant, body="x" * 1601),
            _create(tenant, media_url=[f"https://m.example.com/{i}.png" for i in range(11)]),
            _create(tenant, media_url=["https://ok.example.com/a.png", "ftp://no"]),
            _create(tenant, validity_period=0),
            _create(tenant, from_=fresh_number()),
            _create(tenant, status_callback="nope"),
        ]
        for attempt in attempts:
            with pytest.raises(TwilioRestException):
                attempt()
        assert row_counts(db, tenant.sid) == before == (0, 0, 0)


def test_unknown_parameters_are_ignored(tenant: Tenant) -> None:
    response = tenant.http(
        "POST",
        "/Messages.json",
        data={
            "To": fresh_number(),
            "From": tenant.numbers[0],
            "Body": "hi",
            "Tags": '{"campaign": "x"}',
            "SomethingNew": "1",
            "ProvideFeedback": "true",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["body"] == "hi"
