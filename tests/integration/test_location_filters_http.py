"""AvailablePhoneNumbers' location filters given a phone number: InRegion, InPostalCode and
InLocality search "within the same region/postal code/locality as that number" (Twilio), and
NearNumber near it, whether the number is for sale or held by an account (it kept its location
when it was bought). Before, the number was compared as text (nothing matched) and NearNumber
found only numbers still in stock."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from pigeon.app import inventory
from pigeon.store.engine import Database
from tests.integration.http_client import Api, make_api

STOCKED_SF = "+14155550112"  # San Francisco, CA 94103 in the sample inventory
HELD_SF = "+14155550101"  # bought below
TORONTO = "+14165550108"


@pytest.fixture
def api(db: Database, database_url: str) -> Api:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    api = make_api(db, database_url)
    bought = api.one("POST", f"{api.base}/IncomingPhoneNumbers.json", data={"PhoneNumber": HELD_SF})
    assert bought.status_code == 201, bought.text
    return api


def _found(api: Api, query: str, country: str = "US") -> list[str]:
    response = api.one("GET", f"{api.base}/AvailablePhoneNumbers/{country}/Local.json?{query}&PageSize=100")
    assert response.status_code == 200, response.text
    return [n["phone_number"] for n in response.json()["available_phone_numbers"]]


@pytest.mark.parametrize("name", ["InRegion", "InPostalCode", "InLocality", "NearNumber"])
@pytest.mark.parametrize("number", [STOCKED_SF, HELD_SF])
def test_a_location_filter_given_a_number_searches_where_the_number_is(api: Api, name: str, number: str) -> None:
    by_place = _found(api, "InLocality=San%20Francisco&InRegion=CA&InPostalCode=94103")
    assert STOCKED_SF in by_place and HELD_SF not in by_place
    assert _found(api, f"{name}={quote(number)}") == by_place


def test_a_number_elsewhere_finds_its_own_neighbours(api: Api) -> None:
    found = _found(api, f"InRegion={quote(TORONTO)}", country="CA")
    assert TORONTO in found and all(n.startswith("+1416") for n in found)
    assert _found(api, f"InRegion={quote(TORONTO)}") == []  # no US number is in Ontario


@pytest.mark.parametrize("name", ["InRegion", "InPostalCode", "InLocality", "NearNumber"])
def test_a_number_the_store_does_not_know_finds_nothing(api: Api, name: str) -> None:
    assert _found(api, f"{name}={quote('+12125559999')}") == []


def test_plain_values_are_still_compared_as_written(api: Api) -> None:
    assert STOCKED_SF in _found(api, "InRegion=ca&InPostalCode=94103")
