"""The first start of `pigeon serve` on an empty store, as an operator sees it: what it prints
is pasted as it is, and does what it says."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

import httpx

from tests.acceptance.conftest import PIGEON, free_port


def _start(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PIGEON), "serve"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, log


def _healthy(process: subprocess.Popen[bytes], log: Path, url: str) -> str:
    """The server's output once it answers, and says where it listens."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200 and "Listening on" in log.read_text():
                return log.read_text()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"pigeon serve did not start:\n{log.read_text()}")


def test_the_first_start_prints_examples_that_work_and_where_it_listens(tmp_path: Path) -> None:
    """The README's `simulate inbound --to +14155552000` named a number no first start makes:
    pasted, it went nowhere and exited 0. The banner now fills one in with the account's own
    number; and it said "Listening on" the public URL, which is not where it listens."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PIGEON_", "TWILIO_"))},
        "PIGEON_DATABASE_URL": f"sqlite:///{tmp_path / 'pigeon.db'}",
        "PIGEON_HOST": "127.0.0.1",
        "PIGEON_PORT": str(port),
        "PIGEON_PUBLIC_URL": "https://sms.example.com/",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    process, log = _start(tmp_path, env)
    try:
        said = _healthy(process, log, f"http://127.0.0.1:{port}")
        lines = [line.strip() for line in said.splitlines()]
        assert f"Listening on http://127.0.0.1:{port}" in lines
        assert (
            "Public URL   https://sms.example.com (PIGEON_PUBLIC_URL): clients, links and the examples use it" in lines
        )
        numbers = next(line for line in lines if line.startswith("Numbers")).split(maxsplit=1)[1].split(", ")
        assert "curl -X POST https://sms.example.com/2010-04-01/Accounts/" in said
        [example] = [line for line in lines if " simulate inbound " in line]
        argv = shlex.split(example)
        assert argv[0] == str(PIGEON) and argv[argv.index("--to") + 1] == numbers[0]
        done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("received as SM"), done.stdout
        # The README's number, which is nobody's: kept as unroutable, said so, and exit 1.
        argv[argv.index("--to") + 1] = "+14155552000"
        for extra in ([], ["--json"]):
            missed = subprocess.run([*argv, *extra], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
            assert missed.returncode == 1, (missed.stdout, missed.stderr)
            assert "+14155552000 is not a number of any account" in missed.stdout
    finally:
        process.terminate()
        process.wait(timeout=30)
