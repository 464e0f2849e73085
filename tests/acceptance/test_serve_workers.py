"""`pigeon serve --workers N` owns its worker processes: a worker that dies is started again,
and stopping `pigeon serve` (SIGTERM), or killing it outright, leaves no worker behind. The
tests signal the one process, as a service manager or `kill PID` does; the fixtures stop a
whole process group, which would hide an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

from tests.acceptance.conftest import PIGEON, Server
from tests.acceptance.processes import alive, alive_after, children_running


def _workers_of(pid: int, count: int) -> list[int]:
    deadline = time.monotonic() + 20
    while len(found := children_running(pid, b"worker")) != count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(found) == count, f"{count} worker processes under pigeon serve, found {found}"
    return found


def _delivered(srv: Server, body: str) -> str:
    client = srv.client()
    sid = client.messages.create(to="+14155550123", from_=srv.numbers[0], body=body).sid
    deadline = time.monotonic() + 20
    while (status := client.messages(sid).fetch().status) != "delivered" and time.monotonic() < deadline:
        time.sleep(0.2)
    return str(status)


def test_sigterm_to_serve_stops_its_workers_first(server_factory: Any) -> None:
    srv: Server = server_factory("sqlite", args=("--workers", "2"))
    assert srv.process is not None
    workers = _workers_of(srv.process.pid, 2)
    assert _delivered(srv, "before the stop") == "delivered"

    os.kill(srv.process.pid, signal.SIGTERM)
    srv.process.wait(timeout=30)
    # It still ends as killed by SIGTERM (what service managers count as a clean stop), but
    # only once its workers have stopped: before, uvicorn re-raised the signal and the
    # process died before its cleanup ran, leaving both workers running on their own.
    assert srv.process.returncode == -signal.SIGTERM
    assert not [p for p in workers if alive(p)], "a worker outlived pigeon serve"
    srv.process = None


def test_a_killed_serve_takes_its_workers_with_it(server_factory: Any) -> None:
    srv: Server = server_factory("sqlite", args=("--workers", "1"))
    assert srv.process is not None
    first = srv.process.pid
    workers = _workers_of(first, 1)

    os.kill(first, signal.SIGKILL)  # no cleanup at all: the worker must notice by itself
    srv.process.wait(timeout=10)
    assert not alive_after(workers), "the worker outlived a killed pigeon serve"
    srv.process = None


def test_a_worker_that_dies_is_started_again(server_factory: Any) -> None:
    srv: Server = server_factory("sqlite", args=("--workers", "1"))
    assert srv.process is not None
    (dead,) = _workers_of(srv.process.pid, 1)

    os.kill(dead, signal.SIGKILL)
    assert not alive_after([dead])
    deadline = time.monotonic() + 20
    while not (replaced := children_running(srv.process.pid, b"worker")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert replaced and dead not in replaced
    assert "worker process" in srv.log() and "starting another" in srv.log()
    # The new worker does the work: a message sent now is delivered.
    assert _delivered(srv, "after a worker died") == "delivered"


def test_sigterm_while_serve_is_starting_stops_its_workers_too(server_factory: Any) -> None:
    """SIGTERM as soon as the worker exists, perhaps before uvicorn listens for the signal."""
    srv: Server = server_factory("sqlite", start=False)
    log = srv.workdir / "sigterm-at-start.log"
    with log.open("wb") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [str(PIGEON), "serve", "--workers", "1"],
            env=srv.env,
            cwd=srv.workdir,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not (workers := children_running(process.pid, b"worker")) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert workers, "pigeon serve started no worker"
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGTERM, log.read_text()[-3000:]
        assert not alive_after(workers), "a worker outlived pigeon serve"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
