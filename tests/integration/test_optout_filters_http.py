"""The opt-out list's filters: an empty one is no filter, in `GET …/OptOuts.json` as in
`pigeon optouts list`, as an empty ``To=`` is none for Messages.json. SQLite and PostgreSQL.

Before, ``?Recipient=`` (or ``Sender=``, ``--recipient ""``, ``--account ""``) matched the
opt-outs of the empty recipient, sender or account: none, an empty list that read as "nobody
opted out".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from pigeon.cli import app
from pigeon.store.engine import Database
from pigeon.store.optouts import record_opt_out
from tests.integration.http_client import SENDER, Api, make_api

RECIPIENTS = ["+14155557170", "+14155557171", "+14155557172"]


def _three_opt_outs(db: Database, database_url: str) -> Api:
    api = make_api(db, database_url)
    with db.write() as conn:
        for recipient in RECIPIENTS:
            record_opt_out(
                conn,
                account_sid=api.account["sid"],
                sender=SENDER,
                recipient=recipient,
                scope="number",
                keyword="STOP",
                inbound_message_sid=None,
                now=datetime.now(UTC),
            )
    return api


def test_an_empty_filter_of_opt_outs_json_is_ignored(db: Database, database_url: str) -> None:
    api = _three_opt_outs(db, database_url)
    url = f"{api.base}/OptOuts.json"
    queries = ["?Recipient=", "?Sender=", "?Recipient=&Sender=", "?Recipient=%2B14155557171&Sender=", ""]
    answers = api.call(*[("GET", url + q, {}) for q in queries])
    found = [sorted(o["recipient"] for o in a.json()["opt_outs"]) for a in answers]
    assert found == [RECIPIENTS, RECIPIENTS, RECIPIENTS, ["+14155557171"], RECIPIENTS]
    # The page's URIs name only the filters that filter.
    assert "Recipient" not in answers[0].json()["uri"] and "Sender" not in answers[3].json()["uri"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--recipient", ""], RECIPIENTS),
        (["--account", ""], RECIPIENTS),
        (["--recipient", "+14155557172"], ["+14155557172"]),
    ],
)
def test_an_empty_option_of_optouts_list_is_ignored(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch, options: list[str], expected: list[str]
) -> None:
    _three_opt_outs(db, database_url)
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    done = CliRunner().invoke(app, ["optouts", "list", "--json", *options])
    assert done.exit_code == 0, done.output
    assert sorted(o["recipient"] for o in json.loads(done.stdout)) == expected
