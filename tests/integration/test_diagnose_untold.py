"""`pigeon doctor number`: texts the number received while it had no webhook, on both stores.

Intake gives each such text a `no_webhook` timeline entry and an 11200 alert; the doctor
counted only the alerts, and only while the number still had no webhook. Once a webhook was
set the texts it had missed were not mentioned, and once the error log was pruned (sooner than
timelines) they were not counted."""

from __future__ import annotations

from pigeon.store.tables import alerts
from pigeon.testing import RecordingWebhookSender
from tests.integration.pipeline import SENDER, Pipeline
from tests.integration.test_diagnose import (
    APP_URL,
    HANDSET,
    TWIML_OK,
    number,
    only,
    rows,
    run_webhooks,
    set_number,
    text_in,
)


def test_texts_missed_before_the_webhook_was_set_are_counted_once_it_is(pipe: Pipeline) -> None:
    first = text_in(pipe, "anyone?")
    pipe.clock.advance(600)
    latest = text_in(pipe, "hello??", handset="+14155552672")
    pipe.clock.advance(60)
    set_number(pipe, SENDER, sms_url=APP_URL)
    told = text_in(pipe, "now you hear me")  # after the webhook was set: told, not counted
    run_webhooks(pipe, RecordingWebhookSender(default=TWIML_OK))
    assert told is not None

    report = number(pipe, SENDER, RecordingWebhookSender(default=TWIML_OK))
    f = only(report, "received_without_webhook")
    assert f.severity == "warning"
    assert "2 text(s) since" in f.summary
    assert f"the latest at {pipe.clock.now().strftime('%Y-%m-%d')}" in f.summary
    assert f"({latest} from +14155552672)" in f.summary
    assert [r["sid"] for r in rows(f, "message")] == [latest, first]
    inbound = next(c for c in report.checks if c["check"] == "inbound_received")
    assert (inbound["count"], inbound["no_application_told"]) == (3, 2)


def test_no_webhook_counts_the_texts_from_their_timeline_once_the_alerts_are_gone(pipe: Pipeline) -> None:
    sid = text_in(pipe, "is anyone there")
    with pipe.db.write() as conn:
        conn.execute(alerts.delete())  # the error log is pruned sooner than timelines
    f = only(number(pipe, SENDER), "no_webhook")
    assert "1 text(s) since" in f.summary and f"({sid} from {HANDSET})" in f.summary
    assert [r["sid"] for r in rows(f, "message")] == [sid]
