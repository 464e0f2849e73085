"""Durable accept throughput: POST …/Messages.json at fixed offered loads against `pigeon serve`.

Starts `pigeon serve` as a subprocess with the workers off (PIGEON_RUN_WORKERS=false), so it
measures the API and the store: authentication, validation, the group-commit writer, and a
201 only after the message's batch has committed. Sends are spread over many sender numbers
and pacing is raised (PIGEON_CONFIG), so the 21611 queue limit never triggers.

For each offered rate the open-loop generator sends for --warmup + --duration seconds and
reports, over the measured window: accepted/s (201s), errors, latency percentiles from each
request's scheduled send time to its answer, and the CPU the server and the generator used.
"max" is closed-loop: every connection sends again as soon as it is answered.

    .venv/bin/python bench/accept.py --backend both --duration 20 --rates 500,1000,2000,3000,max
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (
    LoadGenerator,
    Requests,
    Result,
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

HEADER = (
    f"{'backend':<9}{'offered/s':>10}{'accepted/s':>11}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}"
    f"{'p99 ms':>9}{'max ms':>9}{'server CPU':>11}{'CPU ms/req':>11}{'gen CPU':>9}{'others':>8}{'RSS MiB':>9}"
)


def row(backend: str, label: str, r: Result, server_cpu: float, gen_cpu: float, rss: float, per_req: float) -> str:
    errors = sum(r.errors.values())
    return (
        f"{backend:<9}{label:>10}{r.rate:>11.0f}{errors:>8}{r.percentile(50) * 1000:>9.1f}"
        f"{r.percentile(95) * 1000:>9.1f}{r.percentile(99) * 1000:>9.1f}{max(r.latencies, default=0) * 1000:>9.1f}"
        f"{server_cpu:>10.0%}{per_req * 1000:>11.2f}{gen_cpu:>9.0%}{r.others:>8.0%}{rss:>9.0f}"
    )


async def step(
    server: Server, requests: Requests, rate: str, args: argparse.Namespace
) -> tuple[Result, float, float, float]:
    gen = LoadGenerator("127.0.0.1", server.ports, requests.next, connections=args.connections)
    await gen.open()
    cpu0, own0, t0, host0 = server.cpu_seconds(), sum(os.times()[:2]), time.perf_counter(), host_cpu()
    if rate == "max":
        result = await gen.run_closed(args.duration, args.warmup)
    else:
        result = await gen.run_open(float(rate), args.duration, args.warmup)
    elapsed = time.perf_counter() - t0
    cpu, own = server.cpu_seconds() - cpu0, sum(os.times()[:2]) - own0
    host1 = host_cpu()
    others = (host1[0] - host0[0]) - cpu - own  # what other processes on the machine used
    result.others = others / elapsed
    gen.close()
    return result, cpu / elapsed, own / elapsed, cpu / max(result.ok, 1)


def run_backend(backend: str, args: argparse.Namespace) -> list[str]:
    lines = []
    with workdir() as wd, store(backend, wd) as url:
        config = write_config(wd / "bench.toml", args.pacing)
        env = bench_env(url, free_port(), config, PIGEON_RUN_WORKERS="false", **dict(args.env))
        tenant = provision(env, args.senders)
        server = Server(env, wd / "serve.log", *args.serve_arg, api_procs=args.api_procs)
        spies = server.profile(Path(f"{args.py_spy}.{backend}.txt")) if args.py_spy else []
        try:
            requests = Requests(tenant, f"127.0.0.1:{env['PIGEON_PORT']}")
            for rate in args.rates.split(","):
                result, server_cpu, gen_cpu, per_req = asyncio.run(step(server, requests, rate.strip(), args))
                rss = sum(server.rss_mib().values())
                line = row(backend, rate.strip(), result, server_cpu, gen_cpu, rss, per_req)
                print(line, flush=True)
                if result.errors:
                    print(f"  errors: {result.errors}", flush=True)
                lines.append(line)
        finally:
            stop_profilers(spies)
            server.stop()
            if args.show_log:
                print((wd / "serve.log").read_text()[-3000:])
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per offered rate")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds sent before measuring, per rate")
    p.add_argument("--rates", default="500,1000,2000,3000,max", help="offered requests/s, comma-separated; max")
    add_connections_option(p)
    p.add_argument("--senders", type=int, default=50, help="sender numbers the load is spread over")
    p.add_argument("--pacing", type=float, default=1000.0, help="segments/s per sender (PIGEON_CONFIG)")
    p.add_argument("--api-procs", type=int, default=1, help="API processes (pigeon serve --api-processes N)")
    p.add_argument("--serve-arg", action="append", default=[], help="extra argument for `pigeon serve`")
    p.add_argument("--env", action="append", default=[], type=lambda s: tuple(s.split("=", 1)), help="K=V for serve")
    p.add_argument("--py-spy", metavar="PREFIX", help="profile the server with py-spy into PREFIX.<backend>.txt")
    p.add_argument("--show-log", action="store_true", help="print the end of the server log")
    args = p.parse_args()
    use_uvloop()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    print(f"accept bench  {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}  {machine()}")
    procs = f", {args.api_procs} API processes" if args.api_procs > 1 else ""
    print(
        f"duration {args.duration:g}s (+{args.warmup:g}s warm-up) per rate, {args.connections} connections{procs}, "
        f"{args.senders} senders\n"
    )
    print(HEADER, flush=True)
    for backend in backends:
        run_backend(backend, args)


if __name__ == "__main__":
    main()
