"""`pigeon serve --api-processes 2`: two processes serve the one port, connections are spread
over both, every process answers GET /metrics with the first's carrier figures, and the
second goes away when the first is killed."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import Server
from tests.acceptance.processes import alive_after, children_running


def _established_on(pid: int, port: int) -> int:
    """Established TCP connections on local `port` whose socket this process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        local_port = int(cols[1].split(":")[1], 16)
        if local_port == port and cols[3] == "01" and cols[9] in inodes:  # 01: ESTABLISHED
            count += 1
    return count


def test_two_api_processes_share_the_port(server_factory: Any) -> None:
    srv: Server = server_factory("sqlite", args=("--api-processes", "2"))
    assert srv.process is not None
    first = srv.process.pid
    deadline = time.monotonic() + 10
    while not (second := children_running(first, b"serve-api")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(second) == 1, "one more API process, started by the first"

    port = int(srv.env["PIGEON_PORT"])
    clients = [httpx.Client(base_url=srv.base_url, auth=(srv.account_sid, srv.auth_token)) for _ in range(24)]
    try:
        for i, client in enumerate(clients):
            r = client.post(
                f"/2010-04-01/Accounts/{srv.account_sid}/Messages.json",
                data={"To": f"+1646555{2000 + i:04d}", "From": srv.numbers[0], "Body": f"spread {i}"},
            )
            assert r.status_code == 201, r.text
        held = {pid: _established_on(pid, port) for pid in (first, second[0])}
        # 24 connections hashed over two sockets: all on one would happen once in 8 million.
        assert all(n > 0 for n in held.values()), held
        assert sum(held.values()) == 24

        # Whichever process takes the scrape, it shows the first process's carrier figures.
        answers = [c.get("/metrics") for c in clients]
        assert all(a.status_code == 200 for a in answers)
        assert all("pigeon_carrier_submits" in a.text for a in answers), answers[0].text[:500]
        assert len({_families(a.text) for a in answers}) == 1
        # And the requests both processes answered: the second's with its label.
        sends = _sends(answers[-1].text)
        assert sends[""] == held[first] and sends["2"] == held[second[0]], (sends, held)
        assert 'pigeon_api_process_up{api_process="2"} 1.0' in answers[-1].text
        # Each of those 24 scrapes counted once: one the second process took and relayed to the
        # first was counted by both (a scrape is counted once answered, so not this one).
        scrapes = _requests(clients[0].get("/metrics").text, "/metrics")
        assert sum(scrapes.values()) == 24, scrapes
    finally:
        for client in clients:
            client.close()

    # Every message is in the store, whichever process accepted it.
    listed = srv.client().messages.list(from_=srv.numbers[0], limit=100)
    assert len([m for m in listed if m.body.startswith("spread ")]) == 24

    # Killed without a chance to clean up, the first takes the second with it.
    os.kill(first, signal.SIGKILL)
    srv.process.wait(timeout=10)
    assert not alive_after(second, within=10), "the second API process outlived the first"
    srv.process = None


def _sends(text: str) -> dict[str, float]:
    """The 201s to Messages.json counted by GET /metrics, by API process ("" for the first)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "pigeon_api_requests_total" and s.labels["status"] == "201":
                assert s.labels["route"] == "/2010-04-01/Accounts/{account_sid}/Messages.json"
                counts[s.labels.get("api_process", "")] = s.value
    return counts


def _requests(text: str, route: str) -> dict[tuple[str, str], float]:
    """GET /metrics's counts of requests to `route`, by API process and status."""
    return {
        (s.labels.get("api_process", ""), s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "pigeon_api_requests_total" and s.labels["route"] == route
    }


def _families(text: str) -> frozenset[str]:
    return frozenset(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE "))
