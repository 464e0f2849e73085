"""An operator's mistake (a setting out of range, a database URL that cannot be used, a port
already taken, a file or directory that is not there, a store made by a newer release, a
downgrade to a revision there is no going back to, a store with no schema yet) ends a command
with one line in our own words and exit status 2, not a traceback."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest

from pigeon.store.engine import Database
from pigeon.store.schema import upgrade
from tests.acceptance.conftest import PIGEON, free_port

CASES = [
    ({"PIGEON_LOG_LEVEL": "verbose"}, ["serve"], "PIGEON_LOG_LEVEL"),
    ({"PIGEON_PORT": "99999"}, ["serve"], "PIGEON_PORT"),
    ({"PIGEON_DATABASE_URL": "postgresql://u:pw@h:notaport/db"}, ["logs"], "port"),
    ({"PIGEON_DATABASE_URL": "postgres+nosuch://u@h/db"}, ["logs"], "postgres+nosuch"),
    ({}, ["worker", "--metrics-port", "70000"], "--metrics-port"),
    ({}, ["serve", "--workers", "-1"], "--workers"),
    ({}, ["inventory", "import", "/nonexistent.csv"], "/nonexistent.csv"),
    ({}, ["optouts", "export", "-o", "/nonexistent/dir/f.csv"], "/nonexistent/dir/f.csv"),
    ({}, ["db", "downgrade", "base", "--yes"], "no revision 'base'"),
    # Taken for a path before: the server started, "Listening on sms.example.com".
    ({"PIGEON_PUBLIC_URL": "sms.example.com"}, ["serve"], "PIGEON_PUBLIC_URL: 'sms.example.com' is not a URL"),
    # Named the flag before ("--api-processes must be at least 1"), which nobody gave.
    ({"PIGEON_API_PROCESSES": "0"}, ["serve"], "configuration error: PIGEON_API_PROCESSES: 0 is less than 1"),
    ({}, ["serve", "--api-processes", "0"], "configuration error: --api-processes: 0 is less than 1"),
    # Taken before: nan kept history for ever; inf and 1e9 crashed the worker at start.
    ({"PIGEON_MESSAGE_DAYS": "nan"}, ["worker"], "configuration error: PIGEON_MESSAGE_DAYS: nan is not a finite"),
    ({"PIGEON_WEBHOOK_HISTORY_DAYS": "1e9"}, ["serve"], "PIGEON_WEBHOOK_HISTORY_DAYS: 1000000000.0 is more than"),
]

# Mistakes made on a store: one made as a user makes it (`pigeon db upgrade`), or a database
# with no schema yet (an empty file here; a new database on PostgreSQL). No command but
# serve, worker and db upgrade makes or migrates a store, so these are not made for them.
ON_A_STORE = [
    ("made", ["logs", "--export", "json", "-o", "/nonexistent/dir/f.json"], "/nonexistent/dir/f.json"),
    ("empty", ["db", "downgrade", "0016", "--yes"], "no schema yet"),
    ("empty", ["logs"], "the store has no schema yet"),
]


def _pigeon(
    tmp_path: Path, env: dict[str, str], args: list[str], *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    return subprocess.run(
        [str(PIGEON), *args],
        env={**clean, "PIGEON_DATABASE_URL": f"sqlite:///{tmp_path / 'pigeon.db'}", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(done: subprocess.CompletedProcess[str], expected: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and expected in lines[0], done.stderr


@pytest.mark.parametrize(("env", "args", "expected"), CASES, ids=[" ".join(c[1]) + str(c[0]) for c in CASES])
def test_a_mistake_is_one_line_and_exit_2(tmp_path: Path, env: dict[str, str], args: list[str], expected: str) -> None:
    _one_line(_pigeon(tmp_path, env, args), expected)


@pytest.mark.parametrize(("store", "args", "expected"), ON_A_STORE, ids=[" ".join(c[1]) for c in ON_A_STORE])
def test_a_mistake_on_a_store_is_one_line_and_exit_2(
    tmp_path: Path, store: str, args: list[str], expected: str
) -> None:
    if store == "made":
        assert _pigeon(tmp_path, {}, ["db", "upgrade"]).returncode == 0
    else:
        (tmp_path / "pigeon.db").touch()
    _one_line(_pigeon(tmp_path, {}, args), expected)


def test_a_port_already_taken_stops_serve_before_it_makes_anything(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = _pigeon(tmp_path, {"PIGEON_PORT": str(port)}, ["serve"])
    _one_line(done, f"127.0.0.1:{port}")
    assert not (tmp_path / "pigeon.db").exists(), "a store (and a first account) was made all the same"


@pytest.mark.parametrize("api_processes", ["1", "2"])
def test_a_port_another_server_shares_out_stops_serve(tmp_path: Path, api_processes: str) -> None:
    """A port that another server listens on with SO_REUSEPORT (as a `pigeon serve
    --api-processes N` does) is as taken as any: with N >= 2 a second server used to join it,
    start, and take half of the first one's connections."""
    port = free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        try:
            done = _pigeon(
                tmp_path, {"PIGEON_PORT": str(port)}, ["serve", "--api-processes", api_processes], timeout=20
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"pigeon serve --api-processes {api_processes} started on a port already listened on")
    _one_line(done, f"127.0.0.1:{port}")
    assert not (tmp_path / "pigeon.db").exists()


def test_a_store_made_by_a_newer_release_is_said_so(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'pigeon.db'}")
    upgrade(db.engine)
    db.dispose()
    with sqlite3.connect(tmp_path / "pigeon.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    _one_line(_pigeon(tmp_path, {}, ["logs"]), "newer release")
    _one_line(_pigeon(tmp_path, {}, ["db", "downgrade", "0016", "--yes"]), "newer release")


PACING_0 = "[pacing]\nlong_code = 0\n"
NO_HOST = '[[carriers]]\nname = "acme"\nkind = "smpp"\n'
SCENARIO_TYPO = '[[simulator.scenarios]]\nsuffix = "0110"\noutcom = "failed"\n'
SCENARIO_KEY = '[[simulator.scenarios]]\nsuffix = "0110"\noutcome = "delivered"\ndealy = 20\n'
SECTION_TYPO = '[[simulator.scenario]]\nsuffix = "0110"\noutcome = "failed"\n'
FILE_CASES = [
    # Exit 0 before: these commands went on with a file the server refuses.
    (PACING_0, ["logs"], "PIGEON_CONFIG: [pacing] long_code = 0: a rate is"),
    (PACING_0, ["doctor", "message", "SM" + "0" * 32], "PIGEON_CONFIG: [pacing] long_code = 0"),
    (PACING_0, ["carriers"], "PIGEON_CONFIG: [pacing] long_code = 0"),
    (PACING_0, ["db", "upgrade"], "PIGEON_CONFIG: [pacing] long_code = 0"),
    (
        NO_HOST,
        ["send", "--to", "+14155552671", "--body", "hi"],
        "PIGEON_CONFIG: carriers[0] ('acme'): host is required",
    ),
    (NO_HOST, ["logs"], "PIGEON_CONFIG: carriers[0] ('acme'): host is required"),
    # A 75-line traceback before (KeyError: 'outcome').
    (SCENARIO_TYPO, ["serve"], "PIGEON_CONFIG: simulator.scenarios[0] (suffix '0110'): unknown key(s) outcom;"),
    # Ignored before: the server started with the built-in script.
    (SCENARIO_KEY, ["serve"], "PIGEON_CONFIG: simulator.scenarios[0] (suffix '0110'): unknown key(s) dealy;"),
    (SECTION_TYPO, ["worker"], "PIGEON_CONFIG: [simulator]: unknown key(s) scenario;"),
    (SECTION_TYPO, ["logs"], "PIGEON_CONFIG: [simulator]: unknown key(s) scenario;"),
]


@pytest.mark.parametrize(
    ("toml", "args", "expected"), FILE_CASES, ids=[f"{' '.join(a[:2])}-{t.splitlines()[0]}" for t, a, _ in FILE_CASES]
)
def test_every_command_refuses_a_file_that_cannot_be_used(
    tmp_path: Path, toml: str, args: list[str], expected: str
) -> None:
    """README: every command checks the whole file before it starts anything, whether or not it
    uses the table at fault; nothing is made, not even the store."""
    config = tmp_path / "pigeon.toml"
    config.write_text(toml)
    done = _pigeon(tmp_path, {"PIGEON_CONFIG": str(config)}, args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    # Commands that read the settings through pigeon.cli_store print the one line wrapped at
    # the terminal's width (80 columns when there is none): read it as one.
    said = " ".join(lines)
    assert said.startswith(f"configuration error: {expected}"), done.stderr
    if args[0] in ("serve", "worker"):
        assert len(lines) == 1, done.stderr
    assert not (tmp_path / "pigeon.db").exists(), "a store was made all the same"
