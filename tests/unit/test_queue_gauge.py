"""The queue gauge behind 21611: a reading is reused for max_age, grows with what this process
accepts, and is read again from the store once stale."""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.app import queue_gauge
from pigeon.app.queue_gauge import QueueGauge

A, B = "AC" + "a" * 32, "AC" + "b" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The store's figure per sender, and how often it was read."""
    state: dict[str, Any] = {"queued": {"+14155550100": 40}, "reads": 0}

    def queued_segments(conn: object, sender: str, *, account_sid: str) -> int:
        state["reads"] += 1
        return int(state["queued"].get(sender, state["queued"].get((account_sid, sender), 0)))

    monkeypatch.setattr(queue_gauge, "queued_segments", queued_segments)
    return state


def test_a_fresh_reading_is_reused_and_counts_what_was_accepted(store: dict[str, Any]) -> None:
    clock = Clock()
    gauge = QueueGauge(max_age=1.0, monotonic=clock)
    assert gauge.queued(None, "+14155550100", account_sid=A) == 40  # type: ignore[arg-type]
    gauge.accepted("+14155550100", 3, account_sid=A)
    store["queued"]["+14155550100"] = 999  # others' accepts: not seen until the next reading
    clock.t += 0.5
    assert gauge.queued(None, "+14155550100", account_sid=A) == 43  # type: ignore[arg-type]
    assert store["reads"] == 1


def test_a_stale_reading_is_read_again(store: dict[str, Any]) -> None:
    clock = Clock()
    gauge = QueueGauge(max_age=1.0, monotonic=clock)
    gauge.queued(None, "+14155550100", account_sid=A)  # type: ignore[arg-type]
    gauge.accepted("+14155550100", 3, account_sid=A)
    store["queued"]["+14155550100"] = 7  # the dispatcher sent most of the queue
    clock.t += 1.0
    assert gauge.queued(None, "+14155550100", account_sid=A) == 7  # type: ignore[arg-type]
    assert store["reads"] == 2


def test_senders_are_counted_apart_and_unread_ones_are_not_guessed(store: dict[str, Any]) -> None:
    gauge = QueueGauge(max_age=1.0, monotonic=Clock())
    gauge.accepted("+14155550199", 5, account_sid=A)  # no reading yet: nothing to add to
    assert gauge.queued(None, "+14155550199", account_sid=A) == 0  # type: ignore[arg-type]
    assert gauge.queued(None, "+14155550100", account_sid=A) == 40  # type: ignore[arg-type]


def test_an_alphanumeric_sender_has_a_queue_per_account_and_a_number_one_queue(store: dict[str, Any]) -> None:
    """As the dispatcher paces (`domain.pacing.queue_key`): account A's backlog as "INFO" is
    not account B's."""
    store["queued"][(A, "INFO")] = 500
    gauge = QueueGauge(max_age=1.0, monotonic=Clock())
    assert gauge.queued(None, "INFO", account_sid=A) == 500  # type: ignore[arg-type]
    assert gauge.queued(None, "INFO", account_sid=B) == 0  # type: ignore[arg-type]
    gauge.accepted("INFO", 7, account_sid=B)
    assert gauge.queued(None, "INFO", account_sid=A) == 500  # type: ignore[arg-type]
    assert gauge.queued(None, "INFO", account_sid=B) == 7  # type: ignore[arg-type]
    assert gauge.queued(None, "+14155550100", account_sid=A) == 40  # type: ignore[arg-type]
    gauge.accepted("+14155550100", 2, account_sid=B)  # a number's queue is the number's
    assert gauge.queued(None, "+14155550100", account_sid=A) == 42  # type: ignore[arg-type]
