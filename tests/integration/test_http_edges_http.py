"""What the router and the error handlers answer at the edges of the API: a 500 says the
connection closes, a trailing slash is a 404 (no redirect built from the Host header), a 405
says which methods the path takes."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.store.engine import Database
from tests.integration.http_client import assert_twilio_error, make_api


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug")


def test_a_500_tells_the_client_the_connection_closes(db: Database, database_url: str) -> None:
    """uvicorn closes the connection after an unhandled error; without the header the twilio
    SDK's pooled next request went down the closing connection (ConnectionResetError)."""
    api = make_api(db, database_url)
    response = api.one("GET", "/boom", extra_routes=[Route("/boom", boom)])
    assert_twilio_error(response, 500, 20500)
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["{base}/Messages.json/", "/v1/Services/", "{base}.json/", "/console/logs/"])
def test_a_trailing_slash_is_not_found_not_redirected(db: Database, database_url: str, method: str, path: str) -> None:
    api = make_api(db, database_url)
    url = path.format(base=api.base)
    response = api.one(
        method, url, headers={"Host": "attacker.example"}, data={"To": "+1"} if method == "POST" else None
    )
    assert "location" not in response.headers
    assert response.status_code == 404
    if not url.startswith("/console"):
        assert_twilio_error(response, 404, 20404, url)


def test_the_console_is_still_at_its_address_without_the_slash(db: Database, database_url: str) -> None:
    api = make_api(db, database_url)
    bare, slashed = api.call(("GET", "/console", {"headers": {"Host": "attacker.example"}}), ("GET", "/console/", {}))
    assert (bare.status_code, bare.headers["location"]) == (303, "/console/")
    assert slashed.status_code == 303 and slashed.headers["location"] == "/console/overview"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "{base}/Messages.json", {"GET", "POST"}),
        ("DELETE", "{base}/Messages.json", {"GET", "POST"}),
        ("PATCH", "/v1/Services/{service}", {"GET", "POST", "DELETE"}),
        ("OPTIONS", "{base}/Messages/SM00000000000000000000000000000000.json", {"GET", "POST", "DELETE"}),
    ],
)
def test_a_405_names_the_methods_allowed(
    db: Database, database_url: str, method: str, path: str, allowed: set[str]
) -> None:
    api = make_api(db, database_url)
    response = api.one(method, path.format(base=api.base, service=api.service_sid))
    assert_twilio_error(response, 405, 20004)
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}
