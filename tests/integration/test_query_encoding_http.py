"""A query parameter whose percent escapes are not UTF-8 (`To=%E9`, Latin-1's "é") is refused
with 20422 naming it, on every route, as a form's field is (test_form_encoding_http), and the
request is still in the request log.

Before, Starlette read each bad byte as U+FFFD and the route used it as a filter:
`GET Messages.json?To=%E9` answered an empty 200 page, as if there were no such messages."""

from __future__ import annotations

import pytest

from pigeon.store.engine import Database
from pigeon.store.request_log import RequestFilter, list_requests
from tests.integration.http_client import SENDER, assert_twilio_error, make_api


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("Messages.json?To=%E9", "To"),
        ("Messages.json?PageSize=20&From=caf%E9&To=%2B14155550100", "From"),
        ("Messages.json?To=%C3%A9%E9", "To"),  # a good escape, then a bad one
        ("Messages.json?caf%E9=1", None),  # a name, not a value
        ("IncomingPhoneNumbers.json?FriendlyName=caf%E9", "FriendlyName"),
        ("AvailablePhoneNumbers/US/Local.json?InLocality=S%E3o", "InLocality"),
        ("Doctor/Messages.json?To=%E9", "To"),
        ("Usage/Records.json?Category=%FF", "Category"),
        ("/v1/Alerts?ResourceSid=%E9", "ResourceSid"),
        ("/v1/Services?PageSize=%E9", "PageSize"),
    ],
)
def test_a_query_that_is_not_utf8_is_refused_naming_the_parameter(
    db: Database, database_url: str, path: str, name: str | None
) -> None:
    api = make_api(db, database_url)
    url = path if path.startswith("/") else f"{api.base}/{path}"
    response = api.one("GET", url)
    assert_twilio_error(response, 400, 20422, "UTF-8", *([repr(name)] if name else []))
    assert "\ufffd" not in response.text
    with db.read() as conn:
        [logged] = list_requests(conn, RequestFilter(), limit=10)
    assert (logged["status"], logged["error_code"]) == (400, 20422)


def test_utf8_escapes_and_plain_queries_are_read_as_before(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    named = api.one("GET", f"{api.base}/IncomingPhoneNumbers.json", params={"FriendlyName": "café"})
    assert named.status_code == 200, named.text
    assert "FriendlyName=caf%C3%A9" in named.json()["first_page_uri"]
    mine = api.one("GET", f"{api.base}/IncomingPhoneNumbers.json?PhoneNumber=%2B{SENDER[1:]}")
    assert [n["phone_number"] for n in mine.json()["incoming_phone_numbers"]] == [SENDER]
    assert api.one("GET", f"{api.base}/Messages.json?PageSize=5").status_code == 200
