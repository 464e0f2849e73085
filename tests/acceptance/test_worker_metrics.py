"""GET /metrics shows the worker processes' figures: with `pigeon serve --workers N` the API
process gathers them from each worker (labelled `worker`), and a `pigeon worker` run on its own
serves them with `--metrics-port`. Before, the workers' carrier and webhook counters were
counted in processes that nobody could scrape."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import PIGEON, Server, carrier_toml, free_port
from tests.acceptance.processes import children_running
from tests.acceptance.support import wait_for


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Sample name -> value by its labels, from a Prometheus text exposition."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def by_worker(text: str, name: str, **labels: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for key, value in samples(text, name).items():
        found = dict(key)
        if all(found.get(k) == v for k, v in labels.items()):
            totals[found["worker"]] += value
    return dict(totals)


def test_serve_with_worker_processes_serves_their_metrics(
    server_factory: Any, smsc: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    _, port = smsc
    config = tmp_path / "pigeon.toml"
    config.write_text(carrier_toml("npm-smsc", port) + "[pacing]\nlong_code = 50.0\n")
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)}, args=("--workers", "2"))
    client = server.client()
    sids = [client.messages.create(to=f"+1415555267{i}", from_=server.numbers[0], body=f"m {i}").sid for i in range(3)]
    for sid in sids:
        wait_for("delivered", functools.partial(delivered, client, sid), timeout=20)
    both_up = {"1": 1.0, "2": 1.0}  # the standby may still be starting
    wait_for("both workers", lambda: by_worker(metrics(server), "pigeon_worker_up") == both_up, timeout=20)

    text = metrics(server)
    # One bind is allowed (binds = 1): one worker holds it and made every submit; the other
    # stands by and reports the carrier unbound (0), so that a `max` over the workers is 0,
    # not missing, while no worker holds it.
    bound = by_worker(text, "pigeon_carrier_bound", carrier="npm-smsc")
    assert sorted(bound.values()) == [0.0, 1.0], bound
    accepted = by_worker(text, "pigeon_carrier_submits_total", carrier="npm-smsc", outcome="accepted")
    assert sum(accepted.values()) == 3.0 and set(accepted) <= {"1", "2"}
    receipts = by_worker(text, "pigeon_carrier_receipts_total", carrier="npm-smsc")
    assert sum(receipts.values()) == 3.0
    assert set(by_worker(text, "pigeon_webhook_given_back_total")) == {"1", "2"}
    assert "secret" not in text

    # A worker that dies is replaced, and its replacement's figures come back under its label.
    assert server.process is not None
    dead = children_running(server.process.pid, b"worker")[0]
    os.kill(dead, signal.SIGKILL)
    wait_for("a worker left out", lambda: 0.0 in by_worker(metrics(server), "pigeon_worker_up").values(), timeout=10)
    wait_for(
        "the worker replaced",
        lambda: by_worker(metrics(server), "pigeon_worker_up") == both_up,
        timeout=30,
    )


def delivered(client: Any, sid: str) -> bool:
    return bool(client.messages(sid).fetch().status == "delivered")


def metrics(server: Server) -> str:
    return httpx.get(server.base_url + "/metrics", timeout=10).text


def test_a_worker_on_its_own_serves_metrics_on_its_port(server_factory: Any) -> None:
    server: Server = server_factory("sqlite", env={"PIGEON_RUN_WORKERS": "false"})
    client = server.client()
    # No worker yet: the API's GET /metrics shows the messages piling up, and how late they are.
    queued = [client.messages.create(to="+14155550123", from_=server.numbers[0], body=f"q {i}").sid for i in range(3)]
    time.sleep(1.1)
    text = metrics(server)
    assert samples(text, "pigeon_store_up") == {(): 1.0}
    assert samples(text, "pigeon_messages_waiting")[(("status", "queued"),)] == 3.0
    assert samples(text, "pigeon_messages_due_lag_seconds")[()] >= 1.0

    port = free_port()
    log = (server.workdir / "worker.log").open("ab")
    worker = subprocess.Popen(
        [str(PIGEON), "worker", "--metrics-port", str(port)],
        env=server.env,
        cwd=server.workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        sid = client.messages.create(to="+14155550123", from_=server.numbers[0], body="hello").sid
        wait_for("delivered", lambda: client.messages(sid).fetch().status == "delivered", timeout=20)
        assert all(delivered(client, q) for q in queued)
        backlog = samples(metrics(server), "pigeon_messages_waiting")
        assert set(backlog.values()) == {0.0}, backlog

        def scraped() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                return ""

        wait_for("the worker's metrics", lambda: "pigeon_webhook_given_back_total" in scraped(), timeout=10)
        assert "pigeon_carrier_submits_total" in scraped()
        # The API process has no workers: its own /metrics does not pretend to know theirs.
        assert "pigeon_webhook_given_back_total" not in metrics(server)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=15)
    assert worker.returncode == 0, (server.workdir / "worker.log").read_text()
