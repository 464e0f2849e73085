"""Media content URLs (`…/Messages/{MM}/Media/{ME}`, no `.json`) on both stores: public by
default, as on Twilio, where the unguessable SIDs are the key, so that an application can
fetch the MediaUrl0 of an incoming-message webhook without credentials; behind Basic auth with
PIGEON_MEDIA_BASIC_AUTH. The `.json` metadata always needs credentials; credentials that are
given are always checked; a wrong account or SID is the same 404; the request log and the
metrics count the requests made without credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from pigeon import bootstrap
from pigeon.app import account_status
from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.config import load_settings
from pigeon.domain.sids import Prefix, new_sid
from pigeon.store.engine import Database
from pigeon.store.request_log import RequestFilter, list_requests
from pigeon.store.tables import media

SENDER = "+14155550195"
PICTURE = "https://media.example.com/cat.jpg"
#: The content route's template: its requests' metrics label, and (formatted) their path.
CONTENT_ROUTE = "/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media/{media_sid}"

Request = tuple[str, dict[str, Any]]  # (path, httpx keyword arguments)


def _accounts(db: Database) -> tuple[dict[str, Any], dict[str, Any]]:
    now = datetime.now(UTC)
    with db.write() as conn:
        owner = account_use.create_account(conn, friendly_name="Media", now=now)
        number_use.provision(conn, account_sid=owner["sid"], phone_number=SENDER, now=now)
        other = account_use.create_account(conn, friendly_name="Other", now=now)
    return owner, other


def _run(
    db: Database,
    database_url: str,
    owner: dict[str, Any],
    requests: Sequence[Request],
    *,
    between: Callable[[], None] = lambda: None,
    picture: str = PICTURE,
    **env: str,
) -> tuple[str, str, list[httpx.Response], CollectorRegistry]:
    """Send an MMS of `picture` as `owner`, call `between`, then make `requests` (their paths formatted with
    the account, message and media SIDs) against an in-process API; (message SID, media SID,
    the answers, the metrics)."""
    registry = CollectorRegistry()
    app = bootstrap.build_api(load_settings(environ=env, database_url=database_url), db, registry=registry)
    auth = (owner["sid"], owner["auth_token"])

    async def run() -> tuple[str, str, list[httpx.Response]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                base = f"/2010-04-01/Accounts/{owner['sid']}"
                sent = await client.post(
                    f"{base}/Messages.json",
                    data={"To": "+14155557021", "From": SENDER, "MediaUrl": picture},
                    auth=auth,
                )
                assert sent.status_code == 201, sent.text
                sid = sent.json()["sid"]
                listed = await client.get(f"{base}/Messages/{sid}/Media.json", auth=auth)
                media_sid = listed.json()["media_list"][0]["sid"]
                names = {"account_sid": owner["sid"], "sid": sid, "media_sid": media_sid}
                between()
                answers = [await client.get(path.format(**names), **kw) for path, kw in requests]
                return sid, media_sid, answers

    sid, media_sid, answers = asyncio.run(run())
    return sid, media_sid, answers, registry


def _content(**kw: Any) -> Request:
    return (CONTENT_ROUTE, kw)


def test_the_content_url_answers_without_credentials_and_the_metadata_does_not(db: Database, database_url: str) -> None:
    owner, _ = _accounts(db)
    sid, media_sid, (public, metadata), registry = _run(
        db,
        database_url,
        owner,
        [_content(), ("/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media/{media_sid}.json", {})],
    )
    assert public.status_code == 302 and public.headers["location"] == PICTURE
    assert (metadata.status_code, metadata.json()["code"]) == (401, 20003)

    # Logged as every request made without credentials is: naming the account, not proven as it.
    with db.read() as conn:
        unproven = RequestFilter(account_sid=owner["sid"], authenticated=False, status=302)
        [logged] = list_requests(conn, unproven, limit=10)
    assert logged["path"] == f"/2010-04-01/Accounts/{owner['sid']}/Messages/{sid}/Media/{media_sid}"
    assert (logged["account_sid"], logged["claimed_account_sid"]) == (None, owner["sid"])
    assert logged["resource_sid"] == sid and logged["error_code"] is None
    labels = {"route": CONTENT_ROUTE, "method": "GET", "status": "302"}
    assert registry.get_sample_value("pigeon_api_requests_total", labels) == 1


def test_a_wrong_account_or_sid_is_the_same_404_without_credentials(db: Database, database_url: str) -> None:
    owner, other = _accounts(db)
    missing_account = new_sid(Prefix.ACCOUNT)
    paths = [
        "/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media/" + new_sid(Prefix.MEDIA),
        "/2010-04-01/Accounts/{account_sid}/Messages/" + new_sid(Prefix.MMS) + "/Media/{media_sid}",
        "/2010-04-01/Accounts/" + other["sid"] + "/Messages/{sid}/Media/{media_sid}",
        "/2010-04-01/Accounts/" + missing_account + "/Messages/{sid}/Media/{media_sid}",
        "/2010-04-01/Accounts/not-an-account/Messages/not-a-message/Media/not-a-media",
    ]
    _, _, answers, registry = _run(db, database_url, owner, [(p, {}) for p in paths])
    for answer in answers:
        body = answer.json()
        assert (answer.status_code, body["code"], body["status"]) == (404, 20404, 404), answer.text
        # Only the path asked for differs: nothing tells which part of it was wrong.
        assert body["message"] == f"The requested resource {answer.request.url.path} was not found"
        assert set(body) == {"code", "message", "more_info", "status"}
    labels = {"route": CONTENT_ROUTE, "method": "GET", "status": "404"}
    assert registry.get_sample_value("pigeon_api_requests_total", labels) == len(paths)
    with db.read() as conn:
        for account, named in ((owner["sid"], 2), (other["sid"], 1), (missing_account, 1)):
            unproven = RequestFilter(account_sid=account, authenticated=False, status=404)
            logged = list_requests(conn, unproven, limit=10)
            assert len(logged) == named
            assert all(r["account_sid"] is None and r["error_code"] == 20404 for r in logged)


def test_credentials_that_are_given_are_checked(db: Database, database_url: str) -> None:
    owner, other = _accounts(db)
    _, _, (wrong, not_basic, elsewhere, right), _ = _run(
        db,
        database_url,
        owner,
        [
            _content(auth=(owner["sid"], "not-the-token")),
            _content(headers={"Authorization": "Bearer abc"}),
            _content(auth=(other["sid"], other["auth_token"])),
            _content(auth=(owner["sid"], owner["auth_token"])),
        ],
    )
    assert (wrong.status_code, wrong.json()["code"]) == (401, 20003)
    assert (not_basic.status_code, not_basic.json()["code"]) == (401, 20003)
    assert elsewhere.status_code in (403, 404) and elsewhere.json()["code"] in (20003, 20404)
    assert right.status_code == 302 and right.headers["location"] == PICTURE
    with db.read() as conn:
        [logged] = list_requests(conn, RequestFilter(account_sid=owner["sid"], status=302), limit=10)
    assert logged["account_sid"] == owner["sid"]  # authenticated: the account's own request


@pytest.mark.parametrize("value", ["true", "1"])
def test_the_operator_can_require_credentials_for_the_content(db: Database, database_url: str, value: str) -> None:
    owner, _ = _accounts(db)
    _, _, (anonymous, right), _ = _run(
        db,
        database_url,
        owner,
        [_content(), _content(auth=(owner["sid"], owner["auth_token"]))],
        PIGEON_MEDIA_BASIC_AUTH=value,
    )
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, 20003)
    assert right.status_code == 302 and right.headers["location"] == PICTURE


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_only_a_closed_account_serves_no_media_without_credentials(
    db: Database, database_url: str, status: str
) -> None:
    """A closed account's public URL finds nothing: the same 404. A suspended account's
    numbers still take texts, whose webhooks carry these URLs: they answer (before, 404)."""
    owner, _ = _accounts(db)

    def stop() -> None:
        with db.write() as conn:
            account_status.set_status(conn, owner["sid"], status, now=datetime.now(UTC), with_subaccounts=False)

    _, _, (public,), _ = _run(db, database_url, owner, [_content()], between=stop)
    if status == "closed":
        assert (public.status_code, public.json()["code"]) == (404, 20404)
    else:
        assert public.status_code == 302 and public.headers["location"] == PICTURE


#: A media URL whose path and query are not ASCII, with an escape and reserved characters in it.
SNOWMAN = "https://media.example.com/photos/☃ and фото.jpg?caption=été&x=%2F#frag"
SNOWMAN_ENCODED = (
    "https://media.example.com/photos/%E2%98%83%20and%20%D1%84%D0%BE%D1%82%D0%BE.jpg?caption=%C3%A9t%C3%A9&x=%2F#frag"
)


def test_a_media_url_that_is_not_ascii_is_kept_encoded_and_its_content_redirects(
    db: Database, database_url: str
) -> None:
    """Before, the send was accepted and its content URL answered 500: the URL went as it was
    into the Location header, which holds ASCII only."""
    owner, _ = _accounts(db)
    _, media_sid, (public, right, metadata), _ = _run(
        db,
        database_url,
        owner,
        [
            _content(),
            _content(auth=(owner["sid"], owner["auth_token"])),
            (CONTENT_ROUTE + ".json", {"auth": (owner["sid"], owner["auth_token"])}),
        ],
        picture=SNOWMAN.replace(" ", "%20"),  # an escape given is kept, not escaped again
    )
    assert public.status_code == 302 and public.headers["location"] == SNOWMAN_ENCODED
    assert right.status_code == 302 and right.headers["location"] == SNOWMAN_ENCODED
    assert metadata.json()["content_type"] == "image/jpeg"
    with db.read() as conn:
        stored = conn.execute(media.select().where(media.c.sid == media_sid)).mappings().one()
    assert stored["url"] == SNOWMAN_ENCODED


def test_a_media_url_stored_before_as_it_was_given_still_redirects(db: Database, database_url: str) -> None:
    """A row written before URLs were encoded when accepted: encoded for the header."""
    owner, _ = _accounts(db)

    def store_as_given() -> None:
        with db.write() as conn:
            conn.execute(media.update().values(url=SNOWMAN, content_type=None))

    _, _, (public, metadata), _ = _run(
        db,
        database_url,
        owner,
        [_content(), (CONTENT_ROUTE + ".json", {"auth": (owner["sid"], owner["auth_token"])})],
        between=store_as_given,
    )
    assert public.status_code == 302 and public.headers["location"] == SNOWMAN_ENCODED
    assert metadata.json()["content_type"] == "image/jpeg"  # a row without one: guessed from the URL
