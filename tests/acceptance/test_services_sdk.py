"""Messaging Services (messaging.twilio.com/v1) and short codes through the real `twilio` SDK,
every response checked against Twilio's OpenAPI description of the v1 Services API."""

from __future__ import annotations

import json
import random
from datetime import datetime

import httpx
import pytest
from twilio.base.exceptions import TwilioException

from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import MessageStatus
from tests.acceptance.conftest import Server
from tests.acceptance.spec_check import Exchange, Spec
from tests.acceptance.support import Tenant, fresh_number, move_to, new_tenant, raises_twilio, store

pytestmark = pytest.mark.acceptance

SERVICES, SERVICE = "/v1/Services", "/v1/Services/{Sid}"
NUMBERS, NUMBER = "/v1/Services/{ServiceSid}/PhoneNumbers", "/v1/Services/{ServiceSid}/PhoneNumbers/{Sid}"
CODES, CODE = "/v1/Services/{ServiceSid}/ShortCodes", "/v1/Services/{ServiceSid}/ShortCodes/{Sid}"
ALPHAS, ALPHA = "/v1/Services/{ServiceSid}/AlphaSenders", "/v1/Services/{ServiceSid}/AlphaSenders/{Sid}"

_codes: set[str] = set()


def short_code(server: Server, tenant: Tenant, country: str = "US") -> str:
    """An operator provisions a short code on the tenant's account; returns its SID."""
    while (code := str(random.randint(100000, 99999999))) in _codes:
        pass
    _codes.add(code)
    done = server.cli("numbers", "add", code, "--account", tenant.sid, "--country", country, "--json")
    sid = str(json.loads(done.stdout)["sid"])
    assert sid.startswith("SC")
    return sid


@pytest.fixture
def spec(shared_server: Server) -> Spec:
    return Spec("twilio_messaging_v1_services.json", shared_server.base_url)


def test_service_lifecycle(shared_server: Server, spec: Spec) -> None:
    tenant = new_tenant(shared_server, numbers=0)
    client = spec.client(tenant.sid, tenant.auth_token)
    services = client.messaging.v1.services
    svc = services.create(
        friendly_name="Alerts",
        inbound_request_url="https://app.example.com/inbound",
        inbound_method="GET",
        status_callback="https://app.example.com/status",
        sticky_sender=False,
        validity_period=600,
        usecase="notifications",
        use_inbound_webhook_on_number=True,
    )
    base = shared_server.base_url
    assert svc.sid.startswith("MG") and svc.account_sid == tenant.sid
    assert (svc.friendly_name, svc.inbound_method, svc.sticky_sender, svc.validity_period) == (
        "Alerts",
        "GET",
        False,
        600,
    )
    assert (svc.usecase, svc.use_inbound_webhook_on_number, svc.fallback_method) == ("notifications", True, "POST")
    assert isinstance(svc.date_created, datetime) and svc.date_created.tzinfo is not None
    assert svc.url == f"{base}/v1/Services/{svc.sid}"
    assert svc.links["phone_numbers"] == f"{base}/v1/Services/{svc.sid}/PhoneNumbers"

    fetched = services(svc.sid).fetch()
    assert (fetched.sid, fetched.inbound_request_url) == (svc.sid, "https://app.example.com/inbound")
    updated = services(svc.sid).update(friendly_name="Alerts v2", inbound_request_url="", sticky_sender=True)
    assert (updated.friendly_name, updated.inbound_request_url, updated.sticky_sender) == ("Alerts v2", None, True)
    assert updated.validity_period == 600  # what the update did not name stays

    # Paging follows meta.next_page_url verbatim: it must be this server's absolute URL.
    more = [services.create(friendly_name=f"Extra {i}").sid for i in range(3)]
    listed = services.list(page_size=2)
    assert [s.sid for s in listed] == [svc.sid, *more]
    pages = [ex.url for ex in spec.exchanges if ex.method == "GET" and ex.path == SERVICES]
    assert pages[0].startswith("https://messaging.twilio.com/v1/Services")  # the SDK's first request
    assert pages[1:] == [f"{base}/v1/Services?PageSize=2&Page=1"]
    page = services.page(page_size=2, page_number=1)
    assert page.previous_page_url == f"{base}/v1/Services?PageSize=2&Page=0" and page.next_page_url is None

    assert services(svc.sid).delete() is True
    raises_twilio(lambda: services(svc.sid).fetch(), 20404, 404)
    raises_twilio(lambda: services(svc.sid).update(friendly_name="gone"), 20404, 404)
    raises_twilio(lambda: services(svc.sid).delete(), 20404, 404)
    assert [s.sid for s in services.list()] == more

    # Refusals, with Twilio's codes.
    raises_twilio(lambda: services.create(friendly_name="x" * 65), 20422, 400)
    raises_twilio(lambda: services.create(friendly_name="ok", validity_period=36001), 21624, 400)
    raises_twilio(lambda: services.create(friendly_name="ok", inbound_method="PUT"), 21403, 400)
    raises_twilio(lambda: services.create(friendly_name="ok", fallback_url="not a url"), 21402, 400)
    raises_twilio(lambda: services.create(friendly_name="ok", usecase="spam"), 21713, 400)
    missing = httpx.post(f"{base}/v1/Services", auth=(tenant.sid, tenant.auth_token), timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (400, 20001)
    assert missing.json()["message"] == "Missing required parameter FriendlyName in the post body"
    assert [s.sid for s in services.list()] == more  # none of them made a service

    spec.assert_conforms(
        {
            ("POST", SERVICES, 201),
            ("GET", SERVICES, 200),
            ("GET", SERVICE, 200),
            ("POST", SERVICE, 200),
            ("DELETE", SERVICE, 204),
            ("GET", SERVICE, 404),
            ("POST", SERVICES, 400),
        }
    )


def test_sender_pool(shared_server: Server, spec: Spec) -> None:
    tenant = new_tenant(shared_server, numbers=2)
    client = spec.client(tenant.sid, tenant.auth_token)
    first, second = client.incoming_phone_numbers.list()
    sc = short_code(shared_server, tenant)
    svc = client.messaging.v1.services.create(friendly_name="Pool")
    other = client.messaging.v1.services.create(friendly_name="Other pool")
    pool = client.messaging.v1.services(svc.sid)
    base = shared_server.base_url

    added = pool.phone_numbers.create(phone_number_sid=first.sid)
    assert (added.sid, added.service_sid, added.phone_number, added.country_code) == (
        first.sid,
        svc.sid,
        first.phone_number,
        "US",
    )
    assert added.capabilities == ["MMS", "SMS", "Voice"]
    assert added.url == f"{base}/v1/Services/{svc.sid}/PhoneNumbers/{first.sid}"
    assert pool.phone_numbers(first.sid).fetch().phone_number == first.phone_number
    code = pool.short_codes.create(short_code_sid=sc)
    assert (code.sid, code.country_code, code.capabilities) == (sc, "US", ["SMS"])
    assert [c.sid for c in pool.short_codes.list()] == [sc]
    assert pool.short_codes(sc).fetch().short_code == code.short_code
    alpha = pool.alpha_senders.create(alpha_sender="Pigeon")
    assert alpha.sid.startswith("AI") and (alpha.alpha_sender, alpha.capabilities) == ("Pigeon", ["SMS"])
    assert [a.sid for a in pool.alpha_senders.list()] == [alpha.sid]
    assert pool.alpha_senders(alpha.sid).fetch().alpha_sender == "Pigeon"

    # Sending through the service picks a sender from its pool: shown once it is queued (as on
    # Twilio, `from` is null and num_segments "0" while the message is accepted).
    sent = client.messages.create(to=fresh_number(), messaging_service_sid=svc.sid, body="via the pool")
    assert (sent.status, sent.messaging_service_sid, sent.from_, sent.num_segments) == ("accepted", svc.sid, None, "0")
    # As on Twilio, a service's SID given as From sends through that service.
    named = client.messages.create(to=fresh_number(), from_=svc.sid, body="via From")
    assert (named.status, named.messaging_service_sid, named.from_) == ("accepted", svc.sid, None)
    with store(shared_server) as db:
        for made in (sent, named):
            move_to(db, made.sid, MessageStatus.QUEUED)  # what a dispatcher does (this server runs none)
            assert client.messages(made.sid).fetch().from_ in {first.phone_number, code.short_code}
    raises_twilio(
        lambda: client.messages.create(
            to=fresh_number(), from_=svc.sid, messaging_service_sid=other.sid, body="two services"
        ),
        21606,
        400,
    )
    raises_twilio(
        lambda: client.messages.create(to=fresh_number(), from_=new_sid(Prefix.SERVICE), body="x"), 21701, 404
    )

    # Twilio's pool rules.
    raises_twilio(lambda: pool.phone_numbers.create(phone_number_sid=first.sid), 21710, 400)
    raises_twilio(
        lambda: client.messaging.v1.services(other.sid).phone_numbers.create(phone_number_sid=first.sid), 21712, 400
    )
    raises_twilio(lambda: client.messaging.v1.services(other.sid).phone_numbers(first.sid).delete(), 21711, 400)
    raises_twilio(lambda: pool.phone_numbers(second.sid).fetch(), 20404, 404)
    raises_twilio(lambda: pool.phone_numbers.create(phone_number_sid=new_sid(Prefix.PHONE_NUMBER)), 20404, 404)
    raises_twilio(lambda: pool.short_codes.create(short_code_sid=first.sid), 20404, 404)
    raises_twilio(lambda: pool.alpha_senders.create(alpha_sender="12345"), 21709, 400)
    raises_twilio(lambda: pool.alpha_senders.create(alpha_sender="pigeon"), 21710, 400)
    raises_twilio(lambda: pool.alpha_senders.create(alpha_sender="Acme"), 21714, 400)  # one per service
    gone = new_sid(Prefix.SERVICE)
    raises_twilio(
        lambda: client.messaging.v1.services(gone).phone_numbers.create(phone_number_sid=second.sid), 21701, 404
    )
    raises_twilio(
        lambda: client.messaging.v1.services("MG123").phone_numbers.create(phone_number_sid=second.sid), 21705, 400
    )
    with pytest.raises(TwilioException):
        client.messaging.v1.services(gone).phone_numbers.list()

    # Another account sees none of it.
    stranger = new_tenant(shared_server, numbers=0).client()
    raises_twilio(lambda: stranger.messaging.v1.services(svc.sid).fetch(), 20404, 404)
    raises_twilio(lambda: stranger.messaging.v1.services(svc.sid).phone_numbers(first.sid).fetch(), 21701, 404)
    assert list(stranger.messaging.v1.services.list()) == []
    raises_twilio(lambda: spec.client(tenant.sid, "wrong").messaging.v1.services(svc.sid).fetch(), 20003, 401)

    assert pool.phone_numbers(first.sid).delete() is True
    assert pool.alpha_senders(alpha.sid).delete() is True
    assert [n.sid for n in pool.phone_numbers.list()] == []
    client.messaging.v1.services(other.sid).phone_numbers.create(phone_number_sid=first.sid)
    # Deleting a service leaves its numbers on the account, free to join another service.
    assert client.messaging.v1.services(svc.sid).delete() is True
    pool = client.messaging.v1.services(other.sid)
    assert pool.short_codes.create(short_code_sid=sc).service_sid == other.sid
    assert {n.sid for n in client.incoming_phone_numbers.list()} == {first.sid, second.sid}

    spec.assert_conforms(
        {
            ("POST", NUMBERS, 201),
            ("GET", NUMBERS, 200),
            ("GET", NUMBER, 200),
            ("DELETE", NUMBER, 204),
            ("POST", CODES, 201),
            ("GET", CODES, 200),
            ("GET", CODE, 200),
            ("POST", ALPHAS, 201),
            ("GET", ALPHAS, 200),
            ("GET", ALPHA, 200),
            ("DELETE", ALPHA, 204),
            ("POST", NUMBERS, 400),
            ("GET", NUMBER, 404),
            ("DELETE", NUMBER, 400),
            ("POST", ALPHAS, 400),
            ("GET", SERVICE, 401),
        }
    )


def test_short_codes_2010(shared_server: Server) -> None:
    tenant = new_tenant(shared_server, numbers=1)
    client = tenant.client()
    sid = short_code(shared_server, tenant, country="GB")
    [listed] = client.short_codes.list()
    assert (listed.sid, listed.api_version, listed.sms_method) == (sid, "2010-04-01", "POST")
    assert listed.uri == f"/2010-04-01/Accounts/{tenant.sid}/SMS/ShortCodes/{sid}.json"
    updated = client.short_codes(sid).update(
        sms_url="https://app.example.com/sc", sms_method="GET", friendly_name="Promo"
    )
    assert (updated.sms_url, updated.sms_method, updated.friendly_name) == (
        "https://app.example.com/sc",
        "GET",
        "Promo",
    )
    assert client.short_codes(sid).fetch().sms_url == "https://app.example.com/sc"
    assert [s.sid for s in client.short_codes.list(short_code=listed.short_code)] == [sid]
    assert client.short_codes.list(friendly_name="nothing like it") == []
    raises_twilio(lambda: client.short_codes(sid).update(sms_url="nope"), 21402, 400)
    # A short code is not an IncomingPhoneNumber.
    assert sid not in {n.sid for n in client.incoming_phone_numbers.list()}
    raises_twilio(lambda: client.incoming_phone_numbers(sid).fetch(), 20404, 404)
    raises_twilio(lambda: client.short_codes(new_sid(Prefix.SHORT_CODE)).fetch(), 20404, 404)
    # Sends from a short code stay in its country.
    raises_twilio(lambda: client.messages.create(to=fresh_number(), from_=listed.short_code, body="x"), 21606, 400)


def test_the_checker_catches_what_it_should() -> None:
    """The v1 checker itself: a 2010-style date, a twilio.com URL, a missing and an extra key."""
    spec = Spec("twilio_messaging_v1_services.json", "http://127.0.0.1:1")
    sid = new_sid(Prefix.SERVICE)
    body = {
        "sid": sid,
        "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
        "url": f"https://messaging.twilio.com/v1/Services/{sid}",
        "surprise": True,
    }
    spec.exchanges.append(
        Exchange("GET", f"http://127.0.0.1:1/v1/Services/{sid}", 200, json.dumps(body), "application/json")
    )
    found = "\n".join(spec.problems())
    assert "is not a 'date-time'" in found and "is not a 'uri'" in found
    assert "missing 'friendly_name'" in found and "extra 'surprise'" in found
