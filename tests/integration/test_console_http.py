"""The console over HTTP without a browser: who may see what, sessions and their end, CSRF."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette 1.x prefers its httpx2 fork for the test client; httpx (installed) works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import usage, usage_triggers
from pigeon.app.send import SendRequest, prepare_message
from pigeon.config import load_settings
from pigeon.store import accounts as account_store
from pigeon.store import messages as message_store
from pigeon.store import numbers as number_store
from pigeon.store import services as service_store
from pigeon.store.engine import Database
from pigeon.store.messages import MessageFilter, insert_messages
from pigeon.store.request_log import insert_requests

Row = dict[str, Any]


@pytest.fixture
def app_and_data(db: Database, database_url: str) -> Iterator[tuple[TestClient, dict[str, Row]]]:
    now = datetime.now(UTC)
    with db.write() as conn:
        a = account_use.create_account(conn, friendly_name="Alpha", now=now)
        sub = account_use.create_subaccount(conn, a["sid"], friendly_name="Alpha sub", now=now)
        b = account_use.create_account(conn, friendly_name="Beta", now=now)
        made: dict[str, Row] = {"a": a, "sub": sub, "b": b}
        for key, number in (("a", "+14155550181"), ("sub", "+14155550182"), ("b", "+14155550183")):
            acc = made[key]
            made[f"{key}_number"] = number_use.provision(conn, account_sid=acc["sid"], phone_number=number, now=now)
            new = prepare_message(conn, acc["sid"], SendRequest(to="+14155557070", from_=number, body=key), now)
            insert_messages(conn, [new])
            made[f"{key}_message"] = new.message
        made["key"] = account_store.create_api_key(conn, account_sid=a["sid"], friendly_name="console", now=now)
    settings = load_settings(environ={}, database_url=database_url)
    app = bootstrap.build_api(settings, db)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client, made


def sign_in(client: TestClient, username: str, password: str, account: str = "") -> int:
    page = client.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"username": username, "password": password, "account": account, "csrf_token": token.group(1)}
    return int(client.post("/console/login", data=form, follow_redirects=False).status_code)


def csrf(client: TestClient, path: str = "/console/numbers") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_an_account_sees_only_its_own_data(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    logs = client.get("/console/logs").text
    assert str(d["a_message"]["sid"]) in logs
    assert str(d["b_message"]["sid"]) not in logs and str(d["sub_message"]["sid"]) not in logs
    assert client.get(f"/console/messages/{d['b_message']['sid']}").status_code == 404
    assert client.get(f"/console/numbers/{d['b_number']['sid']}").status_code == 404
    assert "+14155550183" not in client.get("/console/numbers").text
    assert str(d["b_message"]["sid"]) not in client.get("/console/logs.json").text
    assert str(d["b_message"]["sid"]) not in client.get("/console/logs/export?format=json").text
    # Someone else's number cannot be changed, and the handset cannot text it from here.
    token = csrf(client)
    post = {"sms_url": "https://example.com/x", "csrf_token": token}
    assert client.post(f"/console/numbers/{d['b_number']['sid']}", data=post).status_code == 404
    sim = {"from": "+14155557070", "to": "+14155550183", "body": "hi", "csrf_token": token}
    assert client.post("/console/simulator", data=sim).status_code == 400


def test_a_parent_switches_to_its_subaccount_and_back(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"]))
    token = csrf(client)
    assert client.post("/console/switch", data={"account_sid": d["sub"]["sid"], "csrf_token": token}).status_code == 200
    logs = client.get("/console/logs").text
    assert str(d["sub_message"]["sid"]) in logs and str(d["a_message"]["sid"]) not in logs
    refused = client.post("/console/switch", data={"account_sid": d["b"]["sid"], "csrf_token": token})
    assert refused.status_code == 403


def test_a_subaccount_never_reaches_its_parent(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    sign_in(client, str(d["sub"]["sid"]), str(d["sub"]["auth_token"]))
    token = csrf(client)
    assert client.post("/console/switch", data={"account_sid": d["a"]["sid"], "csrf_token": token}).status_code == 403
    assert str(d["a_message"]["sid"]) not in client.get("/console/logs").text


def test_an_api_key_signs_in_to_its_account(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    key = d["key"]
    assert sign_in(client, str(key["sid"]), str(key["secret"]), account=str(d["b"]["sid"])) == 401
    assert sign_in(client, str(key["sid"]), "wrong") == 401
    assert sign_in(client, str(key["sid"]), str(key["secret"]), account=str(d["a"]["sid"])) == 303
    assert str(d["a_message"]["sid"]) in client.get("/console/logs").text


def test_a_new_auth_token_ends_the_session(app_and_data: tuple[TestClient, dict[str, Row]], db: Database) -> None:
    client, d = app_and_data
    sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"]))
    assert client.get("/console/logs", follow_redirects=False).status_code == 200
    with db.write() as conn:
        account_store.update_account(conn, str(d["a"]["sid"]), now=datetime.now(UTC), auth_token="f" * 32)
    response = client.get("/console/logs", follow_redirects=False)
    assert response.status_code == 303 and "/console/login" in response.headers["location"]


def test_a_session_lasts_as_long_as_the_token_it_signed_in_with(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    client, d = app_and_data
    sid, first = str(d["a"]["sid"]), str(d["a"]["auth_token"])
    now = datetime.now(UTC)
    with db.write() as conn:
        second = account_use.create_secondary_token(conn, account_store.get_account(conn, sid) or {}, now=now)[
            "secondary_auth_token"
        ]
    assert sign_in(client, sid, second) == 303  # the secondary token signs in too
    assert client.get("/console/logs", follow_redirects=False).status_code == 200
    with db.write() as conn:  # deleting the secondary ends the sessions made with it
        account_use.delete_secondary_token(conn, account_store.get_account(conn, sid) or {}, now=now)
    assert client.get("/console/logs", follow_redirects=False).status_code == 303

    assert sign_in(client, sid, first) == 303
    with db.write() as conn:  # promoting a secondary ends the sessions made with the first token
        account = account_store.get_account(conn, sid) or {}
        account_use.create_secondary_token(conn, account, now=now)
        account_use.promote_secondary_token(conn, account_store.get_account(conn, sid) or {}, now=now)
    assert client.get("/console/logs", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session_not_only_its_cookie(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    """Sessions are signed cookies valid for hours: a copy taken before signing out (another
    browser, a stolen cookie) kept working. Signing out ends every console session of the
    account; signing in again starts a new one."""
    client, d = app_and_data
    sid, token = str(d["a"]["sid"]), str(d["a"]["auth_token"])
    assert sign_in(client, sid, token) == 303
    copied = client.cookies.get("pigeon_session")
    assert copied
    other = TestClient(client.app, base_url="http://127.0.0.1:8080")  # another browser, same account
    assert sign_in(other, sid, token) == 303
    assert client.post("/console/logout", data={"csrf_token": csrf(client)}, follow_redirects=False).status_code == 303
    replayed = TestClient(client.app, base_url="http://127.0.0.1:8080", cookies={"pigeon_session": copied})
    for browser in (replayed, other):
        response = browser.get("/console/logs", follow_redirects=False)
        assert response.status_code == 303 and "/console/login" in response.headers["location"]
    assert sign_in(client, sid, token) == 303
    assert client.get("/console/logs", follow_redirects=False).status_code == 200
    # Another account's sessions are its own.
    assert sign_in(other, str(d["b"]["sid"]), str(d["b"]["auth_token"])) == 303
    assert client.post("/console/logout", data={"csrf_token": csrf(client)}).status_code == 200
    assert other.get("/console/logs", follow_redirects=False).status_code == 200


def test_posts_need_the_session_token(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"]))
    number = f"/console/numbers/{d['a_number']['sid']}"
    assert client.post(number, data={"sms_url": "https://example.com/x"}).status_code == 403
    assert client.post(number, data={"sms_url": "https://example.com/x", "csrf_token": "nope"}).status_code == 403
    token = csrf(client)
    other_origin = {"origin": "http://127.0.0.1:9999"}
    data = {"sms_url": "https://example.com/x", "csrf_token": token}
    assert client.post(number, data=data, headers=other_origin).status_code == 403
    assert client.post(number, data=data, follow_redirects=False).status_code == 303
    # The sign-in form refuses a post without its token (login CSRF).
    client.cookies.clear()
    form = {"username": d["a"]["sid"], "password": d["a"]["auth_token"]}
    assert client.post("/console/login", data=form).status_code == 403


def test_behind_a_proxy_the_public_url_s_origin_is_accepted_and_cookies_are_secure(
    db: Database, database_url: str
) -> None:
    """nginx's default passes its upstream's address as Host (proxy_set_header Host
    $proxy_host) and ends TLS: the browser's Origin is the public site, and the request that
    reaches Pigeon is plain http. Forms from the public URL's origin are accepted, and the
    cookies are Secure since the site is https; another origin is still refused."""
    with db.write() as conn:
        a = account_use.create_account(conn, friendly_name="Alpha", now=datetime.now(UTC))
    settings = load_settings(environ={"PIGEON_PUBLIC_URL": "https://sms.example.com/"}, database_url=database_url)

    def carried(client: TestClient, response: Any) -> list[str]:
        """The response's cookies, all Secure, put in the jar by hand: the test client, like a
        browser, keeps a Secure cookie off the plain http it talks here (the proxy's https)."""
        cookies = response.headers.get_list("set-cookie")
        for cookie in cookies:
            name, _, value = cookie.partition(";")[0].partition("=")
            client.cookies.set(name, value)
        return [c for c in cookies if "; secure" not in c.lower()]

    with TestClient(bootstrap.build_api(settings, db), base_url="http://127.0.0.1:8080") as client:
        page = client.get("/console/login")
        assert carried(client, page) == []
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        form = {"username": a["sid"], "password": a["auth_token"], "csrf_token": token.group(1)}
        elsewhere = client.post("/console/login", data=form, headers={"origin": "https://evil.example"})
        assert elsewhere.status_code == 403
        proxied = {"origin": "https://sms.example.com", "x-forwarded-proto": "https"}
        signed_in = client.post("/console/login", data=form, headers=proxied, follow_redirects=False)
        assert signed_in.status_code == 303
        assert carried(client, signed_in) == []
        assert client.get("/console/numbers", follow_redirects=False).status_code == 200


def test_the_overview_shows_which_process_holds_a_carriers_bind_lease(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    from pigeon.store import carriers as carrier_store

    client, d = app_and_data
    now = datetime.now(UTC)
    lease = {"slots": 1, "expires_at": now.isoformat()}
    with db.write() as conn:
        held = {"name": "acme", "kind": "smpp", "bound": True, "binds": [], "lease": {**lease, "slot": 1}}
        standby = {"name": "acme", "kind": "smpp", "bound": False, "binds": [], "lease": {**lease, "slot": None}}
        carrier_store.save_status(conn, carrier="acme", holder="host-a:1", status=held, now=now)
        carrier_store.save_status(conn, carrier="acme", holder="host-b:2", status=standby, now=now)
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    page = client.get("/console/overview").text
    assert "lease 1 of 1" in page and "standing by" in page and "holds none of its 1 bind lease(s)" in page


def test_a_message_whose_callback_history_was_removed_says_so(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    from pigeon.store.messages import add_event

    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    sid = str(d["a_message"]["sid"])
    assert "No status callback or webhook for this message." in client.get(f"/console/messages/{sid}").text
    with db.write() as conn:  # a callback went out, and its delivery has since been removed
        detail = {"delivery_id": 1, "url": "https://hooks.example.com/s", "attempts": 1, "status_code": 204}
        add_event(
            conn,
            message_sid=sid,
            account_sid=str(d["a"]["sid"]),
            at=datetime.now(UTC),
            kind="callback",
            status="sent",
            detail=detail,
        )
    page = client.get(f"/console/messages/{sid}").text
    assert "No status callback or webhook" not in page and "PIGEON_WEBHOOK_HISTORY_DAYS" in page


def test_a_webhook_password_shows_on_no_page_and_in_no_export(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """The outbox keeps the callback URL it sends to, password and all; rows written before
    their writers masked it keep it too. Neither shows on the console's pages, in its export,
    or in the API's Events.json, Export.json/csv and Alerts."""
    from pigeon.store import alerts as alert_store
    from pigeon.store import webhooks as outbox

    client, d = app_and_data
    account, sid = str(d["a"]["sid"]), str(d["a_message"]["sid"])
    url = "https://cb:s3cret@hooks.example.com/status"
    now = datetime.now(UTC)
    with db.write() as conn:
        message_store.update_fields(conn, sid, status_callback=url)
        delivery = outbox.enqueue(
            conn,
            account_sid=account,
            message_sid=sid,
            kind="status_callback",
            url=url,
            method="POST",
            params=[("MessageSid", sid)],
            now=now,
            fallback_url=url,
        )
        outbox.record_attempt(conn, delivery_id=delivery, account_sid=account, at=now, url=url, status_code=404)
        alert = alert_store.add_alert(
            conn,
            account_sid=account,
            error_code=11200,
            text=f"Status callback to {url} failed",
            at=now,
            resource_sid=sid,
            request_method="POST",
            request_url=url,
        )
        message_store.add_event(
            conn, message_sid=sid, account_sid=account, at=now, kind="callback_failed", detail={"url": url}
        )
    assert sign_in(client, account, str(d["a"]["auth_token"])) == 303
    auth = (account, str(d["a"]["auth_token"]))
    api = f"/2010-04-01/Accounts/{account}"
    pages = {
        path: client.get(path, auth=auth if path.startswith(("/2010", "/v1")) else None)
        for path in (
            f"/console/messages/{sid}",
            "/console/alerts",
            f"/console/alerts/{alert}",
            "/console/logs/export?format=csv",
            "/console/logs/export?format=json",
            f"{api}/Messages/{sid}/Events.json",
            f"{api}/Messages/Export.json",
            f"{api}/Messages/Export.csv",
            "/v1/Alerts",
            f"/v1/Alerts/{alert}",
        )
    }
    for path, page in pages.items():
        assert page.status_code == 200, path
        assert "s3cret" not in page.text, path
    assert "https://cb:***@hooks.example.com/status" in pages[f"/console/messages/{sid}"].text


def test_csv_exports_defuse_a_formula_that_a_stranger_sent(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """An alphanumeric originator that is a spreadsheet formula texts STOP: the message exports
    and the opt-out exports (API and console) give its cells a leading apostrophe, and keep
    E.164 numbers as they are."""
    import csv
    import io

    from pigeon.app.inbound import receive
    from pigeon.ports import InboundSms

    client, d = app_and_data
    account, number = str(d["a"]["sid"]), "+14155550181"
    evil = '=HYPERLINK("//x.example")'
    with db.write() as conn:
        sms = InboundSms(carrier="simulator", sender=evil, recipient=number, body="STOP")
        assert receive(conn, sms, now=datetime.now(UTC), base_url="http://127.0.0.1:8080").message_sid
    assert sign_in(client, account, str(d["a"]["auth_token"])) == 303
    auth = (account, str(d["a"]["auth_token"]))
    api = f"/2010-04-01/Accounts/{account}"
    for path in (
        f"{api}/Messages/Export.csv",
        f"{api}/OptOuts.csv",
        "/console/logs/export?format=csv",
        "/console/optouts/export?format=csv",
    ):
        page = client.get(path, auth=auth if path.startswith("/2010") else None)
        assert page.status_code == 200, path
        cells = [cell for row in csv.reader(io.StringIO(page.text)) for cell in row]
        assert "'" + evil in cells, path
        assert not [c for c in cells if c.startswith(("=", "@", "-")) or (c.startswith("+") and not c[1:].isdigit())]
        assert number in cells, path


@pytest.mark.parametrize(
    "query",
    [
        "number=+14155557070",  # as typed in the address bar: the unencoded '+' reads as a space
        "number=14155557070",
        "number=%2B1%20(415)%20555-7070",
        "number=%2B1+415+555+7070",
    ],
)
def test_the_number_filters_read_a_number_as_the_doctor_does(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database, query: str
) -> None:
    """The logs, their export and the request log find a number however it is written, as the
    doctor does: with spaces or brackets, without its '+', or with the '+' of an unencoded
    query string read as a space; the request log under each spelling it may hold (the
    digits alone for a send whose '+' a form read as a space)."""
    client, d = app_and_data
    now = datetime.now(UTC)

    def request(sid: str, to: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "account_sid": d["a"]["sid"],
            "at": now,
            "method": "POST",
            "path": f"/2010-04-01/Accounts/{d['a']['sid']}/Messages.json",
            "status": 400,
            "error_code": 21211,
            "duration_ms": 1.0,
            "to": to,
        }

    with db.write() as conn:
        insert_requests(conn, [request("RQ" + "c" * 32, "+14155557070"), request("RQ" + "d" * 32, "14155557070")])
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    message = str(d["a_message"]["sid"])
    assert message in client.get(f"/console/logs?{query}").text
    assert message in client.get(f"/console/logs/export?format=json&{query}").text
    page = client.get(f"/console/requests?{query}").text
    assert page.count("21211") >= 2 and "14155557070" in page


def test_the_opt_out_page_pages_through_every_opt_out(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """It stopped at 500 without a word; it pages as the error log does, and the export has all."""
    from datetime import timedelta

    from pigeon.console.web import PAGE_SIZE
    from pigeon.store.optouts import record_opt_out

    client, d = app_and_data
    account, now = str(d["a"]["sid"]), datetime.now(UTC)
    count = PAGE_SIZE + 3
    with db.write() as conn:
        for i in range(count):
            record_opt_out(
                conn,
                account_sid=account,
                sender="+14155550181",
                recipient=f"+1415555{3000 + i:04d}",
                scope="number",
                keyword="STOP",
                inbound_message_sid=None,
                now=now + timedelta(seconds=i),
            )
    assert sign_in(client, account, str(d["a"]["auth_token"])) == 303

    def shown(page: str) -> list[str]:
        return re.findall(r"<tr><td>(\+1415555\d{4})</td>", page)

    first = client.get("/console/optouts").text
    assert shown(first) == [f"+1415555{3000 + i:04d}" for i in reversed(range(3, count))]  # newest first
    assert "page=1" in first and "Older" in first and "Newer" not in first
    second = client.get("/console/optouts?sender=%2B14155550181&page=1").text
    assert shown(second) == ["+14155553002", "+14155553001", "+14155553000"]
    assert "sender=%2B14155550181&amp;page=0" in second and "Older" not in second
    assert client.get("/console/optouts/export?format=csv").text.count("+1415555") >= count


def test_the_request_log_shows_calls_refused_before_sign_in_on_request(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """Calls that named the account with refused credentials are not its own (they show under
    "Refused before sign-in" only), and another account's never show."""
    client, d = app_and_data
    now = datetime.now(UTC)

    def refused(sid: str, account: Row, agent: str) -> dict[str, Any]:
        return {
            "sid": sid,
            "account_sid": None,
            "claimed_account_sid": account["sid"],
            "at": now,
            "method": "POST",
            "path": f"/2010-04-01/Accounts/{account['sid']}/Messages.json",
            "status": 401,
            "error_code": 20003,
            "duration_ms": 1.0,
            "user_agent": agent,
        }

    with db.write() as conn:
        insert_requests(
            conn, [refused("RQ" + "a" * 32, d["a"], "stale-a/1"), refused("RQ" + "b" * 32, d["b"], "stale-b/1")]
        )
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    assert "stale-a/1" not in client.get("/console/requests").text  # the user agent is shown
    page = client.get("/console/requests?unauthenticated=1").text
    assert "stale-a/1" in page and "stale-b/1" not in page


def test_the_webhook_test_keeps_out_of_the_denied_networks(app_and_data: tuple[TestClient, dict[str, Row]]) -> None:
    client, d = app_and_data
    sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"]))
    number = f"/console/numbers/{d['a_number']['sid']}"
    metadata = "http://169.254.169.254/latest/meta-data/"
    assert client.post(number, data={"sms_url": metadata, "csrf_token": csrf(client)}).status_code in (200, 303)
    page = client.post(f"{number}/test", data={"csrf_token": csrf(client)})
    assert page.status_code == 200
    assert "not allowed" in page.text and "11205" in page.text


def test_the_overview_shows_the_rules_an_operator_set(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    page = client.get("/console/overview").text
    assert "any country" in page and "not accepted" in page
    with db.write() as conn:
        account_use.set_allowed_countries(conn, str(d["a"]["sid"]), "US,CA", now=datetime.now(UTC))
        account_store.update_account(conn, str(d["a"]["sid"]), now=datetime.now(UTC), allow_short_code_inbound=True)
    page = client.get("/console/overview").text
    assert "CA, US only" in page and "refused with 21408" in page and "not accepted" not in page
    # A subaccount without a list of its own sends where its parent may, and the page says whose list.
    token = csrf(client)
    assert client.post("/console/switch", data={"account_sid": d["sub"]["sid"], "csrf_token": token}).status_code == 200
    page = client.get("/console/overview").text
    assert "CA, US only" in page and f"its parent {d['a']['sid']}" in page


def test_the_overview_shows_this_months_usage_of_the_account_alone(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    client, d = app_and_data
    now = datetime.now(UTC)
    with db.write() as conn:
        usage.count(
            conn,
            [
                usage.Counted(account_sid=d["a"]["sid"], outbound=True, media=False, segments=2, price="-0.0158"),
                usage.Counted(account_sid=d["a"]["sid"], outbound=False, media=True, segments=1, price=None),
                usage.Counted(account_sid=d["sub"]["sid"], outbound=True, media=False, segments=9, price="-1"),
            ],
            now=now,
        )
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    page = client.get("/console/overview").text
    card = page[page.index('id="usage"') :]
    card = card[: card.index("</section>")]
    cells = re.findall(r"<tr><td>([a-z-]+)</td><td>(\d+)</td><td>(\d+)</td><td>([\d.]+)</td></tr>", card)
    assert cells == [
        ("sms-outbound", "1", "2", "0.0158"),
        ("sms-inbound", "0", "0", "0"),
        ("mms-outbound", "0", "0", "0"),
        ("mms-inbound", "1", "1", "0"),
    ]
    assert "<th>0.0158</th>" in card  # its subaccount's usage is its own page's
    assert f"Since {now.date().replace(day=1).isoformat()}" in card


def test_the_usage_card_lists_the_accounts_triggers_with_their_values(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    client, d = app_and_data
    now = datetime.now(UTC)
    account = str(d["a"]["sid"])
    with db.write() as conn:
        usage.count(
            conn, [usage.Counted(account_sid=account, outbound=True, media=False, segments=3, price=None)], now=now
        )
        given = {"CallbackUrl": "https://hooks.example.com/u", "UsageCategory": "sms", "TriggerValue": "5"}
        usage_triggers.create(conn, account, given | {"Recurring": "monthly", "FriendlyName": "monthly cap"}, now)
        usage_triggers.create(conn, str(d["sub"]["sid"]), given, now)  # another account's
    assert sign_in(client, account, str(d["a"]["auth_token"])) == 303
    page = client.get("/console/overview").text
    table = page[page.index('id="usage-triggers"') :]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr><td[^>]*>([^<]*)</td>((?:<td>[^<]*</td>)+)</tr>", table)
    assert [(name, re.findall(r"<td>([^<]*)</td>", cells)) for name, cells in rows] == [
        ("monthly cap", ["sms usage", "monthly", "3", "5", ""])
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/console/alerts?page=10000000000000000000",
        "/console/alerts?code=10000000000000000000",
        "/console/requests?status=10000000000000000000&code=10000000000000000000",
        "/console/requests?until=9999-12-31",
        "/console/requests?status=3000000000&code=3000000000",  # past PostgreSQL's INTEGER
        "/console/alerts?code=3000000000&page=3000000000",
        "/console/alerts?code=%C2%B2&page=%C2%B2",  # "²": a digit to isdigit(), not to int()
        "/console/logs?until=9999-12-31",
        "/console/doctor/duplicates?window=1e20",
        "/console/doctor/blocked?since=99999999999999999d",
    ],
)
def test_filters_at_the_edges_of_the_store_still_answer_a_page(
    app_and_data: tuple[TestClient, dict[str, Row]], path: str
) -> None:
    # Found by probing the console: numbers past 64 bits reached SQLite, which raised (a 500).
    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    assert client.get(path).status_code == 200


def test_credentials_and_tokens_beyond_ascii_are_refused_not_a_server_error(
    app_and_data: tuple[TestClient, dict[str, Row]],
) -> None:
    # Found by probing: comparing such text with a secret raised (a 500).
    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), "pässwörd") == 401
    page = client.get("/console/login")
    assert page.status_code == 200
    refused = client.post(
        "/console/login", data={"username": str(d["a"]["sid"]), "password": "x", "csrf_token": "é" * 20}
    )
    assert refused.status_code == 403
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    forged = client.post("/console/numbers/buy", data={"csrf_token": "é" * 20, "phone_number": "+14155550100"})
    assert forged.status_code == 403


def test_a_subaccount_of_a_suspended_main_account_cannot_change_its_numbers(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """As the API refuses it (20005), so does the console, naming the main account; once the
    main account is active again the same change is saved."""
    client, d = app_and_data
    with db.write() as conn:
        account_store.update_account(conn, str(d["a"]["sid"]), now=datetime.now(UTC), status="suspended")
    assert sign_in(client, str(d["sub"]["sid"]), str(d["sub"]["auth_token"])) == 303
    number = f"/console/numbers/{d['sub_number']['sid']}"
    data = {"sms_url": "https://example.com/in", "csrf_token": csrf(client)}
    refused = client.post(number, data=data, follow_redirects=False)
    assert refused.status_code == 400
    assert f"main account {d['a']['sid']} is suspended" in refused.text
    bought = client.post("/console/numbers/buy", data={"csrf_token": csrf(client), "phone_number": "+14155550100"})
    assert "is suspended" in bought.text
    with db.write() as conn:
        account_store.update_account(conn, str(d["a"]["sid"]), now=datetime.now(UTC), status="active")
    assert client.post(number, data=data, follow_redirects=False).status_code == 303


def test_a_suspended_account_neither_tests_its_webhook_nor_texts_itself(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """The webhook test and the doctor's test request are signed requests; the handset makes an
    inbound message: none of them while the account is suspended (20005), as on the API."""
    client, d = app_and_data
    a = str(d["a"]["sid"])
    assert sign_in(client, a, str(d["a"]["auth_token"])) == 303
    number = f"/console/numbers/{d['a_number']['sid']}"
    metadata = "http://169.254.169.254/latest/meta-data/"  # refused before it is reached (11205)
    assert client.post(number, data={"sms_url": metadata, "csrf_token": csrf(client)}).status_code in (200, 303)
    token = csrf(client)
    with db.write() as conn:
        account_store.update_account(conn, a, now=datetime.now(UTC), status="suspended")
    tested = client.post(f"{number}/test", data={"csrf_token": token})
    assert tested.status_code == 403 and "20005" in tested.text and "11205" not in tested.text
    doctor = {"number": "+14155550181", "test": "on", "csrf_token": token}
    probed = client.post("/console/doctor/number", data=doctor)
    assert probed.status_code == 403 and "20005" in probed.text
    sim = {"from": "+14155557070", "to": "+14155550181", "body": "injected", "csrf_token": token}
    texted = client.post("/console/simulator", data=sim, follow_redirects=False)
    assert texted.status_code == 403 and "20005" in texted.text
    with db.read() as conn:
        assert [m["body"] for m in message_store.list_messages(conn, MessageFilter(account_sid=a), limit=10)] == ["a"]
    # Active again, all three work.
    with db.write() as conn:
        account_store.update_account(conn, a, now=datetime.now(UTC), status="active")
    assert "11205" in client.post(f"{number}/test", data={"csrf_token": token}).text
    assert client.post("/console/doctor/number", data=doctor).status_code == 200
    assert client.post("/console/simulator", data=sim, follow_redirects=False).status_code == 303


def test_the_doctor_does_not_show_another_accounts_sender_pool(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    client, d = app_and_data
    with db.write() as conn:
        now = datetime.now(UTC)
        service = service_store.create_service(conn, account_sid=str(d["b"]["sid"]), now=now, friendly_name="B's")
        service_store.attach_number(conn, str(d["b_number"]["sid"]), service["sid"], now=now)
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    page = client.get("/console/doctor/blocked", params={"to": "+14155557070", "service": service["sid"]})
    assert page.status_code == 404 and "+14155550183" not in page.text


def test_a_form_or_an_address_holding_nul_is_refused_and_saves_nothing(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """PostgreSQL cannot store NUL: a console form holding one was a 500 there (found by
    probing), and an address with %00 read the store with it."""
    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    number = f"/console/numbers/{d['a_number']['sid']}"
    data = {"sms_url": "https://example.com/in", "friendly_name": "mine\x00", "csrf_token": csrf(client)}
    refused = client.post(number, data=data, follow_redirects=False)
    assert refused.status_code == 400 and "NUL" in refused.text
    with db.read() as conn:
        [kept] = number_store.list_numbers(conn, account_sid=str(d["a"]["sid"]))
    assert kept["sms_url"] != "https://example.com/in"
    assert client.get(f"/console/messages/{d['a_message']['sid']}%00").status_code == 400
    assert client.get("/console/logs?to=%00").status_code == 400


def test_a_media_url_links_only_when_it_is_http_or_https(
    app_and_data: tuple[TestClient, dict[str, Row]], db: Database
) -> None:
    """Media URLs of inbound messages come from outside: a `javascript:` one, rendered as a link,
    ran in the console's origin when clicked. It shows as text; an http(s) one stays a link."""
    client, d = app_and_data
    now = datetime.now(UTC)
    hostile, fine = "javascript:alert(document.cookie)", "https://media.example.com/cat.png"
    with db.write() as conn:
        new = prepare_message(
            conn, str(d["a"]["sid"]), SendRequest(to="+14155557070", from_="+14155550181", body="pictures"), now
        )
        new.message["num_media"] = 2
        new.media.extend(
            {"sid": f"ME{i:032d}", "account_sid": d["a"]["sid"], "message_sid": new.message["sid"], "position": i}
            | {"url": url, "content_type": None, "date_created": now, "date_updated": now}
            for i, url in enumerate((hostile, fine))
        )
        insert_messages(conn, [new])
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    page = client.get(f"/console/messages/{new.message['sid']}").text
    assert hostile in page and 'href="javascript:' not in page
    assert f'href="{fine}"' in page


def test_every_console_response_carries_the_security_headers(
    app_and_data: tuple[TestClient, dict[str, Row]],
) -> None:
    """No other site may frame the console (its Save, Test and Switch forms were clickjackable),
    and its pages load script, style and images from the console alone."""
    client, d = app_and_data

    def check(response: Any) -> None:
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        policy = {p.split()[0]: p.split()[1:] for p in headers["Content-Security-Policy"].split("; ")}
        assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["object-src"] == policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'self'"]

    check(client.get("/console/login"))  # signed out
    check(client.get("/console/overview", follow_redirects=False))  # the redirect to sign in
    check(client.get("/console/static/console.css"))
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303
    for path in ("/console/overview", "/console/logs", f"/console/numbers/{d['a_number']['sid']}"):
        check(client.get(path))
    check(client.get(f"/console/messages/{d['b_message']['sid']}"))  # an error page
    check(client.post("/console/switch", data={"account_sid": d["sub"]["sid"]}))  # refused: no CSRF token


def test_the_console_page_of_an_unexpected_error_carries_them_too(
    app_and_data: tuple[TestClient, dict[str, Row]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 500 page is written outside Starlette's own middleware stack (ServerErrorMiddleware)."""
    from pigeon.app import services as service_use

    client, d = app_and_data
    assert sign_in(client, str(d["a"]["sid"]), str(d["a"]["auth_token"])) == 303

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service_use, "list_for_account", broken)
    lenient = TestClient(
        client.app, base_url=str(client.base_url), raise_server_exceptions=False, cookies=client.cookies
    )
    page = lenient.get("/console/services")
    assert page.status_code == 500 and "could not show this page" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
