"""What Pigeon keeps of a media URL, sent or received, on both stores: the URL as a client
requests it (non-ASCII percent-encoded, escapes and reserved characters as given), and one
content type guessed the same way in both directions (`pigeon.domain.media`)."""

from __future__ import annotations

from typing import Any

from pigeon.app.inbound import receive
from pigeon.ports import InboundSms
from pigeon.store import webhooks as outbox
from pigeon.store.tables import media, phone_numbers
from tests.integration.pipeline import SENDER, TO, Pipeline

#: URLs whose type the path tells, or does not: an extension in another case, a query, a
#: fragment, none at all.
URLS = (
    "https://cdn.example.com/cat.jpg",
    "https://cdn.example.com/blob",
    "https://cdn.example.com/c.png?x=1.gif",
    "https://cdn.example.com/d.JPG#frag",
    "https://cdn.example.com/menu.pdf?v=2#page=1",
)
TYPES = ["image/jpeg", "application/octet-stream", "image/png", "image/jpeg", "application/pdf"]


def _media_of(pipe: Pipeline, sid: str) -> list[dict[str, Any]]:
    with pipe.db.read() as conn:
        rows = conn.execute(media.select().where(media.c.message_sid == sid).order_by(media.c.position))
        return [dict(r) for r in rows.mappings()]


def _receive(pipe: Pipeline, urls: tuple[str, ...]) -> str:
    with pipe.db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == SENDER)
            .values(sms_url="https://app.example.com/sms")
        )
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender=TO, recipient=SENDER, body="pics", media_urls=urls),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )
    assert intake.message_sid is not None
    return intake.message_sid


def test_sent_and_received_media_get_the_same_content_type(pipe: Pipeline) -> None:
    """Before, a sent one whose URL named no known type (or ended with a #fragment) had none
    (null), a received one application/octet-stream: two guesses."""
    sent = pipe.send(body="look", media=URLS)
    received = _receive(pipe, URLS)
    assert [m["content_type"] for m in _media_of(pipe, sent)] == TYPES
    assert [m["content_type"] for m in _media_of(pipe, received)] == TYPES


def test_a_received_media_url_that_is_not_ascii_is_kept_encoded(pipe: Pipeline) -> None:
    """A carrier's URL is stored as a sent one is: the content URL the webhook is given
    redirects to it, in a header that holds ASCII only."""
    received = _receive(pipe, ("https://carrier.example.net/x/☃.png?n=é&y=%2F",))
    [row] = _media_of(pipe, received)
    assert row["url"] == "https://carrier.example.net/x/%E2%98%83.png?n=%C3%A9&y=%2F"
    assert row["content_type"] == "image/png"
    with pipe.db.read() as conn:
        [delivery] = outbox.list_deliveries(conn, message_sid=received)
    params = dict(delivery["params"])
    assert params["MediaContentType0"] == "image/png"
    assert params["MediaUrl0"].endswith(f"/Messages/{received}/Media/{row['sid']}")
