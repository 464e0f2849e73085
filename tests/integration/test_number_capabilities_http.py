"""A number that cannot take SMS refuses SMS settings (21407: SmsUrl, SmsMethod, SmsFallbackUrl,
SmsFallbackMethod) when it is bought and when it is updated, and a Messaging Service refuses
it (21715), short codes alike. Before, the settings were stored, never to be used, and the
number joined the sender pool, to be picked for sends it cannot make. Each refusal changes
nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pigeon.app import inventory
from pigeon.app import numbers as number_use
from pigeon.domain.errors import ApiError
from pigeon.store import numbers as number_store
from pigeon.store.engine import Database
from tests.integration.http_client import Api, assert_twilio_error, make_api

VOICE_ONLY = "+493055501100"  # the sample inventory's Berlin numbers take calls, not texts
HOOK = "https://app.example.com/sms"


@pytest.fixture
def api(db: Database, database_url: str) -> Api:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    return make_api(db, database_url)


def _available(api: Api) -> list[str]:
    page = api.one("GET", f"{api.base}/AvailablePhoneNumbers/DE/Local.json?PageSize=100").json()
    return [n["phone_number"] for n in page["available_phone_numbers"]]


def _buy(api: Api, **params: str) -> dict[str, Any]:
    response = api.one("POST", f"{api.base}/IncomingPhoneNumbers.json", data={"PhoneNumber": VOICE_ONLY, **params})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.mark.parametrize(
    "params",
    [
        {"SmsUrl": HOOK},
        {"SmsMethod": "GET"},
        {"SmsUrl": HOOK, "SmsFallbackUrl": HOOK + "/fallback"},
        {"SmsFallbackMethod": "POST"},
    ],
)
def test_buying_a_voice_only_number_with_sms_settings_is_refused(api: Api, params: dict[str, str]) -> None:
    response = api.one("POST", f"{api.base}/IncomingPhoneNumbers.json", data={"PhoneNumber": VOICE_ONLY, **params})
    assert_twilio_error(response, 400, 21407, next(iter(params)))
    assert VOICE_ONLY in _available(api)  # still for sale
    with api.db.read() as conn:
        assert number_store.find_by_number(conn, VOICE_ONLY) is None


def test_a_voice_only_number_is_bought_without_sms_settings(api: Api) -> None:
    bought = _buy(api, VoiceUrl="https://app.example.com/voice")
    assert bought["capabilities"]["sms"] is False and bought["sms_url"] is None


@pytest.mark.parametrize("params", [{"SmsUrl": HOOK}, {"SmsMethod": "GET"}, {"SmsFallbackMethod": "GET"}])
def test_updating_a_voice_only_number_with_sms_settings_is_refused(api: Api, params: dict[str, str]) -> None:
    sid = _buy(api)["sid"]
    path = f"{api.base}/IncomingPhoneNumbers/{sid}.json"
    before = api.one("GET", path).json()
    assert_twilio_error(api.one("POST", path, data={**params, "FriendlyName": "changed"}), 400, 21407)
    assert api.one("GET", path).json() == before
    # Clearing a URL leaves nothing set: that is not refused.
    assert api.one("POST", path, data={"SmsUrl": ""}).status_code == 200


def test_a_messaging_service_refuses_a_number_that_cannot_text(api: Api) -> None:
    sid = _buy(api)["sid"]
    pool = f"/v1/Services/{api.service_sid}/PhoneNumbers"
    assert_twilio_error(api.one("POST", pool, data={"PhoneNumberSid": sid}), 400, 21715, VOICE_ONLY)
    assert api.one("GET", pool).json()["phone_numbers"] == []
    with api.db.read() as conn:
        number = number_store.find_by_number(conn, VOICE_ONLY)
        assert number is not None and number["messaging_service_sid"] is None


def test_a_short_code_that_cannot_text_refuses_sms_settings_and_services(api: Api) -> None:
    with api.db.write() as conn:
        code = number_use.provision(
            conn,
            account_sid=api.account["sid"],
            phone_number="55555",
            now=datetime.now(UTC),
            sms=False,
            iso_country="US",
        )
    path = f"{api.base}/SMS/ShortCodes/{code['sid']}.json"
    assert_twilio_error(api.one("POST", path, data={"SmsUrl": HOOK}), 400, 21407)
    assert api.one("GET", path).json()["sms_url"] is None
    pool = f"/v1/Services/{api.service_sid}/ShortCodes"
    assert_twilio_error(api.one("POST", pool, data={"ShortCodeSid": code["sid"]}), 400, 21715, "55555")
    assert api.one("GET", pool).json()["short_codes"] == []
    with pytest.raises(ApiError) as refused, api.db.write() as conn:
        number_use.provision(
            conn,
            account_sid=api.account["sid"],
            phone_number="55556",
            now=datetime.now(UTC),
            sms=False,
            iso_country="US",
            settings={"sms_url": HOOK},
        )
    assert refused.value.code == 21407
