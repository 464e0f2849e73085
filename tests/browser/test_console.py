"""The web console in a real browser: sign in, logs, a message's timeline, numbers and their
webhooks, the handset simulator, CSRF, sign-out."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from pigeon.domain.signatures import validate_signature
from tests.acceptance.conftest import Server
from tests.browser.conftest import Console, Receiver

pytestmark = pytest.mark.xdist_group("browser")


def wait_for_status(c: Console, sid: str, statuses: set[str], timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = c.api("GET", f"/Messages/{sid}.json").json()
        if body["status"] in statuses or time.monotonic() > deadline:
            assert body["status"] in statuses, body
            return body
        time.sleep(0.2)


def send(c: Console, to: str, body: str) -> str:
    resp = c.api("POST", "/Messages.json", data={"To": to, "From": c.server.numbers[0], "Body": body})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["sid"])


def number_sid(c: Console, phone_number: str) -> str:
    rows = c.api("GET", "/IncomingPhoneNumbers.json", params={"PhoneNumber": phone_number}).json()
    return str(rows["incoming_phone_numbers"][0]["sid"])


def test_sign_in_refuses_bad_credentials_and_sign_out_ends_the_session(browser: Any, console_server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(console_server.base_url + "/console/logs")
        assert "/console/login" in page.url  # not signed in: sent to the sign-in form
        page.fill("input[name=username]", console_server.account_sid)
        page.fill("input[name=password]", "not-the-token")
        page.click("button[type=submit]")
        assert page.get_by_role("alert").inner_text() == "Those credentials were not accepted."
        page.fill("input[name=password]", console_server.auth_token)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/logs")  # back where the visit started
        cookie = next(c for c in context.cookies() if c["name"] == "pigeon_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
        page.click("text=Sign out")
        page.wait_for_url("**/console/login")
        assert not [c for c in context.cookies() if c["name"] == "pigeon_session"]
        page.goto(console_server.base_url + "/console/numbers")
        assert "/console/login" in page.url
    finally:
        context.close()


def test_filter_logs_by_number_and_read_a_message_timeline(console: Console) -> None:
    delivered = send(console, "+14155557001", "Your code is 1234")
    undelivered = send(console, "+14155550101", "Nobody home")  # the simulator: unreachable handset
    wait_for_status(console, delivered, {"delivered"})
    wait_for_status(console, undelivered, {"undelivered"})

    page = console.page
    console.goto("/logs")
    page.fill("input[name=number]", "+14155550101")
    page.click("form.filters button[type=submit]")
    rows = page.locator("#log-rows tr")
    assert rows.count() == 1
    assert "+14155550101" in rows.first.inner_text() and "undelivered" in rows.first.inner_text()
    console.screenshot("logs")

    rows.first.locator("a").click()
    page.wait_for_url(f"**/console/messages/{undelivered}")
    timeline = page.locator("ol.timeline").inner_text()
    for kind in ("created", "submit" if "submit" in timeline else "sent", "receipt"):
        assert kind in timeline
    assert "UNDELIV" in timeline  # the carrier's raw receipt
    explained = page.locator(".explain").first.inner_text()
    assert "30003" in explained and "What to do" in explained
    verdict = page.locator("#report").inner_text()  # the doctor's verdict on this message
    assert "carrier undelivered" in verdict
    console.screenshot("message")

    # Export of the same filter: one record, as CSV.
    with page.expect_download() as info:
        console.goto("/logs?number=%2B14155550101")
        page.click("text=CSV")
    text = open(info.value.path(), encoding="utf-8").read()
    assert text.splitlines()[0].startswith("sid,account_sid,direction")
    assert len(text.splitlines()) == 2 and undelivered in text and "UNDELIV" in text  # with its timeline

    # The request log shows the API call that created it.
    console.goto("/requests?number=%2B14155550101")
    logged = page.locator("table.grid tbody tr", has_text=undelivered)
    assert "POST" in logged.inner_text() and "201" in logged.inner_text()
    console.screenshot("requests")


def test_change_a_numbers_webhook_and_test_it(console: Console, receiver: Receiver) -> None:
    page = console.page
    sid = number_sid(console, console.server.numbers[0])
    console.goto("/numbers")
    page.click(f"text={console.server.numbers[0]}")
    page.wait_for_url(f"**/console/numbers/{sid}")

    page.fill("input[name=sms_url]", "not a url")
    page.evaluate("document.querySelector('input[name=sms_url]').type = 'text'")  # let the server judge it
    page.click("text=Save configuration")
    assert "21402" in page.get_by_role("alert").inner_text()

    page.fill("input[name=sms_url]", receiver.url("/sms"))
    page.click("text=Save configuration")
    page.wait_for_url("**?saved=1")
    assert page.get_by_role("status").inner_text() == "Saved."
    assert console.api("GET", f"/IncomingPhoneNumbers/{sid}.json").json()["sms_url"] == receiver.url("/sms")

    before = len(receiver.requests)
    page.click("text=Test webhook")
    result = page.locator("#test-result")
    assert "passed" in result.locator("h2").inner_text()
    cells = result.locator("tbody tr").first.inner_text()
    assert "200" in cells and "valid" in cells and "Thanks, got: Test request from the Pigeon console" in cells
    assert re.search(r"\d+ ms", cells)
    console.screenshot("number")

    # The application got one request, signed with the account's auth token.
    assert len(receiver.requests) == before + 1
    req = receiver.requests[-1]
    assert validate_signature(
        receiver.url("/sms"), req["params"], req["headers"]["X-Twilio-Signature"], console.server.auth_token
    )


def test_a_failing_webhook_is_explained(console: Console, receiver: Receiver) -> None:
    page = console.page
    sid = number_sid(console, console.server.numbers[1])
    console.goto(f"/numbers/{sid}")
    page.fill("input[name=sms_url]", receiver.url("/broken"))
    page.click("text=Save configuration")
    page.wait_for_url("**?saved=1")
    page.click("text=Test webhook")
    result = page.locator("#test-result")
    assert "failed" in result.locator("h2").inner_text()
    assert "500" in result.inner_text() and "11200" in result.inner_text()


def test_text_the_number_from_the_handset_and_see_the_reply(console: Console, receiver: Receiver) -> None:
    number = console.server.numbers[0]
    sid = number_sid(console, number)
    assert console.api("POST", f"/IncomingPhoneNumbers/{sid}.json", data={"SmsUrl": receiver.url("/sms")}).is_success
    page = console.page
    console.goto("/simulator")
    page.fill("input[name=from]", "+14155557777")
    page.select_option("select[name=to]", number)
    page.fill("textarea[name=body]", "Hello pigeon")
    page.click("text=Send from handset")
    bubbles = page.locator("#conversation .bubble")
    # The handset's own bubble; the reply (which quotes it) may already be on the page too.
    page.locator("#conversation .bubble.mine").filter(has_text="Hello pigeon").wait_for()
    reply = bubbles.filter(has_text="Thanks, got: Hello pigeon")
    reply.wait_for(timeout=15_000)  # the page polls: the webhook, its TwiML, then the reply
    assert "theirs" in (reply.get_attribute("class") or "")
    page.locator("#conversation .bubble.theirs .status.ok").first.wait_for(timeout=15_000)
    console.screenshot("simulator")


def test_a_forged_post_is_refused(console: Console, receiver: Receiver) -> None:
    page = console.page
    sid = number_sid(console, console.server.numbers[1])
    before = console.api("GET", f"/IncomingPhoneNumbers/{sid}.json").json()["sms_url"]
    target = f"{console.root}/numbers/{sid}"

    # Another origin (same site: a different port) posts a form; the browser sends the cookies.
    forge = receiver.url("/forge?" + str(httpx.QueryParams({"action": target, "sms_url": "https://evil.example/x"})))
    response = None
    with page.expect_response(lambda r: r.url == target and r.request.method == "POST") as info:
        page.goto(forge)
    response = info.value
    assert response.status == 403

    # The console's own origin, with the session cookie but no token (a script, not a form).
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({sms_url: 'https://evil.example/y'})})).status""",
        target,
    )
    assert status == 403
    # A token from another session does not work either.
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', body: new URLSearchParams({sms_url: 'https://evil.example/z', csrf_token: 'x'.repeat(43)})})).status""",
        target,
    )
    assert status == 403
    assert console.api("GET", f"/IncomingPhoneNumbers/{sid}.json").json()["sms_url"] == before


def test_buy_a_number_from_the_inventory(console: Console) -> None:
    page = console.page
    console.goto("/numbers/buy?country=US&type=Local")
    first = page.locator("table.grid tbody tr").first
    bought = first.locator("td").first.inner_text()
    console.screenshot("buy")
    first.locator("button").click()
    page.wait_for_url("**/console/numbers/PN*")
    assert bought in page.locator("h1").inner_text()
    owned = console.api("GET", "/IncomingPhoneNumbers.json", params={"PhoneNumber": bought}).json()
    assert [n["phone_number"] for n in owned["incoming_phone_numbers"]] == [bought]


def test_overview_error_log_services_and_opt_outs(console: Console, receiver: Receiver) -> None:
    number = console.server.numbers[1]
    broken = {"SmsUrl": receiver.url("/broken")}
    assert console.api("POST", f"/IncomingPhoneNumbers/{number_sid(console, number)}.json", data=broken).is_success
    failed = send(console, "+14155550105", "Will fail")  # the simulator refuses: 30008
    wait_for_status(console, failed, {"failed"})
    page = console.page
    console.goto("/overview")
    legend = page.locator(".legend").inner_text()
    assert re.search(r"failed\s+[1-9]", legend)
    assert page.locator("svg.chart polyline").count() == 4
    carriers = page.locator("text=simulator").first
    carriers.wait_for()
    console.screenshot("overview")

    # STOP from a handset opts it out; the list shows it.
    console.goto("/simulator")
    page.fill("input[name=from]", "+14155558888")
    page.select_option("select[name=to]", number)
    page.fill("textarea[name=body]", "STOP")
    page.click("text=Send from handset")
    console.goto("/optouts")
    row = page.locator("table.grid tbody tr", has_text="+14155558888")
    assert "STOP" in row.inner_text()
    console.screenshot("optouts")

    # The application answered the STOP's webhook with a 500: an alert in the error log.
    deadline = time.monotonic() + 10
    while True:
        console.goto("/alerts?code=11200")
        rows = page.locator("table.grid tbody tr:not(.empty)")
        if rows.count() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert "500" in rows.first.inner_text()
    console.screenshot("alerts")
    rows.first.locator("a").first.click()
    assert "Response status" in page.locator("dl.fields").inner_text()
    console.screenshot("alert")

    # A Messaging Service made through the Services API, with a number in its pool.
    s = console.server
    auth = (s.account_sid, s.auth_token)
    created = httpx.post(f"{s.base_url}/v1/Services", data={"FriendlyName": "Support line"}, auth=auth, timeout=10)
    assert created.status_code == 201, created.text
    service = created.json()["sid"]
    pool = f"{s.base_url}/v1/Services/{service}/PhoneNumbers"
    added = httpx.post(pool, data={"PhoneNumberSid": number_sid(console, number)}, auth=auth, timeout=10)
    assert added.status_code == 201, added.text
    try:
        console.goto("/services")
        row = page.locator("table.grid tbody tr", has_text="Support line")
        assert number in row.inner_text()
        console.screenshot("services")
    finally:  # other tests expect the number to use its own webhook
        httpx.delete(f"{pool}/{number_sid(console, number)}", auth=auth, timeout=10)


def test_doctor_explains_a_blocked_recipient(console: Console) -> None:
    number = console.server.numbers[0]
    handset = "+14155556060"
    s = console.server
    stop = httpx.post(
        f"{s.base_url}/simulator/inbound",
        data={"From": handset, "To": number, "Body": "STOP"},
        auth=(s.account_sid, s.auth_token),
        timeout=10,
    )
    assert stop.status_code == 201, stop.text
    refused = console.api("POST", "/Messages.json", data={"To": handset, "From": number, "Body": "Hello?"})
    assert refused.json()["code"] == 21610

    page = console.page
    console.goto("/doctor")
    page.click("text=A recipient is blocked (21610)")
    page.fill("input[name=to]", handset)
    page.fill("input[name=from]", number)
    page.click("text=Diagnose")
    report = page.locator("#report")
    assert "opted out" in report.inner_text()
    assert "STOP" in report.inner_text()
    console.screenshot("doctor")
