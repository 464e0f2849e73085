"""Sending through a Messaging Service whose pool has several numbers, on both stores: new
recipients spread over the numbers, each keeps its number, and a number whose queue is full
(ten hours of its traffic) is passed over for another that is as good, before the message is
failed with 30001."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from pigeon.domain.pacing import PacingPolicy
from pigeon.store.dispatch import queued_segments
from tests.integration.pipeline import OTHER_SENDER, SENDER, Pipeline

#: Three segments in ten hours: three messages fill a queue.
SLOW = PacingPolicy(overrides={SENDER: 0.0001, OTHER_SENDER: 0.0001})


def _recipients(count: int) -> list[str]:
    return [f"+1415556{i:04d}" for i in range(count)]


def test_new_recipients_spread_over_the_pool_and_keep_their_number(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    first = {to: pipe.message(pipe.send(to, from_=None, service=service))["from_"] for to in _recipients(40)}
    assert set(Counter(first.values())) == {SENDER, OTHER_SENDER}
    assert min(Counter(first.values()).values()) >= 10  # spread, not all but a few on one number
    for to in _recipients(10):
        assert pipe.message(pipe.send(to, from_=None, service=service))["from_"] == first[to]


def test_a_full_queue_passes_to_another_number_of_the_pool(pipe: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    reads: list[str] = []

    def counting(conn: Any, sender: str, *, account_sid: str) -> int:
        reads.append(sender)
        return queued_segments(conn, sender, account_sid=account_sid)

    monkeypatch.setattr("pigeon.app.send.queued_segments", counting)  # the sum a send reads

    # With room, one queue read: the number the recipient hashes to.
    usual = pipe.message(pipe.send(from_=None, service=service, pacing=SLOW))["from_"]
    other = OTHER_SENDER if usual == SENDER else SENDER
    assert reads == [usual]
    pipe.send_in_order(2, from_=usual, pacing=SLOW)  # its queue is full now: three messages

    # The recipient's next message goes from the pool's other number, which has room...
    reads.clear()
    passed = pipe.send(from_=None, service=service, pacing=SLOW)
    assert reads == [usual, other]
    msg = pipe.message(passed)
    assert (msg["from_"], msg["status"], msg["fail_code"]) == (other, "accepted", None)

    # ...until that one is full too: then the message is taken, and fails with 30001.
    pipe.send_in_order(2, from_=other, pacing=SLOW)
    over = pipe.send(from_=None, service=service, pacing=SLOW)
    assert pipe.message(over)["fail_code"] == 30001
    pipe.dispatch(pacing=SLOW)
    assert pipe.status(passed) == "sent"
    assert (pipe.status(over), pipe.message(over)["error_code"]) == ("failed", 30001)
