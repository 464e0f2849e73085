"""Everything a served API writes to standard error is JSON, one object per line, uvicorn's
own lines included; a 500 is logged once, by Pigeon, with its traceback inside the object."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.acceptance.conftest import PIGEON, free_port
from tests.acceptance.processes import children_running

#: The real app, logging and uvicorn configuration of `pigeon serve`, with one route that fails.
SERVE_WITH_A_BUG = """
import sys
import uvicorn
from starlette.routing import Route
from pigeon import bootstrap, logs, serving
from pigeon.config import load_settings

async def boom(request):
    raise RuntimeError("simulated bug")

settings = load_settings()
logs.configure(settings.log_level)
db = bootstrap.open_database(settings)
app = bootstrap.build_api(settings, db)
app.router.routes.insert(0, Route("/boom", boom))
uvicorn.Server(serving.uvicorn_config(app)).run(sockets=[serving.listen("127.0.0.1", settings.port)])
"""


def test_a_500_and_a_malformed_request_log_json_lines_only(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")},
        "PIGEON_DATABASE_URL": f"sqlite:///{tmp_path / 'pigeon.db'}",
        "PIGEON_PORT": str(port),
        "PIGEON_RUN_WORKERS": "false",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SERVE_WITH_A_BUG], env=env, stderr=err, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, stderr.read_text()
                time.sleep(0.1)
        assert httpx.get(f"http://127.0.0.1:{port}/boom", timeout=10).status_code == 500
        with socket.create_connection(("127.0.0.1", port)) as bad:
            bad.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            bad.recv(1024)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    lines = [line for line in stderr.read_text().splitlines() if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}\n{stderr.read_text()}") from None
    messages = [e["message"] for e in entries]
    assert messages.count("unhandled error") == 1
    assert "simulated bug" in next(e for e in entries if e["message"] == "unhandled error")["exception"]
    assert not [m for m in messages if m.startswith("Exception in ASGI application")], "the 500 logged twice"
    assert "Invalid HTTP request received." in messages


def _json_lines(text: str) -> list[dict[str, object]]:
    entries = []
    for line in text.splitlines():
        if line.strip():
            try:
                entries.append(json.loads(line))
            except ValueError:
                raise AssertionError(f"not a JSON line: {line!r}\n{text}") from None
    return entries


def test_serve_s_own_warnings_are_json_lines(tmp_path: Path) -> None:
    """A configuration warning (given before the log was configured) and the note of a worker
    process that died and is started again were plain text lines among the JSON ones."""
    port = free_port()
    config = tmp_path / "pigeon.toml"
    config.write_text('[prices.US]\nlong_code = "0.0079"\n')  # allowed, with a warning
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")},
        "PIGEON_DATABASE_URL": f"sqlite:///{tmp_path / 'pigeon.db'}",
        "PIGEON_PORT": str(port),
        "PIGEON_CONFIG": str(config),
        "NO_PROXY": "127.0.0.1,localhost",
    }
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [str(PIGEON), "serve", "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path
        )
    try:
        deadline = time.monotonic() + 30
        while not (workers := children_running(proc.pid, b"worker\0")):
            assert time.monotonic() < deadline and proc.poll() is None, stderr.read_text()
            time.sleep(0.1)
        os.kill(workers[0], signal.SIGKILL)
        while "exited with -9" not in stderr.read_text():
            assert time.monotonic() < deadline + 15, stderr.read_text()
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    messages = [str(e["message"]) for e in _json_lines(stderr.read_text())]
    assert any('[prices."*"] gives no price' in m for m in messages), messages
    assert any(m.startswith(f"worker process {workers[0]} exited with -9") for m in messages), messages
