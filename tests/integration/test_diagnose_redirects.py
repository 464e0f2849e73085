"""The doctor shows the HTTP redirects an application answered its webhook with: each hop's
status, the Location followed and its time, beside the request it led to. On both stores:
the doctor's test request (number flow), a real text's webhook (message flow), the attempts
the console lists, and a redirect that cannot be followed (11216), which the number flow's
history did not count."""

from __future__ import annotations

from pigeon.ports import WebhookRequest, WebhookResponse
from pigeon.store import webhooks as outbox
from pigeon.testing import RecordingWebhookSender
from tests.integration.pipeline import SENDER, Pipeline
from tests.integration.test_diagnose import (
    APP_URL,
    TWIML_OK,
    message,
    number,
    only,
    rows,
    run_webhooks,
    set_number,
    text_in,
)

MOVED = APP_URL + "/"  # a trailing-slash redirect, as web frameworks answer one


def redirecting(status: int = 301, location: str = MOVED) -> RecordingWebhookSender:
    """APP_URL answers `status` to `location`; any other URL answers TwiML."""

    def answer(request: WebhookRequest) -> WebhookResponse:
        if request.url == APP_URL:
            return WebhookResponse(status, {"location": location}, b"", 4.0)
        return TWIML_OK

    return RecordingWebhookSender(answer)


def test_the_test_request_shows_the_redirect_it_followed(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    report = number(pipe, SENDER, redirecting(308))
    f = only(report, "webhook_redirected")
    assert f.severity == "info"
    [hop] = rows(f, "redirect")
    assert hop == {
        "source": "redirect",
        "of": "test_request",
        "url": APP_URL,
        "method": "POST",
        "status": 308,
        "location": MOVED,
        "elapsed_ms": 4.0,
    }
    assert f"{APP_URL} → {MOVED}" in f.summary and MOVED in f.advice[0]
    test = next(c for c in report.checks if c["check"] == "test_request")
    assert (test["ok"], test["status"], test["redirects"]) == (True, 200, 1)


def test_a_303_says_the_text_s_parameters_do_not_follow(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    f = only(number(pipe, SENDER, redirecting(303)), "webhook_redirected")
    assert any("303" in a and "GET" in a for a in f.advice)


def test_a_redirect_that_cannot_be_followed_shows_its_location_and_its_alerts_count(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    text_in(pipe, "hello")
    run_webhooks(pipe, redirecting(302, "ftp://files.example.com/sms"))  # a real text: 11216
    f = only(number(pipe, SENDER, redirecting(302, "ftp://files.example.com/sms")), "webhook_failing")
    [test] = rows(f, "test_request")
    assert (test["status"], test["error_code"], test["location"]) == (302, 11216, "ftp://files.example.com/sms")
    [alert] = rows(f, "alert")  # the text's 11216 is part of the webhook's history
    assert alert["error_code"] == 11216
    assert "1 incoming text(s)" in f.summary


def test_a_texts_webhook_answered_after_redirects_shows_each_hop(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    sid = text_in(pipe, "hello")
    assert sid is not None
    run_webhooks(pipe, redirecting(301))
    f = only(message(pipe, sid), "webhook_redirected")
    [hop] = rows(f, "redirect")
    assert (hop["message_sid"], hop["url"], hop["status"], hop["location"], hop["elapsed_ms"]) == (
        sid,
        APP_URL,
        301,
        MOVED,
        4.0,
    )
    # The attempts the console lists keep where each redirect went.
    with pipe.db.read() as conn:
        attempts = outbox.list_attempts(conn, message_sid=sid)
    assert [(a["url"], a["status_code"], a["location"]) for a in attempts] == [
        (APP_URL, 301, MOVED),
        (MOVED, 200, None),
    ]


def test_a_redirect_loop_shows_every_hop_beside_the_failure(pipe: Pipeline) -> None:
    set_number(pipe, SENDER, sms_url=APP_URL)
    sid = text_in(pipe, "hello")
    assert sid is not None

    def loop(request: WebhookRequest) -> WebhookResponse:
        nxt = APP_URL + "/b" if request.url == APP_URL else APP_URL
        return WebhookResponse(302, {"location": nxt}, b"", 2.0)

    run_webhooks(pipe, RecordingWebhookSender(loop))
    f = only(message(pipe, sid), "webhook_failing")
    hops = rows(f, "redirect")
    assert len(hops) == 6  # five followed, and the sixth answer, whose Location was not (11215)
    assert [h["location"] for h in hops[:2]] == [APP_URL + "/b", APP_URL]
    assert (hops[-1]["error_code"], hops[-1]["location"]) == (11215, APP_URL)
