"""`pigeon optouts import`: opt-outs kept elsewhere join an account's list, so nobody who said
STOP there is texted here; a dry run changes nothing; rows that cannot apply are said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number, new_tenant, raises_twilio

pytestmark = pytest.mark.acceptance


def test_opt_outs_from_a_file_block_sends_here(shared_server: Server, tmp_path: Path) -> None:
    tenant = new_tenant(shared_server)
    client = tenant.client()
    service = client.messaging.v1.services.create(friendly_name="Alerts")
    blocked, service_wide, fine = fresh_number(), fresh_number(), fresh_number()
    other = "AC" + "0" * 32
    path = tmp_path / "opt-outs.csv"
    path.write_text(
        "account_sid,recipient,sender,scope,keyword,inbound_message_sid,date_created\n"
        f"{tenant.sid},{blocked},{tenant.numbers[0]},number,stop,,2026-11-30T10:00:00Z\n"
        f",{service_wide},{service.sid},service,UNSUBSCRIBE,,\n"
        f"{other},{fine},{tenant.numbers[0]},number,STOP,,\n"
        f"{tenant.sid},not a number,{tenant.numbers[0]},number,STOP,,\n"
        f"{tenant.sid},{blocked},{tenant.numbers[0]},number,STOP,,\n"
    )

    def listed() -> set[tuple[str, str]]:
        body = tenant.http("GET", "/OptOuts.json").json()
        return {(o["recipient"], o["sender"]) for o in body["opt_outs"]}

    dry = shared_server.cli("optouts", "import", str(path), "--account", tenant.sid, "--json", check=False)
    report = json.loads(dry.stdout)
    assert dry.returncode == 1  # rows were skipped
    assert report["applied"] is False and listed() == set()
    assert report["counts"] == {"made": 2, "here already": 1, "skipped": 2}  # the repeat is here by then
    skipped = {r["line"]: r["why"] for r in report["rows"] if r["action"] == "skipped"}
    assert skipped == {4: f"the row is account {other}'s", 5: "the recipient is not a phone number"}

    done = shared_server.cli("optouts", "import", str(path), "--account", tenant.sid, check=False)
    assert done.returncode == 1 and "Dry run" in done.stdout
    applied = shared_server.cli("optouts", "import", str(path), "--account", tenant.sid, "--yes", check=False)
    assert "2 added, 1 opted out here already, 2 skipped." in applied.stdout
    assert "line 4:" in applied.stdout and "line 5:" in applied.stdout
    assert listed() == {(blocked, tenant.numbers[0]), (service_wide, service.sid)}

    raises_twilio(lambda: client.messages.create(to=blocked, from_=tenant.numbers[0], body="hi"), 21610, 400)
    client.messaging.v1.services(service.sid).phone_numbers.create(
        phone_number_sid=client.incoming_phone_numbers.list(phone_number=tenant.numbers[1])[0].sid
    )
    raises_twilio(
        lambda: client.messages.create(to=service_wide, messaging_service_sid=service.sid, body="hi"), 21610, 400
    )
    assert client.messages.create(to=fine, from_=tenant.numbers[0], body="hi").status == "queued"


def test_an_export_imports_into_another_install_and_a_bad_file_is_refused(
    shared_server: Server, tmp_path: Path
) -> None:
    source, target = new_tenant(shared_server), new_tenant(shared_server)
    recipient = fresh_number()
    shared_server.cli("simulate", "inbound", "--from", recipient, "--to", source.numbers[0], "--body", "STOP")
    exported = tmp_path / "export.json"
    shared_server.cli("optouts", "export", "--account", source.sid, "--format", "json", "-o", str(exported))
    rows = json.loads(exported.read_text())
    assert [(r["recipient"], r["keyword"]) for r in rows] == [(recipient, "STOP")]
    # The rows name the account they came from: another account takes them only when told to.
    moved = shared_server.cli("optouts", "import", str(exported), "--account", target.sid, "--yes", check=False)
    assert moved.returncode == 1 and f"the row is account {source.sid}'s" in moved.stdout
    args = ("optouts", "import", str(exported), "--account", target.sid, "--from-account", source.sid, "--yes")
    taken = shared_server.cli(*args, check=False)
    # Its sender is the source's number, which is not the target's: a pair blocked all the same.
    assert taken.returncode == 0 and "1 added, 0 opted out here already, 0 skipped." in taken.stdout
    body = target.http("GET", "/OptOuts.json").json()
    assert [(o["recipient"], o["sender"], o["keyword"]) for o in body["opt_outs"]] == [
        (recipient, source.numbers[0], "STOP")
    ]

    bad = tmp_path / "bad.csv"
    bad.write_text("phone,who\n+14155550100,x\n")
    refused = shared_server.cli("optouts", "import", str(bad), "--account", target.sid, check=False)
    assert refused.returncode == 2 and "needs a header naming at least the recipient and sender" in refused.stderr
