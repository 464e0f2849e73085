"""Which messages show no sender (`pigeon.domain.status.pool_sender_unused`): those sent
through a Messaging Service without a From whose pool's pick was never used."""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.domain.status import MessageStatus, pool_sender_unused

MG = "MG" + "c" * 32


def pooled(status: MessageStatus, error_code: int | None = None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "status": status,
        "error_code": error_code,
        "sender_from_pool": True,
        "messaging_service_sid": MG,
        "from_": "+14155550100",
    }
    return row | values


@pytest.mark.parametrize(
    ("status", "error_code"),
    [
        (MessageStatus.ACCEPTED, None),
        (MessageStatus.SCHEDULED, None),
        # Canceled while scheduled: Twilio's own example of a canceled message has `from` null.
        (MessageStatus.CANCELED, None),
        # Failed at its SendAt: the service was gone, its pool empty, or none in it fit.
        (MessageStatus.FAILED, 21701),
        (MessageStatus.FAILED, 21704),
        (MessageStatus.FAILED, 21703),
    ],
)
def test_a_pool_pick_never_used_shows_no_sender(status: MessageStatus, error_code: int | None) -> None:
    assert pool_sender_unused(pooled(status, error_code))


@pytest.mark.parametrize(
    ("status", "error_code"),
    [
        (MessageStatus.QUEUED, None),
        (MessageStatus.SENT, None),
        (MessageStatus.DELIVERED, None),
        (MessageStatus.UNDELIVERED, 30003),
        # A sender was used: the carrier refused it, or the queue of the one chosen was full.
        (MessageStatus.FAILED, 30007),
        (MessageStatus.FAILED, 30001),
        (MessageStatus.FAILED, None),
    ],
)
def test_a_pool_pick_that_was_used_is_shown(status: MessageStatus, error_code: int | None) -> None:
    assert not pool_sender_unused(pooled(status, error_code))


@pytest.mark.parametrize(
    "values",
    [{"sender_from_pool": False}, {"messaging_service_sid": None}, {"sender_from_pool": None}],
)
def test_a_sender_named_in_the_request_or_without_a_service_is_always_shown(values: dict[str, Any]) -> None:
    for status in (MessageStatus.SCHEDULED, MessageStatus.CANCELED):
        assert not pool_sender_unused(pooled(status, **values))
    assert not pool_sender_unused(pooled(MessageStatus.FAILED, 21704, **values))


def test_a_row_read_as_text_is_judged_alike() -> None:
    """The store gives the status back as text, not as the enum."""
    assert pool_sender_unused(pooled(MessageStatus.CANCELED) | {"status": "canceled"})
    assert pool_sender_unused(pooled(MessageStatus.FAILED, 21704) | {"status": "failed"})
