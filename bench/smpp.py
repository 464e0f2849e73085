"""Messages per second through the SMPP connector to an SMSC we did not write, with receipts.

Starts the npm `smpp` SMSC (tests/integration/smsc/smsc.js), binds one SmppCarrier to it and
submits N single-part GSM-7 messages with at most `--in-flight` messages outstanding; the
connector's own window bounds the submit_sm in flight per bind. Prints submits/s (until the
last submit_sm_resp), receipts/s (until the last receipt) and submit latency percentiles.

    .venv/bin/python bench/smpp.py --messages 5000 --window 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pigeon.carriers.config import load_carriers  # noqa: E402
from pigeon.carriers.smpp import SmppCarrier  # noqa: E402
from pigeon.domain.segments import plan_segments  # noqa: E402
from pigeon.ports import InboundSms, OutboundMessage, Receipt  # noqa: E402
from tests.integration.smsc.node import NodeSmsc, ensure_node_modules  # noqa: E402


class Counting:
    """CarrierEvents that count receipts and note when the last one came."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.receipts = 0
        self.done = asyncio.Event()
        self.last = 0.0

    async def on_receipt(self, receipt: Receipt) -> None:
        self.receipts += 1
        self.last = time.perf_counter()
        if self.receipts >= self.expected:
            self.done.set()

    async def on_inbound(self, message: InboundSms) -> None:
        return None


async def run(messages: int, window: int, in_flight: int) -> None:
    ensure_node_modules()
    async with NodeSmsc.running(receipt_delay_ms=0) as smsc:
        config = load_carriers(
            {
                "carriers": [
                    {
                        "name": "bench",
                        "kind": "smpp",
                        "host": "127.0.0.1",
                        "port": smsc.port,
                        "system_id": "pigeon",
                        "password": "secret",
                        "window": window,
                    }
                ]
            }
        ).carriers[0]
        carrier = SmppCarrier(config)
        events = Counting(messages)
        await carrier.start(events)
        assert await carrier.wait_bound(10), "could not bind"
        plan = plan_segments("Your code is 123456")
        gate = asyncio.Semaphore(in_flight)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with gate:
                msg = OutboundMessage(
                    message_sid=f"SM{i:032x}",
                    account_sid="AC" + "0" * 32,
                    sender="+14155550100",
                    recipient=f"+1415556{i % 10000:04d}",
                    body=plan.body,
                    encoding=plan.encoding,
                    parts=plan.parts,
                )
                started = time.perf_counter()
                await carrier.submit(msg)
                latencies.append(time.perf_counter() - started)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(messages)))
        submitted = time.perf_counter() - t0
        await asyncio.wait_for(events.done.wait(), timeout=120)
        received = events.last - t0
        await carrier.stop()
    lat = sorted(latencies)
    print(f"messages={messages} window={window} in_flight={in_flight}")
    print(f"submits/s   {messages / submitted:8.0f}   ({submitted:.2f} s to the last submit_sm_resp)")
    print(f"receipts/s  {messages / received:8.0f}   ({received:.2f} s to the last receipt)")
    print(
        f"submit latency ms: p50 {statistics.median(lat) * 1000:.1f}  p95 {lat[int(len(lat) * 0.95)] * 1000:.1f}  "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--in-flight", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.window, args.in_flight))


if __name__ == "__main__":
    main()
