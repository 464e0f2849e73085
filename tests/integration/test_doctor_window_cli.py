"""`pigeon doctor duplicates --window` reads its seconds as the API reads Window
(pigeon.domain.decimals): Click's float type took "1e3", "1_0" and " 10 " before."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pigeon.bootstrap import ensure_first_account
from pigeon.cli import app
from pigeon.store.engine import Database
from pigeon.testing import FrozenClock


@pytest.fixture
def store(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("PIGEON_DATABASE_URL", database_url)
    assert ensure_first_account(db, FrozenClock()) is not None
    return db


@pytest.mark.parametrize("window", ["1e3", "1_0", " 10 ", "nan"])
def test_a_loose_window_is_refused(store: Database, window: str) -> None:
    done = CliRunner().invoke(app, ["doctor", "duplicates", "--window", window])
    assert done.exit_code == 2, done.output
    assert "is not a number of seconds" in done.stderr and "--window" in done.stderr


def test_a_decimal_window_is_taken(store: Database) -> None:
    done = CliRunner().invoke(app, ["doctor", "duplicates", "--window", "1.5", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["subject"]["window_seconds"] == 1.5
