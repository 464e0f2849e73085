"""The quick start works: a real server, the real twilio SDK, a message created and fetched."""

from __future__ import annotations

from tests.acceptance.conftest import Server


def test_send_and_fetch_with_the_twilio_sdk(server: Server) -> None:
    client = server.client()
    msg = client.messages.create(to="+14155552671", from_=server.numbers[0], body="Hello from Pigeon")
    assert msg.sid.startswith("SM") and msg.status == "queued"
    fetched = client.messages(msg.sid).fetch()
    assert fetched.body == "Hello from Pigeon"
    assert fetched.num_segments == "1"
