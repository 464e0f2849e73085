"""The fingerprint of an Idempotency-Key request, through the API on both stores.

It covers the request's Body: an unkeyed SHA-256 of it, kept 24 hours and left by redaction,
gave a six-digit code back in seconds. It is keyed with the install's key, and redaction
replaces it; a replay of the key then answers the message, redacted."""

from __future__ import annotations

import warnings
from typing import Any

import sqlalchemy as sa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's test client prefers its httpx fork
    from starlette.testclient import TestClient

from pigeon.domain.idempotency import REDACTED, request_hash, unkeyed_request_hash
from pigeon.store import messages as message_store
from pigeon.store.engine import Database
from pigeon.store.schema import downgrade, upgrade
from pigeon.store.settings import content_key
from pigeon.store.tables import idempotency_keys, messages
from pigeon.testing import FrozenClock
from tests.integration.test_event_streams import Account, make_account
from tests.integration.test_redaction_http import SECRET, api, converse, holding, redact

__all__ = ["api"]  # the fixture

CODE = "Your code is 483920"


def _send(api: TestClient, acct: Account, key: str, body: str = CODE) -> tuple[int, dict[str, Any], str]:
    answer = api.post(
        f"/2010-04-01/Accounts/{acct.sid}/Messages.json",
        data={"To": "+14155550911", "From": acct.number, "Body": body},
        headers={"Idempotency-Key": key},
        auth=(acct.sid, acct.token),
    )
    return answer.status_code, answer.json(), answer.headers.get("Idempotent-Replayed", "")


def _stored_hash(db: Database, sid: str) -> str:
    with db.read() as conn:
        return str(
            conn.execute(
                sa.select(idempotency_keys.c.request_hash).where(idempotency_keys.c.message_sid == sid)
            ).scalar_one()
        )


def _tried(stored: str, acct: Account) -> list[str]:
    """The reviewer's attack on a range of codes: the plain SHA-256 of each candidate request."""
    return [
        f"{n:06d}"
        for n in range(483900, 484000)
        if unkeyed_request_hash([("To", "+14155550911"), ("From", acct.number), ("Body", f"Your code is {n:06d}")])
        == stored
    ]


def test_the_fingerprint_of_a_keyed_send_gives_nothing_away_and_goes_with_redaction(
    api: TestClient, db: Database, clock: FrozenClock
) -> None:
    acct = make_account(db, clock)
    status, sent, _ = _send(api, acct, "otp-1")
    assert status == 201
    sid = sent["sid"]
    assert _tried(_stored_hash(db, sid), acct) == []  # keyed: a candidate cannot be checked without the key
    with db.write() as conn:
        conn.execute(messages.update().where(messages.c.sid == sid).values(status="delivered"))
        fields = [("To", "+14155550911"), ("From", acct.number), ("Body", CODE)]
        assert _stored_hash(db, sid) == request_hash(fields, key=content_key(conn))
    redact(api, acct, sid)
    assert _stored_hash(db, sid) == REDACTED
    assert holding(db, CODE) == []
    # A replay of the key answers the message it made, redacted: its parameters can no longer
    # be compared, and the key names that one send.
    for body in (CODE, "Your code is 000000"):
        status, again, replayed = _send(api, acct, "otp-1", body)
        assert (status, again["sid"], again["body"], replayed) == (201, sid, "", "true")


def test_a_key_stored_before_the_upgrade_still_replays_for_its_24_hours(
    api: TestClient, db: Database, clock: FrozenClock
) -> None:
    """Its fingerprint was the plain SHA-256; the same request still finds its message, and
    another is still refused."""
    acct = make_account(db, clock)
    status, sent, _ = _send(api, acct, "old")
    fields = [("To", "+14155550911"), ("From", acct.number), ("Body", CODE)]
    with db.write() as conn:  # as the release before stored it
        conn.execute(idempotency_keys.update().values(request_hash=unkeyed_request_hash(fields)))
    clock.advance(23 * 3600)
    status, again, replayed = _send(api, acct, "old")
    assert (status, again["sid"], replayed) == (201, sent["sid"], "true")
    status, refused, _ = _send(api, acct, "old", "Your code is 000000")
    assert (status, refused["code"]) == (409, 20409)


def test_the_upgrade_forgets_what_earlier_redactions_left(db: Database, clock: FrozenClock, api: TestClient) -> None:
    """Messages redacted before this release kept their webhooks' answers and their request's
    unkeyed fingerprint: migration 0025 replaces them, and leaves other messages' alone."""
    c = converse(db, clock)
    acct = c.account
    _, sent, _ = _send(api, acct, "before")
    _, kept, _ = _send(api, acct, "kept", "Your code is 111111")
    fields = [("To", "+14155550911"), ("From", acct.number), ("Body", CODE)]
    downgrade(db.engine, "0024")
    with db.write() as conn:  # as the release before redacted: body and content hash only
        conn.execute(
            idempotency_keys.update()
            .where(idempotency_keys.c.key == "before")
            .values(request_hash=unkeyed_request_hash(fields))
        )
        for sid in (c.reply, sent["sid"]):
            conn.execute(messages.update().where(messages.c.sid == sid).values(body="", content_hash=None))
            message_store.add_event(conn, message_sid=sid, account_sid=acct.sid, at=clock.now(), kind="redacted")
    assert holding(db, SECRET) == ["webhook_attempts.response_excerpt"]
    kept_hash = _stored_hash(db, kept["sid"])
    upgrade(db.engine)
    assert holding(db, SECRET) == []
    assert _stored_hash(db, sent["sid"]) == REDACTED
    assert _stored_hash(db, kept["sid"]) == kept_hash
