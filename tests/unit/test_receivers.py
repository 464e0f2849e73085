"""The webhook worker's share of slots per receiver (pigeon.workers.receivers), on made-up times."""

from __future__ import annotations

from typing import Any

from pigeon.workers.receivers import LEAST_HOLD, Receivers

SLOW = "https://slow.example.com/cb"
FAST = "https://fast.example.com/cb"


def row(n: int, url: str) -> dict[str, Any]:
    return {"id": n, "url": url}


def receivers() -> Receivers:
    return Receivers(share=2, slow_after=2.0, longest_hold=15.0)


def exchange(r: Receivers, one: dict[str, Any], began: float, ended: float) -> None:
    """`one` admitted and its exchange run from `began` to `ended`."""
    assert r.admit(one, began)
    r.began(one, began)
    r.ended(one, ended)


def test_a_receiver_that_has_shown_nothing_gets_its_share_and_the_rest_is_due_at_once() -> None:
    r = receivers()
    assert [r.admit(row(n, SLOW), 0.0) for n in range(4)] == [True, True, False, False]
    assert r.hold_for(row(3, SLOW), 0.0) is None  # given back as it was: due at once
    assert r.admit(row(9, FAST), 0.0)  # another receiver has a share of its own


def test_a_fast_receiver_is_never_held_back() -> None:
    r = receivers()
    exchange(r, row(0, FAST), 0.0, 0.01)
    assert all(r.admit(row(n, FAST), 0.02) for n in range(1, 100))


def test_a_receiver_whose_exchange_runs_long_is_held_back_for_about_one_exchange() -> None:
    r = receivers()
    hanging = [row(n, SLOW) for n in range(2)]
    for h in hanging:
        assert r.admit(h, 0.0)
        r.began(h, 0.0)
    assert not r.admit(row(2, SLOW), 1.0)
    assert r.hold_for(row(2, SLOW), 1.0) is None  # not slow yet: nothing known
    assert not r.admit(row(3, SLOW), 2.5)
    assert r.hold_for(row(3, SLOW), 2.5) == 2.0  # slow: nothing over yet, so `slow_after`
    r.ended(hanging[0], 15.0)  # timed out
    assert r.hold_for(row(3, SLOW), 15.0) == 15.0  # about one of its exchanges
    r.ended(hanging[1], 15.0)
    assert r.admit(row(4, SLOW), 15.0) and r.admit(row(5, SLOW), 15.0)  # its share, again
    assert not r.admit(row(6, SLOW), 15.0)


def test_a_receiver_that_speeds_up_is_no_longer_held_back() -> None:
    r = receivers()
    exchange(r, row(0, SLOW), 0.0, 10.0)
    for n in range(1, 40):  # quick answers bring its typical time under `slow_after`
        exchange(r, row(n, SLOW), 10.0, 10.01)
    assert all(r.admit(row(n, SLOW), 11.0) for n in range(100, 110))


def test_holds_stay_within_their_bounds() -> None:
    r = Receivers(share=1, slow_after=0.1, longest_hold=15.0)
    exchange(r, row(0, SLOW), 0.0, 0.12)  # slow, but barely
    hang = row(1, SLOW)
    r.admit(hang, 0.2)
    r.began(hang, 0.2)
    assert r.hold_for(row(2, SLOW), 0.25) == LEAST_HOLD
    r.ended(hang, 100.0)
    assert r.hold_for(row(2, SLOW), 100.0) == 15.0


def test_a_row_that_never_began_its_exchange_counts_for_nothing_but_its_place() -> None:
    r = receivers()
    cancelled = row(0, SLOW)
    assert r.admit(cancelled, 0.0)
    r.ended(cancelled, 5.0)  # cancelled while waiting for a slot: no exchange time to learn
    assert r.hold_for(row(1, SLOW), 5.0) is None
    assert r.admit(row(1, SLOW), 5.0) and r.admit(row(2, SLOW), 5.0)
