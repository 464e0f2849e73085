"""A short code in none of the account's Messaging Services takes no STOP/START from Pigeon (its
application handles keywords, as on Twilio), yet keeps the opt-outs it had in its service, and
those imported for it. The recipient's START does not lift them: the doctor says so and what
does (`pigeon optouts remove`, once they opted back in with the application, or the short code
in a service again), `pigeon optouts import` says it of such a row, and the remove command
lifts one opt-out, a dry run without --yes. Both stores.

Before, nothing could lift them and the doctor told the recipient to text START.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.inbound import receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.cli import app
from pigeon.domain.diagnosis import Finding
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store.engine import Database
from pigeon.store.optouts import list_opt_outs
from pigeon.testing import FrozenClock

SHORT_CODE, HANDSET, PATH = "55125", "+14155557171", "/p"


class Setup:
    """An account with a short code in a Messaging Service; `database_url` for the CLI."""

    def __init__(self, db: Database, clock: FrozenClock) -> None:
        self.db, self.clock = db, clock
        now = clock.now()
        with db.write() as conn:
            self.account = str(account_use.create_account(conn, friendly_name="sc", now=now)["sid"])
            self.short_code = number_use.provision(
                conn, account_sid=self.account, phone_number=SHORT_CODE, now=now, iso_country="US"
            )["sid"]
            self.service = str(service_use.create(conn, self.account, {"FriendlyName": "s"}, now)["sid"])
        self.join()

    def join(self) -> None:
        with self.db.write() as conn:
            service_use.add_number(
                conn, self.account, self.service, self.short_code, short_code=True, path=PATH, now=self.clock.now()
            )

    def leave(self) -> None:
        with self.db.write() as conn:
            service_use.remove_number(
                conn, self.account, self.service, self.short_code, short_code=True, path=PATH, now=self.clock.now()
            )

    def text(self, body: str) -> None:
        self.clock.advance(1)
        sms = InboundSms(carrier="simulator", sender=HANDSET, recipient=SHORT_CODE, body=body)
        with self.db.write() as conn:
            receive(conn, sms, now=self.clock.now(), base_url="https://pigeon.example.com")

    def send_code(self) -> int | None:
        req = SendRequest(to=HANDSET, from_=SHORT_CODE, body="hi")
        with self.db.read() as conn:
            try:
                prepare_message(conn, self.account, req, self.clock.now())
            except ApiError as exc:
                return exc.code
        return None

    def pairs(self) -> set[tuple[str, str]]:
        with self.db.read() as conn:
            return {(r["sender"], r["scope"]) for r in list_opt_outs(conn, account_sid=self.account, recipient=HANDSET)}

    def blocked(self) -> Finding:
        with self.db.read() as conn:
            report = diagnose.diagnose_blocked(conn, self.account, HANDSET, SHORT_CODE, now=self.clock.now())
        [finding] = report.findings
        return finding


@pytest.fixture
def setup(db: Database, clock: FrozenClock, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Setup:
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    return Setup(db, clock)


def _remove(s: Setup, *extra: str) -> tuple[int, str]:
    args = ["optouts", "remove", "--account", s.account, "--recipient", HANDSET, "--sender", SHORT_CODE, *extra]
    done = CliRunner().invoke(app, args)
    return done.exit_code, done.output


def test_a_short_code_out_of_its_service_keeps_the_opt_out_and_the_doctor_says_what_lifts_it(setup: Setup) -> None:
    setup.text("STOP")
    setup.leave()
    assert (SHORT_CODE, "number") in setup.pairs() and setup.send_code() == 21610

    finding = setup.blocked()
    assert not any("they text START" in a for a in finding.advice)
    [how] = [a for a in finding.advice if "pigeon optouts remove" in a]
    assert f"--account {setup.account} --recipient {HANDSET} --sender {SHORT_CODE} --yes" in how
    assert [row["opt_in_keywords"] for row in finding.evidence if row.get("source") == "opt_out"] == [[]]

    setup.text("START")  # to its application: Pigeon does not take it
    assert setup.send_code() == 21610

    code, said = _remove(setup)
    assert code == 0 and "Dry run" in said and (SHORT_CODE, "number") in setup.pairs()
    code, said = _remove(setup, "--yes")
    assert code == 0 and f"Removed the opt-out of {HANDSET} from {SHORT_CODE}" in said
    assert (SHORT_CODE, "number") not in setup.pairs() and setup.send_code() is None
    code, said = _remove(setup, "--yes")  # none left
    assert code == 1 and "error 20404" in said


def test_in_a_service_start_lifts_the_short_codes_opt_out_and_the_doctor_says_start(setup: Setup) -> None:
    setup.text("STOP")
    setup.leave()
    setup.join()
    assert "they text START, YES or UNSTOP" in setup.blocked().advice[0]
    setup.text("START")
    assert setup.pairs() == set() and setup.send_code() is None


def test_an_imported_opt_out_of_a_standalone_short_code_is_said_so_and_removed(setup: Setup, tmp_path: Path) -> None:
    setup.leave()
    path = tmp_path / "opt-outs.csv"
    path.write_text(f"recipient,sender\n{HANDSET},{SHORT_CODE}\n")
    done = CliRunner().invoke(app, ["optouts", "import", str(path), "--account", setup.account, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.stdout)["rows"]
    assert row["action"] == "made" and "pigeon optouts remove" in row["note"]
    assert any("pigeon optouts remove" in a for a in setup.blocked().advice)

    code, _ = _remove(setup, "--yes", "--json")
    assert code == 0 and setup.pairs() == set()
