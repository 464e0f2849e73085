"""A short code is bound to its country: it sends to and takes texts from that country only.
`pigeon numbers add 12345` without --country stored none (the code sent anywhere and took
texts from anywhere), and `--country us` or `USA` was stored as typed (every send 21606,
every inbound text unroutable). The country is now required for a short code, as an ISO code
the numbering plan knows, stored in upper case; a long code's --country must be its number's.
The Twilio import skips a short code no service of the source names the country of."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.app.twilio_import import Snapshot, Step, import_snapshot
from pigeon.cli import app
from pigeon.domain.errors import ApiError
from pigeon.store import numbers as number_store
from pigeon.store.accounts import create_account
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock


def _account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        return str(create_account(conn, friendly_name="codes", now=clock.now())["sid"])


def _add(db: Database, clock: FrozenClock, account: str, number: str, country: str | None) -> dict[str, object]:
    with db.write() as conn:
        return number_use.provision(
            conn, account_sid=account, phone_number=number, now=clock.now(), iso_country=country
        )


@pytest.mark.parametrize("country", [None, "USA", "U.S.", "XX", "1", ""])
def test_a_short_code_without_a_real_country_is_refused(db: Database, clock: FrozenClock, country: str | None) -> None:
    account = _account(db, clock)
    with pytest.raises(ApiError) as refused:
        _add(db, clock, account, "12345", country)
    assert refused.value.code == 20422
    with db.read() as conn:
        assert number_store.find_by_number(conn, "12345") is None


def test_a_short_codes_country_is_stored_in_upper_case_and_binds_it(db: Database, clock: FrozenClock) -> None:
    account = _account(db, clock)
    assert _add(db, clock, account, "54321", " us ")["iso_country"] == "US"
    with db.read() as conn:
        # It sends to its own country (before: 21606 "only to numbers in us") and nowhere else.
        prepare_message(conn, account, SendRequest(to="+14155550100", from_="54321", body="hi"), clock.now())
        with pytest.raises(ApiError) as abroad:
            prepare_message(conn, account, SendRequest(to="+447911123456", from_="54321", body="hi"), clock.now())
    assert abroad.value.code == 21606


@pytest.mark.parametrize(
    ("number", "country"), [("+14155550101", "GB"), ("+447700900123", "US"), ("+16045550100", "US")]
)
def test_a_long_codes_country_must_be_its_numbers(db: Database, clock: FrozenClock, number: str, country: str) -> None:
    account = _account(db, clock)
    with pytest.raises(ApiError) as refused:
        _add(db, clock, account, number, country)
    assert refused.value.code == 20422 and "not of" in refused.value.message
    with db.read() as conn:
        assert number_store.find_by_number(conn, number) is None


@pytest.mark.parametrize(
    ("number", "country", "stored"),
    [
        ("+14155550101", "us", "US"),
        ("+14155550101", None, "US"),
        ("+16045550100", "CA", "CA"),
        ("+447700900123", None, "GB"),
    ],
)
def test_a_long_code_takes_its_own_country(
    db: Database, clock: FrozenClock, number: str, country: str | None, stored: str
) -> None:
    assert _add(db, clock, _account(db, clock), number, country)["iso_country"] == stored


def test_the_cli_needs_a_short_codes_country(
    db: Database, database_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = _account(db, clock)
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    runner = CliRunner()
    for refused in (["12345"], ["12345", "--country", "USA"], ["+14155550101", "--country", "GB"]):
        done = runner.invoke(app, ["numbers", "add", "--account", account, *refused, "--json"])
        assert done.exit_code != 0 and "20422" in done.output, done.output
    done = runner.invoke(app, ["numbers", "add", "--account", account, "12345", "--country", "us", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["iso_country"] == "US"
    with db.read() as conn:
        assert [n["phone_number"] for n in number_store.list_numbers(conn, account_sid=account)] == ["12345"]


def test_the_cli_mends_a_short_code_stored_without_its_country(
    db: Database, database_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = _account(db, clock)
    with db.write() as conn:  # as `pigeon numbers add 12345` left it before the country was required
        number_store.add_number(
            conn, account_sid=account, phone_number="12345", now=clock.now(), number_type="short_code"
        )
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    runner = CliRunner()
    done = runner.invoke(app, ["numbers", "country", "12345", "USA"])
    assert done.exit_code != 0 and "20422" in done.output, done.output
    done = runner.invoke(app, ["numbers", "country", "+14155550101", "US"])
    assert done.exit_code != 0 and "20404" in done.output, done.output
    done = runner.invoke(app, ["numbers", "country", "12345", "gb", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["iso_country"] == "GB"


def test_the_import_skips_a_short_code_whose_country_no_service_names(db: Database, clock: FrozenClock) -> None:
    account = _account(db, clock)
    snapshot = Snapshot.from_api(
        incoming_numbers=[],
        short_codes=[{"short_code": "89898"}, {"short_code": "77777"}, {"short_code": "66666"}],
        services=[
            (
                {"friendly_name": "Pool"},
                [],
                [{"short_code": "77777", "country_code": "us"}, {"short_code": "66666", "country_code": "USA"}],
                [],
            )
        ],
    )
    with db.write() as conn:
        steps = import_snapshot(conn, account, snapshot, now=clock.now())
    assert steps[:3] == [
        Step("number", "89898", "skipped", steps[0].why),
        Step("number", "77777", "made"),
        Step("number", "66666", "skipped", steps[2].why),
    ]
    assert "names its country" in steps[0].why and "--country" in steps[0].why
    assert "USA" in steps[2].why
    with db.read() as conn:
        made = number_store.find_by_number(conn, "77777")
        assert made is not None and made["iso_country"] == "US"
        assert number_store.find_by_number(conn, "89898") is None
        assert number_store.find_by_number(conn, "66666") is None
