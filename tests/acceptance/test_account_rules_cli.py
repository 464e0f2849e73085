"""The account rules an operator sets from the command line, against a real store: short-code
inbound (`pigeon accounts short-code-inbound`), seen through `pigeon simulate inbound`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import new_tenant

pytestmark = pytest.mark.acceptance


def _text(server: Server, sender: str, to: str) -> dict[str, Any]:
    done = server.cli("simulate", "inbound", "--from", sender, "--to", to, "--body", "promo", "--json")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_short_code_inbound_is_turned_on_and_off(shared_server: Server) -> None:
    tenant = new_tenant(shared_server, numbers=1)
    number = tenant.numbers[0]
    shown = json.loads(shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--json").stdout)
    assert shown == {"account_sid": tenant.sid, "allow_short_code_inbound": False}
    refused = _text(shared_server, "22395", number)
    assert refused["message_sid"] is None and "option is off" in refused["unroutable_reason"]

    on = shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--on")
    assert "take texts from short codes" in on.stdout
    taken = _text(shared_server, "22395", number)
    assert taken["message_sid"] and taken["account_sid"] == tenant.sid

    shared_server.cli("accounts", "short-code-inbound", tenant.sid, "--off")
    assert _text(shared_server, "22395", number)["message_sid"] is None

    missing = shared_server.cli("accounts", "short-code-inbound", "AC" + "0" * 32, check=False)
    assert missing.returncode == 1 and "was not found" in missing.stderr
