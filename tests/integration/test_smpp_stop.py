"""SmppCarrier.stop(at_once=True), what a process does when its bind lease is about to run out
(pigeon.workers.bind_leases): the bind closes without waiting for the submits in flight, even
against an SMSC that answers neither them nor the unbind, and those submits end as possibly
accepted (CarrierOutcomeUnknown "smpp:connection_lost"), not as refusals.

The SMSC is from the catalogue of misbehaving SMSCs (tests/integration/smsc/faults.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import CollectorRegistry

from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.carriers.smpp_bind import unbind_wait
from pigeon.domain.errors import CarrierOutcomeUnknown
from tests.integration.smsc import faults
from tests.integration.smsc.support import RecordingEvents, carrier_config, message


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


class Deaf(faults.NoSubmitResp):
    """Answers no submit_sm and no unbind either, and keeps the connection open."""

    async def dispatch(self, conn: faults.Connection, command_id: int, status: int, sequence: int, body: bytes) -> None:
        if command_id != faults.UNBIND:
            await super().dispatch(conn, command_id, status, sequence, body)


async def bound_with_a_submit_in_flight(smsc: Deaf) -> tuple[SmppCarrier, asyncio.Task[object]]:
    # A response_timeout far past the lease: waiting for the answer would outlast the lease.
    config = carrier_config(smsc.port, name="deaf", response_timeout=60.0, connect_timeout=0.5, bind_lease=1.2)
    carrier = SmppCarrier(config, metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(RecordingEvents())
    assert await carrier.wait_bound(5), carrier.status()
    submit = asyncio.create_task(carrier.submit(message("in flight")))
    await smsc.wait(lambda: len(smsc.submits) == 1)
    return carrier, submit


async def check_unanswered(smsc: Deaf, submit: asyncio.Task[object]) -> None:
    with pytest.raises(CarrierOutcomeUnknown) as raised:
        await submit
    assert raised.value.carrier_code == "smpp:connection_lost"
    assert "may have accepted" in raised.value.message
    await smsc.wait(lambda: smsc.connections[0].reader.at_eof())  # the SMSC saw the connection end


def test_a_stop_at_once_closes_the_bind_without_waiting_for_the_submits_in_flight() -> None:
    async def scenario() -> None:
        async with Deaf() as smsc:
            carrier, submit = await bound_with_a_submit_in_flight(smsc)
            await carrier.stop(at_once=True)
            assert not carrier.is_bound()
            await check_unanswered(smsc, submit)

    run(scenario)


def test_a_stop_at_once_cuts_short_a_stop_waiting_for_its_submits() -> None:
    """A clean shutdown waits for the submits in flight; if the lease cannot be renewed
    meanwhile, the process must unbind at once all the same."""

    async def scenario() -> None:
        async with Deaf() as smsc:
            carrier, submit = await bound_with_a_submit_in_flight(smsc)
            waiting = asyncio.create_task(carrier.stop())
            await asyncio.sleep(0.05)
            assert not waiting.done()  # it waits for the answer (a response_timeout at most)
            await carrier.stop(at_once=True)
            await waiting
            await check_unanswered(smsc, submit)

    run(scenario)


def test_closing_a_session_waits_at_most_a_twelfth_of_the_bind_lease() -> None:
    """For the unbind's answer, then for the connection to close: a process fenced a third of
    the lease before it runs out has closed its bind with half of that third to spare."""
    config = carrier_config(1)
    assert unbind_wait(config) == 2.0  # response_timeout 2 s, bind_lease 30 s
    assert unbind_wait(carrier_config(1, response_timeout=0.5)) == 0.5
    assert unbind_wait(carrier_config(1, response_timeout=10.0, bind_lease=1.2)) == pytest.approx(0.1)
