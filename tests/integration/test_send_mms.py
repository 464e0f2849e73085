"""Media only from a sender that can send MMS: 21621 from a number without the capability, a
short code (none here has it) or an alphanumeric sender, before anything is written. Both stores."""

from __future__ import annotations

import hashlib

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app import services as service_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.app.send_request import content_hash
from pigeon.domain.errors import ApiError
from pigeon.store.engine import Database
from pigeon.store.settings import content_key
from pigeon.testing import FrozenClock

MEDIA = ["https://media.example.com/cat.png"]


def test_media_needs_a_sender_that_can_send_mms(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="MMS", now=now)
        sid = account["sid"]
        number_use.provision(conn, account_sid=sid, phone_number="+14155550197", now=now)
        number_use.provision(conn, account_sid=sid, phone_number="+14155550198", now=now, mms=False)
        number_use.provision(conn, account_sid=sid, phone_number="55123", now=now, iso_country="US")

    def send(sender: str, to: str = "+14155557050", media: list[str] = MEDIA) -> None:
        with db.read() as conn:
            prepare_message(conn, sid, SendRequest(to=to, from_=sender, body="look", media_urls=media), now)

    send("+14155550197")  # MMS-capable
    send("+14155550198", media=[])  # the same text without media
    for sender, to in (("+14155550198", "+14155557050"), ("55123", "+14155557050"), ("Pigeon", "+447700900125")):
        with pytest.raises(ApiError) as refused:
            send(sender, to)
        assert (refused.value.code, refused.value.status) == (21621, 400), sender
        assert sender in refused.value.message


def test_a_service_sends_media_from_a_pool_sender_that_can_send_mms(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        sid = account_use.create_account(conn, friendly_name="MMS pool", now=now)["sid"]
        service = service_use.create(conn, sid, {"FriendlyName": "pool"}, now)["sid"]
        short = number_use.provision(conn, account_sid=sid, phone_number="55125", now=now, iso_country="US")
        pictures = number_use.provision(conn, account_sid=sid, phone_number="+14155550199", now=now)
        path = f"/v1/Services/{service}"
        service_use.add_number(conn, sid, service, short["sid"], short_code=True, path=path, now=now)
        service_use.add_number(conn, sid, service, pictures["sid"], short_code=False, path=path, now=now)

    def sender(media: list[str]) -> str:
        req = SendRequest(to="+14155557051", messaging_service_sid=service, body="look", media_urls=media)
        with db.read() as conn:
            return str(prepare_message(conn, sid, req, now).message["from_"])

    assert sender([]) == "55125"  # a text: the short code, as Twilio prefers
    assert sender(MEDIA) == "+14155550199"  # media: the pool's sender that can send MMS


def test_the_content_hash_of_media_names_each_url_in_order_and_is_keyed(db: Database, clock: FrozenClock) -> None:
    """Two MMS with the same text (or none) and other pictures are other content. A hash is
    keyed with the install's content key: not the plain SHA-256 from which a short text could
    be found by trying every candidate."""
    now = clock.now()
    with db.write() as conn:
        sid = account_use.create_account(conn, friendly_name="MMS hash", now=now)["sid"]
        number_use.provision(conn, account_sid=sid, phone_number="+14155550197", now=now)

    def hashed(body: str, media: list[str]) -> str:
        req = SendRequest(to="+14155557052", from_="+14155550197", body=body, media_urls=media)
        with db.read() as conn:
            return str(prepare_message(conn, sid, req, now).message["content_hash"])

    with db.read() as conn:
        key = content_key(conn)
    plain = hashlib.sha256(b"+14155550197\x1f+14155557052\x1fhello").hexdigest()
    assert hashed("hello", []) == content_hash("+14155550197", "+14155557052", "hello", key=key) != plain
    a, b = "https://media.example.com/a.png", "https://media.example.com/b.png"
    hashes = {hashed("", [a]), hashed("", [b]), hashed("", [a, b]), hashed("", [b, a]), hashed("hello", [a])}
    assert len(hashes) == 5 and plain not in hashes
    assert hashed("", [a]) == hashed("", [a])
