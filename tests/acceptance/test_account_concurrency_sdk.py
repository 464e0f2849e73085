"""A real `pigeon serve` that takes one request at a time from an account: while a send waits
for the store (the test holds SQLite's write lock), the account's next call reaches the
`twilio` SDK as TwilioRestException 20429 and does nothing; the refusal is in the request log."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import threading
import time
from typing import Any

import pytest

from pigeon.domain.sids import Prefix, is_sid
from tests.acceptance.conftest import Server
from tests.acceptance.support import raises_twilio

pytestmark = pytest.mark.acceptance


def test_a_second_request_in_progress_is_refused_with_20429(server_factory: Any) -> None:
    server: Server = server_factory("sqlite", env={"PIGEON_API_CONCURRENCY_PER_ACCOUNT": "1"})
    client = server.client()
    sender = server.numbers[0]
    assert client.messages.create(to="+14155557010", from_=sender, body="warm-up").status == "queued"

    path = server.database_url.removeprefix("sqlite:///")
    lock = sqlite3.connect(path, isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")  # every writer of the server now waits, the accept among them
    # Let go after a while whatever happens, so that a failing test does not hang.
    release = threading.Timer(20, lock.rollback)
    release.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            held = pool.submit(lambda: client.messages.create(to="+14155557011", from_=sender, body="held"))
            time.sleep(1.0)  # the held send is checked and waiting for its commit
            assert not held.done()
            err = raises_twilio(
                lambda: client.messages.create(to="+14155557012", from_=sender, body="refused"), 20429, 429
            )
            assert server.account_sid in err.msg
            lock.rollback()
            assert held.result(timeout=30).status == "queued"
    finally:
        release.cancel()
        lock.close()

    assert client.messages.create(to="+14155557012", from_=sender, body="later").status == "queued"
    sent = {m.to: m.body for m in client.messages.list(from_=sender)}
    assert sent == {"+14155557010": "warm-up", "+14155557011": "held", "+14155557012": "later"}

    def refusals() -> list[dict[str, Any]]:
        out = server.cli("requests", "--account", server.account_sid, "--code", "20429", "--json")
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows

    deadline = time.monotonic() + 10
    while not (rows := refusals()) and time.monotonic() < deadline:
        time.sleep(0.2)  # the request log is written after the response
    assert [(r["status"], r["to"]) for r in rows] == [(429, "+14155557012")]
    assert is_sid(rows[0]["sid"], Prefix.REQUEST)
