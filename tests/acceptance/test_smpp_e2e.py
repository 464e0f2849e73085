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

from tests.acceptance.conftest import Server, carrier_toml, command, start_smsc, stop_smsc


@pytest.fixture
def second_smsc() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start_smsc()
    yield proc, port
    stop_smsc(proc)


def timeline(server: Server, sid: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = httpx.get(
        f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/Messages/{sid}/Events.json",
        auth=(server.account_sid, server.auth_token),
    ).json()["events"]
    return events


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

    # SMPP carries text only. Media through a Messaging Service (MmsConverter on, Twilio's
    # default) go as their links; media from a number alone cannot go at all.
    service = client.messaging.v1.services.create(friendly_name="converts")
    [number] = client.incoming_phone_numbers.list(phone_number=server.numbers[1])
    client.messaging.v1.services(service.sid).phone_numbers.create(phone_number_sid=number.sid)
    media = ["https://cdn.example.com/cat.jpg"]
    linked = client.messages.create(to="+14155552674", messaging_service_sid=service.sid, body="look", media_url=media)
    refused = client.messages.create(to="+14155552675", from_=server.numbers[0], body="look", media_url=media)
    wait_for(lambda: client.messages(linked.sid).fetch().status == "delivered")
    sent = next(e for e in timeline(server, linked.sid) if e["status"] == "sent")
    assert (sent["detail"]["media_as_links"], sent["detail"]["segments_sent"]) == (1, 1)
    wait_for(lambda: client.messages(refused.sid).fetch().status == "failed")
    assert client.messages(refused.sid).fetch().error_code == 30011

    def carriers() -> list[dict[str, Any]]:
        rows = json.loads(server.cli("carriers", "--json").stdout)
        return [r for r in rows if r["carrier"] == "npm-smsc" and r.get("bound")]

    status = wait_for(carriers, timeout=10)[0]
    assert "password" not in json.dumps(status) and "secret" not in json.dumps(status)
    # One bind allowed (binds = 1 by default), held by the process that is bound.
    [slot] = status["slots"]
    assert (slot["slot"], slot["holder"], slot["state"]) == (1, status["holder"], "bound")
    assert status["lease"]["slot"] == 1 and status["lease"]["state"] == "held"
    table = server.cli("carriers").stdout
    assert "bind leases" in table and "expires in" in table and "secret" not in table
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


def test_a_part_refused_after_part_1_was_accepted_is_completed_without_resending_part_1(
    server_factory: Any, smsc: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    proc, port = smsc
    command(proc, "configure", submit_script=[0, 0x45])  # part 1 accepted, part 2 ESME_RSUBMITFAIL
    config = tmp_path / "pigeon.toml"
    config.write_text(carrier_toml("npm-smsc", port))
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)})
    client = server.client()
    sid = client.messages.create(to="+14155552671", from_=server.numbers[0], body="long " * 80).sid
    wait_for(lambda: client.messages(sid).fetch().status == "delivered")

    submits = command(proc, "state")["submits"]
    accepted = [s for s in submits if s["status"] == 0]
    assert [s["status"] for s in submits] == [0, 0x45, 0, 0]
    udhs = [bytes.fromhex(s["udh_hex"]) for s in accepted]
    assert [u[5] for u in udhs] == [1, 2, 3] and len({u[3] for u in udhs}) == 1  # one reference, no repeat
    events = timeline(server, sid)
    retry = next(e for e in events if e["kind"] == "retry")
    assert [p["carrier_id"] for p in retry["detail"]["accepted_parts"]] == [accepted[0]["message_id"]]
    sent = next(e for e in events if e["status"] == "sent")
    assert sent["detail"]["carrier_ids"] == [s["message_id"] for s in accepted]
    receipts = [e for e in events if e["kind"] == "receipt"]
    assert sorted(e["detail"]["part"] for e in receipts) == [1, 2, 3]
    assert not any(e["kind"] == "resend" for e in events)


def test_an_unanswered_submit_is_resent_to_the_same_carrier_not_to_the_next(
    server_factory: Any,
    smsc: tuple[subprocess.Popen[str], int],
    second_smsc: tuple[subprocess.Popen[str], int],
    tmp_path: Path,
) -> None:
    primary, primary_port = smsc
    backup, backup_port = second_smsc
    command(primary, "configure", submit_script=["no_resp"])  # taken, and the answer lost
    config = tmp_path / "pigeon.toml"
    config.write_text(
        carrier_toml("primary", primary_port, response_timeout=1.0)
        + carrier_toml("backup", backup_port)
        + '[[routes]]\nprefix = "+1"\ncarriers = ["primary", "backup"]\n'
    )
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)})
    client = server.client()
    sid = client.messages.create(to="+14155552671", from_=server.numbers[0], body="exactly once, please").sid
    wait_for(lambda: client.messages(sid).fetch().status == "delivered")

    assert command(backup, "state")["submits"] == []  # before: the backup got a second copy
    submits = command(primary, "state")["submits"]
    assert [(s["status"], s["answered"]) for s in submits] == [(0, False), (0, True)]
    kinds = [(e["kind"], e["status"]) for e in timeline(server, sid)]
    assert ("retry", "queued") in kinds and ("resend", "sending") in kinds and ("failover", None) not in kinds
    report = server.cli("doctor", "message", sid, "--account", server.account_sid, "--json", check=False)
    assert "pigeon_resent" in report.stdout and "never answered" in report.stdout
