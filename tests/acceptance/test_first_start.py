"""The first start of `pigeon serve` on an empty store, as an operator sees it: what it prints
is pasted as it is, and does what it says."""

from __future__ import annotations

import os
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
    """It said "Listening on" the public URL, which is not where it listens."""
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
        assert "curl -X POST https://sms.example.com/2010-04-01/Accounts/" in said
    finally:
        process.terminate()
        process.wait(timeout=30)
