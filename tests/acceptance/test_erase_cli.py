"""`pigeon erase --list` as an operator runs it, in its own processes, against a real store on
SQLite and PostgreSQL: each erasure on record (when, which accounts, by what, how much went,
what was kept), newest first, and never the number nor the messages, which the record holds
only as keyed fingerprints; `--account` keeps those that covered one account."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.store import erasure_log
from pigeon.store.engine import Database
from pigeon.store.tables import erased_messages, erasures
from tests.acceptance.conftest import Server

pytestmark = pytest.mark.acceptance

PERSON, NOBODY = "+14155552671", "+14155550009"


def _json(server: Server, *args: str) -> Any:
    return json.loads(server.cli(*args, "--json").stdout)


def _fingerprints(server: Server) -> list[str]:
    db = Database.from_url(server.database_url)
    try:
        with db.read() as conn:
            found = list(conn.execute(sa.select(erasures.c.number_fingerprint)).scalars())
            return found + list(conn.execute(sa.select(erased_messages.c.sid_fingerprint)).scalars())
    finally:
        db.dispose()


def _cut_short(server: Server) -> None:
    """An erasure that began and never finished (its process killed), as the store keeps one."""
    db = Database.from_url(server.database_url)
    try:
        with db.write() as conn:
            erasure_log.begin(conn, "+14155552600", account=None, at=datetime.now(UTC), by="pigeon erase")
    finally:
        db.dispose()


@pytest.mark.timeout(180)  # about 15 CLI processes, each starting Python; headroom for a loaded machine
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_erasures_on_record_are_listed_without_the_number(server_factory: Any, backend: str) -> None:
    server: Server = server_factory(backend, start=False)
    first = server.account_sid
    other = _json(server, "accounts", "create", "--friendly-name", "other")["sid"]
    assert _json(server, "erase", "--list") == []
    assert "No erasures on record." in server.cli("erase", "--list").stdout

    text = server.cli("simulate", "inbound", "--from", PERSON, "--to", server.numbers[0], "--body", "hi", "--json")
    sid = json.loads(text.stdout)["message_sid"]
    assert _json(server, "erase", PERSON, "--account", first, "--yes")["erased"]["messages"] == 1
    server.cli("simulate", "inbound", "--from", PERSON, "--to", NOBODY, "--body", "hi", check=False)  # unroutable
    assert _json(server, "erase", PERSON, "--yes")["erased"]["unroutable"] == 1
    _cut_short(server)

    listed = _json(server, "erase", "--list")
    for record in listed:
        assert record["started_at"].endswith("Z") and record.pop("started_at")
    unfinished, everywhere, of_first = listed
    assert unfinished["finished_at"] is None and unfinished["scope"] is None
    assert everywhere["id"] > of_first["id"] and everywhere["finished_at"].endswith("Z")
    del everywhere["finished_at"], of_first["finished_at"]
    counts = {"requests": 0, "alerts": 0, "kept_in_progress": 0, "erased_by": "pigeon erase"}
    assert everywhere == {"id": everywhere["id"], "scope": None, "messages": 0, "unroutable": 1, **counts}
    assert of_first == {"id": of_first["id"], "scope": first, "messages": 1, "unroutable": 0, **counts}

    table = server.cli("erase", "--list")
    said = " ".join(table.stdout.split())
    assert "every account" in said and first in table.stdout and "unfinished: run it again" in said
    for shown in (table.stdout, json.dumps(listed)):  # nothing to find the person or their messages by
        assert PERSON not in shown and PERSON[1:] not in shown and sid not in shown
        assert not [f for f in _fingerprints(server) if f in shown]

    # --account: the erasures that covered it, with how many of their messages were its own.
    mine = _json(server, "erase", "--list", "--account", first)
    assert [(r["id"], r["account_messages"]) for r in mine] == [
        (unfinished["id"], 0),
        (everywhere["id"], 0),
        (of_first["id"], 1),
    ]
    theirs = _json(server, "erase", "--list", "--account", other)
    assert [r["id"] for r in theirs] == [unfinished["id"], everywhere["id"]]
    assert "its messages" in server.cli("erase", "--list", "--account", other).stdout

    for wrong in (["erase", "--list", PERSON], ["erase", "--list", "--yes"], ["erase"]):
        refused = server.cli(*wrong, check=False)
        assert refused.returncode == 2 and "--list" in refused.stderr, refused.stderr
