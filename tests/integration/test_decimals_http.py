"""Decimals in requests are ASCII digits and one ".", a bounded number of them
(pigeon.domain.decimals), refused otherwise with the parameter's 20422, its name and the value.

Before, float() and Decimal() read them: NearLatLong "37.8044,-1_22.2712" searched around
Oakland, a Window of "1e3" grouped texts 1,000 seconds apart, and a TriggerValue of " 15 " or
"١٥" (Arabic-Indic digits) made a trigger of 15."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pigeon.app import inventory
from pigeon.domain.quoted import shown
from pigeon.store.engine import Database
from tests.integration.http_client import assert_twilio_error, make_api

LOOSE = ["1e3", "nan", "inf", " 1.5 ", "1_0", "١٫٥", "10."]


@pytest.mark.parametrize(
    "near",
    [
        "37.8044,-1_22.2712",
        " 37.8044,-122.2712",
        "37.8044, -122.2712",
        "3.78044e1,-122.2712",
        "٣٧.٨٠٤٤,-122.2712",
        "nan,-122.2712",
    ],
)
def test_a_loose_near_lat_long_is_refused(db: Database, database_url: str, near: str) -> None:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    api = make_api(db, database_url)
    response = api.one("GET", f"{api.base}/AvailablePhoneNumbers/US/Local.json", params={"NearLatLong": near})
    assert_twilio_error(response, 400, 20422, "NearLatLong", shown(near))


def test_a_plain_near_lat_long_still_searches(db: Database, database_url: str) -> None:
    with db.write() as conn:
        inventory.seed_default(conn, datetime.now(UTC))
    api = make_api(db, database_url)
    for near in ("37.8044,-122.2712", "+37.8044,-122.2712"):
        response = api.one("GET", f"{api.base}/AvailablePhoneNumbers/US/Local.json", params={"NearLatLong": near})
        assert response.status_code == 200, response.text
        assert response.json()["available_phone_numbers"], near


@pytest.mark.parametrize("distance", [" 10 ", "1e1", "١٠", "10.0", "1_0"])
def test_a_loose_distance_is_refused_quoting_it(db: Database, database_url: str, distance: str) -> None:
    """Distance was already read as a whole number; its refusal now quotes the value too."""
    api = make_api(db, database_url)
    params = {"NearLatLong": "37.8044,-122.2712", "Distance": distance}
    response = api.one("GET", f"{api.base}/AvailablePhoneNumbers/US/Local.json", params=params)
    assert_twilio_error(response, 400, 20422, "Distance", shown(distance))


@pytest.mark.parametrize("window", LOOSE)
def test_a_loose_duplicate_window_is_refused(db: Database, database_url: str, window: str) -> None:
    api = make_api(db, database_url)
    response = api.one("GET", f"{api.base}/Doctor/Duplicates.json", params={"Window": window})
    assert_twilio_error(response, 400, 20422, "Window", shown(window))


def test_a_decimal_window_is_taken(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    response = api.one("GET", f"{api.base}/Doctor/Duplicates.json", params={"Window": "1.5"})
    assert response.status_code == 200, response.text
    assert response.json()["subject"]["window_seconds"] == 1.5


@pytest.mark.parametrize("value", [*LOOSE, "١٥", " 15 ", "+ 15"])
def test_a_loose_trigger_value_is_refused_and_makes_no_trigger(db: Database, database_url: str, value: str) -> None:
    api = make_api(db, database_url)
    form = {"CallbackUrl": "https://example.com/usage", "TriggerValue": value, "UsageCategory": "sms"}
    response = api.one("POST", f"{api.base}/Usage/Triggers.json", data=form)
    assert_twilio_error(response, 400, 20422, "TriggerValue", shown(value))
    listed = api.one("GET", f"{api.base}/Usage/Triggers.json")
    assert listed.status_code == 200 and listed.json()["usage_triggers"] == []
