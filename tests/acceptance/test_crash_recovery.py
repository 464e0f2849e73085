"""Crash recovery: kill -9 the worker process in the middle of delivering, start another one,
and every message still reaches its final state, none lost, each resend on its timeline.

The API runs without workers (PIGEON_RUN_WORKERS=false); the workers run in their own
`pigeon worker` process, so the test can kill exactly that process. A dead dispatcher's claims
are leases (30 s), so the second worker finishes its messages once they run out.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.store.engine import Database
from pigeon.store.messages import list_events
from pigeon.store.tables import messages
from tests.acceptance.conftest import Server, Workers

COUNT = 200
#: Raised pacing, so that delivering COUNT messages from two long codes takes about two seconds.
CONFIG = """
[pacing]
long_code = 50.0
"""


@pytest.fixture
def api_only(server_factory: Any, tmp_path: Path) -> Server:
    config = tmp_path / "pigeon.toml"
    config.write_text(CONFIG)
    server: Server = server_factory("sqlite", env={"PIGEON_RUN_WORKERS": "false", "PIGEON_CONFIG": str(config)})
    return server


def counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(sa.select(messages.c.status, sa.func.count()).group_by(messages.c.status)).all()
    return {str(status): int(n) for status, n in rows}


def statuses(db: Database) -> dict[str, str]:
    with db.read() as conn:
        return {r.sid: r.status for r in conn.execute(sa.select(messages.c.sid, messages.c.status))}


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def send_all(server: Server) -> list[str]:
    def send(i: int) -> str:
        client = server.client()
        msg = client.messages.create(to=f"+1415555{4000 + i:04d}", from_=server.numbers[i % 2], body=f"crash test {i}")
        assert msg.status == "queued"
        return str(msg.sid)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, range(COUNT)))


@pytest.mark.timeout(120)  # about 40 s, 30 of them the dead worker's leases; headroom for a loaded machine
def test_kill_9_of_the_worker_loses_nothing_and_resends_are_recorded(api_only: Server, workers: Workers) -> None:
    sids = send_all(api_only)
    assert len(set(sids)) == COUNT
    db = Database.from_url(api_only.database_url)
    try:
        first = workers.start()
        # Kill it in the middle of the work: some messages sent, some marked sending, the rest waiting.
        wait_until(
            "the worker to be mid-delivery",
            lambda: (
                counts(db).get("sending", 0) > 0 and counts(db).get("sent", 0) + counts(db).get("delivered", 0) >= 10
            ),
            timeout=20,
            interval=0.005,
        )
        workers.kill(first)
        frozen = statuses(db)
        left_sending = {sid for sid, status in frozen.items() if status == "sending"}
        assert frozen.keys() == set(sids)
        assert sum(s in ("sent", "delivered") for s in frozen.values()) < COUNT, "killed too late to prove anything"

        workers.start()
        # The dead worker's leases run out after 30 s; then the new worker resends what it left.
        wait_until(
            "every message delivered",
            lambda: counts(db) == {"delivered": COUNT},
            timeout=50,
            interval=0.2,
        )
    finally:
        db.dispose()

    # None lost: the API lists exactly the messages it accepted, each delivered.
    listed = {m.sid: m for m in api_only.client().messages.list(limit=COUNT + 50)}
    assert set(listed) == set(sids)
    assert {m.status for m in listed.values()} == {"delivered"}
    assert {m.error_code for m in listed.values()} == {None}

    db = Database.from_url(api_only.database_url)
    try:
        with db.read() as conn:
            timelines = {sid: list_events(conn, sid) for sid in sids}
    finally:
        db.dispose()
    resent = {sid for sid, events in timelines.items() if any(e["kind"] == "resend" for e in events)}
    # Exactly the messages the dead worker left in `sending` were resent, each with its reason.
    assert resent == left_sending, workers.logs()
    for sid in resent:
        events = timelines[sid]
        [resend] = [e for e in events if e["kind"] == "resend"]
        assert resend["detail"]["reason"]
        assert resend["detail"]["attempt"] == 2
        kinds = [e["kind"] for e in events]
        assert kinds.index("resend") < kinds.index("receipt")
    for sid, events in timelines.items():
        statuses_seen = [e["status"] for e in events if e["kind"] == "status"]
        # each status once, in order: a resend is not a second "sending", never a second "sent"
        assert statuses_seen == ["sending", "sent", "delivered"], (sid, statuses_seen)
