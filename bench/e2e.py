"""End to end: messages/s from POST to delivered, with every status callback acknowledged.

Starts a fast local callback receiver (a raw asyncio HTTP/1.1 server answering 204) and
`pigeon serve` with its workers and the built-in carrier network (which delivers every
number used here about 0.3 s after submit). Pacing is raised in PIGEON_CONFIG so that it is
not what is measured. For each offered rate, on a fresh store, the open-loop generator POSTs
for --warmup + --duration seconds, each message with a StatusCallback to the receiver; the
run then waits until every accepted message's `delivered` callback has arrived.

Reported per rate: accepted/s; delivered/s, the rate at which `delivered` callbacks arrived
over the measured window (the sustained end-to-end throughput when the pipeline keeps up,
its capacity when it does not); the backlog left when sending stopped and how long it took
to drain; latency from each POST's scheduled time to its `delivered` callback; callbacks
received per message (sending, sent, delivered: 3); and the server's CPU and memory (VmRSS
of the server and its worker processes, sampled every second: at start, peak, at the end).

    .venv/bin/python bench/e2e.py --backend both --duration 30 --rates 500,1000,1500,2000
    .venv/bin/python bench/e2e.py --backend sqlite --duration 300 --rates 1000   # memory over time

--instrument adds, per server process and over the measured window, what it did with SQLite's
writer lock (held, of which on a CPU and in the run queue; waited for) and the CPU of each
combined write (bench/instrument/sitecustomize.py); it slows the server by 10-20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    LoadGenerator,
    Requests,
    Server,
    add_connections_option,
    bench_env,
    free_port,
    host_cpu,
    machine,
    provision,
    stop_profilers,
    store,
    use_uvloop,
    workdir,
    write_config,
)

# -- the callback receiver ------------------------------------------------------------------------


@dataclass
class Callbacks:
    received: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    delivered_at: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    #: Each message's statuses heard so far (a bit each), to count every status told twice.
    heard: dict[str, int] = field(default_factory=dict)
    twice: dict[str, int] = field(default_factory=dict)


#: A bit per status, for `Callbacks.heard`.
_BITS = {"queued": 1, "sending": 2, "sent": 4, "delivered": 8, "undelivered": 16, "failed": 32}


def _field(body: bytes, name: bytes) -> str:
    at = body.find(name + b"=")
    if at < 0:
        return ""
    end = body.find(b"&", at)
    return body[at + len(name) + 1 : end if end >= 0 else len(body)].decode()


class _Receiver(asyncio.Protocol):
    """Answers every request 204 at once; keeps the statuses it was told about."""

    def __init__(self, seen: Callbacks) -> None:
        self.seen = seen
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            length = 0
            if at >= 0:
                eol = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : eol if eol > 0 else len(head)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            self._record(body)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 204 No Content\r\nServer: bench\r\nContent-Length: 0\r\n\r\n")

    def _record(self, body: bytes) -> None:
        seen = self.seen
        seen.received += 1
        status = _field(body, b"MessageStatus")
        seen.by_status[status] = seen.by_status.get(status, 0) + 1
        sid = _field(body, b"MessageSid")
        bit = _BITS.get(status, 64)
        heard = seen.heard.get(sid, 0)
        if heard & bit:  # at least once allows it, but each one is worth a look
            seen.twice[status] = seen.twice.get(status, 0) + 1
        seen.heard[sid] = heard | bit
        if status == "delivered":
            if sid in seen.delivered_at:
                seen.duplicates += 1
            else:
                seen.delivered_at[sid] = time.perf_counter()


# -- one run ----------------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    offered: float
    accepted: int = 0
    errors: int = 0
    accept_rate: float = 0.0
    delivered_rate: float = 0.0
    backlog: int = 0
    drain: float = 0.0
    latencies: list[float] = field(default_factory=list)
    callbacks_per_message: float = 0.0
    duplicates: int = 0
    missing: int = 0
    cpu: float = 0.0
    others: float = 0.0
    #: this process (the load generator and the callback receiver), 1.0 = one core
    bench: float = 0.0
    rss: list[float] = field(default_factory=list)

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


HEADER = (
    f"{'backend':<9}{'offered/s':>10}{'accepted/s':>11}{'delivered/s':>12}{'backlog':>8}{'drain s':>8}"
    f"{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'cb/msg':>7}{'lost':>5}{'CPU':>6}{'bench':>6}{'others':>7}"
    f"{'RSS MiB start/peak/end':>24}"
)


def line(r: Run) -> str:
    rss = f"{r.rss[0]:.0f}/{max(r.rss):.0f}/{r.rss[-1]:.0f}" if r.rss else "-"
    return (
        f"{r.backend:<9}{r.offered:>10.0f}{r.accept_rate:>11.0f}{r.delivered_rate:>12.0f}{r.backlog:>8}"
        f"{r.drain:>8.1f}{r.pct(50):>8.0f}{r.pct(95):>8.0f}{r.pct(99):>8.0f}{r.callbacks_per_message:>7.2f}"
        f"{r.missing:>5}{r.cpu:>6.0%}{r.bench:>6.0%}{r.others:>7.0%}{rss:>24}"
    )


async def measure(server: Server, requests: Requests, seen: Callbacks, rate: float, args: argparse.Namespace) -> Run:
    run = Run(args.current_backend, rate)
    sent_at: dict[str, float] = {}

    def keep(body: bytes, scheduled: float) -> None:
        at = body.find(b'"sid":"')
        if at >= 0:
            sent_at[body[at + 7 : at + 41].decode()] = scheduled

    gen = LoadGenerator("127.0.0.1", server.ports, requests.next, connections=args.connections)
    gen.keep = keep
    await gen.open()

    rss_samples: list[float] = []
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            rss_samples.append(sum(server.rss_mib().values()))
            try:
                await asyncio.wait_for(stop_sampling.wait(), timeout=1.0)
            except TimeoutError:
                pass

    sampler = asyncio.create_task(sample())
    cpu0, host0, t_start = server.cpu_seconds(), host_cpu(), time.perf_counter()
    own0 = sum(os.times()[:2])
    instrumented: list[dict[str, dict[str, Any]]] = []

    async def after_warmup() -> None:
        await asyncio.sleep(args.warmup)
        instrumented.append(read_instruments(args.instrument))

    marker = asyncio.create_task(after_warmup()) if args.instrument else None
    result = await gen.run_open(rate, args.duration, args.warmup)
    t_sent = time.perf_counter()
    if marker is not None:
        await marker
        print_instruments(instrumented[0], read_instruments(args.instrument))
    window = (result.first, result.first + args.duration)
    in_window = sum(1 for t in seen.delivered_at.values() if window[0] <= t < window[1])
    run.backlog = len(sent_at) - len(seen.delivered_at)

    # Wait for the pipeline to drain: every accepted message delivered, or no progress for 30 s.
    last, last_change = len(seen.delivered_at), time.perf_counter()
    give_up = time.perf_counter() + args.max_drain
    while len(seen.delivered_at) < len(sent_at) and time.perf_counter() - last_change < 30:
        if time.perf_counter() > give_up:
            print(f"  gave up waiting after {args.max_drain:g} s of drain", flush=True)
            break
        await asyncio.sleep(0.2)
        if len(seen.delivered_at) != last:
            last, last_change = len(seen.delivered_at), time.perf_counter()
    await asyncio.sleep(1.0)  # late duplicates
    t_end = time.perf_counter()
    stop_sampling.set()
    await sampler
    gen.close()

    elapsed = t_end - t_start
    run.cpu = (server.cpu_seconds() - cpu0) / elapsed
    host = host_cpu()
    run.bench = (sum(os.times()[:2]) - own0) / elapsed
    run.others = (host[0] - host0[0]) / elapsed - run.cpu - run.bench
    run.accepted = result.ok
    run.errors = sum(result.errors.values())
    run.accept_rate = result.rate
    run.delivered_rate = in_window / args.duration
    run.drain = max(0.0, (max(seen.delivered_at.values(), default=t_sent)) - t_sent)
    run.latencies = [seen.delivered_at[sid] - t0 for sid, t0 in sent_at.items() if sid in seen.delivered_at]
    run.missing = sum(1 for sid in sent_at if sid not in seen.delivered_at)
    run.callbacks_per_message = seen.received / max(len(sent_at), 1)
    run.duplicates = seen.duplicates
    run.rss = rss_samples
    if result.errors:
        print(f"  request errors: {result.errors}", flush=True)
    print(
        f"  callbacks by status: {seen.by_status}, duplicate delivered: {seen.duplicates}, "
        f"told twice by status: {seen.twice or 'none'}",
        flush=True,
    )
    return run


def read_instruments(directory: str) -> dict[str, dict[str, Any]]:
    """Each instrumented process's running totals (bench/instrument/sitecustomize.py), by pid."""
    found = {}
    for path in Path(directory).glob("*.json"):
        with contextlib.suppress(OSError, ValueError):
            found[path.stem] = json.loads(path.read_text())
    return found


def print_instruments(start: dict[str, dict[str, Any]], end: dict[str, dict[str, Any]]) -> None:
    """What each process did with SQLite's writer lock over the measured window."""
    for pid, last in sorted(end.items(), key=lambda kv: kv[1]["role"]):
        first = start.get(pid)
        if first is None or last["at"] <= first["at"]:
            continue
        span = last["at"] - first["at"]
        lock = {k: (last["lock"][k] - first["lock"][k]) / span for k in last["lock"]}
        print(
            f"  {last['role']} {pid}: writer lock held {lock['held']:.0%} (on a CPU {lock['cpu']:.0%}, "
            f"run queue {lock['run_queue']:.0%}), waited for {lock['waited']:.0%}, "
            f"{lock['transactions']:.0f} transactions/s",
            flush=True,
        )
        jobs = {
            name: (cpu - first["jobs"].get(name, [0, 0.0])[1]) / span * 1000 for name, (_, cpu) in last["jobs"].items()
        }
        inside = ", ".join(f"{name} {ms:.1f}" for name, ms in sorted(jobs.items(), key=lambda kv: -kv[1]) if ms >= 0.5)
        print(f"    CPU in combined writes, ms/s: {inside}", flush=True)


def one_rate(backend: str, rate: float, args: argparse.Namespace) -> Run:
    args.current_backend = backend
    with workdir() as wd, store(backend, wd) as url:
        config = write_config(wd / "bench.toml", args.pacing)
        env = bench_env(url, free_port(), config, **dict(args.env))
        tenant = provision(env, args.senders)

        async def main() -> Run:
            seen = Callbacks()
            loop = asyncio.get_running_loop()
            receiver = await loop.create_server(lambda: _Receiver(seen), "127.0.0.1", 0, backlog=1024)
            port = receiver.sockets[0].getsockname()[1]
            server = await asyncio.to_thread(
                lambda: Server(env, wd / "serve.log", *args.serve_arg, api_procs=args.api_procs)
            )
            spies = server.profile(Path(f"{args.py_spy}.{backend}.{rate:g}.txt")) if args.py_spy else []
            try:
                requests = Requests(
                    tenant, f"127.0.0.1:{env['PIGEON_PORT']}", status_callback=f"http://127.0.0.1:{port}/status"
                )
                return await measure(server, requests, seen, rate, args)
            finally:
                stop_profilers(spies)
                await asyncio.to_thread(server.stop)
                receiver.close()
                if args.show_log:
                    print((wd / "serve.log").read_text()[-3000:])

        return asyncio.run(main())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds per offered rate")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds sent before measuring")
    p.add_argument("--rates", default="500,1000,1500,2000", help="offered messages/s, comma-separated")
    p.add_argument("--max-drain", type=float, default=300.0, help="longest wait for the backlog, seconds")
    add_connections_option(p)
    p.add_argument("--senders", type=int, default=20, help="sender numbers the load is spread over")
    p.add_argument("--pacing", type=float, default=1000.0, help="segments/s per sender (PIGEON_CONFIG)")
    p.add_argument(
        "--serve-arg", action="append", default=[], help="extra argument for `pigeon serve`, e.g. --workers=1"
    )
    p.add_argument("--api-procs", type=int, default=1, help="API processes (pigeon serve --api-processes N)")
    p.add_argument("--env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)), help="K=V for serve")
    p.add_argument("--py-spy", metavar="PREFIX", help="profile the server with py-spy into PREFIX.<backend>.<rate>.txt")
    p.add_argument("--show-log", action="store_true", help="print the end of the server log")
    p.add_argument(
        "--instrument",
        action="store_true",
        help="time SQLite's writer lock and the combined writes in each server process (slows it 10-20 %%)",
    )
    args = p.parse_args()
    if args.instrument:
        args.instrument = tempfile.mkdtemp(prefix="pigeon-instrument-")
        args.env += [
            ("PYTHONPATH", str(Path(__file__).resolve().parent / "instrument")),
            ("PIGEON_BENCH_INSTRUMENT", args.instrument),
        ]
    use_uvloop()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"e2e bench  {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {machine()}")
    extra = " ".join(args.serve_arg) or "(API and workers in one process)"
    if args.api_procs > 1:
        extra += f", {args.api_procs} API processes"
    print(
        f"duration {args.duration:g}s (+{args.warmup:g}s warm-up) per rate, {args.senders} senders, "
        f"pigeon serve {extra}\n"
    )
    print(HEADER, flush=True)
    try:
        for backend in backends:
            for rate in args.rates.split(","):
                print(line(one_rate(backend, float(rate), args)), flush=True)
    finally:
        if args.instrument:
            shutil.rmtree(args.instrument, ignore_errors=True)


if __name__ == "__main__":
    main()
