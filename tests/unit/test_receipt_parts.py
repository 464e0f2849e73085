"""A multipart message's outcome from its parts' receipts (`pigeon.app.receipts._aggregate`),
with parts the carrier took twice (a late-accepted copy has an id and a receipt of its own)."""

from __future__ import annotations

from typing import Any

from pigeon.app.receipts import _aggregate
from pigeon.domain.status import MessageStatus


def part(index: int, stat: str | None, count: int = 2) -> dict[str, Any]:
    return {"part_index": index, "part_count": count, "receipt_stat": stat}


def status(*parts: dict[str, Any]) -> MessageStatus | None:
    outcome = _aggregate(parts)
    return None if outcome is None else outcome.status


def test_every_part_delivered_is_delivered() -> None:
    assert status(part(0, "DELIVRD"), part(1, "DELIVRD")) is MessageStatus.DELIVERED
    assert status(part(0, "DELIVRD"), part(1, None)) is None
    assert status(part(0, "DELIVRD")) is None  # the second part was never taken


def test_a_part_that_failed_fails_the_message() -> None:
    assert status(part(0, "DELIVRD"), part(1, "UNDELIV")) is MessageStatus.UNDELIVERED
    assert status(part(0, None), part(1, "UNDELIV")) is MessageStatus.UNDELIVERED


def test_a_part_taken_twice_is_delivered_when_either_copy_is() -> None:
    # The late copy of part 1 never gets a receipt: the message is delivered all the same.
    assert status(part(0, "DELIVRD"), part(0, None), part(1, "DELIVRD")) is MessageStatus.DELIVERED
    assert status(part(0, "UNDELIV"), part(0, "DELIVRD"), part(1, "DELIVRD")) is MessageStatus.DELIVERED


def test_a_part_taken_twice_fails_only_when_both_copies_do() -> None:
    assert status(part(0, "UNDELIV"), part(0, None), part(1, "DELIVRD")) is None
    assert status(part(0, "UNDELIV"), part(0, "EXPIRED"), part(1, "DELIVRD")) is MessageStatus.UNDELIVERED
    assert status(part(0, "UNDELIV"), part(0, "ENROUTE"), part(1, "DELIVRD")) is None


def test_a_single_part_message_taken_twice_follows_the_same_rule() -> None:
    """Its first submit went unanswered and was answered late, after a resend was accepted."""
    assert status(part(0, "UNDELIV", 1), part(0, None, 1)) is None  # the other copy may still arrive
    assert status(part(0, "UNDELIV", 1), part(0, "DELIVRD", 1)) is MessageStatus.DELIVERED
    assert status(part(0, "UNDELIV", 1), part(0, "REJECTD", 1)) is MessageStatus.UNDELIVERED
