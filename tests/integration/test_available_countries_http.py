"""AvailablePhoneNumbers answers a country numbers are not sold in with 404 (20404), as
Twilio does, whatever the path: XX.json was a 404 but XX/Local.json an empty 200 page, and
"USA/Local.json" a 404. A country numbers are sold in answers its search, empty when the
inventory holds none there; one an operator stocked is served like any other."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pigeon.app import inventory
from pigeon.app.inventory_csv import import_rows, parse_csv
from pigeon.store.engine import Database
from tests.integration.http_client import assert_twilio_error, make_api

RESOURCES = ["Local", "TollFree", "Mobile", "National", "Voip", "SharedCost", "MachineToMachine"]


@pytest.mark.parametrize("country", ["XX", "ZZ", "xx", "USA", "U1"])
def test_an_unknown_country_is_not_found(db: Database, database_url: str, country: str) -> None:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    api = make_api(db, database_url)
    paths = [
        f"{api.base}/AvailablePhoneNumbers/{country}{end}" for end in [".json", *(f"/{r}.json" for r in RESOURCES)]
    ]
    paths.append(f"{api.base}/AvailablePhoneNumbers/{country}/Local.json?NearLatLong=37.8,-122.3&Contains=415")
    for path, response in zip(paths, api.call(*(("GET", path, {}) for path in paths)), strict=True):
        assert_twilio_error(response, 404, 20404, path.partition("?")[0])


@pytest.mark.parametrize(("country", "resource"), [("FR", "Local"), ("fr", "Mobile"), ("US", "National")])
def test_a_known_country_without_numbers_is_an_empty_page(
    db: Database, database_url: str, country: str, resource: str
) -> None:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    api = make_api(db, database_url)
    response = api.one("GET", f"{api.base}/AvailablePhoneNumbers/{country}/{resource}.json")
    assert response.status_code == 200, response.text
    assert response.json()["available_phone_numbers"] == []


def test_a_country_the_operator_stocked_is_served(db: Database, database_url: str) -> None:
    """Turkey is not in the catalogue; an inventory file with Turkish numbers sells them."""
    now = datetime.now(UTC)
    with db.write() as conn:
        import_rows(conn, parse_csv("phone_number,number_type\n+905321234567,mobile\n", now), replace=False)
    api = make_api(db, database_url)
    listed = api.one("GET", f"{api.base}/AvailablePhoneNumbers.json").json()["countries"]
    assert [c["country_code"] for c in listed] == ["TR"]
    found = api.one("GET", f"{api.base}/AvailablePhoneNumbers/TR/Mobile.json")
    assert [n["phone_number"] for n in found.json()["available_phone_numbers"]] == ["+905321234567"]
    assert api.one("GET", f"{api.base}/AvailablePhoneNumbers/TR/Local.json").json()["available_phone_numbers"] == []
    assert api.one("GET", f"{api.base}/AvailablePhoneNumbers/TR.json").status_code == 200
