"""What a bought number carries: Twilio's default name for it ("(415) 555-0101", not the
E.164), where it came from (origin "twilio" when bought, "hosted" when an operator put it on
the account; the Origin filter lists one kind), and what the inventory knew of it (locality,
region, postal code, coordinates, rate center, LATA, address requirements), which its JSON
shows and its release gives back to the inventory. Before, the name was the E.164, every
number said "hosted" and address requirements "none", Origin was ignored, and a released
number came back with no location and no address requirement."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pigeon.app import inventory
from pigeon.store.engine import Database
from tests.integration.http_client import SENDER, Api, assert_twilio_error, make_api

SF = "+14155550101"
BERLIN = "+493055501100"  # address requirements "local" in the sample inventory
PLACE = ("locality", "region", "postal_code", "rate_center", "lata", "latitude", "longitude")


@pytest.fixture
def api(db: Database, database_url: str) -> Api:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    return make_api(db, database_url)


def _offered(api: Api, country: str, number: str) -> dict[str, Any] | None:
    page = api.one("GET", f"{api.base}/AvailablePhoneNumbers/{country}/Local.json?PageSize=100").json()
    return next((n for n in page["available_phone_numbers"] if n["phone_number"] == number), None)


def _buy(api: Api, number: str, **params: str) -> dict[str, Any]:
    response = api.one("POST", f"{api.base}/IncomingPhoneNumbers.json", data={"PhoneNumber": number, **params})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_bought_number_is_named_as_twilio_names_it(api: Api) -> None:
    assert _buy(api, SF)["friendly_name"] == "(415) 555-0101"
    assert _buy(api, "+14155550112", FriendlyName="Support")["friendly_name"] == "Support"
    by_area = api.one("POST", f"{api.base}/IncomingPhoneNumbers/Local.json", data={"AreaCode": "604"})
    assert by_area.status_code == 201, by_area.text
    number = by_area.json()["phone_number"]
    assert by_area.json()["friendly_name"] == f"({number[2:5]}) {number[5:8]}-{number[8:]}"


@pytest.mark.parametrize(("country", "number"), [("US", SF), ("DE", BERLIN)])
def test_a_released_number_is_restocked_as_it_was(api: Api, country: str, number: str) -> None:
    before = _offered(api, country, number)
    assert before is not None and before["locality"]
    bought = _buy(api, number)
    assert bought["address_requirements"] == before["address_requirements"]
    fetched = api.one("GET", f"{api.base}/IncomingPhoneNumbers/{bought['sid']}.json").json()
    assert fetched["address_requirements"] == before["address_requirements"]
    assert api.one("DELETE", f"{api.base}/IncomingPhoneNumbers/{bought['sid']}.json").status_code == 204
    assert _offered(api, country, number) == before


def test_the_berlin_number_keeps_its_address_requirement_through_a_release(api: Api) -> None:
    bought = _buy(api, BERLIN)
    assert bought["address_requirements"] == "local"
    api.one("DELETE", f"{api.base}/IncomingPhoneNumbers/{bought['sid']}.json")
    assert _offered(api, "DE", BERLIN) is not None
    page = api.one("GET", f"{api.base}/AvailablePhoneNumbers/DE/Local.json?ExcludeLocalAddressRequired=true").json()
    assert BERLIN not in [n["phone_number"] for n in page["available_phone_numbers"]]


def _listed(api: Api, query: str = "") -> list[tuple[str, str]]:
    response = api.one("GET", f"{api.base}/IncomingPhoneNumbers.json{query}")
    assert response.status_code == 200, response.text
    return [(n["phone_number"], n["origin"]) for n in response.json()["incoming_phone_numbers"]]


def test_origin_tells_bought_numbers_from_hosted_ones_and_filters_them(api: Api) -> None:
    _buy(api, SF)
    everything = [(SENDER, "hosted"), (SF, "twilio")]  # make_api provisions SENDER as an operator does
    assert _listed(api) == everything
    assert _listed(api, "?Origin=twilio") == [(SF, "twilio")]
    assert _listed(api, "?Origin=hosted") == [(SENDER, "hosted")]
    assert _listed(api, "?Origin=Twilio") == [(SF, "twilio")]
    page = api.one("GET", f"{api.base}/IncomingPhoneNumbers.json?Origin=twilio&PageSize=1").json()
    assert "Origin=twilio" in page["first_page_uri"]
    response = api.one("GET", f"{api.base}/IncomingPhoneNumbers.json?Origin=elsewhere")
    assert_twilio_error(response, 400, 20422, "Origin")
