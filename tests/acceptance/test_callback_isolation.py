"""A receiver that never answers does not hold up another receiver's status callbacks.

`pigeon serve` (pacing raised) gets 150 messages whose StatusCallback accepts connections and
never answers, then 10 whose StatusCallback answers at once: the second receiver gets its 30
callbacks within seconds, while the first one's requests are still hanging, and at most a
quarter of the worker's request slots (25 of 100) are taken by them; /metrics counts the
deliveries given back.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import Server, free_port
from tests.acceptance.support import wait_for
from tests.acceptance.test_delivery_e2e import Receiver


class Hanging:
    """Accepts connections, reads nothing, answers nothing; counts the connections open."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.first: float | None = None  # when the first connection came
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
                self.first = self.first or time.monotonic()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/status"

    def open_connections(self) -> int:
        with self.lock:
            return len(self.conns)

    def close(self) -> None:
        self.sock.close()
        with self.lock:
            for conn in self.conns:  # reset: the server's requests fail at once, not after 15 s
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                conn.close()


@pytest.fixture
def receivers() -> Iterator[tuple[Hanging, Receiver]]:
    hanging, answering = Hanging(), Receiver()
    answering.start()
    yield hanging, answering
    hanging.close()
    answering.stop()


def test_a_receiver_that_never_answers_does_not_hold_up_another(
    server_factory: Any, receivers: tuple[Hanging, Receiver], tmp_path: Path
) -> None:
    hanging, answering = receivers
    config = tmp_path / "pigeon.toml"
    config.write_text("[pacing]\nlong_code = 500.0\n")
    server: Server = server_factory("sqlite", env={"PIGEON_CONFIG": str(config)})
    client = server.client()
    for i in range(150):
        client.messages.create(to=f"+1415556{i:04d}", from_=server.numbers[0], body="slow", status_callback=hanging.url)
    wait_for("the hanging receiver's callbacks to be in flight", lambda: hanging.open_connections() >= 25, 10)
    started = time.monotonic()
    quick = [
        client.messages.create(
            to=f"+1415557{i:04d}", from_=server.numbers[1], body="quick", status_callback=answering.url
        ).sid
        for i in range(10)
    ]
    wait_for(
        "the answering receiver's callbacks",
        lambda: all(answering.statuses(sid) == ["sending", "sent", "delivered"] for sid in quick),
        10,
    )
    assert time.monotonic() - started < 10  # the hanging receiver's requests time out after 15 s
    assert hanging.first is not None
    if time.monotonic() - hanging.first < 14:  # none of its requests has timed out and gone again
        assert hanging.open_connections() == 25  # its share of the 100 slots, no more
    metrics = httpx.get(f"{server.base_url}/metrics", timeout=10).text
    [given_back] = [line for line in metrics.splitlines() if line.startswith("pigeon_webhook_given_back_total ")]
    assert float(given_back.split()[1]) >= 125  # the other 125 went back at least once
