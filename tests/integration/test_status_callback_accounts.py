"""Status callbacks of an account closed (or whose main account was closed) while they waited,
on both stores: they end unsent, as failed deliveries on the message's timeline, since closing
ends the account's credentials and its auth token signs nothing any more. Before, they went
out signed with that token. A suspended account's callbacks still go out."""

from __future__ import annotations

import asyncio

import pytest

from pigeon.app import account_status
from pigeon.app import accounts as account_use
from pigeon.app.callback_delivery import Outcome, deliver_one
from pigeon.app.callbacks import STATUS_CALLBACK
from pigeon.domain.retry import RetryPolicy
from pigeon.store import webhooks as outbox
from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker
from tests.integration.pipeline import CALLBACK, Pipeline

FAST = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=10.0, multiplier=2.0, jitter=0)


def _set_status(pipe: Pipeline, account_sid: str, status: str) -> None:
    with pipe.db.write() as conn:
        account_status.set_status(conn, account_sid, status, now=pipe.clock.now(), with_subaccounts=False)


def _run_worker(pipe: Pipeline, sender: RecordingWebhookSender) -> None:
    worker = WebhookWorker(pipe.db, sender, pipe.clock, policy=FAST, concurrency=10)
    for _ in range(4):
        asyncio.run(worker.run_once())


def test_a_closed_accounts_waiting_callbacks_end_unsent(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch()
    _set_status(pipe, pipe.account_sid, "closed")
    pipe.receipts(advance=1)
    sender = RecordingWebhookSender()
    _run_worker(pipe, sender)
    assert sender.requests == []
    with pipe.db.read() as conn:
        rows = outbox.list_deliveries(conn, message_sid=sid)
    assert [(d["status"], d["attempts"]) for d in rows] == [("failed", 1)] * 3
    assert all("the owning account is closed" in d["last_error"] for d in rows)
    failed = pipe.events(sid, "callback_failed")
    assert [e["status"] for e in failed] == ["sending", "sent", "delivered"]
    assert all(e["error_code"] == 11200 and "closed" in e["detail"]["error"] for e in failed)
    assert pipe.events(sid, "callback") == []


def test_a_suspended_accounts_callbacks_still_go_out(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch()
    _set_status(pipe, pipe.account_sid, "suspended")
    pipe.receipts(advance=1)
    sender = RecordingWebhookSender()
    _run_worker(pipe, sender)
    assert [dict(r.params)["MessageStatus"] for r in sender.requests] == ["sending", "sent", "delivered"]
    assert [e["status"] for e in pipe.events(sid, "callback")] == ["sending", "sent", "delivered"]


@pytest.mark.parametrize("closed", ["subaccount", "main account"])
def test_a_subaccounts_callback_ends_unsent_once_it_or_its_main_account_is_closed(pipe: Pipeline, closed: str) -> None:
    with pipe.db.write() as conn:
        sub = account_use.create_account(conn, friendly_name="sub", now=pipe.clock.now(), owner_sid=pipe.account_sid)
        delivery = outbox.enqueue(
            conn,
            account_sid=sub["sid"],
            message_sid=None,
            kind=STATUS_CALLBACK,
            url=CALLBACK,
            method="POST",
            params=[("AccountSid", sub["sid"]), ("MessageStatus", "sent")],
            now=pipe.clock.now(),
        )
    _set_status(pipe, sub["sid"] if closed == "subaccount" else pipe.account_sid, "closed")
    sender = RecordingWebhookSender()
    _run_worker(pipe, sender)
    assert sender.requests == []
    with pipe.db.read() as conn:
        row = outbox.get_delivery(conn, delivery)
    assert row is not None and row["status"] == "failed" and "closed" in row["last_error"]


def test_deliver_one_sends_nothing_for_a_closed_account(pipe: Pipeline) -> None:
    """The path of usage trigger callbacks (and of status callbacks outside the worker's batch)."""
    sid = pipe.send()
    pipe.dispatch()
    _set_status(pipe, pipe.account_sid, "closed")
    with pipe.db.write() as conn:
        [row] = outbox.claim_due(conn, now=pipe.clock.now(), limit=10, lease_seconds=60)
    sender = RecordingWebhookSender()
    assert asyncio.run(deliver_one(pipe.db, sender, pipe.clock, row, policy=FAST)) is Outcome.FAILED
    assert sender.requests == []
    [failed] = pipe.events(sid, "callback_failed")
    assert failed["status"] == "sending" and "closed" in failed["detail"]["error"]
