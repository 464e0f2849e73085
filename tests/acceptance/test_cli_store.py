"""The `pigeon` command as an operator runs it, in its own processes: from a directory that
holds no store it makes none (the default store is `<working directory>/pigeon.db`), a
store taken back for an older release stays back, and the README's way to recover an auth
token prints it whole in an 80-column terminal and into a pipe."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pigeon.cli import app
from pigeon.store.engine import Database
from pigeon.store.schema import current_revision, revisions
from tests.acceptance.conftest import PIGEON

HEAD = revisions()[-1].id

#: Every command that opens the store, but those that make it (serve, worker, db upgrade).
NO_STORE_COMMANDS = [
    ["logs"],
    ["accounts", "list", "--show-tokens"],
    ["accounts", "create"],
    ["numbers", "list"],
    ["send", "--to", "+14155552671", "--from", "+14155559000", "--body", "hi"],
    ["doctor", "message", "--to", "+14155550101"],
    ["db", "current"],
    ["db", "downgrade", "0016", "--yes"],
    ["db", "backup", "nightly.db"],
]


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PIGEON_", "COLUMNS", "LINES", "FORCE_COLOR"))}
    return {**clean, "TERM": "xterm", **extra}


def pigeon(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command with its output piped, as in a script or `| grep`."""
    return subprocess.run(
        [str(PIGEON), *args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=60, check=False
    )


def in_terminal(cwd: Path, *args: str, columns: int) -> str:
    """What a command prints in a terminal `columns` wide (a pseudo-terminal of that size),
    without its colours."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            [str(PIGEON), *args], cwd=cwd, env=_env(), stdin=follower, stdout=follower, stderr=follower
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, b"".join(chunks).decode()
    finally:
        os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode())


@pytest.mark.parametrize("args", NO_STORE_COMMANDS, ids=" ".join)
def test_a_command_run_where_there_is_no_store_makes_none(tmp_path: Path, args: list[str]) -> None:
    done = pigeon(tmp_path, *args)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(lines) == 1 and f"no Pigeon store at sqlite:///{tmp_path}/pigeon.db" in lines[0], done.stderr
    assert "PIGEON_DATABASE_URL" in lines[0] and done.stdout == ""
    assert list(tmp_path.iterdir()) == [], "the command made a store where there was none"


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A store made as a user makes one without starting the server (`pigeon db upgrade`, then
    an account, a number and a message), in the directory the commands then run from (the
    default URL). Made in this process: each `pigeon` process takes seconds to start."""

    def cli(*args: str) -> str:
        done = CliRunner().invoke(app, list(args), env={"PIGEON_DATABASE_URL": f"sqlite:///{tmp_path / 'pigeon.db'}"})
        assert done.exit_code == 0, done.output
        return done.stdout

    cli("db", "upgrade")
    account: dict[str, str] = json.loads(cli("accounts", "create", "--json"))
    number = json.loads(cli("numbers", "add", "--account", account["sid"], "+14155559000", "--json"))
    message = json.loads(cli("send", "--to", "+14155552671", "--from", "+14155559000", "--body", "hi", "--json"))
    return tmp_path, {**account, "number_sid": number["sid"], "message_sid": message["sid"]}


def test_a_store_taken_back_for_an_older_release_stays_back(store: tuple[Path, dict[str, str]]) -> None:
    """The README's way back: `pigeon db downgrade` with the release being left; a command run
    with it afterwards must not take the store forward again."""
    here, _ = store
    assert pigeon(here, "db", "downgrade", "0016", "--yes").returncode == 0
    db = Database.from_url(f"sqlite:///{here / 'pigeon.db'}")
    try:
        for args in (["accounts", "list"], ["doctor", "message", "--to", "+14155550101"]):
            done = pigeon(here, *args)
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
            assert lines == [f"the store's schema is at 0016; this release needs {HEAD}: run `pigeon db upgrade`"]
            assert current_revision(db.engine) == "0016"
    finally:
        db.dispose()


@pytest.mark.parametrize("terminal", [True, False], ids=["80-column terminal", "piped"])
def test_the_auth_token_is_printed_whole(store: tuple[Path, dict[str, str]], terminal: bool) -> None:
    """The README's way to recover the token the first start printed once."""
    here, account = store
    args = ("accounts", "list", "--show-tokens")
    shown = in_terminal(here, *args, columns=80) if terminal else pigeon(here, *args).stdout
    row = next((line for line in shown.splitlines() if account["sid"] in line), "")
    assert account["auth_token"] in row, shown


@pytest.mark.parametrize("terminal", [True, False], ids=["80-column terminal", "piped"])
def test_the_sids_the_doctor_needs_are_printed_whole(store: tuple[Path, dict[str, str]], terminal: bool) -> None:
    here, ids = store
    for args, sid in ((["logs"], ids["message_sid"]), (["numbers", "list"], ids["number_sid"])):
        shown = in_terminal(here, *args, columns=80) if terminal else pigeon(here, *args).stdout
        assert sid in shown, shown
