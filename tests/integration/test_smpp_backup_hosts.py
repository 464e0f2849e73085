"""A carrier's other addresses (backup_hosts) against two SMSCs of the npm `smpp` package: a
bind that cannot connect, or loses its SMSC, moves on to the next address."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import RecordingEvents, carrier_config, message, run_within

pytestmark = pytest.mark.usefixtures("npm_smsc")
run = functools.partial(run_within, seconds=45)


def closed_port() -> int:
    """A port nothing listens on (the kernel gave it, and it was let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def carrier_at(port: int, **config: Any) -> AsyncIterator[tuple[SmppCarrier, RecordingEvents]]:
    events = RecordingEvents()
    carrier = SmppCarrier(carrier_config(port, **config), metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(events)
    try:
        yield carrier, events
    finally:
        await carrier.stop()


def test_a_primary_that_refuses_connections_leaves_the_bind_to_the_backup() -> None:
    async def scenario() -> None:
        down = closed_port()
        async with NodeSmsc.running() as backup:
            async with carrier_at(down, backup_hosts=(("127.0.0.1", backup.port),)) as (carrier, events):
                assert await carrier.wait_bound(5), carrier.status()
                status = carrier.status()
                (bind,) = status.binds
                assert bind.address == f"127.0.0.1:{backup.port}"
                assert f"cannot connect to 127.0.0.1:{down}" in (status.last_error or "")
                assert status.address == f"127.0.0.1:{down}, 127.0.0.1:{backup.port}"
                ack = await carrier.submit(message("via the backup"))
                await events.wait(lambda e: len(e.receipts) == 1)
                assert events.receipts[0].carrier_id == ack.carrier_ids[0]
                assert [r["text"] for r in backup.accepted()] == ["via the backup"]

    run(scenario)


def test_a_bind_whose_smsc_goes_away_moves_to_the_next_address() -> None:
    async def scenario() -> None:
        async with NodeSmsc.running() as first, NodeSmsc.running() as second:
            async with carrier_at(first.port, backup_hosts=(("127.0.0.1", second.port),)) as (carrier, _):
                assert await carrier.wait_bound(5), carrier.status()
                assert carrier.status().binds[0].address == f"127.0.0.1:{first.port}"
                await carrier.submit(message("first"))
                await first.close()  # the SMSC stops: its port refuses from now on

                async def moved() -> None:
                    while not (
                        carrier.status().bound and carrier.status().binds[0].address.endswith(f":{second.port}")
                    ):
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(moved(), 10)
                await carrier.submit(message("second"))
                assert [r["text"] for r in second.accepted()] == ["second"]
                assert carrier.status().binds[0].connects == 2

    run(scenario)


def test_a_bind_stays_where_it_succeeded() -> None:
    """Reconnecting after a drop tries the address it was bound to first."""

    async def scenario() -> None:
        async with NodeSmsc.running() as first, NodeSmsc.running() as second:
            async with carrier_at(first.port, backup_hosts=(("127.0.0.1", second.port),)) as (carrier, _):
                assert await carrier.wait_bound(5), carrier.status()
                await first.configure(drop_after_submits=1)
                await carrier.submit(message("then a drop"))
                await first.wait_count(lambda e: e.get("event") == "bind", 2)
                assert await carrier.wait_bound(5)
                assert carrier.status().binds[0].address == f"127.0.0.1:{first.port}"
                assert not [e for e in second.events if e.get("event") == "bind"]

    run(scenario)
