"""Unit tests for pigeon.carriers.leased.LeasedCarrier: it binds only when told (a lease is held),
with a new inner carrier each time, and refuses submits meanwhile without sending anything."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from pigeon.carriers.leased import LeasedCarrier
from pigeon.domain.errors import CarrierUnavailable
from pigeon.ports import CarrierEvents, OutboundMessage, SubmitAck

MESSAGE = OutboundMessage(
    message_sid="SM" + "1" * 32,
    account_sid="AC" + "0" * 32,
    sender="+14155550100",
    recipient="+447700900123",
    body="hi",
    encoding="GSM-7",
    parts=("hi",),
)


class Inner:
    name = "acme"
    carries_media = False
    made = 0

    def __init__(self) -> None:
        Inner.made += 1
        self.number = Inner.made
        self.started = self.stopped = False

    async def start(self, events: CarrierEvents) -> None:
        self.started = True

    async def stop(self, *, at_once: bool = False) -> None:
        self.stopped = True

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        return SubmitAck(carrier="acme", carrier_ids=(f"id-{self.number}",))

    def is_bound(self) -> bool:
        return self.started and not self.stopped

    def status(self) -> dict[str, Any]:
        return {"name": "acme", "kind": "smpp", "bound": self.is_bound(), "binds": [{"role": "transceiver"}]}


def leased(made: list[Inner], slots: int = 1) -> LeasedCarrier:
    def make() -> Inner:
        made.append(Inner())
        return made[-1]

    return LeasedCarrier("acme", slots=slots, lease_seconds=30.0, make=make)


def test_without_a_lease_nothing_is_bound_and_submits_are_refused_unsent() -> None:
    async def scenario() -> None:
        made: list[Inner] = []
        carrier = leased(made, slots=2)
        await carrier.start(events=object())  # type: ignore[arg-type]
        assert made == [] and not carrier.is_bound()
        with pytest.raises(CarrierUnavailable) as refused:
            await carrier.submit(MESSAGE)
        assert refused.value.carrier_code == "lease:not_held" and refused.value.retryable
        assert "none of the carrier's 2 bind lease(s)" in str(refused.value)
        assert carrier.status()["lease"] == {"slot": None, "slots": 2, "expires_at": None, "state": "standby"}

    asyncio.run(scenario())


def test_each_lease_binds_a_new_inner_carrier_and_losing_it_stops_that_one() -> None:
    async def scenario() -> None:
        made: list[Inner] = []
        carrier = leased(made)
        await carrier.start(events=object())  # type: ignore[arg-type]
        carrier.slot, carrier.expires_at = 1, datetime(2026, 1, 15, 12, 0, 30, tzinfo=UTC)
        await carrier.bind()
        await carrier.bind()  # already bound: nothing new
        assert len(made) == 1 and carrier.is_bound()
        assert (await carrier.submit(MESSAGE)).carrier_ids[0].startswith("id-")
        status = carrier.status()
        assert status["bound"] is True and status["lease"]["state"] == "held"
        assert status["lease"]["expires_at"] == "2026-01-15T12:00:30+00:00"

        await carrier.unbind()
        assert made[0].stopped and not carrier.is_bound()
        with pytest.raises(CarrierUnavailable):
            await carrier.submit(MESSAGE)
        await carrier.bind()
        assert len(made) == 2 and made[1].started and not made[1].stopped
        await carrier.stop()
        assert made[1].stopped

    asyncio.run(scenario())


def test_an_inner_carrier_whose_start_fails_is_stopped_and_the_next_bind_starts_another() -> None:
    class Broken(Inner):
        async def start(self, events: CarrierEvents) -> None:
            raise OSError("no route to host")

    async def scenario() -> None:
        made: list[Inner] = []

        def make() -> Inner:
            made.append(Broken() if not made else Inner())
            return made[-1]

        carrier = LeasedCarrier("acme", slots=1, lease_seconds=30.0, make=make)
        await carrier.start(events=object())  # type: ignore[arg-type]
        with pytest.raises(OSError):
            await carrier.bind()
        assert made[0].stopped and not carrier.is_bound()
        await carrier.bind()
        assert len(made) == 2 and carrier.is_bound()

    asyncio.run(scenario())
