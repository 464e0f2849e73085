"""What both benchmarks share: a store per backend, provisioning through the `pigeon` CLI, a
`pigeon serve` subprocess, a raw asyncio HTTP/1.1 load generator and process accounting.

The load generator is open-loop: request i is due at t0 + i/rate whatever happened to the
requests before it, and its latency runs from that scheduled time to the last byte of the
answer, so a server that falls behind shows it as latency (no coordinated omission). It
speaks HTTP/1.1 over keep-alive connections with a hand-written asyncio Protocol: a few
microseconds of CPU per request, so that on a 2-core machine the generator takes as little
as possible from the server it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
PIGEON = str(BIN / "pigeon")
PG_ADMIN = os.environ.get("PIGEON_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- stores -------------------------------------------------------------------------------------


@contextlib.contextmanager
def store(backend: str, workdir: Path) -> Iterator[str]:
    """A fresh, empty database URL for `backend`, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    name = f"pigeon_bench_{uuid.uuid4().hex[:10]}"
    admin = PG_ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        autovacuum = conn.execute("SHOW autovacuum").fetchone()
    if autovacuum is not None and autovacuum[0] != "on":
        # The outbox and the messages are updated several times per message: without
        # autovacuum their dead rows pile up and every run slows down as it goes (measured:
        # 600,000 dead rows against 250,000 live in the outbox after five minutes).
        print("  note: this PostgreSQL server runs with autovacuum off; long runs slow down", file=sys.stderr)
    try:
        yield f"{admin}/{name}"
    finally:
        if os.environ.get("PIGEON_BENCH_KEEP"):
            print(f"  kept {admin}/{name}", file=sys.stderr)
        else:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pigeon-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_config(path: Path, rate: float) -> Path:
    """Pacing raised for every kind of sender, so that neither pacing nor the 21611 queue
    limit (ten hours of traffic at the sender's rate) is what a benchmark measures."""
    path.write_text(f"[pacing]\nlong_code = {rate}\ntoll_free = {rate}\nshort_code = {rate}\nalphanumeric = {rate}\n")
    return path


@dataclass
class Tenant:
    account_sid: str
    auth_token: str
    senders: list[str]


def bench_env(database_url: str, port: int, config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update(
        PIGEON_DATABASE_URL=database_url,
        PIGEON_HOST="127.0.0.1",
        PIGEON_PORT=str(port),
        PIGEON_CONFIG=str(config),
        PIGEON_LOG_LEVEL="warning",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra)  # --env may override any of them (PIGEON_LOG_LEVEL=info, say)
    return env


def _cli(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run([PIGEON, *args], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pigeon {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    value: dict[str, object] = json.loads(done.stdout)
    return value


def provision(env: dict[str, str], senders: int) -> Tenant:
    """The store, an account and `senders` SMS-capable numbers, made with the `pigeon` CLI (which
    makes the store only when asked to: `pigeon db upgrade`)."""
    made = subprocess.run([PIGEON, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    if made.returncode != 0:
        raise RuntimeError(f"pigeon db upgrade failed:\n{made.stdout}\n{made.stderr}")
    account = _cli(env, "accounts", "create", "--friendly-name", "bench", "--json")
    sid = str(account["sid"])
    numbers = [f"+1415555{2000 + i:04d}" for i in range(senders)]
    procs: deque[subprocess.Popen[str]] = deque()
    for number in numbers:
        procs.append(
            subprocess.Popen(
                [PIGEON, "numbers", "add", "--account", sid, number, "--json"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        while len(procs) >= 4:
            _reap(procs.popleft())
    while procs:
        _reap(procs.popleft())
    return Tenant(sid, str(account["auth_token"]), numbers)


def _reap(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"pigeon numbers add failed: {err}")


# -- the server -----------------------------------------------------------------------------------


class Server:
    """`pigeon serve` as a subprocess (in its own process group, so that its worker and API
    children go with it). With api_procs > 1 it serves the API from that many processes on
    the one port (`pigeon serve --api-processes N`)."""

    def __init__(self, env: dict[str, str], log: Path, *args: str, api_procs: int = 1) -> None:
        self.env = env
        self.log = log
        self.ports = [int(env["PIGEON_PORT"])]
        extra = ["--api-processes", str(api_procs)] if api_procs > 1 else []
        with log.open("ab") as out:
            self.procs: list[subprocess.Popen[bytes]] = [
                subprocess.Popen(
                    [PIGEON, "serve", *extra, *args],
                    env=env,
                    # Not the caller's directory: `serve` starts its workers with `python -m
                    # pigeon.cli`, which imports `pigeon` from the current directory first. From a
                    # checkout, a run meant to measure another tree (PYTHONPATH=that tree) would
                    # then measure this checkout's workers.
                    cwd=log.parent,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            ]
        self._wait_healthy(self.procs[0], self.ports[0])

    def _wait_healthy(self, proc: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"pigeon serve exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pigeon serve did not become healthy:\n{self.log.read_text()}")

    def pids(self) -> list[int]:
        """The servers and every process they started."""
        roots = {p.pid for p in self.procs}
        found = sorted(roots)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) in roots:
                    found.append(int(entry.name))
        return found

    def profile(self, path: Path) -> list[subprocess.Popen[bytes]]:
        """py-spy (pip install py-spy) sampling each server and its children, into path[.n].
        BENCH_GIL=1 samples only the thread holding the GIL, BENCH_IDLE=1 idle threads too
        (where they wait), BENCH_SPY_RATE samples a second (250; py-spy slows what it samples)."""
        gil = ["--gil"] if os.environ.get("BENCH_GIL") else []
        gil += ["--idle"] if os.environ.get("BENCH_IDLE") else []
        return [
            subprocess.Popen(
                [
                    str(BIN / "py-spy"),
                    "record",
                    "--pid",
                    str(p.pid),
                    "--subprocesses",
                    "--format",
                    "raw",
                    "--rate",
                    os.environ.get("BENCH_SPY_RATE", "250"),
                    *gil,
                    "--output",
                    f"{path}{'' if i == 0 else f'.{i}'}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i, p in enumerate(self.procs)
        ]

    def cpu_seconds(self) -> float:
        return sum(process_cpu(pid) for pid in self.pids())

    def rss_mib(self) -> dict[int, float]:
        return {pid: rss_mib(pid) for pid in self.pids()}

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def stop_profilers(spies: list[subprocess.Popen[bytes]]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=60)


def host_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores together."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


def process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- the load generator -----------------------------------------------------------------------------


def recipient(rng: random.Random) -> str:
    """A US mobile-looking number that the built-in network delivers (never ...0100-0199)."""
    return f"+1646555{rng.randrange(2000, 10000):04d}"


class Requests:
    """Form POSTs to Messages.json, spread round-robin over the tenant's senders."""

    def __init__(self, tenant: Tenant, host: str, *, status_callback: str | None = None, seed: int = 7) -> None:
        self.path = f"/2010-04-01/Accounts/{tenant.account_sid}/Messages.json"
        auth = base64.b64encode(f"{tenant.account_sid}:{tenant.auth_token}".encode()).decode()
        self.head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {auth}\r\n"
            "User-Agent: pigeon-bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        )
        self.senders = [s.replace("+", "%2B") for s in tenant.senders]
        self.callback = "&StatusCallback=" + urllib.parse.quote(status_callback, safe="") if status_callback else ""
        self.rng = random.Random(seed)
        self.n = 0

    def next(self) -> bytes:
        sender = self.senders[self.n % len(self.senders)]
        self.n += 1
        to = recipient(self.rng).replace("+", "%2B")
        body = f"To={to}&From={sender}&Body=Bench+message+{self.n}{self.callback}"
        return f"{self.head}Content-Length: {len(body)}\r\n\r\n{body}".encode()


@dataclass
class Result:
    offered: float  # requests per second; 0 for closed loop
    scheduled: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, measured window only
    first: float = 0.0
    last: float = 0.0
    measured_ok: int = 0
    bodies: list[bytes] = field(default_factory=list)
    sent_at: dict[bytes, float] = field(default_factory=dict)
    others: float = 0.0  # CPU other processes on the machine used meanwhile (1.0 = one core)

    @property
    def window(self) -> float:
        return max(self.last - self.first, 1e-9)

    @property
    def rate(self) -> float:
        return self.measured_ok / self.window

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class _Conn(asyncio.Protocol):
    def __init__(self, gen: LoadGenerator) -> None:
        self.gen = gen
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.t0 = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, payload: bytes, t0: float) -> None:
        assert self.transport is not None
        self.t0 = t0
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buf += data
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
        status = int(self.buf[9:12])
        body = bytes(self.buf[end + 4 : total])
        del self.buf[:total]
        self.gen.done(self, status, body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gen.lost(self)


def add_connections_option(p: argparse.ArgumentParser) -> None:
    """--connections, for the benches that drive the API with a LoadGenerator."""
    p.add_argument(
        "--connections",
        type=int,
        default=128,
        help="keep-alive connections of the generator (all one account: past 250 in progress at once the "
        "API answers 20429 unless run with --env PIGEON_API_CONCURRENCY_PER_ACCOUNT=0)",
    )


class LoadGenerator:
    """Open-loop (or, with rate 0, closed-loop) POSTs over `connections` keep-alive connections."""

    def __init__(self, host: str, ports: list[int], make: Callable[[], bytes], *, connections: int) -> None:
        self.host, self.ports, self.make = host, ports, make
        self.connections = connections
        self.free: deque[_Conn] = deque()
        self.pending: deque[tuple[bytes, float]] = deque()
        self.result = Result(0)
        self.measure_from = 0.0
        self.in_flight = 0
        self.closed_loop = False
        self.stop_at = 0.0
        #: Called with each 201's body and the request's scheduled time.
        self.keep: Callable[[bytes, float], None] | None = None
        self.closing = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for i in range(self.connections):
            port = self.ports[i % len(self.ports)]
            _, conn = await loop.create_connection(lambda: _Conn(self), self.host, port)
            self.free.append(conn)

    def close(self) -> None:
        self.closing = True
        for conn in self.free:
            if conn.transport:
                conn.transport.close()

    def _dispatch(self, payload: bytes, t0: float) -> None:
        if self.free:
            conn = self.free.popleft()
            self.in_flight += 1
            conn.send(payload, t0)
        else:
            self.pending.append((payload, t0))

    def done(self, conn: _Conn, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.in_flight -= 1
        r = self.result
        if status == 201:
            r.ok += 1
            if self.keep is not None:
                self.keep(body, conn.t0)
        else:
            key = f"HTTP {status}"
            r.errors[key] = r.errors.get(key, 0) + 1
            if r.errors[key] <= 3:
                print(f"  ! {key}: {body[:300]!r}", file=sys.stderr)
        if conn.t0 >= self.measure_from:
            r.latencies.append(now - conn.t0)
            r.measured_ok += status == 201
            r.last = now
        if self.closed_loop and now < self.stop_at:
            self.in_flight += 1
            conn.send(self.make(), now)
            r.scheduled += 1
        elif self.pending:
            payload, t0 = self.pending.popleft()
            self.in_flight += 1
            conn.send(payload, t0)
        else:
            self.free.append(conn)

    def lost(self, conn: _Conn) -> None:
        if self.closing:
            return
        if conn in self.free:  # an idle keep-alive connection the server closed
            self.free.remove(conn)
            return
        self.result.errors["connection lost"] = self.result.errors.get("connection lost", 0) + 1

    async def run_open(self, rate: float, duration: float, warmup: float) -> Result:
        """Send `rate` requests per second for warmup + duration seconds; measure after warmup."""
        self.result = r = Result(rate)
        start = time.perf_counter() + 0.05
        self.measure_from = start + warmup
        r.first = self.measure_from
        total = int(rate * (warmup + duration))
        i = 0
        while i < total:
            now = time.perf_counter()
            due = start + i / rate
            if due > now:
                # At least a millisecond: sleeping to the exact send time of each request costs
                # the generator a timer wake-up per request, CPU taken from the server it measures.
                # Latency still counts from each request's own scheduled time.
                await asyncio.sleep(max(due - now, 0.001))
                continue
            while i < total and start + i / rate <= now:
                self._dispatch(self.make(), start + i / rate)
                i += 1
        r.scheduled = total
        await self._drain()
        return r

    async def run_closed(self, duration: float, warmup: float) -> Result:
        """Every connection sends its next request as soon as the last one is answered."""
        self.result = r = Result(0)
        self.closed_loop = True
        start = time.perf_counter()
        self.measure_from = start + warmup
        r.first = self.measure_from
        self.stop_at = start + warmup + duration
        conns = list(self.free)
        self.free.clear()
        for conn in conns:
            self.in_flight += 1
            conn.send(self.make(), time.perf_counter())
            r.scheduled += 1
        await asyncio.sleep(warmup + duration)
        await self._drain()
        self.closed_loop = False
        return r

    async def _drain(self, timeout: float = 60.0) -> None:
        deadline = time.perf_counter() + timeout
        while (self.in_flight or self.pending) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if self.in_flight or self.pending:
            self.result.errors["unanswered"] = self.in_flight + len(self.pending)


def use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {sys.version.split()[0]}"
