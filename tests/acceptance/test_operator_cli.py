"""The operator's listing commands against a running server, in JSON and as tables: inventory,
accounts, numbers, Messaging Services, opt-outs, an account's status and the schema upgrade.
Names holding brackets are printed as they are (Rich would take `[ops]` for markup)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number

pytestmark = pytest.mark.acceptance


def _json(server: Server, *args: str) -> Any:
    return json.loads(server.cli(*args, "--json").stdout)


@pytest.mark.timeout(120)  # about 20 s: a dozen CLI processes, each starting Python; headroom for a loaded machine
def test_operator_commands(sqlite_server: Server, tmp_path: Path) -> None:
    server = sqlite_server
    stock = [fresh_number(), fresh_number()]
    inventory = tmp_path / "numbers.csv"
    inventory.write_text("phone_number,locality\n" + "".join(f"{n},[HQ]\n" for n in stock))
    imported = _json(server, "inventory", "import", str(inventory))
    assert imported["added"] == stock
    assert set(stock) <= {n["phone_number"] for n in _json(server, "inventory", "list", "--country", "US")}
    assert "[HQ]" in server.cli("inventory", "list", "--country", "US").stdout

    made = _json(server, "accounts", "create", "--friendly-name", "[ops] team")
    sid = made["sid"]
    assert sid in {a["sid"] for a in _json(server, "accounts", "list")}
    assert "[ops] team" in server.cli("accounts", "list").stdout

    number = fresh_number()
    server.cli("numbers", "add", "--account", sid, number)
    assert [n["phone_number"] for n in _json(server, "numbers", "list", "--account", sid)] == [number]
    assert number in server.cli("numbers", "list", "--account", sid).stdout

    client = server.client(sid, made["auth_token"])
    service = client.messaging.v1.services.create(friendly_name="[billing]")
    assert [s["sid"] for s in _json(server, "services", "list", "--account", sid)] == [service.sid]
    assert "[billing]" in server.cli("services", "list", "--account", sid).stdout

    handset = fresh_number()
    # The handset's media are http(s) URLs, as the API's handset takes them (the console links them).
    refused = server.cli(
        "simulate",
        "inbound",
        "--from",
        handset,
        "--to",
        number,
        "--body",
        "x",
        "--media-url",
        "javascript:1",
        check=False,
    )
    assert refused.returncode == 1 and "error 21620" in refused.stderr
    server.cli("simulate", "inbound", "--from", handset, "--to", number, "--body", "STOP")
    [opt_out] = _json(server, "optouts", "list", "--account", sid)
    assert (opt_out["recipient"], opt_out["sender"], opt_out["keyword"]) == (handset, number, "STOP")
    rows = list(csv.DictReader(io.StringIO(server.cli("optouts", "export", "--account", sid).stdout)))
    assert [(r["recipient"], r["keyword"]) for r in rows] == [(handset, "STOP")]
    exported = json.loads(server.cli("optouts", "export", "--account", sid, "--format", "json").stdout)
    assert [o["recipient"] for o in exported] == [handset]

    assert [a["status"] for a in _json(server, "accounts", "status", sid, "--suspend")] == ["suspended"]
    assert [a["status"] for a in _json(server, "accounts", "status", sid, "--activate")] == ["active"]
    assert server.cli("db", "upgrade").returncode == 0
