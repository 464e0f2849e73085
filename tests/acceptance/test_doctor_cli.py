"""`pigeon doctor` end to end: a real `pigeon serve` (API, request log, workers, the built-in
network), a real application (the twilio SDK, an HTTP receiver for webhooks), and the doctor
asked through its command (`--json`, exit status) and through its API.

The doctor's command runs as `python -m pigeon.cli_doctor`, the module the `pigeon` command
mounts as `pigeon doctor`. Each test works in its own subaccount, so they can share a server.
Waiting for the system to reach a state polls the doctor's API (the same JSON, without a
process start per poll); the command is then asked once for its answer and its exit status.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.acceptance.conftest import Server, _prepare, _store_url
from tests.acceptance.support import Tenant, new_tenant, raises_twilio
from tests.conftest import drop_pg_database

#: Each test starts the doctor's command (a Python process) once or twice besides its waits.
pytestmark = pytest.mark.timeout(150)

HANDSET = "+14155552671"
TWIML = (200, "text/xml", b'<?xml version="1.0" encoding="UTF-8"?><Response/>')


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One running `pigeon serve` with its workers, per backend, for this module."""
    workdir = tmp_path_factory.mktemp("doctor")
    url, pg_name = _store_url(request.param, workdir, 0, request)
    server = _prepare(url, workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if pg_name:
            drop_pg_database(pg_name)


# -- helpers ---------------------------------------------------------------------------------------


def doctor(server: Server, tenant: Tenant, *args: str) -> tuple[int, dict[str, Any]]:
    """`pigeon doctor ARGS --json` as the tenant: (exit status, report)."""
    done = subprocess.run(
        [sys.executable, "-m", "pigeon.cli_doctor", *args, "--account", tenant.sid, "--json"],
        env=server.env,
        cwd=server.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def api(tenant: Tenant, path: str, **params: str) -> dict[str, Any]:
    """GET /Doctor/PATH as the tenant: the report, as the command prints it with --json."""
    r = tenant.http("GET", "/Doctor/" + path, params=params)
    assert r.status_code == 200, r.text
    report: dict[str, Any] = r.json()
    return report


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def wait_status(tenant: Tenant, sid: str, status: str) -> None:
    wait_for(f"{sid} {status}", lambda: tenant.client().messages(sid).fetch().status == status)


def causes(report: dict[str, Any]) -> list[str]:
    return [f["cause"] for f in report["findings"]]


def finding(report: dict[str, Any], cause: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in report["findings"] if f["cause"] == cause]
    assert found, report
    return found[0]


def evidence(f: dict[str, Any], source: str) -> list[dict[str, Any]]:
    return [e for e in f["evidence"] if e["source"] == source]


def text_in(server: Server, tenant: Tenant, to: str, body: str, handset: str = HANDSET) -> str:
    """A handset texts one of the tenant's numbers (the built-in network's handset)."""
    r = httpx.post(
        server.base_url + "/simulator/inbound",
        data={"From": handset, "To": to, "Body": body},
        auth=(tenant.sid, tenant.auth_token),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["message_sid"])


class Receiver:
    """The application's webhook: records each request, answers with `answer`."""

    def __init__(self, answer: tuple[int, str, bytes]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                # Blank values kept, as a web framework keeps them: the signature covers them.
                params = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
                receiver.requests.append({"path": self.path, "params": params, "headers": dict(self.headers)})
                status, ctype, body = receiver.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver((500, "text/plain", b"boom"))
    yield made
    made.close()


# -- clean traffic --------------------------------------------------------------------------------------


def test_clean_traffic_has_no_findings(live: Server) -> None:
    t = new_tenant(live)
    msg = t.client().messages.create(to=HANDSET, from_=t.numbers[0], body="Your code is 123456")
    wait_status(t, msg.sid, "delivered")
    assert api(t, "Messages.json", To=HANDSET)["findings"] == []
    assert api(t, "Duplicates.json")["findings"] == []
    code, report = doctor(live, t, "message", msg.sid)
    assert (code, report["findings"]) == (0, [])
    assert (report["flow"], report["subject"]["message_sid"], report["subject"]["status"]) == (
        "message",
        msg.sid,
        "delivered",
    )
    assert report == api(t, f"Messages/{msg.sid}.json")
    text = subprocess.run(
        [sys.executable, "-m", "pigeon.cli_doctor", "duplicates", "--account", t.sid],
        env=live.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert text.returncode == 0 and "No problems found." in text.stdout


# -- duplicates: an application that POSTs twice ---------------------------------------------------------


def test_an_application_that_posts_twice(live: Server) -> None:
    t = new_tenant(live)
    body = {"To": HANDSET, "From": t.numbers[0], "Body": "Your order has shipped"}
    sids = []
    for key in ("order-1-try-1", "order-1-try-2"):  # a retry with a fresh key: Pigeon cannot tell
        r = t.http("POST", "/Messages.json", data=body, headers={"Idempotency-Key": key, "User-Agent": "shop/2.1"})
        assert r.status_code == 201, r.text
        sids.append(r.json()["sid"])

    def logged() -> bool:
        report = api(t, "Duplicates.json", To=HANDSET)
        return bool(report["findings"]) and len(evidence(report["findings"][0], "request_log")) == 2

    wait_for("both requests in the request log", logged)
    code, report = doctor(live, t, "duplicates", "--to", HANDSET)
    assert code == 0  # a warning is not an error
    f = finding(report, "app_sent_multiple_requests")
    assert causes(report) == ["app_sent_multiple_requests"] and f["severity"] == "warning"
    assert [m["sid"] for m in evidence(f, "message")] == sids
    requests = evidence(f, "request_log")
    assert [(r["resource_sid"], r["idempotency_key"], r["status"]) for r in requests] == [
        (sids[0], "order-1-try-1", 201),
        (sids[1], "order-1-try-2", 201),
    ]
    assert {(r["source_ip"], r["user_agent"], r["method"]) for r in requests} == {("127.0.0.1", "shop/2.1", "POST")}
    assert any("different Idempotency-Key" in a for a in f["advice"])


def test_a_carrier_that_delivers_twice_0108(live: Server) -> None:
    t = new_tenant(live)
    msg = t.client().messages.create(to="+14155550108", from_=t.numbers[0], body="Your table is ready")

    wait_for("the second receipt", lambda: api(t, "Duplicates.json")["findings"])
    code, report = doctor(live, t, "duplicates")
    assert code == 0
    f = finding(report, "carrier_duplicate")
    assert causes(report) == ["carrier_duplicate"]
    receipts = evidence(f, "receipt")
    assert [(r["message_sid"], r["stat"], r["duplicate"]) for r in receipts] == [
        (msg.sid, "DELIVRD", False),
        (msg.sid, "DELIVRD", True),
    ]
    [submitted] = evidence(f, "carrier_ref")
    assert submitted["carrier_id"] == receipts[0]["carrier_id"] == receipts[1]["carrier_id"]


# -- my message wasn't delivered --------------------------------------------------------------------------


def test_carrier_filtering_0104_through_the_command_and_the_api(live: Server) -> None:
    t = new_tenant(live)
    msg = t.client().messages.create(to="+14155550104", from_=t.numbers[0], body="WIN A PRIZE bit.ly/x")
    wait_status(t, msg.sid, "undelivered")
    code, report = doctor(live, t, "message", msg.sid)
    assert code == 1
    f = finding(report, "carrier_undelivered")
    assert causes(report) == ["carrier_undelivered"] and f["severity"] == "error"
    [explained] = evidence(f, "error_code")
    assert (explained["error_code"], explained["name"]) == (30007, "Message filtered")
    [receipt] = evidence(f, "receipt")
    assert (receipt["stat"], receipt["err"]) == ("REJECTD", "004") and "stat:REJECTD" in receipt["raw"]
    assert f["advice"]
    # The API answers the same JSON.
    r = t.http("GET", f"/Doctor/Messages/{msg.sid}.json")
    assert r.status_code == 200 and r.json() == report


def test_a_message_deleted_through_the_api(live: Server) -> None:
    """Where did my message go? The doctor finds the DELETE in the request log: when, from
    where, by which program; the API answers the same report instead of a 404."""
    t = new_tenant(live)
    msg = t.client().messages.create(to=HANDSET, from_=t.numbers[0], body="Your code is 654321")
    wait_status(t, msg.sid, "delivered")
    r = t.http("DELETE", f"/Messages/{msg.sid}.json", headers={"User-Agent": "cleanup-cron/1.0"})
    assert r.status_code == 204, r.text
    request_sid = r.headers["Twilio-Request-Id"]

    # Until the request log's writer has the DELETE, the doctor finds no message at all (404).
    wait_for(
        "the DELETE in the request log",
        lambda: t.http("GET", f"/Doctor/Messages/{msg.sid}.json").status_code == 200,
    )
    code, report = doctor(live, t, "message", msg.sid)
    assert code == 0  # a warning: nothing is broken
    f = finding(report, "message_deleted")
    assert causes(report) == ["message_deleted"] and f["severity"] == "warning"
    [deletion] = evidence(f, "request_log")
    assert (deletion["sid"], deletion["method"], deletion["status"]) == (request_sid, "DELETE", 204)
    assert (deletion["source_ip"], deletion["user_agent"]) == ("127.0.0.1", "cleanup-cron/1.0")
    assert "cleanup-cron/1.0" in f["summary"]
    [made] = evidence(f, "sid")
    assert datetime.fromisoformat(made["made_at"]) <= datetime.fromisoformat(deletion["at"])
    assert report == api(t, f"Messages/{msg.sid}.json")
    # Another account asking about the same SID learns nothing about it.
    other = new_tenant(live)
    assert other.http("GET", f"/Doctor/Messages/{msg.sid}.json").status_code == 404


# -- blocked ----------------------------------------------------------------------------------------------


def test_an_opted_out_pair(live: Server) -> None:
    t = new_tenant(live)
    number = t.numbers[0]
    stop = text_in(live, t, number, "STOP")
    wait_for(
        "the automatic reply delivered",
        lambda: [m.status for m in t.client().messages.list(to=HANDSET)] == ["delivered"],
    )
    raises_twilio(lambda: t.client().messages.create(to=HANDSET, from_=number, body="50% off today"), 21610, 400)

    code, report = doctor(live, t, "blocked", "--to", HANDSET, "--from", number)
    assert code == 1
    f = finding(report, "opted_out")
    [opt] = evidence(f, "opt_out")
    assert (opt["keyword"], opt["scope"], opt["sender"]) == ("STOP", "number", number)
    assert (opt["inbound_message_sid"], opt["inbound_body"]) == (stop, "STOP")
    assert opt["opt_in_keywords"] == ["START", "YES", "UNSTOP"]
    assert any(f"START, YES or UNSTOP to {number}" in a for a in f["advice"])

    # Asked as "my message wasn't delivered": the refused request, its code, and the opt-out.
    def refused() -> dict[str, Any] | None:
        report = api(t, "Messages.json", To=HANDSET)
        return report if "rejected_by_api" in causes(report) else None

    report = wait_for("the refused request in the request log", refused)
    assert causes(report) == ["rejected_by_api", "opted_out"]
    rejected = finding(report, "rejected_by_api")
    assert [e["error_code"] for e in evidence(rejected, "error_code")] == [21610]
    assert [r["error_code"] for r in evidence(rejected, "request_log")] == [21610]

    # The recipient opts back in.
    text_in(live, t, number, "START")
    assert api(t, "Blocked.json", To=HANDSET, From=number)["findings"] == []


# -- my number receives nothing -------------------------------------------------------------------------


def test_a_number_without_a_webhook_and_a_number_of_another_account(live: Server) -> None:
    t = new_tenant(live)
    code, report = doctor(live, t, "number", t.numbers[0])
    assert (code, causes(report)) == (1, ["no_webhook"])
    checks = {c["check"]: c["ok"] for c in report["checks"]}
    assert checks == {"on_account": True, "sms_capable": True, "webhook": False, "inbound_received": True}

    other = new_tenant(live, numbers=1)
    assert causes(api(t, f"Numbers/{other.numbers[0]}.json")) == ["number_not_on_account"]


def test_a_failing_webhook_then_fixed(live: Server, receiver: Receiver) -> None:
    t = new_tenant(live)
    number = t.numbers[0]
    client = t.client()
    pn = client.incoming_phone_numbers.list(phone_number=number)[0]
    client.incoming_phone_numbers(pn.sid).update(sms_url=receiver.url)
    text_in(live, t, number, "hello?")
    wait_for("the real webhook request", lambda: receiver.requests)

    wait_for(
        "the webhook's failure on record",
        lambda: "webhook_failing" in causes(api(t, f"Numbers/{number}.json", TestRequest="false")),
    )
    code, report = doctor(live, t, "number", number)
    assert code == 1
    f = finding(report, "webhook_failing")
    assert causes(report) == ["webhook_failing"] and f["severity"] == "error"
    [test] = evidence(f, "test_request")
    assert (test["url"], test["status"], test["error_code"]) == (receiver.url, 500, 11200)
    assert evidence(f, "alert")[0]["response_status"] == 500
    # The test request is a signed request like real traffic, marked as a test.
    real, probe = receiver.requests[0], receiver.requests[-1]
    assert (probe["params"]["Body"], probe["params"]["PigeonDoctorTest"]) == ("Pigeon doctor test", "true")
    assert [*real["params"], "PigeonDoctorTest"] == list(probe["params"])
    for signed in (real, probe):
        assert RequestValidator(t.auth_token).validate(
            receiver.url, signed["params"], signed["headers"]["X-Twilio-Signature"]
        )

    receiver.answer = TWIML  # the application is fixed
    code, report = doctor(live, t, "number", number)
    assert code == 0
    assert finding(report, "webhook_failing")["severity"] == "warning"  # past failures stay on record
    test_check = next(c for c in report["checks"] if c["check"] == "test_request")
    assert (test_check["ok"], test_check["status"], test_check["twiml_valid"]) == (True, 200, True)


# -- the API ---------------------------------------------------------------------------------------------


def test_the_doctor_api(live: Server) -> None:
    t = new_tenant(live)
    r = t.http("GET", f"/Doctor/Numbers/{t.numbers[0]}.json", params={"TestRequest": "false"})
    assert r.status_code == 200 and (r.json()["flow"], causes(r.json())) == ("number", ["no_webhook"])
    r = t.http("GET", "/Doctor/Messages.json", params={"To": "+14155550177", "Since": "1h"})
    assert (r.json()["flow"], causes(r.json())) == ("recipient", ["never_requested"])
    r = t.http("GET", "/Doctor/Blocked.json", params={"To": HANDSET, "From": t.numbers[0]})
    assert (r.json()["flow"], r.json()["findings"]) == ("blocked", [])
    r = t.http("GET", "/Doctor/Duplicates.json", params={"To": HANDSET, "Since": "2h", "Window": "5"})
    assert (r.json()["flow"], r.json()["findings"], r.json()["subject"]["window_seconds"]) == ("duplicates", [], 5.0)

    assert t.http("GET", "/Doctor/Messages/SM" + "0" * 32 + ".json").json()["code"] == 20404
    for params in ({"To": HANDSET}, {"To": HANDSET, "From": t.numbers[0], "MessagingServiceSid": "MG" + "0" * 32}):
        r = t.http("GET", "/Doctor/Blocked.json", params=params)
        assert (r.status_code, r.json()["code"]) == (400, 20422)
    r = t.http("GET", "/Doctor/Duplicates.json", params={"Since": "last tuesday"})
    assert (r.status_code, r.json()["code"]) == (400, 20422)
    # one account never sees another's
    other = new_tenant(live, numbers=1)
    r = httpx.get(f"{t.base()}/Doctor/Duplicates.json", auth=(other.sid, other.auth_token), timeout=10)
    assert (r.status_code, r.json()["code"]) == (403, 20003)
    # nor another's Messaging Service, whose sender pool the report would list
    theirs = other.client().messaging.v1.services.create(friendly_name="theirs")
    pn = other.client().incoming_phone_numbers.list(phone_number=other.numbers[0])[0]
    other.client().messaging.v1.services(theirs.sid).phone_numbers.create(phone_number_sid=pn.sid)
    r = t.http("GET", "/Doctor/Blocked.json", params={"To": HANDSET, "MessagingServiceSid": theirs.sid})
    assert (r.status_code, r.json()["code"]) == (404, 20404) and other.numbers[0] not in r.text
    done = live.cli("doctor", "blocked", "--to", HANDSET, "--service", theirs.sid, "--account", t.sid, check=False)
    assert done.returncode == 2 and "20404" in done.stderr and other.numbers[0] not in done.stdout
