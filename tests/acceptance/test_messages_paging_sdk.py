"""Paging through the Messages log with the real `twilio` SDK while it changes: messages
deleted as they are read (`for m in client.messages.stream(): m.delete()`), new ones arriving,
and PageTokens handed out before tokens carried the record's place (pigeon.api.paging).

One server per backend serves these tests; each test works in its own subaccount.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa

from pigeon.store.tables import messages
from tests.acceptance.conftest import Server
from tests.acceptance.support import Tenant, deliver, fresh_number, new_tenant, store

pytestmark = pytest.mark.acceptance


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server)


def _delivered(tenant: Tenant, count: int) -> list[str]:
    """`count` delivered messages (so that they may be deleted), newest first."""
    client = tenant.client()
    to = fresh_number()
    made = [str(client.messages.create(to=to, from_=tenant.numbers[0], body=f"m{i}").sid) for i in range(count)]
    with store(tenant.server) as db:
        for sid in made:
            deliver(db, sid)
    return made[::-1]


def _get(tenant: Tenant, uri: str) -> dict[str, object]:
    response = httpx.get(tenant.server.base_url + uri, auth=(tenant.sid, tenant.auth_token), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _sids(page: dict[str, object]) -> list[str]:
    items = page["messages"]
    assert isinstance(items, list)
    return [m["sid"] for m in items]


def test_deleting_each_message_while_streaming_visits_every_one_once(tenant: Tenant) -> None:
    newest_first = _delivered(tenant, 9)
    client = tenant.client()
    seen = []
    for m in client.messages.stream(page_size=2):
        seen.append(m.sid)
        assert m.delete() is True
    # The next page's token named the last message of a page, deleted by then: the page was
    # taken as an offset into what was left, and every other pair was skipped.
    assert seen == newest_first
    assert client.messages.list() == []


def test_messages_sent_while_streaming_neither_repeat_nor_shift_the_pages(tenant: Tenant) -> None:
    newest_first = _delivered(tenant, 7)
    client = tenant.client()
    seen = []
    for m in client.messages.stream(page_size=3):
        seen.append(m.sid)
        client.messages.create(to=fresh_number(), from_=tenant.numbers[1], body="late")
    assert seen == newest_first


def test_a_page_token_of_the_sid_alone_still_pages(tenant: Tenant) -> None:
    """Tokens handed out before they carried the place (`PA<sid>`, `PB<sid>`) keep working."""
    newest_first = _delivered(tenant, 5)
    base = f"/2010-04-01/Accounts/{tenant.sid}/Messages.json"
    nxt = _get(tenant, f"{base}?PageSize=2&Page=1&PageToken=PA{newest_first[1]}")
    assert _sids(nxt) == newest_first[2:4]
    prev = _get(tenant, f"{base}?PageSize=2&Page=1&PageToken=PB{newest_first[2]}")
    assert _sids(prev) == newest_first[:2]


def test_the_previous_page_is_found_when_its_first_message_is_gone(tenant: Tenant) -> None:
    newest_first = _delivered(tenant, 6)
    client = tenant.client()
    base = f"/2010-04-01/Accounts/{tenant.sid}/Messages.json"
    third = _get(tenant, f"{base}?PageSize=2&Page=2&PageToken=PA{newest_first[3]}")
    assert _sids(third) == newest_first[4:]
    prev_uri = third["previous_page_uri"]
    assert isinstance(prev_uri, str)
    client.messages(newest_first[4]).delete()  # the message the previous-page token names
    client.messages(newest_first[0]).delete()
    assert _sids(_get(tenant, prev_uri)) == newest_first[2:4]


def test_page_tokens_carry_no_more_than_the_record_and_its_place(tenant: Tenant) -> None:
    newest_first = _delivered(tenant, 3)
    base = f"/2010-04-01/Accounts/{tenant.sid}/Messages.json"
    first = _get(tenant, f"{base}?PageSize=2")
    next_uri = first["next_page_uri"]
    assert isinstance(next_uri, str)
    [token] = parse_qs(urlsplit(next_uri).query)["PageToken"]
    with store(tenant.server) as db, db.read() as conn:
        created = conn.execute(sa.select(messages.c.date_created).where(messages.c.sid == newest_first[1])).scalar_one()
    assert token == f"PA{newest_first[1]}_{int(created.timestamp()) * 1_000_000 + created.microsecond}"


@pytest.mark.parametrize("token", ["PA", "XX123", "PASM1_abc", "PASM1_1_2_3", "PASM1_-5", "PASM1_9999999999999999999"])
def test_a_page_token_this_server_never_issued_is_refused(tenant: Tenant, token: str) -> None:
    response = tenant.http("GET", "/Messages.json", params={"PageToken": token, "Page": "1"})
    assert response.status_code == 400 and response.json()["code"] == 20422
