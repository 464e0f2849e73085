"""Acceptance fixtures: a real `pigeon serve` process and the real `twilio` SDK pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from pigeon.bootstrap import ensure_first_account
from pigeon.ports import SystemClock
from pigeon.store.engine import Database
from pigeon.store.schema import upgrade
from tests.conftest import drop_pg_database, make_pg_database
from tests.integration.smsc.node import HERE, ensure_node_modules

PIGEON = Path(sys.executable).parent / "pigeon"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base_url: str
    database_url: str
    account_sid: str
    auth_token: str
    numbers: list[str]
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PIGEON), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def start(self, *args: str) -> None:
        assert self.process is None
        self.log_path = self.workdir / "serve.log"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(PIGEON), "serve", *args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pigeon serve exited early:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"pigeon serve did not become healthy:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        self.process = None

    def client(
        self, username: str | None = None, password: str | None = None, account_sid: str | None = None
    ) -> Client:
        return twilio_client(self.base_url, username or self.account_sid, password or self.auth_token, account_sid)


class LocalHttpClient(TwilioHttpClient):  # type: ignore[misc]  # the SDK ships no types
    """Rewrites every *.twilio.com URL to the local server (REFERENCE.md §j, approach 2)."""

    def __init__(self, base: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
        p = urllib.parse.urlsplit(url)
        if p.hostname and p.hostname.endswith("twilio.com"):
            url = self.base + urllib.parse.urlunsplit(("", "", p.path, p.query, p.fragment))
        return super().request(method, url, *args, **kw)


def twilio_client(base_url: str, username: str, password: str, account_sid: str | None = None) -> Client:
    return Client(username, password, account_sid, http_client=LocalHttpClient(base_url))


def _prepare(url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> Server:
    db = Database.from_url(url)
    upgrade(db.engine)
    first = ensure_first_account(db, SystemClock())
    db.dispose()
    assert first is not None
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIGEON_", "TWILIO_"))},
        "PIGEON_DATABASE_URL": url,
        "PIGEON_HOST": "127.0.0.1",
        "PIGEON_PORT": str(port),
        "NO_PROXY": "127.0.0.1,localhost",
        **(extra_env or {}),
    }
    return Server(
        base_url=f"http://127.0.0.1:{port}",
        database_url=url,
        account_sid=first.account["sid"],
        auth_token=first.account["auth_token"],
        numbers=[n["phone_number"] for n in first.numbers],
        workdir=workdir,
        env=env,
    )


def _store_url(backend: str, workdir: Path, n: int, request: pytest.FixtureRequest) -> tuple[str, str | None]:
    """(database URL, PostgreSQL database name to drop afterwards) for a new server's store."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'pigeon{n}.db'}", None
    pg_name, url = make_pg_database(request.getfixturevalue("pg_template"))
    return url, pg_name


@pytest.fixture
def server_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Make (and clean up) servers: factory(backend="sqlite"|"postgres", env={...}, start=True)."""
    made: list[tuple[Server, str | None]] = []

    def make(
        backend: str = "sqlite", env: dict[str, str] | None = None, start: bool = True, args: tuple[str, ...] = ()
    ) -> Server:
        url, pg_name = _store_url(backend, tmp_path, len(made), request)
        srv = _prepare(url, tmp_path, env)
        made.append((srv, pg_name))
        if start:
            srv.start(*args)
        return srv

    yield make
    for srv, pg_name in made:
        srv.stop()
        if pg_name:
            drop_pg_database(pg_name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, server_factory: Any) -> Server:
    """A running `pigeon serve`, once on SQLite and once on PostgreSQL."""
    srv: Server = server_factory(request.param)
    return srv


@pytest.fixture
def sqlite_server(server_factory: Any) -> Server:
    srv: Server = server_factory("sqlite")
    return srv


def _serving(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """A started server on the fixture's backend, stopped (and its database dropped) after."""
    workdir = tmp_path_factory.mktemp("pigeon")
    url, pg_name = _store_url(request.param, workdir, 0, request)
    srv = _prepare(url, workdir, env)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        if pg_name:
            drop_pg_database(pg_name)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One running `pigeon serve` per backend (and per xdist worker) for every test that asks
    for it, once on SQLite and once on PostgreSQL. Starting a server costs seconds; tests that
    share one keep apart by working in their own subaccount (support.py `new_tenant`)."""
    # No background delivery: these tests check the statuses the API itself gives and move
    # messages on through the store, so a dispatcher must not race them.
    yield from _serving(request, tmp_path_factory, {"PIGEON_RUN_WORKERS": "false"})


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def delivering_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A `pigeon serve` with its workers and the built-in network, shared by one module's tests
    (each in its own subaccount), once on SQLite and once on PostgreSQL."""
    yield from _serving(request, tmp_path_factory)


# -- the Node SMSC (the npm `smpp` package), for the SMPP end-to-end tests --------------------------


def start_smsc() -> tuple[subprocess.Popen[str], int]:
    ensure_node_modules()
    proc = subprocess.Popen(
        ["node", str(HERE / "smsc.js"), "0"],
        cwd=HERE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not port:
        line = proc.stdout.readline()
        if line:
            event = json.loads(line)
            if event.get("event") == "listening":
                port = int(event["port"])
    assert port, "the Node SMSC did not start"
    return proc, port


def stop_smsc(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def command(proc: subprocess.Popen[str], cmd: str, **fields: Any) -> dict[str, Any]:
    """One control command to a Node SMSC; its reply (the events printed meanwhile are skipped)."""
    assert proc.stdin is not None and proc.stdout is not None
    ident = int(time.monotonic_ns())
    proc.stdin.write(json.dumps({"id": ident, "cmd": cmd, **fields}) + "\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        assert line, "the Node SMSC exited"
        message = json.loads(line)
        if message.get("reply") == ident:
            assert "error" not in message, message
            return dict(message)


@pytest.fixture
def smsc() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start_smsc()
    yield proc, port
    stop_smsc(proc)


def carrier_toml(name: str, port: int, **extra: Any) -> str:
    lines = [
        "[[carriers]]",
        f'name = "{name}"',
        'kind = "smpp"',
        'host = "127.0.0.1"',
        f"port = {port}",
        'system_id = "pigeon"',
        'password = "secret"',
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


# -- `pigeon worker` processes of a test's own, for the tests that kill them -------------------------


class Workers:
    """`pigeon worker` processes started by the test, each in its own session."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.server.workdir / f"worker{len(self.processes)}.log").open("ab")
        process = subprocess.Popen(
            [str(PIGEON), "worker"],
            env=self.server.env,
            cwd=self.server.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.server.workdir.glob("worker*.log")))


@pytest.fixture
def workers(api_only: Server) -> Iterator[Workers]:
    """Workers for the module's own `api_only` server (each module that uses this defines
    one: the API without workers, configured for what it tests)."""
    made = Workers(api_only)
    yield made
    made.stop_all()
