"""The pipeline's backlog on both stores (GET /metrics reads it): messages and webhook
deliveries waiting, and since when the most overdue of them has been due."""

from __future__ import annotations

from datetime import timedelta

from pigeon.app.backlog import read_backlog
from pigeon.domain.status import MessageStatus
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock, RecordingWebhookSender
from tests.integration import test_webhook_outbox
from tests.integration.test_webhook_outbox import Account, move, new_message, run_once, worker

account = test_webhook_outbox.account  # the fixture: an account with a number
S = MessageStatus


def test_an_empty_pipeline_has_no_backlog(db: Database, clock: FrozenClock) -> None:
    b = read_backlog(db, clock)
    assert b.messages == {"accepted": 0, "queued": 0, "sending": 0}
    assert b.deliveries == {"pending": 0, "waiting": 0}
    assert (b.message_lag, b.delivery_lag) == (0.0, 0.0)


def test_waiting_messages_and_deliveries_and_how_late_they_are(
    db: Database, clock: FrozenClock, account: Account
) -> None:
    first = new_message(db, clock, account)  # queued, due now
    clock.advance(5)
    new_message(db, clock, account)
    new_message(db, clock, account, next_attempt_at=clock.now() + timedelta(minutes=5))  # paced: not due yet
    move(db, clock, first, S.SENDING, S.SENT)  # two callbacks: sending pending, sent waiting behind it
    clock.advance(3)
    b = read_backlog(db, clock)
    assert b.messages == {"accepted": 0, "queued": 2, "sending": 0}
    assert b.message_lag == 3.0  # the second message: due 3 s ago; the paced one is not due yet
    assert b.deliveries == {"pending": 1, "waiting": 1}
    assert b.delivery_lag == 3.0

    run_once(worker(db, RecordingWebhookSender(), clock))  # both callbacks go
    run_once(worker(db, RecordingWebhookSender(), clock))
    b = read_backlog(db, clock)
    assert b.deliveries == {"pending": 0, "waiting": 0} and b.delivery_lag == 0.0
