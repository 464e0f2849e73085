"""Unit tests for pigeon.domain.refusals and `CarrierError.stops_route`: what a route's refusals
decide together."""

from __future__ import annotations

import pytest

from pigeon.domain.errors import (
    CarrierError,
    CarrierOutcomeUnknown,
    CarrierPermanentError,
    CarrierRetryableError,
    CarrierUnavailable,
)
from pigeon.domain.refusals import UNREACHED_MAX_DELAY, Refusals, unreached_delay
from pigeon.domain.segments import SubmitProgress


def _permanent(code: int) -> CarrierPermanentError:
    return CarrierPermanentError("refused", carrier_code="X", error_code=code)


@pytest.mark.parametrize("code", [21610, 21614, 30003, 30004, 30005, 30006, 30007])
def test_permanent_refusals_about_the_recipient_or_content_stop_the_route(code: int) -> None:
    assert _permanent(code).stops_route


@pytest.mark.parametrize("code", [21606, 30008, 30019, 30011])
def test_permanent_refusals_about_the_carrier_do_not(code: int) -> None:
    assert not _permanent(code).stops_route


def test_a_retryable_refusal_never_stops_the_route() -> None:
    assert not CarrierRetryableError("busy", error_code=30005).stops_route


def test_nobody_reached_only_when_every_carrier_was_unbound_and_took_nothing() -> None:
    unbound = CarrierUnavailable("down")
    assert Refusals([("a", unbound), ("b", CarrierUnavailable("down"))]).unreached
    assert not Refusals([("a", unbound), ("b", CarrierRetryableError("busy"))]).unreached
    assert not Refusals([]).unreached
    partly = CarrierUnavailable("lost the bind after part 1")
    partly.progress = SubmitProgress(parts=2, reference=1, first_part=1, accepted_ids=("id-1",), stopped_at=2)
    assert not Refusals([("a", partly)]).unreached


def test_a_retryable_refusal_anywhere_is_retried_unless_a_verdict_stops_it() -> None:
    busy = CarrierRetryableError("busy", error_code=30001)
    assert Refusals([("a", busy), ("b", _permanent(21606))]).retry_with is busy
    assert Refusals([("a", _permanent(21606)), ("b", busy)]).retry_with is busy
    assert Refusals([("a", busy), ("b", _permanent(30005))]).retry_with is None
    assert Refusals([("a", _permanent(21606)), ("b", _permanent(30008))]).retry_with is None


def test_the_telling_code() -> None:
    busy, unknown = CarrierRetryableError("busy", error_code=30001), CarrierRetryableError("sys")
    sender, vague = _permanent(21606), _permanent(30008)
    handset = _permanent(30005)
    assert Refusals([("a", busy), ("b", handset)]).telling() is handset
    assert Refusals([("a", unknown), ("b", busy), ("c", sender)]).telling() is busy
    assert Refusals([("a", unknown), ("b", sender)]).telling() is unknown
    assert Refusals([("a", vague), ("b", sender)]).telling() is sender
    assert Refusals([("a", vague)]).telling() is vague
    silent = CarrierOutcomeUnknown("no answer")
    assert Refusals([("a", silent)]).telling() is silent
    assert isinstance(Refusals([("a", CarrierError("no route"))]).telling(), CarrierError)


def test_waiting_for_a_bind_backs_off_to_a_ceiling() -> None:
    assert unreached_delay(0) == 1.0
    assert unreached_delay(10) == 5.0
    assert unreached_delay(3600) == UNREACHED_MAX_DELAY
    assert UNREACHED_MAX_DELAY * 0.9 <= unreached_delay(3600, rand=0.999) < UNREACHED_MAX_DELAY
