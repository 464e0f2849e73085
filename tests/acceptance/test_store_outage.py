"""The database goes away under a running server and comes back.

`pigeon serve` on PostgreSQL reaches its database through a TCP proxy that the test cuts (as a
server that went down: open connections reset, new ones refused) and then restores. While it
is cut, a send answers 503 with Twilio's 20503 and a Retry-After, writes nothing, the
console says so in a page, and /healthz says the store is unreachable; the loops say so in one line each, not a traceback
per try. Once it is back, sending works again, and every message sent before and after is
delivered. A command run with the database out of reach says so in a line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from twilio.base.exceptions import TwilioRestException

from tests.acceptance.conftest import PIGEON, Server, free_port
from tests.acceptance.support import raises_twilio, wait_for
from tests.acceptance.tcp_proxy import TcpProxy


@pytest.fixture
def proxied(server_factory: Any) -> Iterator[tuple[Server, TcpProxy]]:
    server: Server = server_factory("postgres", start=False)
    url = sa.make_url(server.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    server.env["PIGEON_DATABASE_URL"] = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server.start()
    yield server, proxy
    server.stop()
    proxy.close()


@pytest.mark.postgres
def test_a_database_outage_answers_503_and_everything_resumes(proxied: tuple[Server, TcpProxy]) -> None:
    server, proxy = proxied
    client = server.client()
    sender = server.numbers[0]
    before = client.messages.create(to="+14155550001", from_=sender, body="before the outage")

    def delivered(sid: str) -> bool:
        return str(client.messages(sid).fetch().status) == "delivered"

    wait_for("the first message to be delivered", lambda: delivered(before.sid), 15)
    console = httpx.Client(base_url=server.base_url, timeout=10)
    login = console.get("/console/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    form = {"username": server.account_sid, "password": server.auth_token, "csrf_token": token.group(1)}
    assert console.post("/console/login", data=form).status_code == 303

    proxy.cut()
    page = console.get("/console/logs")
    assert page.status_code == 503 and "database is unavailable" in page.text
    raises_twilio(lambda: client.messages.create(to="+14155550002", from_=sender, body="during"), 20503, 503)
    url = f"{server.base_url}/2010-04-01/Accounts/{server.account_sid}/Messages.json"
    answer = httpx.post(
        url,
        data={"To": "+14155550003", "From": sender, "Body": "during"},
        auth=(server.account_sid, server.auth_token),
        timeout=10,
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["code"] == 20503
    health = httpx.get(f"{server.base_url}/healthz", timeout=10)
    assert (health.status_code, health.json()) == (503, {"status": "store unreachable"})
    time.sleep(1.5)  # every loop of the server finds the store gone, some of them twice

    proxy.restore()
    after = None
    deadline = time.monotonic() + 20
    while after is None:
        try:
            after = client.messages.create(to="+14155550004", from_=sender, body="after the outage")
        except TwilioRestException as exc:
            # Until the pool has let go of the connections the cut broke, a send may still
            # find one: 503, nothing written.
            assert (exc.status, exc.code) == (503, 20503)
            assert time.monotonic() < deadline, "sending did not resume within 20 s"
            time.sleep(0.2)
    wait_for("the message sent after the outage to be delivered", lambda: delivered(after.sid), 30)

    bodies = sorted(str(m.body) for m in client.messages.list())
    assert bodies == ["after the outage", "before the outage"]  # nothing written while it was cut

    # The sends refused during the outage are in the request log once it is back: the log's
    # writer held them and tried again, rather than dropping them with the store.
    def refused_sends() -> list[dict[str, Any]]:
        rows = json.loads(server.cli("requests", "--code", "20503", "--json").stdout)
        return [r for r in rows if r["method"] == "POST" and r["status"] == 503]

    wait_for("the refused sends in the request log", lambda: len(refused_sends()) >= 2, 20)
    assert {r["to"] for r in refused_sends()} >= {"+14155550002", "+14155550003"}
    # ...so the doctor, asked why +14155550002 got nothing, finds the refused send.
    report = server.cli("doctor", "message", "--to", "+14155550002", check=False).stdout
    assert "20503" in report, report

    log = server.log()
    assert "Traceback" not in log
    assert "the database could not be reached" in log or "the connection to the database was lost" in log
    assert "is working again after" in log


def test_a_command_run_with_the_database_out_of_reach_says_so_in_a_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env["PIGEON_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    done = subprocess.run([str(PIGEON), "logs"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the database could not be reached" in done.stderr
    assert "PIGEON_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
