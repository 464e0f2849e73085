"""API -> SMPP -> receipt -> signed status callback, end to end, against the Node SMSC (the npm
`smpp` package, a peer this project did not write), with `pigeon serve` configured by
PIGEON_CONFIG; plus `pigeon carriers` and GET /metrics."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Server
from tests.integration.smsc.node import HERE, ensure_node_modules


@pytest.fixture
def smsc() -> Iterator[tuple[subprocess.Popen[str], int]]:
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
    yield proc, port
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_send_through_smpp_and_get_the_receipt(
    server_factory: Any, smsc: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    _, port = smsc
    config = tmp_path / "pigeon.toml"
    config.write_text(
        f"""
[[carriers]]
name = "npm-smsc"
kind = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "pigeon"
password = "secret"
window = 10

[pacing]
long_code = 50.0
"""
    )
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)})
    client = server.client()
    sids = [
        client.messages.create(to="+14155552671", from_=server.numbers[0], body="plain GSM text").sid,
        client.messages.create(to="+14155552672", from_=server.numbers[0], body="ünïcödé ✓ 😀").sid,
        client.messages.create(to="+14155552673", from_=server.numbers[0], body="long " * 80).sid,
    ]
    for sid in sids:
        wait_for(lambda sid=sid: client.messages(sid).fetch().status == "delivered")
    events = httpx.get(
        f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/Messages/{sids[2]}/Events.json",
        auth=(server.account_sid, server.auth_token),
    ).json()["events"]
    sent = next(e for e in events if e["status"] == "sent")
    assert sent["detail"]["carrier"] == "npm-smsc"
    assert len(sent["detail"]["carrier_ids"]) == 3  # 400 GSM-7 characters: three parts
    receipts = [e for e in events if e["kind"] == "receipt"]
    assert len(receipts) == 3 and all("stat:DELIVRD" in e["detail"]["raw"] for e in receipts)

    def carriers() -> list[dict[str, Any]]:
        rows = json.loads(server.cli("carriers", "--json").stdout)
        return [r for r in rows if r["carrier"] == "npm-smsc" and r.get("bound")]

    status = wait_for(carriers, timeout=10)[0]
    assert "password" not in json.dumps(status) and "secret" not in json.dumps(status)
    metrics = httpx.get(server.base_url + "/metrics").text
    assert 'pigeon_carrier_submits_total{carrier="npm-smsc"' in metrics
    assert "secret" not in server.log()


def test_failover_to_the_next_carrier_when_the_first_is_down(
    server_factory: Any, smsc: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    _, port = smsc
    closed = free_closed_port()
    config = tmp_path / "pigeon.toml"
    config.write_text(
        f"""
[[carriers]]
name = "down"
kind = "smpp"
host = "127.0.0.1"
port = {closed}
system_id = "pigeon"
password = "secret"
connect_timeout = 1.0
reconnect_min = 0.5
reconnect_max = 1.0

[[carriers]]
name = "up"
kind = "smpp"
host = "127.0.0.1"
port = {port}
system_id = "pigeon"
password = "secret"

[[routes]]
prefix = "+1"
carriers = ["down", "up"]
"""
    )
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)})
    client = server.client()
    sid = client.messages.create(to="+14155552671", from_=server.numbers[0], body="via the backup").sid
    wait_for(lambda: client.messages(sid).fetch().status == "delivered")
    events = httpx.get(
        f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/Messages/{sid}/Events.json",
        auth=(server.account_sid, server.auth_token),
    ).json()["events"]
    failover = next(e for e in events if e["kind"] == "failover")
    assert failover["detail"]["refused_by"][0]["carrier"] == "down"
    assert next(e for e in events if e["status"] == "sent")["detail"]["carrier"] == "up"


def free_closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
