"""SIGTERM stops `pigeon serve` within its shutdown grace, whatever its clients are doing: a
request that never finishes arriving is given up on once the grace is over, and the workers
still stop through the app's lifespan."""

from __future__ import annotations

import base64
import json
import signal
import socket
import time
from typing import Any

from tests.acceptance.conftest import Server

GRACE = 2


def test_a_request_that_never_ends_does_not_hold_off_sigterm(server_factory: Any) -> None:
    srv: Server = server_factory("sqlite", env={"PIGEON_SHUTDOWN_GRACE_SECONDS": str(GRACE)})
    assert srv.process is not None
    port = int(srv.base_url.rsplit(":", 1)[1])
    auth = base64.b64encode(f"{srv.account_sid}:{srv.auth_token}".encode()).decode()
    with socket.create_connection(("127.0.0.1", port)) as client:
        # The headers and half the body, and then nothing: a client stalled mid-request.
        client.sendall(
            (
                f"POST /2010-04-01/Accounts/{srv.account_sid}/Messages.json HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 100\r\n\r\nTo=%2B1"
            ).encode()
        )
        time.sleep(0.5)
        srv.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        srv.process.wait(timeout=GRACE + 10)  # before: it waited for the client for ever
        took = time.monotonic() - started
    assert srv.process.returncode == -signal.SIGTERM
    assert took < GRACE + 10
    srv.process = None
    # README: the cut-off is what the grace period is for; one warning says so, no error with a
    # CancelledError traceback (as if something had gone wrong).
    entries = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    assert [e for e in entries if e["level"] == "error"] == []
    [cut] = [e for e in entries if "cut off" in e["message"]]
    assert cut["level"] == "warning" and cut["requests_cut_off"] == 1 and "exception" not in cut
