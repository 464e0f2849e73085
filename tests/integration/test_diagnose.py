"""The doctor on both stores: every cause produced by driving the real system into that state.

Messages are created with the real accept path (prepare_message + insert_messages), sent by
the real dispatcher (DispatchRound) through the real built-in network (SimulatedNetwork
spooling receipts into the store, scripted by the recipient's last four digits), receipts are
applied by deliver_simulated_receipts, inbound texts go through the real intake (`receive`)
and the application's webhook through the real `deliver_inbound` with a RecordingWebhookSender.
The clock is frozen: time moves when a test says so.

The request log is written by the API's middleware; these tests stand in for it with
`post()`, which makes the create request through the real accept path and logs it the way
the middleware does (status, error code, the SID it created, source address, user agent,
idempotency key; never the body).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from pigeon import bootstrap
from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app.callback_delivery import deliver_one
from pigeon.app.diagnose_numbers import normalise
from pigeon.app.dispatch import DispatchSettings, claim, mark_sending
from pigeon.app.inbound import receive
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.messages import cancel
from pigeon.app.send import SendRequest, prepare_message
from pigeon.config import load_settings
from pigeon.domain.diagnosis import Finding, Report
from pigeon.domain.errors import ApiError, CarrierUnavailable
from pigeon.domain.optout import OPT_IN_KEYWORDS
from pigeon.domain.retry import STATUS_CALLBACKS
from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.signatures import compute_signature
from pigeon.ports import InboundSms, WebhookResponse
from pigeon.store import accounts as account_store
from pigeon.store import alerts as alert_store
from pigeon.store import inbound as inbound_store
from pigeon.store import numbers as number_store
from pigeon.store import optouts as optout_store
from pigeon.store import services as service_store
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.tables import request_log
from pigeon.testing import RecordingWebhookSender
from tests.integration.pipeline import OTHER_SENDER, SENDER, TO, Pipeline, ScriptedCarrier

HANDSET = "+14155552671"
APP_URL = "https://app.example.com/sms"
BASE_URL = "http://pigeon.test"
TWIML_OK = WebhookResponse(200, {"content-type": "text/xml"}, b"<Response/>", 3.0)
DAY = timedelta(hours=24)


# -- driving the system -------------------------------------------------------------------------------


def post(pipe: Pipeline, to: str, body: str = "hello", *, from_: str | None = SENDER, **logged: Any) -> str | None:
    """An application's POST Messages.json: the real accept path, logged as the middleware does.
    Returns the SID, or None when the API refused the request."""
    req = SendRequest(to=to, from_=from_, body=body, messaging_service_sid=logged.pop("service", None))
    now = pipe.clock.now()
    sid, status, code, content_hash = None, 201, None, None
    try:
        with pipe.db.write() as conn:
            new = prepare_message(conn, pipe.account_sid, req, now)
            insert_messages(conn, [new])
        sid, content_hash = str(new.message["sid"]), new.message["content_hash"]
    except ApiError as exc:
        status, code = exc.status, exc.code
    row = {
        "sid": new_sid(Prefix.REQUEST),
        "account_sid": pipe.account_sid,
        "at": now,
        "method": "POST",
        "path": f"/2010-04-01/Accounts/{pipe.account_sid}/Messages.json",
        "status": status,
        "error_code": code,
        "resource_sid": sid,
        "source_ip": "10.1.2.3",
        "user_agent": "twilio-python/9.13.0 (Linux x86_64) Python/3.11",
        "idempotency_key": None,
        "duration_ms": 4.2,
        "to": to,
        "from_": from_,
        "content_hash": content_hash,
        **logged,
    }
    with pipe.db.write() as conn:
        conn.execute(request_log.insert().values(**row))
    return sid


def text_in(pipe: Pipeline, body: str, *, to: str = SENDER, handset: str = HANDSET, **raw: str) -> str | None:
    """A handset texts one of our numbers; returns the inbound message SID (None: unroutable)."""
    sms = InboundSms(carrier="simulator", sender=handset, recipient=to, body=body, raw=raw)
    with pipe.db.write() as conn:
        return receive(conn, sms, now=pipe.clock.now(), base_url=BASE_URL).message_sid


def run_webhooks(pipe: Pipeline, sender: RecordingWebhookSender, kind: str = "inbound") -> None:
    """The webhook worker's job: claim due deliveries of `kind` and deliver them."""
    with pipe.db.write() as conn:
        rows = [
            d for d in outbox.claim_due(conn, now=pipe.clock.now(), limit=50, lease_seconds=60) if d["kind"] == kind
        ]
    for row in rows:
        if kind == "inbound":
            asyncio.run(deliver_inbound(pipe.db, sender, pipe.clock, row))
        else:
            asyncio.run(deliver_one(pipe.db, sender, pipe.clock, row, policy=STATUS_CALLBACKS))


def set_number(pipe: Pipeline, number: str, **values: Any) -> None:
    with pipe.db.write() as conn:
        row = number_store.find_by_number(conn, number)
        assert row is not None
        number_store.update_number(conn, row["sid"], now=pipe.clock.now(), **values)


def deliver(pipe: Pipeline, to: str = TO, **kw: Any) -> str:
    sid = pipe.send(to=to, **kw)
    pipe.dispatch()
    pipe.receipts(advance=1)
    return sid


# -- asking the doctor -------------------------------------------------------------------------------------


def message(pipe: Pipeline, sid: str) -> Report:
    with pipe.db.read() as conn:
        return diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now())


def recipient(pipe: Pipeline, to: str) -> Report:
    with pipe.db.read() as conn:
        return diagnose.diagnose_recipient(
            conn, pipe.account_sid, to, pipe.clock.now() - timedelta(hours=1), now=pipe.clock.now()
        )


def number(pipe: Pipeline, phone: str, sender: RecordingWebhookSender | None = None) -> Report:
    return asyncio.run(diagnose.diagnose_number(pipe.db, pipe.account_sid, phone, now=pipe.clock.now(), sender=sender))


def blocked(pipe: Pipeline, to: str, from_: str | None = None, service: str | None = None) -> Report:
    with pipe.db.read() as conn:
        return diagnose.diagnose_blocked(conn, pipe.account_sid, to, from_, service, now=pipe.clock.now())


def duplicates(pipe: Pipeline, to: str | None = None) -> Report:
    with pipe.db.read() as conn:
        return diagnose.diagnose_duplicates(conn, pipe.account_sid, to, now=pipe.clock.now())


def only(report: Report, cause: str) -> Finding:
    """The report's one finding, which must be `cause`."""
    assert report.causes() == [cause], [(f.cause, f.summary) for f in report.findings]
    return report.findings[0]


def rows(finding: Finding, source: str) -> list[dict[str, Any]]:
    return [e for e in finding.evidence if e.get("source") == source]


# -- clean traffic -----------------------------------------------------------------------------------------


def test_clean_traffic_has_no_findings_in_any_flow(pipe: Pipeline) -> None:
    sid = post(pipe, TO, "your code is 123456")
    assert sid is not None
    pipe.dispatch()
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"
    set_number(pipe, SENDER, sms_url=APP_URL)
    inbound = text_in(pipe, "thanks")
    run_webhooks(pipe, RecordingWebhookSender(default=TWIML_OK))
    assert inbound is not None

    assert message(pipe, sid).findings == []
    assert message(pipe, inbound).findings == []
    assert recipient(pipe, TO).findings == []
    assert duplicates(pipe).findings == []
    assert blocked(pipe, TO, from_=SENDER).findings == []
    report = number(pipe, SENDER, RecordingWebhookSender(default=TWIML_OK))
    assert report.findings == []
    test = next(c for c in report.checks if c["check"] == "test_request")
    assert (test["ok"], test["status"], test["twiml_valid"]) == (True, 200, True)


# -- my message wasn't delivered ----------------------------------------------------------------------------


def test_carrier_undelivered_0104_filtering_with_the_raw_receipt_and_the_code_explained(pipe: Pipeline) -> None:
    sid = deliver(pipe, to="+14155550104")
    f = only(message(pipe, sid), "carrier_undelivered")
    assert f.severity == "error"
    [code] = rows(f, "error_code")
    assert (code["error_code"], code["name"]) == (30007, "Message filtered")
    [receipt] = rows(f, "receipt")
    assert (receipt["stat"], receipt["err"]) == ("REJECTD", "004")
    assert receipt["raw"].startswith(f"id:{receipt['carrier_id']} ") and "stat:REJECTD" in receipt["raw"]
    assert [r["kind"] for r in rows(f, "timeline")] == ["created", "status", "status", "status"]
    assert any("Register the sender" in a for a in f.advice)
    assert "30007" in f.summary and sid in f.summary


@pytest.mark.parametrize(("suffix", "code"), [("0101", 30003), ("0102", 30005), ("0103", 30006)])
def test_each_undelivered_handset_code_is_explained(pipe: Pipeline, suffix: str, code: int) -> None:
    sid = deliver(pipe, to=f"+1415555{suffix}")
    f = only(message(pipe, sid), "carrier_undelivered")
    assert rows(f, "error_code")[0]["error_code"] == code


def test_carrier_failed_0105_with_the_carriers_refusal(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550105")
    pipe.dispatch()
    f = only(message(pipe, sid), "carrier_failed")
    assert rows(f, "error_code")[0]["error_code"] == 30008
    failed = next(r for r in rows(f, "timeline") if r["status"] == "failed")
    assert failed["detail"]["carrier_code"] == "ESME_RSYSERR"
    assert failed["detail"]["refused_by"][0]["carrier"] == "simulator"
    assert rows(f, "alert")[0]["error_code"] == 30008
    assert "ESME_RSYSERR" in f.summary


def test_expired_after_waiting_past_the_validity_period(pipe: Pipeline) -> None:
    sid = pipe.send(validity=5)
    pipe.clock.advance(10)
    pipe.dispatch()
    f = only(message(pipe, sid), "expired")
    expired = next(r for r in rows(f, "timeline") if r["kind"] == "expired")
    assert expired["detail"] == {"validity_period": 5, "waited_seconds": 10}
    assert rows(f, "error_code")[0]["error_code"] == 30036
    assert "waited 10 s" in f.summary and "validity period of 5 s" in f.summary


def test_stuck_in_queue_when_no_dispatcher_runs(pipe: Pipeline) -> None:
    sid = pipe.send()
    assert only(message(pipe, sid), "in_progress").severity == "info"  # just created: not late
    pipe.clock.advance(120)
    f = only(message(pipe, sid), "stuck_in_queue")
    assert f.severity == "error"
    assert rows(f, "queue")[0]["queue_ahead"] == 0
    assert "no dispatcher" in f.summary
    assert any("pigeon worker" in a for a in f.advice)


def test_stuck_in_queue_behind_the_senders_pacing_counts_the_messages_ahead(pipe: Pipeline) -> None:
    sids = pipe.send_in_order(100)
    pipe.dispatch()  # the first goes now; the others get the sender's next slots, 1 s apart
    pipe.clock.advance(70)
    f = only(message(pipe, sids[-1]), "stuck_in_queue")  # its slot is still 29 s away
    assert f.severity == "warning"
    assert rows(f, "queue")[0]["queue_ahead"] == 98
    assert "98 message(s) from +14155550100 go out before it" in f.summary
    assert only(message(pipe, sids[1]), "stuck_in_queue").severity == "error"  # due 69 s ago, not taken


def test_stuck_in_queue_when_the_dispatcher_died_mid_send(pipe: Pipeline) -> None:
    sid = pipe.send()
    with pipe.db.write() as conn:
        settings = DispatchSettings(lookahead=timedelta(0))
        mark_sending(
            conn,
            claim(conn, now=pipe.clock.now(), worker_id="dead-dispatcher", settings=settings),
            now=pipe.clock.now(),
        )
    assert only(message(pipe, sid), "in_progress").summary.endswith("by dead-dispatcher.")
    pipe.clock.advance(DispatchSettings().lease.total_seconds() + 120)
    f = only(message(pipe, sid), "stuck_in_queue")
    assert f.severity == "error"
    assert rows(f, "claim")[0]["claimed_by"] == "dead-dispatcher"
    assert "No dispatcher has reclaimed it" in f.summary


def test_carrier_retrying_while_the_carrier_throttles_then_no_finding_once_delivered(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550109")
    pipe.dispatch()
    f = only(message(pipe, sid), "carrier_retrying")
    assert [r["kind"] for r in f.evidence if r["source"] == "timeline"] == ["retry"]
    assert "ESME_RTHROTTLED" in f.summary
    for _ in range(4):
        pipe.clock.advance(5)
        pipe.dispatch()
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"
    assert message(pipe, sid).findings == []  # refused submits put nothing on the network: no resend


def test_carrier_retrying_while_no_carrier_can_be_reached_says_so(pipe: Pipeline) -> None:
    pipe.carriers = [ScriptedCarrier("c1", default=CarrierUnavailable("no bind to c1"))]
    sid = pipe.send(callback=None)
    for _ in range(3):
        pipe.dispatch()
        pipe.clock.advance(2)
    f = only(message(pipe, sid), "carrier_retrying")
    assert "could not reach the carrier 3 time(s) (c1: no bind to c1)" in f.summary
    assert "None" not in f.summary


def test_no_receipt_yet_0106_and_receipts_that_match_nothing(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550106")
    pipe.dispatch()
    pipe.receipts(advance=1)
    assert only(message(pipe, sid), "in_progress").severity == "info"
    pipe.clock.advance(11 * 60)
    f = only(message(pipe, sid), "no_receipt_yet")
    [part] = rows(f, "carrier_ref")
    assert (part["carrier"], part["receipt_stat"]) == ("simulator", None)
    assert "11 min" in f.summary and rows(f, "unmatched_receipts") == []
    # The carrier reports under an id that matches nothing we submitted (say, in upper case).
    assert pipe.receipt(part["carrier_id"].upper() + "X", "DELIVRD") is None
    f = only(message(pipe, sid), "no_receipt_yet")
    assert rows(f, "unmatched_receipts") == [
        {"source": "unmatched_receipts", "carrier": "simulator", "since_submit": 1}
    ]
    assert "matched no message" in f.advice[0]


def test_scheduled_and_canceled(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    send_at = pipe.clock.now() + timedelta(hours=1)
    req = SendRequest(
        to=TO, messaging_service_sid=service, body="later", send_at=send_at.isoformat(), schedule_type="fixed"
    )
    with pipe.db.write() as conn:
        new = prepare_message(conn, pipe.account_sid, req, pipe.clock.now())
        insert_messages(conn, [new])
    sid = str(new.message["sid"])
    f = only(message(pipe, sid), "scheduled")
    assert rows(f, "schedule")[0]["send_at"] == send_at
    with pipe.db.write() as conn:
        cancel(conn, pipe.account_sid, sid, "/", pipe.clock.now())
    f = only(message(pipe, sid), "canceled")
    assert [r["kind"] for r in rows(f, "timeline")] == ["created", "canceled"]


def test_status_callback_failing(pipe: Pipeline) -> None:
    sid = deliver(pipe)
    run_webhooks(pipe, RecordingWebhookSender(default=404), kind="status_callback")
    f = only(message(pipe, sid), "status_callback_failing")
    assert rows(f, "timeline")[0]["kind"] == "callback_failed"
    assert rows(f, "alert")[0]["response_status"] == 404


def test_unknown_message(pipe: Pipeline) -> None:
    f = only(message(pipe, "SM" + "0" * 32), "message_not_found")
    assert f.severity == "error"


# -- by recipient: never requested, refused by the API ---------------------------------------------------------


def test_never_requested_when_no_request_reached_pigeon(pipe: Pipeline) -> None:
    f = only(recipient(pipe, "+14155550177"), "never_requested")
    assert rows(f, "request_log")[0]["requests_in_window"] == 0
    assert "never called the API" in f.summary


def test_never_requested_when_the_application_texted_other_numbers(pipe: Pipeline) -> None:
    post(pipe, TO)
    with pipe.db.write() as conn:  # reading the log is not asking to send
        conn.execute(
            request_log.insert().values(
                sid=new_sid(Prefix.REQUEST),
                account_sid=pipe.account_sid,
                at=pipe.clock.now(),
                method="GET",
                path=f"/2010-04-01/Accounts/{pipe.account_sid}/Messages.json",
                status=200,
                duration_ms=2.0,
            )
        )
    f = only(recipient(pipe, "+14155550177"), "never_requested")
    assert rows(f, "request_log")[0]["requests_in_window"] == 1
    assert "never asked to text this number" in f.summary


def test_a_message_made_before_the_window_that_failed_inside_it_is_found(pipe: Pipeline) -> None:
    """Scheduled three days ahead, sent and refused by the handset today: the recipient flow
    looks at what changed in the window, not only at what was created in it."""
    service = pipe.add_service(SENDER)
    sid = pipe.send(to="+14155550101", from_=None, service=service, send_at=pipe.clock.now() + timedelta(days=3))
    pipe.clock.advance(3 * 86400 + 1)
    pipe.dispatch()
    pipe.receipts(advance=1)
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30003)
    pipe.clock.advance(600)
    report = recipient(pipe, "+14155550101")
    assert report.subject["messages"] == [sid]
    assert only(report, "carrier_undelivered").severity == "error"


def test_a_message_waiting_since_before_the_window_is_found(pipe: Pipeline) -> None:
    """Scheduled three days ahead and never queued: unchanged since it was made, but not final."""
    service = pipe.add_service(SENDER)
    sid = pipe.send(from_=None, service=service, send_at=pipe.clock.now() + timedelta(days=3))
    pipe.clock.advance(3 * 86400 + 600)
    report = recipient(pipe, TO)
    assert report.subject["messages"] == [sid]
    assert only(report, "stuck_in_queue").severity == "error"


def test_a_send_whose_plus_was_lost_in_the_form_is_found_by_its_e164_number(db: Database, database_url: str) -> None:
    """curl -d "To=+14155552699": the unencoded '+' reads as a space, the API refuses the send
    (21211) and logs the To as it could read it. Asked about +14155552699, the doctor finds it."""
    now = datetime.now(UTC)
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="Curl", now=now)
        number_use.provision(conn, account_sid=account["sid"], phone_number=SENDER, now=now)
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), db)

    async def send() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            auth = (account["sid"], account["auth_token"])
            async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
                return await client.post(
                    f"/2010-04-01/Accounts/{account['sid']}/Messages.json",
                    content="To=+14155552699&From=%2B14155550100&Body=hello",
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )

    assert asyncio.run(send()).json()["code"] == 21211
    for asked in ("+14155552699", " 14155552699", "14155552699"):
        with db.read() as conn:
            report = diagnose.diagnose_recipient(conn, account["sid"], asked, now=datetime.now(UTC))
        f = only(report, "rejected_by_api")
        assert [r["error_code"] for r in rows(f, "request_log")] == [21211], asked
        assert report.subject["to"] == "+14155552699"


def test_a_national_number_is_read_in_the_accounts_country_not_as_another_countrys(pipe: Pipeline) -> None:
    """ "2025550123" is a US number without its country code, not Egypt's +20 25550123: the
    doctor reads it in the country of the account's numbers (US), and says so."""
    assert normalise("2025550123") == "2025550123"  # no country to read it in
    report = recipient(pipe, "2025550123")
    assert (report.subject["to"], report.subject["read_in"]) == ("+12025550123", "US")
    only(report, "never_requested")
    assert post(pipe, "2025550123") is None  # the application sent it so: refused, logged as written
    f = only(recipient(pipe, "2025550123"), "rejected_by_api")
    assert [r["error_code"] for r in rows(f, "request_log")] == [21211]
    report = blocked(pipe, "2025550123", from_=SENDER)
    assert report.subject["to"] == "+12025550123"
    assert report.checks[0]["ok"] is True


def test_rejected_by_api_with_each_code_explained(pipe: Pipeline) -> None:
    assert post(pipe, TO, from_="+14155550999") is None  # not a number of the account: 21606
    assert post(pipe, TO, body="") is None  # no body: 21602
    f = only(recipient(pipe, TO), "rejected_by_api")
    assert f.severity == "error"
    assert sorted(r["error_code"] for r in rows(f, "error_code")) == [21602, 21606]
    assert {r["error_code"] for r in rows(f, "request_log")} == {21602, 21606}
    assert all(r["resource_sid"] is None and r["source_ip"] == "10.1.2.3" for r in rows(f, "request_log"))
    assert "21606" in f.summary and "No message was created" in f.summary


def test_sends_refused_before_their_credentials_were_accepted_are_found_by_the_account_they_name(
    pipe: Pipeline,
) -> None:
    """A send refused with 20503 (the store out of reach) or 20003 (wrong credentials) has no
    account: it is found by the account its URL names, and only by that one."""
    other = "AC" + "9" * 32
    post(pipe, TO, body="")  # the account's own refusal: 21602
    # (An empty body: nothing is created, whatever the log says; only the log matters here.)
    post(pipe, TO, "", account_sid=None, claimed_account_sid=pipe.account_sid, status=503, error_code=20503)
    post(pipe, TO, "", account_sid=None, claimed_account_sid=pipe.account_sid, status=401, error_code=20003)
    post(pipe, TO, "", account_sid=None, claimed_account_sid=other, status=401, error_code=20003)
    post(pipe, TO, "", account_sid=other, status=400, error_code=21211)  # another account's own
    f = only(recipient(pipe, TO), "rejected_by_api")
    logged = rows(f, "request_log")
    assert sorted(r["error_code"] for r in logged) == [20003, 20503, 21602]
    assert sorted(r["credentials_accepted"] for r in logged) == [False, False, True]
    assert "2 of them name this account in their URL" in f.summary
    with pipe.db.read() as conn:
        theirs = diagnose.diagnose_recipient(
            conn, other, TO, pipe.clock.now() - timedelta(hours=1), now=pipe.clock.now()
        )
    assert sorted(r["error_code"] for r in rows(only(theirs, "rejected_by_api"), "request_log")) == [20003, 21211]


def test_a_record_found_by_recipient_shows_its_diagnosis(pipe: Pipeline) -> None:
    sid = deliver(pipe, to="+14155550103")
    # any spelling of the number, also one whose "+" a URL's query decoding turned into a space
    for spelling in ("+1 (415) 555-0103", " 14155550103"):
        report = recipient(pipe, spelling)
        assert (report.subject["to"], report.subject["messages"]) == ("+14155550103", [sid])
        assert only(report, "carrier_undelivered").evidence[0]["sid"] == sid


# -- blocked -------------------------------------------------------------------------------------------------


def test_opted_out_pair_with_keyword_time_inbound_message_and_how_to_opt_in(pipe: Pipeline) -> None:
    stop = text_in(pipe, "stop")
    pipe.dispatch()  # the automatic reply ("You are unsubscribed...") goes out
    pipe.receipts(advance=1)
    pipe.clock.advance(59)
    assert post(pipe, HANDSET) is None  # 21610
    f = only(blocked(pipe, HANDSET, from_=SENDER), "opted_out")
    [opt] = rows(f, "opt_out")
    assert (opt["keyword"], opt["scope"], opt["sender"], opt["inbound_message_sid"]) == ("STOP", "number", SENDER, stop)
    assert (opt["inbound_body"], opt["at"]) == ("stop", pipe.clock.now() - timedelta(seconds=60))
    assert set(opt["opt_in_keywords"]) == {"START", "YES", "UNSTOP"} <= OPT_IN_KEYWORDS
    assert rows(f, "request_log")[0]["error_code"] == 21610
    assert any("START, YES or UNSTOP" in a for a in f.advice)
    # the same, asked as "my message wasn't delivered":
    report = recipient(pipe, HANDSET)
    assert report.causes() == ["rejected_by_api", "opted_out"]
    # another sender of the account is not blocked
    assert blocked(pipe, HANDSET, from_=OTHER_SENDER).findings == []


def test_opted_out_of_a_whole_messaging_service(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    text_in(pipe, "UNSUBSCRIBE", to=OTHER_SENDER)
    for report in (blocked(pipe, HANDSET, service=service), blocked(pipe, HANDSET, from_=SENDER)):
        f = only(report, "opted_out")
        assert (rows(f, "opt_out")[0]["scope"], rows(f, "opt_out")[0]["sender"]) == ("service", service)
        assert any("every sender in the Messaging Service" in a for a in f.advice)
    text_in(pipe, "START", to=SENDER)
    assert blocked(pipe, HANDSET, service=service).findings == []


def test_another_accounts_messaging_service_is_not_found(pipe: Pipeline) -> None:
    # Its sender pool was echoed in the report's checks.
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        other = account_use.create_account(conn, friendly_name="other", now=now)["sid"]
        theirs = number_use.provision(conn, account_sid=other, phone_number="+14155550199", now=now)
        service = service_store.create_service(conn, account_sid=other, now=now, friendly_name="theirs")["sid"]
        service_store.attach_number(conn, theirs["sid"], service, now=now)
    for sid in (service, "MG" + "0" * 32, "not a sid"):
        with pytest.raises(ApiError) as refused:
            blocked(pipe, HANDSET, service=sid)
        assert (refused.value.code, refused.value.status) == (20404, 404)


# -- duplicates ---------------------------------------------------------------------------------------------


def test_app_sent_multiple_requests_with_each_request_from_the_log(pipe: Pipeline) -> None:
    first = post(pipe, TO, "your code is 123456", idempotency_key="a-1")
    pipe.clock.advance(2)
    second = post(pipe, TO, "your code is 123456", source_ip="10.9.9.9", idempotency_key="a-2")
    post(pipe, TO, "another text")  # same pair, other content: not a duplicate
    f = only(duplicates(pipe), "app_sent_multiple_requests")
    assert [r["sid"] for r in rows(f, "message")] == [first, second]
    requests = rows(f, "request_log")
    assert [(r["resource_sid"], r["source_ip"], r["idempotency_key"]) for r in requests] == [
        (first, "10.1.2.3", "a-1"),
        (second, "10.9.9.9", "a-2"),
    ]
    assert requests[0]["user_agent"].startswith("twilio-python/")
    assert requests[1]["at"] - requests[0]["at"] == timedelta(seconds=2)
    assert any("different addresses" in a for a in f.advice)
    assert duplicates(pipe, to=OTHER_SENDER).findings == []


def test_a_duplicate_at_the_end_of_a_busy_window_is_found_and_a_cut_scan_is_no_clean_result(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A heartbeat every two minutes shares its text with the one before: more of them than the
    scan reads. The scan reads the newest first, and says when it stopped short of the window."""
    monkeypatch.setattr(diagnose, "DUPLICATE_SCAN", 10)
    for _ in range(12):
        pipe.send(to="+14155552600", body="heartbeat OK", callback=None)
        pipe.clock.advance(120)
    first = post(pipe, "+14155552601", "Your order shipped")
    pipe.clock.advance(1)
    second = post(pipe, "+14155552601", "Your order shipped")
    report = duplicates(pipe)
    f = only(report, "app_sent_multiple_requests")
    assert [r["sid"] for r in rows(f, "message")] == [first, second]
    assert (report.checks[0]["ok"], report.checks[0]["complete"]) == (False, False)
    # The heartbeats alone: no duplicate among the newest, but the older ones were not read.
    [check] = duplicates(pipe, to="+14155552600").checks
    assert (check["ok"], check["complete"], check["messages_examined"]) == (None, False, 10)
    assert check["examined_since"] == pipe.clock.now() - timedelta(seconds=120 * 10 + 1)
    # Within what it can read, the scan is complete, and a clean result is one.
    [check] = duplicates(pipe, to="+14155552602").checks
    assert (check["ok"], check["complete"], check["examined_since"]) == (True, True, pipe.clock.now() - DAY)


def test_pictures_without_text_are_duplicates_only_when_the_pictures_are_the_same(pipe: Pipeline) -> None:
    pipe.send(to="+14155552602", body="", media=["https://x.example.com/a.jpg"], callback=None)
    pipe.clock.advance(2)
    pipe.send(to="+14155552602", body="", media=["https://x.example.com/b.jpg"], callback=None)
    assert duplicates(pipe).findings == []
    pipe.clock.advance(2)
    again = pipe.send(to="+14155552602", body="", media=["https://x.example.com/b.jpg"], callback=None)
    f = only(duplicates(pipe), "app_sent_multiple_requests")
    assert rows(f, "message")[-1]["sid"] == again and len(rows(f, "message")) == 2


def test_texts_further_apart_than_the_window_are_not_duplicates(pipe: Pipeline) -> None:
    post(pipe, TO, "weekly digest")
    pipe.clock.advance(30)
    post(pipe, TO, "weekly digest")
    assert duplicates(pipe).findings == []


def test_carrier_duplicate_0108_one_submit_two_delivered_receipts(pipe: Pipeline) -> None:
    sid = deliver(pipe, to="+14155550108")
    for report in (duplicates(pipe), message(pipe, sid)):
        f = only(report, "carrier_duplicate")
        receipts = rows(f, "receipt")
        assert [(r["stat"], r["duplicate"]) for r in receipts] == [("DELIVRD", False), ("DELIVRD", True)]
        assert len({r["carrier_id"] for r in receipts}) == 1
        assert len(rows(f, "carrier_ref")) == 1


def test_pigeon_resent_after_a_dispatcher_was_killed_mid_send(pipe: Pipeline) -> None:
    sid = pipe.send()
    with pipe.db.write() as conn:  # a dispatcher marks it sending ... and dies before its answer is recorded
        settings = DispatchSettings(lookahead=timedelta(0))
        mark_sending(
            conn,
            claim(conn, now=pipe.clock.now(), worker_id="dead-dispatcher", settings=settings),
            now=pipe.clock.now(),
        )
    pipe.clock.advance(DispatchSettings().lease.total_seconds() + 1)
    assert pipe.dispatch("rescuer") == 1  # reclaimed after the lease and resent
    pipe.receipts(advance=1)
    assert pipe.status(sid) == "delivered"
    for report in (duplicates(pipe), message(pipe, sid)):
        f = only(report, "pigeon_resent")
        kinds = [(r["kind"], r["status"]) for r in rows(f, "timeline")]
        assert kinds == [("status", "sending"), ("resend", "sending"), ("status", "sent"), ("status", "delivered")]
        resend = next(r for r in rows(f, "timeline") if r["kind"] == "resend")
        assert "may or may not have reached the carrier" in resend["detail"]["reason"]
        assert "2 times" in f.summary and "may or may not have reached the carrier" in f.summary


# -- my number receives nothing -----------------------------------------------------------------------------


def test_number_not_on_account(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        other = account_store.create_account(conn, friendly_name="other tenant", now=pipe.clock.now())
        number_use.provision(conn, account_sid=other["sid"], phone_number="+14155550188", now=pipe.clock.now())
    for phone in ("+14155550187", "+14155550188"):  # nobody's, and another tenant's: the same answer
        f = only(number(pipe, phone), "number_not_on_account")
        assert f.evidence == [{"source": "phone_number", "phone_number": phone, "on_account": False}]


def test_number_not_sms_capable_and_the_texts_it_dropped(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        number_use.provision(
            conn, account_sid=pipe.account_sid, phone_number="+14155550155", now=pipe.clock.now(), sms=False
        )
    assert text_in(pipe, "hello?", to="+14155550155") is None
    report = number(pipe, "+14155550155")
    assert report.causes() == ["number_not_sms_capable", "no_webhook", "unroutable_inbound"]
    f = report.findings[0]
    assert rows(f, "phone_number")[0]["sms_capable"] is False
    [dropped] = rows(report.findings[2], "unroutable_inbound")
    assert (dropped["from"], dropped["reason"]) == (HANDSET, "+14155550155 is not SMS-capable")


def test_texts_to_a_number_before_the_account_bought_it_are_not_its_to_see(pipe: Pipeline) -> None:
    """Another account held the number and released it; a stranger texted it while nobody held
    it (kept as unroutable); then this account bought it. Its doctor shows only what reached
    the number since: the stranger's number and text are nobody's business here."""
    phone, stranger = "+14155550166", "+14155550777"
    with pipe.db.write() as conn:
        other = account_store.create_account(conn, friendly_name="former holder", now=pipe.clock.now())
        held = number_use.provision(conn, account_sid=other["sid"], phone_number=phone, now=pipe.clock.now())
        number_use.release(conn, other["sid"], held["sid"], "/", pipe.clock.now())
    pipe.clock.advance(60)
    assert text_in(pipe, "private text to the old number", to=phone, handset=stranger) is None
    pipe.clock.advance(60)
    with pipe.db.write() as conn:
        number_use.provision(
            conn, account_sid=pipe.account_sid, phone_number=phone, now=pipe.clock.now(), settings={"sms_url": APP_URL}
        )
    report = number(pipe, phone)
    assert "unroutable_inbound" not in report.causes()
    assert stranger not in str(report.findings)
    # What reaches it once it is this account's and cannot take it is shown, and said to be so.
    set_number(pipe, phone, sms_capable=False)
    pipe.clock.advance(60)
    assert text_in(pipe, "hello?", to=phone) is None
    [f] = [f for f in number(pipe, phone).findings if f.cause == "unroutable_inbound"]
    assert [r["from"] for r in rows(f, "unroutable_inbound")] == [HANDSET]
    assert "1 text(s) to +14155550166 since you have had this number" in f.summary


def test_no_webhook_on_the_number(pipe: Pipeline) -> None:
    sid = text_in(pipe, "is anyone there")
    sender = RecordingWebhookSender()
    f = only(number(pipe, SENDER, sender), "no_webhook")
    assert sender.requests == []  # nothing to test
    assert rows(f, "phone_number")[0]["sms_url"] is None
    assert rows(f, "alert")[0]["resource_sid"] == sid
    assert "no SmsUrl" in f.summary
    assert only(message(pipe, str(sid)), "no_webhook").severity == "error"


def test_no_webhook_because_the_services_inbound_settings_take_precedence(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    service = pipe.add_service(SENDER)
    f = only(number(pipe, SENDER, RecordingWebhookSender()), "no_webhook")
    assert rows(f, "messaging_service")[0] == {
        "source": "messaging_service",
        "sid": service,
        "inbound_request_url": None,
        "fallback_url": None,
        "use_inbound_webhook_on_number": False,
    }
    assert f"SmsUrl {APP_URL} is not used" in f.summary
    with pipe.db.write() as conn:
        service_store.update_service(conn, service, now=pipe.clock.now(), use_inbound_webhook_on_number=True)
    assert number(pipe, SENDER, RecordingWebhookSender(default=TWIML_OK)).findings == []


def test_webhook_failing_with_a_signed_marked_test_request_and_the_failed_texts(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    text_in(pipe, "hello")
    run_webhooks(pipe, RecordingWebhookSender(default=500))  # the real webhook fails: 11200
    sender = RecordingWebhookSender(default=500)
    f = only(number(pipe, SENDER, sender), "webhook_failing")
    assert f.severity == "error"
    [test] = rows(f, "test_request")
    assert (test["url"], test["status"], test["error_code"]) == (APP_URL, 500, 11200)
    [alert] = rows(f, "alert")
    assert (alert["error_code"], alert["request_url"], alert["response_status"]) == (11200, APP_URL, 500)
    assert "1 incoming text(s)" in f.summary and "HTTP 500" in f.summary
    # The test request is signed like real traffic and marked as a test.
    [request] = sender.requests
    params = dict(request.params)
    assert (params["Body"], params["PigeonDoctorTest"], params["To"]) == ("Pigeon doctor test", "true", SENDER)
    assert request.headers["X-Twilio-Signature"] == compute_signature(APP_URL, request.params, pipe.auth_token)
    # Fixed: the webhook answers now, and the past failures remain a warning.
    f = only(number(pipe, SENDER, RecordingWebhookSender(default=TWIML_OK)), "webhook_failing")
    assert f.severity == "warning" and "answers the test request now" in f.summary


def test_a_webhook_moved_to_a_url_that_answers_bad_twiml_is_not_said_to_answer(pipe: Pipeline) -> None:
    """The reviewer's doctor_bad_twiml.txt: a text failed at /err (HTTP 500), the number was
    then pointed at /bad, which answers malformed XML. webhook_failing ended "It answers the
    test request now." beside invalid_twiml's ERROR for the same test request, with the /err
    alert as its only evidence."""
    earlier = "https://app.example.com/err"
    set_number(pipe, SENDER, sms_url=earlier)
    text_in(pipe, "hello")
    run_webhooks(pipe, RecordingWebhookSender(default=500))
    set_number(pipe, SENDER, sms_url=APP_URL)
    bad_xml = WebhookResponse(200, {"content-type": "text/xml"}, b"<Response><Message>oops", 2.0)
    report = number(pipe, SENDER, RecordingWebhookSender(default=bad_xml))
    assert report.causes() == ["webhook_failing", "invalid_twiml"]
    failing, invalid = report.findings
    assert "answers the test request now" not in failing.summary
    assert failing.summary.endswith("The test request gets an answer now, but not usable TwiML (see invalid_twiml).")
    assert f"all at an earlier webhook URL, {earlier}, not the one it has now ({APP_URL})" in failing.summary
    [alert] = rows(failing, "alert")
    assert (alert["request_url"], alert["earlier_url"]) == (earlier, True)
    assert invalid.severity == "error" and rows(invalid, "test_request")[0]["error_code"] == 12100


def test_texts_the_fallback_url_took_are_a_warning_not_lost_texts(pipe: Pipeline) -> None:
    fallback = "https://backup.example.com/sms"
    set_number(pipe, SENDER, sms_url=APP_URL, sms_fallback_url=fallback)
    for i in range(3):
        text_in(pipe, f"hello {i}")
    script = RecordingWebhookSender(lambda req: 500 if req.url.startswith(APP_URL) else TWIML_OK)
    run_webhooks(pipe, script)
    for sender in (None, script):  # from the history alone, and with the test request
        f = only(number(pipe, SENDER, sender), "webhook_failing")
        assert f.severity == "warning", f.summary
        assert "the fallback URL took all 3" in f.summary and "not taken" not in f.summary
        assert len(rows(f, "alert")) == 3
    assert f"the fallback URL {fallback} answered it" in f.summary


def test_the_test_request_carries_the_parameters_of_a_real_text(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    text_in(pipe, "hello")
    real = RecordingWebhookSender(default=TWIML_OK)
    run_webhooks(pipe, real)
    probe = RecordingWebhookSender(default=TWIML_OK)
    number(pipe, SENDER, probe)
    [sent], [tested] = real.requests, probe.requests
    assert [k for k, _ in tested.params] == [*(k for k, _ in sent.params), "PigeonDoctorTest"]
    same = {"To", "ToCountry", "ToState", "ToCity", "ToZip", "FromState", "FromCity", "FromZip", "AccountSid"}
    assert {k: v for k, v in tested.params if k in same} == {k: v for k, v in sent.params if k in same}


def test_webhook_failing_when_nothing_listens(pipe: Pipeline) -> None:
    from pigeon.domain.errors import WebhookError

    set_number(pipe, SENDER, sms_url=APP_URL)
    down = WebhookError(11205, "could not connect (ConnectError)", retryable=True)
    f = only(number(pipe, SENDER, RecordingWebhookSender(default=down)), "webhook_failing")
    assert rows(f, "test_request")[0]["status"] is None and "no answer" in f.summary


def test_invalid_twiml(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    json_answer = WebhookResponse(200, {"content-type": "application/json"}, b'{"ok": true}', 2.0)
    text_in(pipe, "hello")
    run_webhooks(pipe, RecordingWebhookSender(default=json_answer))
    f = only(number(pipe, SENDER, RecordingWebhookSender(default=json_answer)), "invalid_twiml")
    [test] = rows(f, "test_request")
    assert (test["status"], test["error_code"], test["twiml_valid"]) == (200, 12300, False)
    assert rows(f, "alert")[0]["error_code"] == 12300
    bad_xml = WebhookResponse(200, {"content-type": "text/xml"}, b"<Response><Message>", 2.0)
    f = only(number(pipe, SENDER, RecordingWebhookSender(default=bad_xml)), "invalid_twiml")
    assert rows(f, "test_request")[0]["error_code"] == 12100


def test_unroutable_inbound_from_a_short_code(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    assert text_in(pipe, "promo", handset="22395") is None  # short-code inbound is off for the account
    f = only(number(pipe, SENDER, RecordingWebhookSender(default=TWIML_OK)), "unroutable_inbound")
    [row] = rows(f, "unroutable_inbound")
    assert row["from"] == "22395" and "option is off" in row["reason"]
    assert any("short-code inbound" in a for a in f.advice)


def test_a_closed_accounts_numbers_take_nothing_and_call_no_webhook(pipe: Pipeline) -> None:
    """A closed account is gone for good: a text to its number is kept aside with the reason,
    stored nowhere in the account, sent to no webhook, and raises no alert; the number's
    doctor says why. Likewise for a subaccount whose main account is closed."""
    set_number(pipe, SENDER, sms_url=APP_URL)
    with pipe.db.write() as conn:
        main = account_use.create_account(conn, friendly_name="Main", now=pipe.clock.now())
        sub = account_use.create_subaccount(conn, main["sid"], friendly_name="Sub", now=pipe.clock.now())
        number_use.provision(conn, account_sid=sub["sid"], phone_number="+14155550177", now=pipe.clock.now())
        account_store.update_account(conn, pipe.account_sid, now=pipe.clock.now(), status="closed")
    set_number(pipe, "+14155550177", sms_url=APP_URL)
    with pipe.db.write() as conn:
        account_store.update_account(conn, main["sid"], now=pipe.clock.now(), status="closed")
    assert text_in(pipe, "STOP") is None
    assert text_in(pipe, "hello", to="+14155550177") is None
    with pipe.db.write() as conn:
        assert outbox.claim_due(conn, now=pipe.clock.now(), limit=50, lease_seconds=60) == []
        assert alert_store.list_alerts(conn, account_sid=pipe.account_sid) == []
        assert optout_store.list_opt_outs(conn, account_sid=pipe.account_sid) == []
    f = only(number(pipe, SENDER), "unroutable_inbound")
    [row] = rows(f, "unroutable_inbound")
    assert row["reason"] == f"its account {pipe.account_sid} is closed"
    with pipe.db.read() as conn:
        kept = inbound_store.list_unroutable(conn, to="+14155550177")
    assert [r["reason"] for r in kept] == [f"the main account {main['sid']} of its account {sub['sid']} is closed"]


def test_short_code_country_rules(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        number_use.provision(
            conn, account_sid=pipe.account_sid, phone_number="72345", now=pipe.clock.now(), iso_country="US"
        )
    set_number(pipe, "72345", sms_url=APP_URL)
    assert text_in(pipe, "hi", to="72345", handset="+447700900123") is None  # a UK handset
    report = number(pipe, "72345", RecordingWebhookSender(default=TWIML_OK))
    assert report.causes() == ["unroutable_inbound", "short_code_country"]
    assert "only receives from numbers in US" in rows(report.findings[0], "unroutable_inbound")[0]["reason"]
    assert report.findings[1].severity == "info" and "roaming abroad" in report.findings[1].summary
