"""Two `pigeon worker` processes share one carrier whose account allows one bind (binds = 1),
against the Node SMSC (the npm `smpp` package): the SMSC never sees two binds at once, the
worker standing by takes the bind over after the holder is killed with SIGKILL (once its
lease ran out), and every message reaches the SMSC exactly once.

The API runs without workers (PIGEON_RUN_WORKERS=false), so that the workers are processes
of their own the test can kill (as in test_crash_recovery.py).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pigeon.store import binds
from pigeon.store.engine import Database
from tests.acceptance.conftest import Server, Workers, carrier_toml, command
from tests.acceptance.test_crash_recovery import counts, wait_until

LEASE = 2.0  # seconds: a killed holder's slot is taken over about this long after it died


@pytest.fixture
def api_only(server_factory: Any, smsc: tuple[subprocess.Popen[str], int], tmp_path: Path) -> Server:
    _, port = smsc
    config = tmp_path / "pigeon.toml"
    config.write_text(
        carrier_toml(
            "npm-smsc", port, binds=1, bind_lease=LEASE, connect_timeout=0.5, reconnect_min=0.1, reconnect_max=0.5
        )
        + "\n[pacing]\nlong_code = 50.0\n"
    )
    server: Server = server_factory("sqlite", env={"PIGEON_RUN_WORKERS": "false", "PIGEON_CONFIG": str(config)})
    return server


def slot(db: Database) -> tuple[str | None, str | None]:
    """The holder of the carrier's one slot and its bind state (nothing before a worker starts)."""
    with db.read() as conn:
        rows = binds.list_slots(conn)
    assert len(rows) <= 1, rows
    return (rows[0]["holder"], rows[0]["state"]) if rows else (None, None)


def send(server: Server, tag: str, count: int) -> list[str]:
    client = server.client()
    return [
        str(client.messages.create(to=f"+1415555{5000 + i:04d}", from_=server.numbers[i % 2], body=f"{tag} {i}").sid)
        for i in range(count)
    ]


@pytest.mark.timeout(120)
def test_two_workers_never_bind_twice_and_the_survivor_takes_over_after_kill_9(
    api_only: Server, workers: Workers, smsc: tuple[subprocess.Popen[str], int]
) -> None:
    proc, _ = smsc
    db = Database.from_url(api_only.database_url)
    try:
        first = workers.start()
        wait_until("the first worker bound", lambda: slot(db)[1] == "bound", timeout=20)
        holder = slot(db)[0]
        assert holder is not None and holder.endswith(f":{first.pid}")
        second = workers.start()
        wait_until(
            "the second worker standing by",
            lambda: any(
                r.get("lease", {}).get("state") == "standby"
                for r in json.loads(api_only.cli("carriers", "--json").stdout)
            ),
            timeout=20,
            interval=0.3,
        )

        before = send(api_only, "before", 20)
        wait_until("the first messages delivered", lambda: counts(db) == {"delivered": 20}, timeout=30, interval=0.2)
        state = command(proc, "state")
        assert [b["status"] for b in state["binds"]] == [0] and state["max_bound"] == 1

        workers.kill(first)
        after = send(api_only, "after", 20)
        wait_until("the rest delivered", lambda: counts(db) == {"delivered": 40}, timeout=40, interval=0.2)
        holder = slot(db)[0]
        assert holder is not None and holder.endswith(f":{second.pid}")
    finally:
        db.dispose()

    state = command(proc, "state")
    assert [b["status"] for b in state["binds"]] == [0, 0]  # the first worker, then the second
    assert state["max_bound"] == 1, "the SMSC saw two binds at once"
    texts = Counter(s["text"] for s in state["submits"] if s["status"] == 0)
    assert texts == Counter({f"{tag} {i}": 1 for tag in ("before", "after") for i in range(20)})
    assert len(before + after) == 40

    [row] = [r for r in json.loads(api_only.cli("carriers", "--json").stdout) if r["holder"] == holder]
    assert [(s["slot"], s["holder"], s["state"]) for s in row["slots"]] == [(1, holder, "bound")]
    assert "secret" not in workers.logs() and "secret" not in api_only.cli("carriers").stdout
