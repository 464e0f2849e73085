"""Every copy of a long message carries one concatenation reference, whichever process sends it,
read from what the npm SMSC (tests/integration/smsc/smsc.js) decoded: the UDH, or the SAR TLVs.

A dispatcher that submits a long message and dies before recording it leaves the message to
another process, which sends it again after the claim's lease (a `resend`). With a reference of
its own, that copy would be a second message on the handset, or two incomplete ones; with the
same one, the handset can join the parts of both. The rule (`domain.segments.concat_reference`):
the reference is derived from the message's SID and part count.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pigeon.app.carrier_events import CarrierEventSink
from pigeon.app.dispatch import DispatchSettings, claim, mark_sending, submit
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.domain.segments import concat_reference
from tests.integration.pipeline import Pipeline
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import RecordingEvents, carrier_config, message
from tests.integration.test_smpp_dispatch import until

pytestmark = pytest.mark.usefixtures("npm_smsc")

LONG = "x" * 400  # GSM-7, three parts with either width of reference
LEASE = DispatchSettings().lease


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


def concat(record: dict[str, Any]) -> tuple[int, int, int]:
    """(reference, total, sequence) of a part as the SMSC received it: UDH (8 or 16 bits) or SAR."""
    if record["sar"] is not None:
        reference, total, seq = record["sar"]
        return int(reference), int(total), int(seq)
    udh = bytes.fromhex(record["udh_hex"])
    if udh[:3] == b"\x05\x00\x03":
        return udh[3], udh[4], udh[5]
    assert udh[:3] == b"\x06\x08\x04", udh.hex()
    return udh[3] << 8 | udh[4], udh[5], udh[6]


@asynccontextmanager
async def process(smsc: NodeSmsc, **config: Any) -> AsyncIterator[SmppCarrier]:
    """The connector of one worker process, for the life of that process."""
    carrier = SmppCarrier(carrier_config(smsc.port, **config), metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(RecordingEvents())
    try:
        assert await carrier.wait_bound(5), carrier.status()
        yield carrier
    finally:
        await carrier.stop()


@pytest.mark.parametrize(
    "config",
    [{}, {"sixteen_bit_reference": True}, {"long_messages": "sar"}],
    ids=["udh8", "udh16", "sar"],
)
def test_one_message_sent_by_two_processes_carries_one_reference_and_others_their_own(
    config: dict[str, Any],
) -> None:
    wide = bool(config)
    same, other = message(LONG), message(LONG)

    async def scenario() -> None:
        async with NodeSmsc.running() as smsc:
            async with process(smsc, **config) as first:
                await first.submit(same)
            async with process(smsc, **config) as second:  # after the first process died
                await second.submit(same)
                await second.submit(other)
            records = smsc.accepted()
            assert [concat(r)[1:] for r in records] == [(3, seq) for _ in range(3) for seq in (1, 2, 3)]
            references = [concat(r)[0] for r in records]
            assert references[:3] == references[3:6]  # both copies: the handset can join them
            assert references[:6] == [concat_reference(same.message_sid, 3, sixteen_bit=wide)] * 6
            assert references[6:] == [concat_reference(other.message_sid, 3, sixteen_bit=wide)] * 3

    run(scenario)


@asynccontextmanager
async def worker(pipe: Pipeline, smsc: NodeSmsc) -> AsyncIterator[SmppCarrier]:
    """The SMPP carrier of one worker process, its receipts into `pipe`'s store."""
    carrier = SmppCarrier(carrier_config(smsc.port), metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com"))
    try:
        assert await carrier.wait_bound(5), carrier.status()
        yield carrier
    finally:
        await carrier.stop()


def test_a_long_message_resent_after_its_dispatcher_died_keeps_its_reference(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running() as smsc:
            sid = pipe.send(body=LONG)
            async with worker(pipe, smsc) as dying:
                # A dispatcher claims the message, submits it, and dies before recording anything.
                with pipe.db.write() as conn:
                    jobs = claim(conn, now=pipe.clock.now(), worker_id="dead", settings=DispatchSettings())
                with pipe.db.write() as conn:
                    assert mark_sending(conn, jobs, now=pipe.clock.now())
                assert (await submit(jobs[0], [dying])).ack is not None
            assert pipe.status(sid) == "sending" and len(smsc.accepted()) == 3

            pipe.clock.advance(LEASE.total_seconds() + 1)
            async with worker(pipe, smsc) as rescuer:
                assert await pipe.round("rescuer", route=[rescuer]).run_once() == 1
                [resend] = pipe.events(sid, "resend")
                assert "may or may not have reached the carrier" in resend["detail"]["reason"]

                def delivered() -> bool:
                    pipe.rematch()  # a receipt that overtook its submit's commit (PostgreSQL)
                    return pipe.status(sid) == "delivered"

                await until(delivered)
            heads = [concat(r) for r in smsc.accepted()]
            assert heads[:3] == heads[3:]  # the dead process's copy and the resend: one reference
            assert heads[:3] == [(concat_reference(sid, 3), 3, seq) for seq in (1, 2, 3)]

    run(scenario)
