"""Geo permissions end to end: `pigeon accounts geo` limits a tenant to the US; the `twilio`
SDK then gets 21408 for a UK number, nothing is sent, and `pigeon doctor message --to` names
the refusal and what to do. The parent's other tenants are not touched."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number, new_tenant, raises_twilio, wait_for

pytestmark = pytest.mark.acceptance

UK = "+447700900124"


def test_a_tenant_limited_to_the_us_cannot_text_the_uk(shared_server: Server) -> None:
    tenant, other = new_tenant(shared_server), new_tenant(shared_server)
    done = shared_server.cli("accounts", "geo", tenant.sid, "--allow", "us", "--json")
    assert json.loads(done.stdout)["countries"] == ["US"]

    client = tenant.client()
    err = raises_twilio(lambda: client.messages.create(to=UK, from_=tenant.numbers[0], body="code 1"), 21408, 400)
    assert "is in GB" in err.msg
    assert client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="code 2").status == "queued"
    assert [m.to for m in client.messages.list(to=UK)] == []
    # Another subaccount of the same parent still sends where it likes.
    assert other.client().messages.create(to=UK, from_=other.numbers[0], body="hi").status == "queued"

    def explained() -> bool:
        report = shared_server.cli("doctor", "message", "--to", UK, "--account", tenant.sid, "--json", check=False)
        return "21408" in report.stdout

    wait_for("the doctor to see the refusal in the request log", explained, timeout=10)
    report = shared_server.cli("doctor", "message", "--to", UK, "--account", tenant.sid, "--json", check=False)
    [geo] = [f for f in json.loads(report.stdout)["findings"] if f["cause"] == "geo_not_permitted"]
    assert geo["severity"] == "error" and "is in GB" in geo["summary"] and tenant.sid in geo["summary"]

    shown = shared_server.cli("accounts", "geo", tenant.sid, "--inherit").stdout
    assert "any country" in shown
    assert client.messages.create(to=UK, from_=tenant.numbers[0], body="code 3").status == "queued"
