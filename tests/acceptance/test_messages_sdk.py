"""Messages through the real `twilio` SDK against a running server (issue 2, "Proof"):
create, fetch, list with paging and every filter, update, delete, Media and the timeline.

One server per backend serves these tests; each test works in its own subaccount.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from twilio.rest import Client

from pigeon.domain.status import MessageStatus
from pigeon.store.webhooks import list_deliveries
from tests.acceptance.conftest import Server
from tests.acceptance.support import (
    Tenant,
    add_service,
    deliver,
    fresh_number,
    message_row,
    move_to,
    new_tenant,
    raises_twilio,
    set_date_sent,
    set_media_created,
    store,
)

pytestmark = pytest.mark.acceptance

MEDIA = [f"https://media.example.com/pic{i}.jpg" for i in range(10)]


@pytest.fixture
def tenant(shared_server: Server) -> Tenant:
    return new_tenant(shared_server)


def _send(client: Client, tenant: Tenant, to: str, body: str = "hello", sender: int = 0) -> str:
    return str(client.messages.create(to=to, from_=tenant.numbers[sender], body=body).sid)


# -- create -----------------------------------------------------------------------------------


def test_create_answers_twilios_message_shape(tenant: Tenant) -> None:
    to = fresh_number()
    before = datetime.now(UTC).replace(microsecond=0)
    msg = tenant.client().messages.create(to=to, from_=tenant.numbers[0], body="Hello from Pigeon")
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert msg.account_sid == tenant.sid
    assert (msg.to, msg.from_, msg.body) == (to, tenant.numbers[0], "Hello from Pigeon")
    assert msg.status == "queued" and msg.direction == "outbound-api"
    assert (msg.num_segments, msg.num_media) == ("1", "0")  # strings, as Twilio sends them
    assert msg.api_version == "2010-04-01"
    assert msg.price is None and msg.price_unit == "USD"
    assert msg.error_code is None and msg.error_message is None
    assert msg.date_sent is None and msg.messaging_service_sid is None
    # The SDK parses RFC 2822 dates; a date it cannot parse would come back as None.
    assert msg.date_created is not None and msg.date_created >= before
    assert msg.date_updated == msg.date_created
    assert msg.uri == f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}.json"
    assert msg.subresource_uris["media"] == f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}/Media.json"


def test_utf8_bodies_round_trip_and_latin1_ones_are_refused(tenant: Tenant) -> None:
    client = tenant.client()
    text = "Grüße 😀 € {json} [ok] ~"
    assert client.messages(_send(client, tenant, fresh_number(), text)).fetch().body == text
    # A Latin-1 client percent-encodes single bytes: %E9 is no UTF-8, and guessing its
    # characters would send a guess to the handset (pigeon.api.forms): 20422, nothing sent.
    form = f"To=%2B1{fresh_number()[2:]}&From=%2B{tenant.numbers[0][1:]}&Body=caf%E9"
    response = tenant.http(
        "POST", "/Messages.json", content=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 400 and response.json()["code"] == 20422
    assert "'Body'" in response.json()["message"]


def test_message_json_is_the_text_starlette_would_render(tenant: Tenant) -> None:
    """The Messages resources render their JSON with orjson; the bytes must be exactly what
    Starlette's JSONResponse (json.dumps, compact, UTF-8 unescaped) made of the same content,
    for bodies with quotes, backslashes, control characters, line separators and emoji."""
    body = 'say "hi" \\ tab\tnew\nline \u2028 \x01 é 😀 </script>'
    form = {"To": fresh_number(), "From": tenant.numbers[0], "Body": body}
    created = tenant.http("POST", "/Messages.json", data=form)
    fetched = tenant.http("GET", f"/Messages/{created.json()['sid']}.json")
    listed = tenant.http("GET", "/Messages.json?PageSize=2")
    for response in (created, fetched, listed):
        assert response.status_code in (200, 201)
        assert response.content == json.dumps(response.json(), ensure_ascii=False, separators=(",", ":")).encode()
    assert created.json()["body"] == body


def test_create_long_and_unicode_bodies_count_segments(tenant: Tenant) -> None:
    client = tenant.client()
    assert client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="a" * 161).num_segments == "2"
    assert client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="€" * 80).num_segments == "1"
    assert client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="😀" * 36).num_segments == "2"


def test_create_with_ten_media_urls_makes_an_mms_with_its_media(tenant: Tenant) -> None:
    client = tenant.client()
    msg = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="look", media_url=MEDIA)
    assert msg.sid.startswith("MM") and msg.num_media == "10"

    listed = client.messages(msg.sid).media.list()
    assert len(listed) == 10
    assert all(m.sid.startswith("ME") and m.parent_sid == msg.sid and m.account_sid == tenant.sid for m in listed)
    # The SDK follows next_page_uri across pages of media too.
    assert [m.sid for m in client.messages(msg.sid).media.list(page_size=4)] == [m.sid for m in listed]

    one = client.messages(msg.sid).media(listed[3].sid).fetch()
    assert one.sid == listed[3].sid and one.parent_sid == msg.sid
    assert one.uri == f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}/Media/{one.sid}.json"
    assert one.date_created is not None
    # Without .json the URI names the content: it redirects to where the media lives.
    content = tenant.http("GET", f"/Messages/{msg.sid}/Media/{one.sid}")
    assert content.status_code == 302 and content.headers["location"] == MEDIA[3]

    # Not while the message may still go out: the media are what the carrier would be sent.
    raises_twilio(lambda: client.messages(msg.sid).media(one.sid).delete(), 20009, 400)
    with store(tenant.server) as db:
        deliver(db, msg.sid)
    assert client.messages(msg.sid).media(one.sid).delete() is True
    assert len(client.messages(msg.sid).media.list()) == 9
    raises_twilio(lambda: client.messages(msg.sid).media(one.sid).fetch(), 20404, 404)


def test_media_list_filters_by_date_created_and_pages_with_the_filters(tenant: Tenant) -> None:
    """DateCreated, DateCreated< and DateCreated> (in Twilio's OpenAPI; the SDK sends them) read
    as the Messages list reads DateSent: a GMT day, and on or before / on or after."""
    client = tenant.client()
    msg = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="x", media_url=MEDIA[:3])
    a, b, c = (m.sid for m in client.messages(msg.sid).media.list())
    with store(tenant.server) as db:
        set_media_created(db, a, datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
        set_media_created(db, b, datetime(2024, 1, 2, 12, 0, tzinfo=UTC))
        set_media_created(db, c, datetime(2024, 1, 3, 23, 59, 59, tzinfo=UTC))

    def sids(**kw: object) -> list[str]:
        return [m.sid for m in client.messages(msg.sid).media.list(**kw)]

    assert sids(date_created=date(2024, 1, 2)) == [b]
    assert sids(date_created=datetime(2000, 1, 1)) == []
    assert sids(date_created_before=date(2024, 1, 2)) == [a, b]
    assert sids(date_created_before=datetime(2024, 1, 2, 11, tzinfo=UTC)) == [a]
    assert sids(date_created_before=datetime(2000, 1, 1, tzinfo=UTC)) == []
    assert sids(date_created_after=date(2024, 1, 2)) == [b, c]
    assert sids(date_created_after=datetime(2030, 1, 1, tzinfo=UTC)) == []
    assert sids(date_created_after=date(2024, 1, 2), date_created_before=date(2024, 1, 2)) == [b]
    # The SDK follows next_page_uri: the filter must come along.
    assert sids(date_created_after=date(2024, 1, 2), page_size=1) == [b, c]

    path = f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}/Media.json"
    first = _get(tenant, f"{path}?DateCreated%3C=2024-01-02&PageSize=1")
    assert _listed(first, "media_list") == [a]
    uris = [first["uri"], first["first_page_uri"], first["next_page_uri"]]
    assert all(parse_qs(urlsplit(str(u)).query)["DateCreated<"] == ["2024-01-02"] for u in uris)
    second = _get(tenant, str(first["next_page_uri"]))
    assert _listed(second, "media_list") == [b]
    assert second["next_page_uri"] is None
    assert parse_qs(urlsplit(str(second["previous_page_uri"])).query)["DateCreated<"] == ["2024-01-02"]

    for name in ("DateCreated", "DateCreated<", "DateCreated>"):
        bad = tenant.http("GET", f"/Messages/{msg.sid}/Media.json", params={name: "garbage"})
        assert bad.status_code == 400 and bad.json()["code"] == 20422, (name, bad.text)
        assert name in bad.json()["message"]


def test_media_without_body_is_enough(tenant: Tenant) -> None:
    msg = tenant.client().messages.create(to=fresh_number(), from_=tenant.numbers[0], media_url=MEDIA[:1])
    assert msg.sid.startswith("MM") and msg.num_media == "1" and msg.body == ""


def test_status_callback_and_validity_period_are_kept(tenant: Tenant) -> None:
    msg = tenant.client().messages.create(
        to=fresh_number(),
        from_=tenant.numbers[0],
        body="with callback",
        status_callback="https://hooks.example.com/status?x=1",
        validity_period=600,
    )
    with store(tenant.server) as db:
        row = message_row(db, msg.sid)
    assert row is not None
    assert row["status_callback"] == "https://hooks.example.com/status?x=1"
    assert row["validity_period"] == 600


def test_send_at_schedules_a_message_of_a_messaging_service(tenant: Tenant) -> None:
    with store(tenant.server) as db:
        service = add_service(db, tenant.sid, tenant.numbers[1])
    client = tenant.client()
    send_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    msg = client.messages.create(
        to=fresh_number(), messaging_service_sid=service, body="later", send_at=send_at, schedule_type="fixed"
    )
    assert msg.status == "scheduled" and msg.messaging_service_sid == service
    # As on Twilio: no sender while the pool has it to choose (at SendAt), and "0" segments.
    assert (msg.from_, msg.num_segments) == (None, "0")
    assert (client.messages(msg.sid).fetch().from_, client.messages(msg.sid).fetch().num_segments) == (None, "0")
    with store(tenant.server) as db:
        row = message_row(db, msg.sid)
    assert row is not None and row["send_at"] == send_at

    # Through a service without SendAt: accepted, the sender not shown until the pool picks it.
    now = client.messages.create(to=fresh_number(), messaging_service_sid=service, body="now")
    assert (now.status, now.from_, now.num_segments) == ("accepted", None, "0")
    with store(tenant.server) as db:
        move_to(db, now.sid, MessageStatus.QUEUED)  # what a dispatcher does (this server runs none)
    queued = client.messages(now.sid).fetch()
    assert (queued.from_, queued.num_segments) == (tenant.numbers[1], "1")
    # Named in the request, with a service: the From is the request's, shown from the start.
    named = client.messages.create(
        to=fresh_number(), from_=tenant.numbers[1], messaging_service_sid=service, body="named"
    )
    assert (named.status, named.from_, named.num_segments) == ("accepted", tenant.numbers[1], "1")

    canceled = client.messages(msg.sid).update(status="canceled")
    assert canceled.status == "canceled"
    assert client.messages(msg.sid).fetch().status == "canceled"


def test_a_pool_message_canceled_while_scheduled_has_no_sender(tenant: Tenant) -> None:
    """Its pool never chose: Twilio's cancel example (UpdateMessage, OpenAPI) answers `from`
    null. It showed the pool's provisional pick once canceled, the From filter found it under
    that number, and its `canceled` status callback said it came From there."""
    with store(tenant.server) as db:
        service = add_service(db, tenant.sid, tenant.numbers[0], tenant.numbers[1])
    client = tenant.client()
    send_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    msg = client.messages.create(
        to=fresh_number(),
        messaging_service_sid=service,
        body="later",
        send_at=send_at,
        schedule_type="fixed",
        status_callback="https://app.example.com/status",
    )
    with store(tenant.server) as db:
        row = message_row(db, msg.sid)
    assert row is not None and row["from_"] in tenant.numbers  # the provisional pick, kept

    canceled = client.messages(msg.sid).update(status="canceled")
    assert (canceled.status, canceled.from_, canceled.num_segments) == ("canceled", None, "1")
    assert client.messages(msg.sid).fetch().from_ is None
    assert [m.sid for m in client.messages.list(from_=row["from_"])] == []
    assert [m.sid for m in client.messages.list(to=msg.to)] == [msg.sid]
    with store(tenant.server) as db, db.read() as conn:
        [callback] = [dict(d["params"]) for d in list_deliveries(conn, message_sid=msg.sid)]
    assert (callback["MessageStatus"], callback["From"], callback["MessagingServiceSid"]) == ("canceled", "", service)


# -- fetch and list -----------------------------------------------------------------------------


def test_fetch_returns_what_create_returned(tenant: Tenant) -> None:
    client = tenant.client()
    made = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="fetch me")
    got = client.messages(made.sid).fetch()
    assert (got.sid, got.body, got.to, got.from_, got.status) == (made.sid, "fetch me", made.to, made.from_, "queued")
    assert got.date_created == made.date_created


def test_list_pages_newest_first(tenant: Tenant) -> None:
    client = tenant.client()
    to = fresh_number()
    made = [_send(client, tenant, to, f"n{i}") for i in range(7)]
    newest_first = made[::-1]

    assert [m.sid for m in client.messages.list(page_size=3)] == newest_first
    assert [m.sid for m in client.messages.list(limit=5, page_size=2)] == newest_first[:5]
    assert [m.sid for m in client.messages.stream(page_size=3, limit=4)] == newest_first[:4]

    page = client.messages.page(page_size=3)
    assert [m.sid for m in page] == newest_first[:3]
    second = page.next_page()
    assert second is not None and [m.sid for m in second] == newest_first[3:6]


def _get(tenant: Tenant, uri: str) -> dict[str, object]:
    """GET a relative URI the server handed out, as the SDK does (re-rooted on the base URL)."""
    response = httpx.get(tenant.server.base_url + uri, auth=(tenant.sid, tenant.auth_token), timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _sids(page: dict[str, object]) -> list[str]:
    return _listed(page, "messages")


def _listed(page: dict[str, object], key: str) -> list[str]:
    items = page[key]
    assert isinstance(items, list)
    return [m["sid"] for m in items]


def test_paging_envelope_next_and_previous_page_tokens(tenant: Tenant) -> None:
    client = tenant.client()
    to = fresh_number()
    newest_first = [_send(client, tenant, to, f"p{i}") for i in range(7)][::-1]
    base = f"/2010-04-01/Accounts/{tenant.sid}/Messages.json"

    first = _get(tenant, f"{base}?PageSize=3")
    assert _sids(first) == newest_first[:3]
    assert (first["page"], first["page_size"], first["start"], first["end"]) == (0, 3, 0, 2)
    assert first["previous_page_uri"] is None
    assert first["first_page_uri"] == f"{base}?PageSize=3&Page=0"
    next_uri = first["next_page_uri"]
    assert isinstance(next_uri, str)
    query = parse_qs(urlsplit(next_uri).query)
    assert query["Page"] == ["1"] and query["PageToken"][0].startswith(f"PA{newest_first[2]}_")

    # A message that arrives while paging does not shift the pages already handed out.
    _send(client, tenant, to, "late arrival")
    second = _get(tenant, next_uri)
    assert _sids(second) == newest_first[3:6]
    assert (second["page"], second["start"], second["end"]) == (1, 3, 5)
    prev_uri = second["previous_page_uri"]
    assert isinstance(prev_uri, str)
    assert parse_qs(urlsplit(prev_uri).query)["PageToken"][0].startswith(f"PB{newest_first[3]}_")
    back = _get(tenant, prev_uri)
    assert _sids(back) == newest_first[:3] and back["page"] == 0

    third_uri = second["next_page_uri"]
    assert isinstance(third_uri, str)
    third = _get(tenant, third_uri)
    assert _sids(third) == newest_first[6:]
    assert (third["start"], third["end"], third["next_page_uri"]) == (6, 6, None)
    third_prev = third["previous_page_uri"]
    assert isinstance(third_prev, str)
    again = _get(tenant, third_prev)
    assert _sids(again) == newest_first[3:6] and again["page"] == 1
    assert again["next_page_uri"] is not None and again["previous_page_uri"] is not None


def test_list_is_empty_for_a_new_account(tenant: Tenant) -> None:
    assert tenant.client().messages.list() == []
    page = _get(tenant, f"/2010-04-01/Accounts/{tenant.sid}/Messages.json")
    assert page["messages"] == [] and page["next_page_uri"] is None


@pytest.fixture
def sent_history(tenant: Tenant) -> tuple[Tenant, dict[str, str], str, str]:
    """Four messages A->X, A->Y, B->X, B->Y; three of them 'sent' on 1, 2 and 3 January 2024."""
    client = tenant.client()
    x, y = fresh_number(), fresh_number()
    m = {
        "ax": _send(client, tenant, x, sender=0),
        "ay": _send(client, tenant, y, sender=0),
        "bx": _send(client, tenant, x, sender=1),
        "by": _send(client, tenant, y, sender=1),
    }
    with store(tenant.server) as db:
        set_date_sent(db, m["ax"], datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
        set_date_sent(db, m["ay"], datetime(2024, 1, 2, 12, 0, tzinfo=UTC))
        set_date_sent(db, m["bx"], datetime(2024, 1, 3, 23, 59, 59, tzinfo=UTC))
    return tenant, m, x, y


def test_list_filters_by_to_and_from(sent_history: tuple[Tenant, dict[str, str], str, str]) -> None:
    tenant, m, x, _y = sent_history
    client = tenant.client()
    assert [r.sid for r in client.messages.list(to=x)] == [m["bx"], m["ax"]]
    assert [r.sid for r in client.messages.list(from_=tenant.numbers[0])] == [m["ay"], m["ax"]]
    assert [r.sid for r in client.messages.list(to=x, from_=tenant.numbers[1])] == [m["bx"]]
    assert client.messages.list(to=fresh_number()) == []
    # Filters survive paging: next_page_uri carries them.
    assert [r.sid for r in client.messages.list(to=x, page_size=1)] == [m["bx"], m["ax"]]


def test_list_filters_by_date_sent_through_the_sdk(sent_history: tuple[Tenant, dict[str, str], str, str]) -> None:
    tenant, m, x, _y = sent_history
    client = tenant.client()
    # The SDK sends every date as a date-time at midnight (DateSent=2024-01-02T00:00:00Z):
    # DateSent names a GMT day, so that still means "sent on 2 January".
    assert [r.sid for r in client.messages.list(date_sent=datetime(2024, 1, 2))] == [m["ay"]]
    assert [r.sid for r in client.messages.list(date_sent_after=datetime(2024, 1, 2))] == [m["bx"], m["ay"]]
    assert [r.sid for r in client.messages.list(date_sent_before=datetime(2024, 1, 2, 12))] == [m["ay"], m["ax"]]
    assert [r.sid for r in client.messages.list(date_sent_before=datetime(2024, 1, 2, 11))] == [m["ax"]]
    # A date goes out as midnight too (DateSent<=2024-01-02T00:00:00Z); the SDK documents
    # `<=YYYY-MM-DD` as "on and before that date", so midnight means the whole day, as for DateSent.
    assert [r.sid for r in client.messages.list(date_sent_before=date(2024, 1, 2))] == [m["ay"], m["ax"]]
    assert [r.sid for r in client.messages.list(date_sent_before=datetime(2024, 1, 2))] == [m["ay"], m["ax"]]
    assert [r.sid for r in client.messages.list(date_sent_before=datetime(2024, 1, 1, 23, 59))] == [m["ax"]]
    assert [r.sid for r in client.messages.list(date_sent_after=date(2024, 1, 2))] == [m["bx"], m["ay"]]
    both = client.messages.list(date_sent_after=date(2024, 1, 2), date_sent_before=date(2024, 1, 2))
    assert [r.sid for r in both] == [m["ay"]]
    assert [r.sid for r in client.messages.list(date_sent_after=datetime(2024, 1, 2), to=x)] == [m["bx"]]
    # Never-sent messages match no date filter.
    assert m["by"] not in {r.sid for r in client.messages.list(date_sent_after=datetime(2000, 1, 1))}


def test_list_filters_by_date_sent_on_the_wire(sent_history: tuple[Tenant, dict[str, str], str, str]) -> None:
    tenant, m, _x, _y = sent_history

    def sids(params: dict[str, str]) -> list[str]:
        response = tenant.http("GET", "/Messages.json", params=params)
        assert response.status_code == 200, response.text
        return [r["sid"] for r in response.json()["messages"]]

    assert sids({"DateSent": "2024-01-02"}) == [m["ay"]]
    # `DateSent<=2024-01-02` on the wire is the key "DateSent<" with the value "2024-01-02".
    assert sids({"DateSent<": "2024-01-02"}) == [m["ay"], m["ax"]]
    assert sids({"DateSent>": "2024-01-02"}) == [m["bx"], m["ay"]]
    assert sids({"DateSent>": "2024-01-02", "DateSent<": "2024-01-02"}) == [m["ay"]]
    assert sids({"DateSent<": "2024-01-02T00:00:00Z"}) == [m["ay"], m["ax"]]  # what the SDK sends for a date
    assert sids({"DateSent<": "2024-01-02T11:59:59Z"}) == [m["ax"]]  # any other time: an instant
    # RFC 2822, the format of our own dates, so a client may echo one back.
    assert sids({"DateSent>": "Tue, 02 Jan 2024 00:00:00 +0000"}) == [m["bx"], m["ay"]]
    bad = tenant.http("GET", "/Messages.json", params={"DateSent": "yesterday"})
    assert bad.status_code == 400 and bad.json()["status"] == 400


# -- update -------------------------------------------------------------------------------------


def test_redact_body_of_a_delivered_message(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number(), "secret code 1234")
    with store(tenant.server) as db:
        deliver(db, sid)
    redacted = client.messages(sid).update(body="")
    assert redacted.body == "" and redacted.status == "delivered"
    assert client.messages(sid).fetch().body == ""
    assert client.messages(sid).update(body="").body == ""  # redacting twice is harmless


def test_redact_body_of_a_failed_message(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number(), "never went out")
    with store(tenant.server) as db:
        move_to(db, sid, MessageStatus.FAILED)
    assert client.messages(sid).update(body="").body == ""


def test_redact_is_refused_while_the_message_may_still_go_out(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number(), "still queued")
    raises_twilio(lambda: client.messages(sid).update(body=""), 20009, 400)
    assert client.messages(sid).fetch().body == "still queued"


def test_cancel_is_only_for_scheduled_messages(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number())
    raises_twilio(lambda: client.messages(sid).update(status="canceled"), 30409, 400)
    assert client.messages(sid).fetch().status == "queued"


# -- delete -------------------------------------------------------------------------------------


def test_delete_a_finished_message(tenant: Tenant) -> None:
    client = tenant.client()
    msg = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="bye", media_url=MEDIA[:2])
    with store(tenant.server) as db:
        deliver(db, msg.sid)
    assert client.messages(msg.sid).delete() is True
    raises_twilio(lambda: client.messages(msg.sid).fetch(), 20404, 404)
    raises_twilio(lambda: client.messages(msg.sid).delete(), 20404, 404)
    assert msg.sid not in {m.sid for m in client.messages.list()}
    assert tenant.http("GET", f"/Messages/{msg.sid}/Media.json").status_code == 404


def test_delete_in_flight_message_is_refused(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number())
    raises_twilio(lambda: client.messages(sid).delete(), 20009, 400)
    assert client.messages(sid).fetch().status == "queued"


# -- feedback -----------------------------------------------------------------------------------


def test_message_feedback_is_kept_on_the_timeline(tenant: Tenant, shared_server: Server) -> None:
    client = tenant.client()
    msg = client.messages.create(
        to=fresh_number(), from_=tenant.numbers[0], body="Your code is 123456", provide_feedback=True
    )
    given = client.messages(msg.sid).feedback.create(outcome="confirmed")
    assert (given.outcome, given.message_sid, given.account_sid) == ("confirmed", msg.sid, tenant.sid)
    assert given.uri == f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}/Feedback.json"
    changed = client.messages(msg.sid).feedback.create(outcome="unconfirmed")
    assert changed.outcome == "unconfirmed" and changed.date_created == given.date_created
    events = tenant.http("GET", f"/Messages/{msg.sid}/Events.json").json()["events"]
    assert [e["detail"]["outcome"] for e in events if e["kind"] == "feedback"] == ["confirmed", "unconfirmed"]

    raises_twilio(lambda: client.messages(msg.sid).feedback.create(outcome="maybe"), 20422, 400)
    raises_twilio(lambda: client.messages("SM" + "0" * 32).feedback.create(outcome="confirmed"), 20404, 404)
    other = new_tenant(shared_server, numbers=0)
    raises_twilio(lambda: other.client().messages(msg.sid).feedback.create(outcome="confirmed"), 20404, 404)
    inbound = shared_server.cli(
        "simulate", "inbound", "--from", fresh_number(), "--to", tenant.numbers[0], "--body", "hi", "--json"
    )
    received = json.loads(inbound.stdout)["message_sid"]
    raises_twilio(lambda: client.messages(received).feedback.create(outcome="confirmed"), 20422, 400)


# -- timeline -----------------------------------------------------------------------------------


def test_events_json_is_the_message_timeline(tenant: Tenant) -> None:
    client = tenant.client()
    sid = _send(client, tenant, fresh_number(), "tracked")
    first = tenant.http("GET", f"/Messages/{sid}/Events.json")
    assert first.status_code == 200 and first.headers["content-type"].startswith("application/json")
    events = first.json()["events"]
    assert [(e["kind"], e["status"]) for e in events] == [("created", "queued")]
    assert events[0]["message_sid"] == sid and events[0]["detail"]["num_segments"] == 1

    with store(tenant.server) as db:
        deliver(db, sid)
    client.messages(sid).update(body="")
    kinds = [(e["kind"], e["status"]) for e in tenant.http("GET", f"/Messages/{sid}/Events.json").json()["events"]]
    assert kinds == [
        ("created", "queued"),
        ("status", "sending"),
        ("status", "sent"),
        ("status", "delivered"),
        ("redacted", None),
    ]


def test_events_json_is_private_to_the_account(tenant: Tenant, shared_server: Server) -> None:
    sid = _send(tenant.client(), tenant, fresh_number())
    other = new_tenant(shared_server, numbers=0)
    assert other.http("GET", f"/Messages/{sid}/Events.json").status_code == 404
    wrong = httpx.get(f"{tenant.base()}/Messages/{sid}/Events.json", auth=(tenant.sid, "nope"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["code"] == 20003
