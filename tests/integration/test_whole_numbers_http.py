"""Whole numbers in requests are ASCII digits, a bounded number of them (pigeon.domain.integers).

Before, a value of more than 4,300 digits reached int() and came back as a 500 (Distance,
/v1/Errors/{code}, /v1/Schemas/{id}/Versions/{v}, the console's filters), or as a 400 whose
message named `sys.set_int_max_str_digits()` (Since); and int() took "١٠", "1_000" and " 10 "."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # as in test_console_http
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.config import load_settings
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, list_messages
from tests.integration.http_client import SENDER, assert_twilio_error, make_api
from tests.integration.test_console_http import sign_in

HUGE = "9" * 4301


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/AvailablePhoneNumbers/US/Local.json?NearLatLong=37.7,-122.4&Distance=" + HUGE, 400, 20422),
        ("/AvailablePhoneNumbers/US/Local.json?NearNumber=%2B12125550113&Distance=" + HUGE, 400, 20422),
        ("/v1/Errors/" + HUGE, 404, 20404),
        ("/v1/Schemas/Messaging.MessageStatus/Versions/" + HUGE, 404, 20404),
        ("/Requests.json?Since=" + HUGE + "m", 200, None),  # further back than the calendar: everything
        ("/Requests.json?Since=" + HUGE + "x", 400, 20422),
        ("/Messages.json?PageSize=" + HUGE, 400, 20422),
    ],
)
def test_a_huge_number_is_answered_in_our_words(
    db: Database, database_url: str, path: str, status: int, code: int | None
) -> None:
    api = make_api(db, database_url)
    response = api.one("GET", path if path.startswith("/v1/") else api.base + path)
    if code is None:
        assert response.status_code == status, response.text
    else:
        assert_twilio_error(response, status, code)
        assert "sys." not in response.text
        assert status == 404 or len(response.json()["message"]) < 200  # a 404 names the path, as Twilio's


@pytest.mark.parametrize("value", ["١٠", "1_000", " 10 ", "10.0", "+10"])
def test_a_loose_validity_period_is_refused_and_sends_nothing(db: Database, database_url: str, value: str) -> None:
    api = make_api(db, database_url)
    form = {"To": "+14155557020", "From": SENDER, "Body": "x", "ValidityPeriod": value}
    assert_twilio_error(api.one("POST", f"{api.base}/Messages.json", data=form), 400, 21624)
    with db.read() as conn:
        assert list_messages(conn, MessageFilter(account_sid=api.account["sid"]), limit=10) == []


@pytest.mark.parametrize("value", ["١٠", "1_000", " 10 "])
def test_loose_numbers_are_refused_in_lists_and_services(db: Database, database_url: str, value: str) -> None:
    api = make_api(db, database_url)
    service = f"/v1/Services/{api.service_sid}"
    page, update, fetched = api.call(
        ("GET", f"{api.base}/Messages.json", {"params": {"PageSize": value}}),
        ("POST", service, {"data": {"ValidityPeriod": value}}),
        ("GET", service, {}),
    )
    assert_twilio_error(page, 400, 20422, "PageSize")
    assert_twilio_error(update, 400, 21624)
    assert fetched.json()["validity_period"] == 36000


def test_the_console_leaves_out_a_huge_filter(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        assert sign_in(client, api.account["sid"], api.account["auth_token"]) == 303
        for path in (f"/console/requests?status={HUGE}", f"/console/alerts?code={HUGE}", "/console/alerts?code=١٢"):
            assert client.get(path).status_code == 200, path
