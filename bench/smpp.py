"""Messages per second through the SMPP connector to an SMSC we did not write, with receipts.

Connector alone (the default): starts the npm `smpp` SMSC (tests/integration/smsc/smsc.js),
binds one SmppCarrier to it and submits N single-part GSM-7 messages with at most
`--in-flight` messages outstanding; the connector's own window bounds the submit_sm in flight
per bind. Prints submits/s (until the last submit_sm_resp), receipts/s (until the last
receipt) and submit latency percentiles.

    .venv/bin/python bench/smpp.py --messages 5000 --window 50

End to end (`--end-to-end`): API → SMPP → receipt → signed status callback. For each offered
rate, on a fresh store, it starts the npm SMSC (receipts `--receipt-delay-ms` after each
submit), writes a PIGEON_CONFIG naming it as the only carrier (window `--window`, no
throughput limit of our own) with pacing raised for every sender, and runs bench/e2e.py's
measurement against `pigeon serve` (bench/harness.py's server, open-loop load generator and
bench/e2e.py's callback receiver): POSTs with a StatusCallback spread over `--senders`
numbers, then waits for every `delivered` callback. Reported per rate as bench/e2e.py
reports it (accepted/s, delivered/s, backlog, drain, latency from POST to the delivered
callback, callbacks per message, lost), plus the CPU the SMSC itself used.

    .venv/bin/python bench/smpp.py --end-to-end --rates 200,400 --duration 15 --serve-arg=--workers=1
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pigeon.carriers.config import load_carriers  # noqa: E402
from pigeon.carriers.smpp import SmppCarrier  # noqa: E402
from pigeon.domain.segments import plan_segments  # noqa: E402
from pigeon.ports import InboundPart, InboundSms, LateAcceptance, LateRefusal, OutboundMessage, Receipt  # noqa: E402
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

    async def on_inbound_part(self, part: InboundPart) -> bool:
        return False  # the bench sends no mobile-originated messages

    async def on_late_acceptance(self, late: LateAcceptance) -> None:
        return None  # the bench's SMSC answers every submit in time

    async def on_late_refusal(self, late: LateRefusal) -> None:
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


# -- end to end -------------------------------------------------------------------------------------


def carrier_toml(port: int, window: int) -> str:
    return (
        "\n[[carriers]]\n"
        'name = "npm-smsc"\nkind = "smpp"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsystem_id = "pigeon"\npassword = "secret"\nwindow = {window}\n'
    )


def end_to_end_rate(rate: float, args: argparse.Namespace) -> None:
    # bench/e2e.py owns the measurement (generator, receiver, drain wait, latencies); this
    # only puts the npm SMSC behind `pigeon serve` instead of the built-in network.
    from e2e import Callbacks, _Receiver, line, measure
    from harness import Requests, Server, bench_env, free_port, process_cpu, provision, store, workdir, write_config

    args.current_backend = "sqlite"
    with workdir() as wd, store("sqlite", wd) as url:

        async def main() -> None:
            async with NodeSmsc.running(quiet=True, receipt_delay_ms=args.receipt_delay_ms) as smsc:
                config = write_config(wd / "bench.toml", args.pacing)
                config.write_text(config.read_text() + carrier_toml(smsc.port, args.window))
                env = bench_env(url, free_port(), config)
                tenant = await asyncio.to_thread(provision, env, args.senders)
                seen = Callbacks()
                loop = asyncio.get_running_loop()
                receiver = await loop.create_server(lambda: _Receiver(seen), "127.0.0.1", 0, backlog=1024)
                callback = f"http://127.0.0.1:{receiver.sockets[0].getsockname()[1]}/status"
                server = await asyncio.to_thread(lambda: Server(env, wd / "serve.log", *args.serve_arg))
                try:
                    requests = Requests(tenant, f"127.0.0.1:{env['PIGEON_PORT']}", status_callback=callback)
                    smsc_cpu0, t0 = process_cpu(smsc.process.pid), time.perf_counter()
                    run = await measure(server, requests, seen, rate, args)
                    smsc_cpu = (process_cpu(smsc.process.pid) - smsc_cpu0) / (time.perf_counter() - t0)
                    counts = await smsc.command("counts")
                finally:
                    await asyncio.to_thread(server.stop)
                    receiver.close()
                    if args.show_log:
                        print((wd / "serve.log").read_text()[-3000:])
            print(line(run), flush=True)
            print(
                f"  npm SMSC: {counts['submits']} submit_sm, {counts['accepted']} accepted, "
                f"{counts['acked']} receipts acknowledged, {counts['owed']} owed, CPU {smsc_cpu:.0%}",
                flush=True,
            )

        asyncio.run(main())


def end_to_end(args: argparse.Namespace) -> None:
    from e2e import HEADER
    from harness import machine, use_uvloop

    use_uvloop()
    ensure_node_modules()
    started = datetime.datetime.now(datetime.UTC)
    print(f"smpp end-to-end bench  {started:%Y-%m-%d %H:%M} UTC  {machine()}")
    extra = " ".join(args.serve_arg) or "(API and workers in one process)"
    print(
        f"duration {args.duration:g}s (+{args.warmup:g}s warm-up) per rate, {args.senders} senders, "
        f"window {args.window}, receipts after {args.receipt_delay_ms} ms, pigeon serve {extra}\n"
    )
    print(HEADER, flush=True)
    for rate in args.rates.split(","):
        end_to_end_rate(float(rate), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000, help="connector alone: messages to submit")
    parser.add_argument("--window", type=int, default=50, help="the carrier's submit window")
    parser.add_argument("--in-flight", type=int, default=200, help="connector alone: messages outstanding")
    parser.add_argument("--end-to-end", action="store_true", help="API -> SMPP -> receipt -> status callback")
    parser.add_argument("--rates", default="200,400", help="end to end: offered messages/s, comma-separated")
    parser.add_argument("--duration", type=float, default=15.0, help="end to end: measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=3.0, help="end to end: seconds sent before measuring")
    parser.add_argument("--max-drain", type=float, default=60.0, help="end to end: longest wait for the backlog")
    parser.add_argument("--connections", type=int, default=128, help="end to end: generator connections")
    parser.add_argument("--senders", type=int, default=20, help="end to end: sender numbers the load is spread over")
    parser.add_argument("--pacing", type=float, default=1000.0, help="end to end: segments/s per sender")
    parser.add_argument("--receipt-delay-ms", type=int, default=30, help="end to end: SMSC receipt delay")
    parser.add_argument("--serve-arg", action="append", default=[], help="end to end: extra `pigeon serve` argument")
    parser.add_argument("--show-log", action="store_true", help="end to end: print the end of the server log")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args)
    else:
        asyncio.run(run(args.messages, args.window, args.in_flight))


if __name__ == "__main__":
    main()
