"""`pigeon send`: a message made from the command line goes out like one from the API, and a
refused one says why."""

from __future__ import annotations

import json

import pytest

from tests.acceptance.conftest import Server
from tests.acceptance.support import fresh_number, wait_for

pytestmark = pytest.mark.acceptance


def test_send_from_the_command_line(sqlite_server: Server) -> None:
    server, sender, to = sqlite_server, sqlite_server.numbers[0], fresh_number()
    media = "https://cdn.example.com/cat.jpg"
    done = server.cli(
        "send", "--to", to, "--from", sender, "--body", "look", "--media-url", media, "--json"
    )  # fmt: skip
    made = json.loads(done.stdout)
    assert (made["status"], made["to"], made["from_"], made["num_media"]) == ("queued", to, sender, 1)
    assert made["sid"].startswith("MM")
    client = server.client()
    wait_for("delivered", lambda: client.messages(made["sid"]).fetch().status == "delivered", timeout=15)
    [item] = client.messages(made["sid"]).media.list()
    assert item.content_type == "image/jpeg"

    refused = server.cli("send", "--to", "[not a number]", "--from", sender, "--body", "x", check=False)
    assert refused.returncode == 1
    assert "error 21211" in refused.stderr and "[not a number]" in refused.stderr  # not taken for markup
