"""The debugger against a running server: idempotent sends (also under concurrent identical
requests), duplicate warnings, the request log (API, header, CLI), alerts through the SDK's
Monitor API, error explanations and exports.

One server per backend serves these tests; each test works in its own subaccount.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from pigeon.store.request_log import RequestFilter, list_requests
from pigeon.store.tables import request_log
from tests.acceptance.conftest import Server
from tests.acceptance.support import Tenant, fresh_number, new_tenant, store

pytestmark = pytest.mark.acceptance

T = TypeVar("T")


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server)


def eventually(fn: Callable[[], T | None], what: str, timeout: float = 10) -> T:
    """The request log is written in the background, a few milliseconds after the response."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def debugger_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """`pigeon requests|alerts|errors ...` (the module the `pigeon` command mounts)."""
    return subprocess.run(
        [sys.executable, "-m", "pigeon.cli_debugger", *args],
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def send(tenant: Tenant, to: str, body: str, key: str | None = None, **extra: str) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    data = {"To": to, "From": tenant.numbers[0], "Body": body, **extra}
    return tenant.http("POST", "/Messages.json", data=data, headers=headers)


def messages_to(tenant: Tenant, to: str) -> list[Any]:
    return list(tenant.client().messages.list(to=to))


# -- idempotent sends --------------------------------------------------------------------------


def test_a_repeated_key_returns_the_original_message_and_sends_nothing(tenant: Tenant) -> None:
    to = fresh_number()
    first = send(tenant, to, "Your order shipped", key="order-77")
    again = send(tenant, to, "Your order shipped", key="order-77")
    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["sid"] == first.json()["sid"]
    assert again.json()["body"] == "Your order shipped"
    assert [m.sid for m in messages_to(tenant, to)] == [first.json()["sid"]]


def test_a_key_reused_with_other_parameters_is_refused(tenant: Tenant) -> None:
    to = fresh_number()
    assert send(tenant, to, "first", key="k-1").status_code == 201
    clash = send(tenant, to, "second", key="k-1")
    assert clash.status_code == 409
    body = clash.json()
    assert body["code"] == 20409 and body["status"] == 409
    assert "Idempotency-Key" in body["message"] and body["more_info"].endswith("/20409")
    assert len(messages_to(tenant, to)) == 1
    # Keys belong to an account: another tenant may use the same one.
    other = new_tenant(tenant.server)
    assert send(other, to, "second", key="k-1").status_code == 201


def test_a_malformed_key_is_refused(tenant: Tenant) -> None:
    resp = send(tenant, fresh_number(), "x", key="k" * 256)
    assert resp.status_code == 400 and resp.json()["code"] == 20422


def test_concurrent_identical_requests_make_exactly_one_message(tenant: Tenant) -> None:
    to = fresh_number()
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: send(tenant, to, "Your code is 4242", key="otp-4242"), range(24)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["sid"] for r in responses}) == 1
    assert sum("Idempotent-Replayed" not in r.headers for r in responses) == 1  # one made it
    assert len(messages_to(tenant, to)) == 1


# -- duplicate warnings ------------------------------------------------------------------------


def test_the_same_content_twice_without_a_key_is_sent_and_raises_a_warning(tenant: Tenant) -> None:
    to = fresh_number()
    client = tenant.client()
    first = client.messages.create(to=to, from_=tenant.numbers[0], body="Reminder: 3pm")
    second = client.messages.create(to=to, from_=tenant.numbers[0], body="Reminder: 3pm")
    client.messages.create(to=to, from_=tenant.numbers[0], body="Something else")
    assert len(messages_to(tenant, to)) == 3  # nothing was held back
    [alert] = client.monitor.v1.alerts.list()
    assert alert.error_code == "79001" and alert.log_level == "warning"
    assert alert.resource_sid == second.sid and alert.account_sid == tenant.sid
    assert first.sid in (alert.alert_text or "") and f"pigeon doctor duplicates --to {to}" in (alert.alert_text or "")
    assert alert.more_info == f"{tenant.server.base_url}/v1/Errors/79001"
    fetched = client.monitor.v1.alerts(alert.sid).fetch()
    assert fetched.sid == alert.sid and fetched.request_method == "POST"
    assert "Reminder" not in (fetched.request_variables or "")
    explained = httpx.get(alert.more_info, auth=(tenant.sid, tenant.auth_token), timeout=10).json()
    assert explained["code"] == 79001 and explained["kind"] == "debugger"


# -- the request log ---------------------------------------------------------------------------


def test_request_log_rows_for_a_201_and_a_400_without_bodies_or_credentials(tenant: Tenant) -> None:
    to = fresh_number()
    secret_body = "Secret text 8q1z, do not log"
    created = tenant.http(
        "POST",
        "/Messages.json",
        data={"To": to, "From": tenant.numbers[0], "Body": secret_body},
        headers={"User-Agent": "acceptance/1.0", "Idempotency-Key": "log-1"},
    )
    refused = tenant.http("POST", "/Messages.json", data={"To": to, "From": "+15005550000", "Body": secret_body})
    assert (created.status_code, refused.status_code) == (201, 400)
    assert refused.json()["code"] == 21606
    request_ids = {created.headers["Twilio-Request-Id"], refused.headers["Twilio-Request-Id"]}
    assert all(r.startswith("RQ") and len(r) == 34 for r in request_ids)

    def logged() -> list[dict[str, Any]] | None:
        rows = tenant.http("GET", "/Requests.json", params={"To": to}).json()["requests"]
        return rows if len(rows) == 2 else None

    rows = eventually(logged, "two request-log rows")
    by_status = {r["status"]: r for r in rows}
    assert {r["sid"] for r in rows} == request_ids
    made, bad = by_status[201], by_status[400]
    assert (made["error_code"], made["resource_sid"], made["idempotency_key"]) == (None, created.json()["sid"], "log-1")
    assert (made["method"], made["user_agent"], made["to"], made["from"]) == (
        "POST",
        "acceptance/1.0",
        to,
        tenant.numbers[0],
    )
    assert made["source_ip"] == "127.0.0.1" and made["duration_ms"] > 0
    assert made["account_sid"] == tenant.sid and len(made["content_hash"]) == 64
    assert (bad["error_code"], bad["resource_sid"], bad["to"]) == (21606, None, to)
    # Filters, and one request by its SID.
    assert [
        r["sid"] for r in tenant.http("GET", "/Requests.json", params={"ErrorCode": "21606"}).json()["requests"]
    ] == [bad["sid"]]
    assert tenant.http("GET", f"/Requests/{bad['sid']}.json").json()["error_code"] == 21606
    # Nothing of the body or the credentials anywhere in the stored rows.
    with store(tenant.server) as db, db.read() as conn:
        stored = list_requests(conn, RequestFilter(account_sid=tenant.sid, to=to), limit=10)
    text = json.dumps(stored, default=str) + json.dumps(rows)
    assert "Secret text" not in text and "8q1z" not in text
    assert tenant.auth_token not in text and "Basic " not in text and "authorization" not in text.lower()


def test_failed_authentication_is_logged_without_an_account(shared_server: Server) -> None:
    resp = httpx.get(
        f"{shared_server.base_url}/2010-04-01/Accounts/{shared_server.account_sid}/Messages.json",
        auth=(shared_server.account_sid, "wrong-token-5c3e"),
        timeout=10,
    )
    assert resp.status_code == 401
    rid = resp.headers["Twilio-Request-Id"]

    def row() -> dict[str, Any] | None:
        with store(shared_server) as db, db.read() as conn:
            found = [r for r in list_requests(conn, RequestFilter(error_code=20003), limit=200) if r["sid"] == rid]
        return found[0] if found else None

    logged = eventually(row, "the 401 in the request log")
    assert (logged["account_sid"], logged["status"]) == (None, 401)
    assert "wrong-token" not in json.dumps(logged, default=str)


def test_the_owner_finds_the_calls_refused_before_sign_in(tenant: Tenant) -> None:
    """A program with a stale auth token gets 20003, and its calls belong to no account. The
    account they named finds them with Authenticated=false (and `--unauthenticated`), marked
    as such; its own listing and other accounts' never show them."""
    resp = httpx.post(
        f"{tenant.server.base_url}/2010-04-01/Accounts/{tenant.sid}/Messages.json",
        data={"To": fresh_number(), "From": tenant.numbers[0], "Body": "hi"},
        auth=(tenant.sid, "a-stale-token-9d1f"),
        headers={"User-Agent": "billing-job/3.2"},
        timeout=10,
    )
    assert resp.status_code == 401
    rid = resp.headers["Twilio-Request-Id"]
    unauthenticated = {"Authenticated": "false"}

    def refused() -> list[dict[str, Any]]:
        return list(tenant.http("GET", "/Requests.json", params=unauthenticated).json()["requests"])

    [row] = eventually(refused, "the refused call under the account it named")
    assert (row["sid"], row["status"], row["error_code"]) == (rid, 401, 20003)
    assert (row["account_sid"], row["authenticated"], row["user_agent"]) == (tenant.sid, False, "billing-job/3.2")
    assert tenant.http("GET", f"/Requests/{rid}.json").json()["authenticated"] is False
    assert rid not in [r["sid"] for r in tenant.http("GET", "/Requests.json").json()["requests"]]
    other = new_tenant(tenant.server)
    assert other.http("GET", "/Requests.json", params=unauthenticated).json()["requests"] == []
    assert other.http("GET", f"/Requests/{rid}.json").status_code == 404
    done = debugger_cli(tenant.server, "requests", "--account", tenant.sid, "--unauthenticated", "--json")
    assert done.returncode == 0, done.stderr
    assert [(r["sid"], r["authenticated"]) for r in json.loads(done.stdout)] == [(rid, False)]
    assert debugger_cli(tenant.server, "requests", "--unauthenticated").returncode == 2  # which account?


def test_requests_paging_and_the_cli(tenant: Tenant) -> None:
    to = fresh_number()
    for i in range(3):
        assert send(tenant, to, f"page {i}").status_code == 201
    eventually(
        lambda: len(tenant.http("GET", "/Requests.json", params={"To": to}).json()["requests"]) == 3, "three rows"
    )
    page = tenant.http("GET", "/Requests.json", params={"To": to, "PageSize": "2"}).json()
    assert len(page["requests"]) == 2 and page["next_page_uri"]
    nxt = httpx.get(tenant.server.base_url + page["next_page_uri"], auth=(tenant.sid, tenant.auth_token), timeout=10)
    assert len(nxt.json()["requests"]) == 1
    assert "To=%2B" in page["next_page_uri"]
    done = debugger_cli(tenant.server, "requests", "--account", tenant.sid, "--to", to, "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert len(listed) == 3 and {r["status"] for r in listed} == {201}
    table = debugger_cli(tenant.server, "requests", "--account", tenant.sid, "--status", "201", "--since", "10m")
    assert table.returncode == 0 and "/Messages.json" in table.stdout and "201" in table.stdout


def test_requests_page_on_when_the_request_a_token_names_is_gone(tenant: Tenant) -> None:
    """The retention (or an erasure) may remove the request a PageToken names meanwhile: the
    next page is still the one after it, not Page x PageSize into what is left."""
    to = fresh_number()
    for i in range(5):
        assert send(tenant, to, f"gone {i}").status_code == 201
    eventually(
        lambda: len(tenant.http("GET", "/Requests.json", params={"To": to}).json()["requests"]) == 5, "five rows"
    )
    newest_first = [r["sid"] for r in tenant.http("GET", "/Requests.json", params={"To": to}).json()["requests"]]
    page = tenant.http("GET", "/Requests.json", params={"To": to, "PageSize": "2"}).json()
    assert [r["sid"] for r in page["requests"]] == newest_first[:2]
    with store(tenant.server) as db, db.write() as conn:
        conn.execute(sa.delete(request_log).where(request_log.c.sid.in_(newest_first[:2])))
    nxt = httpx.get(tenant.server.base_url + page["next_page_uri"], auth=(tenant.sid, tenant.auth_token), timeout=10)
    assert [r["sid"] for r in nxt.json()["requests"]] == newest_first[2:4]


# -- alerts, errors, export --------------------------------------------------------------------


def test_alerts_filters_and_the_cli(tenant: Tenant) -> None:
    to = fresh_number()
    for _ in range(2):
        tenant.client().messages.create(to=to, from_=tenant.numbers[0], body="twice")
    client = tenant.client()
    assert [a.error_code for a in client.monitor.v1.alerts.list(log_level="warning")] == ["79001"]
    assert client.monitor.v1.alerts.list(log_level="error") == []
    base = f"{tenant.server.base_url}/v1/Alerts"
    auth = (tenant.sid, tenant.auth_token)
    by_code = httpx.get(base, params={"ErrorCode": "79001", "PageSize": "1"}, auth=auth, timeout=10).json()
    assert len(by_code["alerts"]) == 1 and by_code["meta"]["url"].startswith(base + "?ErrorCode=79001")
    assert httpx.get(base, params={"ErrorCode": "30007"}, auth=auth, timeout=10).json()["alerts"] == []
    assert httpx.get(base + "/NO" + "0" * 32, auth=auth, timeout=10).status_code == 404
    # Another account sees none of them.
    assert new_tenant(tenant.server).client().monitor.v1.alerts.list() == []
    done = debugger_cli(tenant.server, "alerts", "--account", tenant.sid, "--code", "79001", "--json")
    assert done.returncode == 0, done.stderr
    [alert] = json.loads(done.stdout)
    assert alert["error_name"] == "Possible duplicate message" and alert["log_level"] == "warning"


def test_pigeon_errors_explains_a_code(shared_server: Server) -> None:
    done = debugger_cli(shared_server, "errors", "30007")
    assert done.returncode == 0, done.stderr
    assert "Message filtered" in done.stdout and "https://www.twilio.com/docs/errors/30007" in done.stdout
    assert "What to do" in done.stdout and "Likely causes" in done.stdout
    as_json = json.loads(debugger_cli(shared_server, "errors", "30007", "--json").stdout)
    assert as_json["name"] == "Message filtered" and as_json["causes"] and as_json["remedy"]
    unknown = debugger_cli(shared_server, "errors", "12345")
    assert unknown.returncode == 1 and "does not know error code 12345" in unknown.stderr.replace("\n", " ")
    api = httpx.get(
        f"{shared_server.base_url}/v1/Errors/21610",
        auth=(shared_server.account_sid, shared_server.auth_token),
        timeout=10,
    )
    assert api.status_code == 200 and api.json()["name"] == "Attempt to send to unsubscribed recipient"
    assert httpx.get(f"{shared_server.base_url}/v1/Errors/21610", timeout=10).status_code == 401
    # "²" is a digit to str.isdigit() but not to int(): these were 500s.
    for path in ("/v1/Errors/%C2%B2", "/v1/Schemas/Messaging.MessageStatus/Versions/%C2%B2"):
        odd = httpx.get(
            f"{shared_server.base_url}{path}", auth=(shared_server.account_sid, shared_server.auth_token), timeout=10
        )
        assert odd.status_code == 404, (path, odd.text)


def test_export_through_the_api_and_the_cli(tenant: Tenant, tmp_path: Any) -> None:
    to = fresh_number()
    sids = [send(tenant, to, f"export {i}").json()["sid"] for i in range(3)]
    send(tenant, fresh_number(), "someone else")
    as_json = tenant.http("GET", "/Messages/Export.json", params={"To": to})
    assert as_json.status_code == 200 and as_json.headers["content-type"].startswith("application/json")
    doc = as_json.json()
    assert [m["sid"] for m in doc["messages"]] == list(reversed(sids))
    assert doc["filters"]["to"] == to
    assert [e["kind"] for e in doc["messages"][0]["events"]] == ["created"]
    as_csv = tenant.http("GET", "/Messages/Export.csv", params={"To": to})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["sid"] for r in rows] == list(reversed(sids))
    assert json.loads(rows[0]["timeline"])[0]["status"] == "queued"
    assert tenant.http("GET", "/Messages/Export.xml").status_code == 404
    # The CLI: `pigeon logs --export` with the filters of `pigeon logs`.
    out = tmp_path / "export.csv"
    done = tenant.server.cli("logs", "--account", tenant.sid, "--to", to, "--export", "csv", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert [r["sid"] for r in csv.DictReader(out.open())] == list(reversed(sids))
    printed = tenant.server.cli("logs", "--account", tenant.sid, "--to", to, "--export", "json")
    assert [m["sid"] for m in json.loads(printed.stdout)["messages"]] == list(reversed(sids))


# -- values at the edges of what the store can hold -------------------------------------------

_FAR = "100000000000000000000"  # past 64 bits
_PAST_INT4 = "3000000000"  # past PostgreSQL's INTEGER, the codes' columns: was a 500 there


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/Messages.json", {"DateSent": "9999-12-31"}, 200),
        ("/Messages.json", {"DateSent<": "9999-12-31"}, 200),
        ("/Messages.json", {"DateSent>": "9999-12-31T23:00:00-05:00"}, 400),
        ("/Messages/Export.json", {"DateSent": "9999-12-31"}, 200),
        ("/Requests.json", {"EndDate": "9999-12-31"}, 200),
        ("/Requests.json", {"Since": "99999999999999999d"}, 200),
        ("/Requests.json", {"ErrorCode": _FAR}, 400),
        ("/Requests.json", {"Status": _FAR}, 400),
        ("/Requests.json", {"ErrorCode": _PAST_INT4}, 400),
        ("/Requests.json", {"Status": _PAST_INT4}, 400),
        ("/Doctor/Messages.json", {"To": "+14155550100", "Since": "99999999999999999d"}, 200),
        ("/Doctor/Duplicates.json", {"Window": _FAR}, 400),
        ("/Doctor/Duplicates.json", {"Window": "nan"}, 400),
        ("/v1/Alerts", {"EndDate": "9999-12-31"}, 200),
        ("/v1/Alerts", {"ErrorCode": _FAR}, 400),
        ("/v1/Alerts", {"ErrorCode": _PAST_INT4}, 400),
    ],
)
def test_values_at_the_edges_are_answered_not_a_server_error(
    tenant: Tenant, path: str, params: dict[str, str], status: int
) -> None:
    # Found by probing every list and search with such values: each was a 500 (SQLite's
    # integer overflow, or a date one day past 9999-12-31).
    if path.startswith("/v1/"):
        response = httpx.get(
            tenant.server.base_url + path, params=params, auth=(tenant.sid, tenant.auth_token), timeout=10
        )
    else:
        response = tenant.http("GET", path, params=params)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["code"] == 20422


def test_a_client_gone_before_its_body_arrived_is_a_499_not_an_error(tenant: Tenant) -> None:
    # Found by fuzzing: a client that closed the connection mid-body was logged as an
    # unhandled error with a traceback, and counted as a 500.
    import base64
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(tenant.base() + "/Messages.json")
    credentials = base64.b64encode(f"{tenant.sid}:{tenant.auth_token}".encode()).decode()
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Basic {credentials}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\n\r\nTo=%2B1"
    )
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10) as sock:
        sock.sendall(head.encode())
        time.sleep(0.2)  # the server has started reading the body

    def row() -> dict[str, Any] | None:
        with store(tenant.server) as db, db.read() as conn:
            # Its credentials were never checked: the body they come with never arrived.
            wanted = RequestFilter(account_sid=tenant.sid, status=499, authenticated=False)
            found = list_requests(conn, wanted, limit=5)
        return found[0] if found else None

    assert eventually(row, "the 499 in the request log")["method"] == "POST"
    assert "ClientDisconnect" not in tenant.server.log()
