"""Serving the API from one process or several that share the listening socket.

Python runs one thread of Python code at a time per process, so one API process uses one core
however many the machine has. `pigeon serve --api-processes N` binds the port N times with
SO_REUSEPORT (the first bound alone, so that a port someone else listens on is refused) and
hands a socket each to N - 1 more API processes (`pigeon serve-api`), each with its own event
loop and its own group-commit writer. The kernel spreads new connections
evenly over the sockets. (One socket shared by all would not do: whichever process happens to
be in accept() takes the connection, and measured with 128 keep-alive clients one process got
118 of them and a core's worth of work while the other idled.) Everything they share is in the store: on SQLite their writers take
turns on the database's writer lock (store/engine.py), on PostgreSQL they are ordinary clients.

The first process keeps the workers and the carriers, and with them the carrier metrics. The
others answer GET /metrics by asking the first over a private Unix socket, so a scrape sees
the same figures whichever process takes it. With `--workers N` the workers run in processes
of their own, and each serves its figures on a private Unix socket, which the first process's
GET /metrics reads (`pigeon.api.metrics.gathered_metrics_route`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

#: How often `pigeon serve` checks the processes it started (and restarts one that died).
SUPERVISE_EVERY = 1.0
#: A child that dies sooner than this after its start counts as failing to start...
QUICK_DEATH = 10.0
#: ...and the pause before the next start doubles each time, up to this (seconds).
MAX_RESTART_PAUSE = 60.0


def tune_gc() -> None:
    """Called once the app is built. Python's cyclic garbage collector runs every 700 net
    allocations and a full collection walks every object the process holds: under load that
    adds pauses of tens of milliseconds to whichever requests are in flight (measured: p99 at
    1,000 accepts/s halved without them). Objects made at start-up live for the life of the
    process, so they are moved out of the collector's sight (gc.freeze), and collections run
    less often; request garbage is freed by reference counting in any case."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def run_event_loop(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `main` on uvloop where it is installed (uvicorn[standard] brings it; the API's loop
    is uvloop already through uvicorn), else on asyncio's own loop. A worker process spends
    much of its time in the loop: a signed status callback over aiohttp measured 130 µs of CPU
    on asyncio's loop and 91 µs on uvloop, against a local receiver answering 204; over the
    webhook sender's own HTTP/1.1 client since (pigeon.webhooks.http1), a status callback's
    request measured 27-31 µs on asyncio's loop and 24-27 µs on uvloop."""
    try:
        import uvloop
    except ImportError:  # not on every platform (Windows)
        asyncio.run(main())
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def listen(host: str, port: int, *, shared: bool = False, joining: bool = False) -> socket.socket:
    """A listening socket of the API, inheritable.

    `shared`: the first of several on the same port, among which the kernel spreads the
    connections (SO_REUSEPORT). It is bound alone, and only then opened to the others: a
    socket that asks for SO_REUSEPORT before it binds may join any group of the same user on
    that port, so a second `pigeon serve --api-processes 2` on a port already served started
    without a word and took half of the first one's connections. Bound alone, it is refused
    (EADDRINUSE) by any socket listening there, whatever options that one has.
    `joining`: one of the other API processes' sockets, which joins the first's group."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if joining:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if shared:
            # Linux forms the group when the socket starts listening, from the option as it
            # is then; the bind above has already checked that the port was nobody's.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, *, shutdown_grace: int = 30) -> uvicorn.Config:
    """`shutdown_grace`: on SIGTERM, the seconds to wait for requests in progress before they
    are cancelled. Unbounded (uvicorn's default), one client that sent half a request and then
    nothing kept the process from stopping for as long as it stayed connected.

    No logging configuration of uvicorn's own (log_config=None): its default installs
    plain-text handlers, so its lines (a malformed request, a second copy of every 500 with a
    traceback of some fifty lines) broke the one-JSON-object-per-line log; its loggers now
    reach Pigeon's handler (pigeon.logs). Warnings and up only, no access log, as before:
    the request log records every API call.

    No proxy headers (proxy_headers=False): uvicorn's default trusts X-Forwarded-For and
    X-Forwarded-Proto from 127.0.0.1 and rewrites the client address and scheme with them,
    so that any local caller (or a local proxy that passes the client's header on) chose the
    address in the request log, even with PIGEON_PROXY_HOPS=0, where the header is to be
    ignored. The request log reads X-Forwarded-For itself, as far as PIGEON_PROXY_HOPS says
    (pigeon.api.request_log); the scope keeps the connection's own address and scheme."""
    return uvicorn.Config(
        app,
        proxy_headers=False,
        log_config=None,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_graceful_shutdown=shutdown_grace,
    )


class Children:
    """Child processes of `pigeon serve`, kept at `count`: started, restarted if one dies (a
    crashed worker would otherwise leave messages queued with nothing to say why), stopped
    with the parent. Each also stops by itself if the parent dies (`watch_parent`).

    A child that dies soon after it started (a configuration it rejects, a store it cannot
    open) is started again after a pause that doubles each time, up to a minute, rather than
    every second for ever; one that ran a while is started again at once."""

    def __init__(self, name: str, spawn: Callable[[int], subprocess.Popen[bytes]], count: int) -> None:
        self.name = name
        self._spawn = spawn
        self.count = count
        self._procs: list[subprocess.Popen[bytes] | None] = []
        self._started: list[float] = []
        self._failures: list[int] = []  # quick deaths in a row, per slot
        self._due: list[float] = []  # when a dead slot's next process starts
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name=f"{name}-processes", daemon=True)

    def start(self) -> None:
        now = time.monotonic()
        self._procs = [self._spawn(i) for i in range(self.count)]
        self._started = [now] * self.count
        self._failures = [0] * self.count
        self._due = [now] * self.count
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_EVERY):
            for i, proc in enumerate(self._procs):
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                if proc is not None and proc.poll() is not None:
                    quick = now - self._started[i] < QUICK_DEATH
                    self._failures[i] = self._failures[i] + 1 if quick else 0
                    pause = min(MAX_RESTART_PAUSE, 2.0 ** (self._failures[i] - 1)) if self._failures[i] else 0.0
                    self._due[i] = now + pause
                    self._procs[i] = None
                    log.warning(
                        "%s process %d exited with %s; %s",
                        self.name,
                        proc.pid,
                        proc.returncode,
                        f"starting another in {pause:g} s" if pause else "starting another",
                        extra={"child_pid": proc.pid, "exit_status": proc.returncode, "restart_in_seconds": pause},
                    )
                if self._procs[i] is None and now >= self._due[i]:
                    self._procs[i] = self._spawn(i)
                    self._started[i] = now

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to each (they finish what they hold), then SIGKILL to any still there after
        `timeout`: what a killed worker held is reclaimed by the others or on the next start."""
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=SUPERVISE_EVERY * 5)  # it may be starting one
        procs = [p for p in self._procs if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class WorkerProcesses(Children):
    """`pigeon serve --workers N`: N `pigeon worker` processes that stop with this one. Each
    serves its metrics on a Unix socket of its own (`metrics_paths`, in a directory only this
    user may enter), the same path for the process that replaces one that died."""

    def __init__(self, count: int) -> None:
        super().__init__("worker", self._spawn_worker, count)
        self._dir = Path(tempfile.mkdtemp(prefix="pigeon-workers-"))  # 0700: only this user
        self.metrics_paths = [str(self._dir / f"worker-{i + 1}.sock") for i in range(count)]

    def _spawn_worker(self, slot: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pigeon.cli",
                "worker",
                "--parent",
                str(os.getpid()),
                "--metrics-socket",
                self.metrics_paths[slot],
            ]
        )

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        shutil.rmtree(self._dir, ignore_errors=True)


async def serve_metrics(path: str, registry: CollectorRegistry) -> asyncio.AbstractServer:
    """A worker process's metrics for the `pigeon serve` that started it: whoever connects to
    the Unix socket at `path` reads the Prometheus text of `registry`, and the connection
    closes. (A socket file left by a worker that died is replaced.)"""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(generate_latest(registry))
            await writer.drain()
        finally:
            writer.close()

    return await asyncio.start_unix_server(answer, path=path)


class ApiProcesses(Children):
    """The API processes after the first, each on a socket of its own on the first's port."""

    def __init__(self, host: str, port: int, count: int, env: dict[str, str]) -> None:
        super().__init__("API", self._spawn_api, count)
        self.host, self.port = host, port
        self.env = env
        self._dir = Path(tempfile.mkdtemp(prefix="pigeon-api-"))  # 0700: only this user
        self.metrics_path = str(self._dir / "metrics.sock")
        self.metrics_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.metrics_sock.bind(self.metrics_path)
        self.metrics_sock.listen(64)
        #: Where each of them serves its own figures (its requests), for the first to gather:
        #: API process 2, 3 ..., the same path for the process that replaces one that died.
        self.metrics_paths = [str(self._dir / f"api-{slot + 2}.sock") for slot in range(count)]

    def _spawn_api(self, slot: int) -> subprocess.Popen[bytes]:
        # This process lets go of the socket once the child has it: a socket in the group that
        # nobody accepts on would still be given connections, so it must close with its child.
        with listen(self.host, self.port, joining=True) as sock:
            fd = sock.fileno()
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pigeon.cli",
                    "serve-api",
                    "--fd",
                    str(fd),
                    "--metrics-from",
                    self.metrics_path,
                    "--metrics-socket",
                    self.metrics_paths[slot],
                    "--parent",
                    str(os.getpid()),
                ],
                pass_fds=(fd,),
                env=self.env,
            )

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)
        self.metrics_sock.close()
        shutil.rmtree(self._dir, ignore_errors=True)


class _Stopped(BaseException):
    """SIGTERM reached `pigeon serve` while uvicorn was not handling it. Raised from the signal
    handler wherever the main thread happens to be, so it is a BaseException, as
    KeyboardInterrupt is: an `except Exception` in the code it interrupts (uvicorn's start-up,
    say) must not take it for an error of its own and turn it into one."""


class Shutdown:
    """What SIGTERM does in `stopped_by_signal_after_cleanup`: raise `_Stopped` until
    `hand_over` names another way to stop."""

    def __init__(self) -> None:
        self.stop: Callable[[], None] | None = None

    def hand_over(self, stop: Callable[[], None]) -> None:
        """From now on SIGTERM calls `stop` instead of raising. Called right before uvicorn's
        `Server.run`: an exception raised while its event loop starts or runs (before uvicorn
        listens for the signal itself) leaves the loop marked running, the runner then fails
        to close it, and the process ended with that RuntimeError and exit status 1."""
        self.stop = stop


@contextlib.contextmanager
def stopped_by_signal_after_cleanup() -> Iterator[Shutdown]:
    """Around uvicorn's `Server.run` and what `pigeon serve` starts with it. Once uvicorn has
    shut down on SIGTERM it raises the signal again, and with Python's default disposition the
    process would die right there, before its `finally` stopped the workers and API processes
    it started (they would run on, orphaned). Here the first SIGTERM that uvicorn is not
    listening for either ends the block as an exception (before `Shutdown.hand_over`), so that
    the `finally` clauses inside it run, or asks uvicorn to stop (after it); either way the
    signal is raised again at the end, so the process still ends as killed by SIGTERM, as
    service managers expect. Later ones are only noted."""
    held: list[int] = []
    shutdown = Shutdown()

    def on_sigterm(sig: int, frame: object) -> None:
        held.append(sig)
        if len(held) > 1:
            return
        if shutdown.stop is not None:
            shutdown.stop()
            return
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield shutdown
    except _Stopped:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    if held:
        signal.raise_signal(signal.SIGTERM)


def watch_parent(parent: int) -> None:
    """In a process that `pigeon serve` (pid `parent`) started: stop (as on SIGTERM, finishing
    what is in flight) when that process is gone, so that a killed `pigeon serve` leaves
    nothing behind. The parent's pid comes from the command line rather than getppid(), which
    would already name init if the parent died while this process was starting."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(SUPERVISE_EVERY)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()
