"""Lookup v2 through the real `twilio` SDK (`client.lookups.v2.phone_numbers`): formats and
validity, and a clear refusal of the data packages Pigeon has no data for."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number, new_tenant, raises_twilio, wait_for

pytestmark = pytest.mark.acceptance


def test_a_number_is_formatted_and_validated(shared_server: Server) -> None:
    client = shared_server.client()
    found = client.lookups.v2.phone_numbers("+14155552671").fetch()
    assert (found.phone_number, found.national_format, found.country_code, found.calling_country_code) == (
        "+14155552671",
        "(415) 555-2671",
        "US",
        "1",
    )
    assert found.valid is True and found.validation_errors is None
    assert found.line_type_intelligence is None and found.caller_name is None
    assert found.url.endswith("/v2/PhoneNumbers/%2B14155552671")

    national = client.lookups.v2.phone_numbers("020 7946 0018").fetch(country_code="GB", fields="validation")
    assert (national.phone_number, national.country_code) == ("+442079460018", "GB")

    invalid = client.lookups.v2.phone_numbers("+141599299600").fetch()
    assert (invalid.valid, invalid.validation_errors) == (False, ["TOO_LONG"])


def test_data_packages_and_bad_parameters_are_refused(shared_server: Server) -> None:
    client = shared_server.client()
    err = raises_twilio(
        lambda: client.lookups.v2.phone_numbers("+14155552671").fetch(fields="line_type_intelligence"), 20422, 400
    )
    assert "no carrier data" in err.msg
    raises_twilio(lambda: client.lookups.v2.phone_numbers("+14155552671").fetch(fields="shoe_size"), 20422, 400)
    raises_twilio(lambda: client.lookups.v2.phone_numbers("4155552671").fetch(country_code="USA"), 20422, 400)
    stranger = shared_server.client(shared_server.account_sid, "0" * 32)
    raises_twilio(lambda: stranger.lookups.v2.phone_numbers("+14155552671").fetch(), 20003, 401)


def test_the_request_log_keeps_a_lookup_without_its_number(shared_server: Server) -> None:
    tenant = new_tenant(shared_server, numbers=0)
    looked_up = fresh_number()
    tenant.client().lookups.v2.phone_numbers(looked_up).fetch()

    def logged() -> list[dict[str, object]]:
        rows: list[dict[str, object]] = tenant.http("GET", "/Requests.json").json()["requests"]
        return [r for r in rows if str(r["path"]).startswith("/v2/")]

    wait_for("the lookup in the request log", lambda: bool(logged()), 10)
    [row] = logged()
    assert (row["method"], row["path"], row["status"], row["to"]) == ("GET", "/v2/PhoneNumbers/(number)", 200, None)
    assert looked_up.lstrip("+") not in str(tenant.http("GET", "/Requests.json").json())
