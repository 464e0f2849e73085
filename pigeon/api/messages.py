"""/2010-04-01/Accounts/{AccountSid}/Messages: create, list, fetch, update, delete, media, timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import (
    authorized_account,
    basic_credentials,
    check_access,
    ctx,
    first,
    form,
    in_thread,
    store_read,
)
from pigeon.api.paging import Cursor, PageRequest, envelope, offset_envelope, page_token, parse_page
from pigeon.api.query import date_filter
from pigeon.api.schemas import V, event_json, feedback_json, media_json, message_json
from pigeon.app import messages as use
from pigeon.app import send_guard
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain import send_options
from pigeon.domain.errors import ApiError, IdempotencyKeyTaken
from pigeon.domain.idempotency import key_problem, request_hash
from pigeon.domain.urls import ascii_url
from pigeon.store.messages import MessageFilter, NewMessage, get_message, list_messages
from pigeon.store.settings import content_key, known_content_key

JSON = "application/json; charset=utf-8"


class MessagesResponse(JSONResponse):
    """Starlette's JSONResponse, rendered by orjson: the same compact UTF-8 text as Starlette's
    `json.dumps(..., ensure_ascii=False, separators=(",", ":"))`, in a tenth of the time. Every
    send answers with one."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _json(body: Any, status: int = 200) -> JSONResponse:
    return MessagesResponse(body, status_code=status, media_type=JSON)


async def create(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    credentials = basic_credentials(request)  # checked against the store with the validation
    fields = await form(request)
    params = first(fields)
    req = SendRequest(
        to=params.get("To"),
        from_=params.get("From") or None,
        messaging_service_sid=params.get("MessagingServiceSid") or None,
        body=params.get("Body"),
        media_urls=[v for k, v in fields if k == "MediaUrl" and v],
        status_callback=params.get("StatusCallback") or None,
        validity_period=params.get("ValidityPeriod"),
        send_at=params.get("SendAt") or None,
        schedule_type=params.get("ScheduleType") or None,
        smart_encoded=params.get("SmartEncoded"),
        options={k: params[k] for k in send_options.NAMES if k in params},
    )
    try:
        row, replayed = await _accept(request, account_sid, credentials, req, fields)
    except Exception:
        # For the request log, whatever refused the send: a 400 for bad input, and as much a
        # 503 when the store is out of reach (the calls to a number are what `pigeon doctor`
        # looks for when a message has no record).
        request.state.send_summary = send_guard.summary_of_request(req, known_content_key(ctx(request).db.engine))
        raise
    request.state.created_sid = row["sid"]
    request.state.send_summary = send_guard.summary_of(row)
    response = _json(message_json(row), 201)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


async def _accept(
    request: Request,
    account_sid: str,
    credentials: tuple[str, str],
    req: SendRequest,
    fields: list[tuple[str, str]],
) -> tuple[dict[str, Any], bool]:
    """(the message, whether it is one an earlier request with the same Idempotency-Key made)."""
    c = ctx(request)
    key = request.headers.get("idempotency-key")

    def validate() -> NewMessage | dict[str, Any]:
        now = c.clock.now()
        with c.db.lookup() as conn:
            # One connection for the credentials and the message: the most frequent request
            # in the API pays for one, not two. Its lookups are checked each on its own, so
            # they need no common snapshot (which on PostgreSQL would cost two round trips).
            account = check_access(conn, request, credentials, account_sid)
            if key is not None and (problem := key_problem(key)):
                raise ApiError(20422, problem)
            if key is not None:
                original = send_guard.find_replay(conn, account_sid, key, fields, now)
                if original is not None:
                    return original
            # Without a key, the duplicate warning's lookup goes with the sender's.
            warn = key is None and c.duplicate_window > timedelta(0)
            new = prepare_message(
                conn,
                account_sid,
                req,
                now,
                pacing=c.pacing,
                queue_gauge=c.queue_gauge,
                account=account,
                duplicates_since=now - c.duplicate_window if warn else None,
            )
            # Keyed: it covers the Body, which a plain hash would give back (see request_hash).
            fingerprint = request_hash(fields, key=content_key(conn)) if key is not None else None
            send_guard.guard(
                conn, new, key=key, request_hash=fingerprint, now=now, path=request.url.path, window=c.duplicate_window
            )
            new.streams_events = bool(account["streams_events"])  # its batch reads subscriptions only if so
            return new

    result = await store_read(c.db, validate)  # validation only reads
    if not isinstance(result, NewMessage):
        return result, True
    try:
        await c.writer.write(result)
    except IdempotencyKeyTaken:
        # A concurrent request with the same key committed first: answer with its message
        # (or 20409 if it was made from other parameters).
        assert key is not None

        def replay() -> dict[str, Any] | None:
            with c.db.read() as conn:
                return send_guard.find_replay(conn, account_sid, key, fields, c.clock.now())

        original = await in_thread(replay)
        if original is None:  # the winner's key expired in between: vanishingly rare
            raise ApiError(20409, f"The Idempotency-Key {key!r} is in use by another request; try again.") from None
        return original, True
    c.queue_gauge.accepted(
        result.message["from_"], result.message["num_segments"], account_sid=result.message["account_sid"]
    )
    return result.message, False


def _message_filter(account_sid: str, params: dict[str, str]) -> tuple[MessageFilter, list[tuple[str, str]]]:
    kept: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for name, field in (("To", "to"), ("From", "from_")):
        if params.get(name):
            values[field] = params[name]
            kept.append((name, params[name]))
    sent = date_filter(params, "DateSent")
    kept.extend(sent.kept)
    values |= {"date_sent_on": sent.on, "date_sent_after": sent.after, "date_sent_before": sent.before}
    return MessageFilter(account_sid=account_sid, **values), kept


async def list_(request: Request) -> Response:
    account_sid = request.path_params["account_sid"]
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    f, kept = _message_filter(account_sid, params)
    c = ctx(request)

    def page() -> dict[str, Any]:
        with c.db.history() as conn:
            return _message_page(conn, f, req, kept, request.url.path)

    return _json(await in_thread(page))


def _message_page(
    conn: Any, f: MessageFilter, req: PageRequest, kept: list[tuple[str, str]], path: str
) -> dict[str, Any]:
    cursor = req.cursor
    place = _place(conn, cursor, f.account_sid)
    if place and cursor and cursor.backward:
        rows = list_messages(conn, f, limit=req.page_size + 1, before=place)
        has_next = True
        has_prev = len(rows) > req.page_size
        rows = rows[-req.page_size :]
    else:
        offset = 0 if place else req.offset
        rows = list_messages(conn, f, limit=req.page_size + 1, after=place, offset=offset)
        has_next = len(rows) > req.page_size
        rows = rows[: req.page_size]
        has_prev = req.page > 0
    return envelope(
        "messages",
        [message_json(r) for r in rows],
        path=path,
        filters=kept,
        req=req,
        next_token=_token(rows[-1], backward=False) if has_next and rows else None,
        previous_token=_token(rows[0], backward=True) if has_prev and rows else None,
    )


def _token(row: dict[str, Any], *, backward: bool) -> str:
    return page_token(backward=backward, sid=row["sid"], at=row["date_created"])


def _place(conn: Any, cursor: Cursor | None, account_sid: str | None) -> tuple[datetime, str] | None:
    """The (date_created, sid) a page is sought from: the token's own, or for a token of the
    SID alone (handed out before tokens carried the place) the message's, while it exists."""
    if cursor is None:
        return None
    if cursor.at is not None:
        return cursor.at, cursor.sid
    row = get_message(conn, cursor.sid, account_sid=account_sid)
    return (row["date_created"], row["sid"]) if row else None


async def fetch(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.fetch(conn, account_sid, sid, request.url.path)

    return _json(message_json(await in_thread(run)))


async def update(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    params = first(await form(request))
    c = ctx(request)
    status, body = params.get("Status"), params.get("Body")
    if status is not None and status != "canceled":
        raise ApiError(20422, f"Status can only be set to 'canceled', not {status!r}.")
    if body is not None and body != "":
        raise ApiError(20422, "Body can only be set to an empty string, which redacts the message text.")

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            now = c.clock.now()
            if status == "canceled":
                use.cancel(conn, account_sid, sid, request.url.path, now)
            if body == "":
                use.redact(conn, account_sid, sid, request.url.path, now)
            return use.fetch(conn, account_sid, sid, request.url.path)

    return _json(message_json(await in_thread(run)))


async def delete(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> None:
        with c.db.write() as conn:
            use.delete(conn, account_sid, sid, request.url.path)

    await in_thread(run)
    return Response(status_code=204)


async def events(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.timeline(conn, account_sid, sid, request.url.path)

    rows = await in_thread(run)
    return _json({"events": [event_json(r) for r in rows], "uri": request.url.path})


async def media_list(request: Request) -> Response:
    account_sid, sid = request.path_params["account_sid"], request.path_params["sid"]
    await authorized_account(request, account_sid)
    params = dict(request.query_params)
    req = parse_page(params)
    created = date_filter(params, "DateCreated")
    c = ctx(request)

    def run() -> list[dict[str, Any]]:
        with c.db.read() as conn:
            return use.media_list(
                conn,
                account_sid,
                sid,
                request.url.path,
                offset=req.offset,
                limit=req.page_size + 1,
                created_on=created.on,
                created_after=created.after,
                created_before=created.before,
            )

    rows = await in_thread(run)
    body = offset_envelope(
        "media_list", [media_json(r) for r in rows], path=request.url.path, filters=created.kept, req=req
    )
    return _json(body)


async def media_fetch(request: Request) -> Response:
    """A media record's metadata (`.json`): always behind Basic auth."""
    p = request.path_params
    await authorized_account(request, p["account_sid"])
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return use.media_fetch(conn, p["account_sid"], p["sid"], p["media_sid"], request.url.path)

    return _json(media_json(await in_thread(run)))


async def media_content(request: Request) -> Response:
    """The media itself (no `.json`): a redirect to where it lives, the URL it was sent with.

    Public unless the operator requires credentials (PIGEON_MEDIA_BASIC_AUTH), as media URLs
    are on Twilio: applications fetch the MediaUrl0 of an incoming-message webhook without
    credentials. Credentials that are given are checked all the same (401 when wrong): a
    client that sends them expects them to count. Without them, the request log keeps the
    request as it keeps every unauthenticated one, naming the account in the URL
    (claimed_account_sid), not proven as it."""
    p = request.path_params
    c = ctx(request)
    public = not c.media_basic_auth and "authorization" not in request.headers
    if not public:
        await authorized_account(request, p["account_sid"])
    find = use.media_content if public else use.media_fetch

    def run() -> dict[str, Any]:
        with c.db.read() as conn:
            return find(conn, p["account_sid"], p["sid"], p["media_sid"], request.url.path)

    row = await in_thread(run)
    # Encoded again here, not only when accepted: a URL stored before that holds non-ASCII
    # would not go in a header (ASCII only) and made this a 500.
    return Response(status_code=302, headers={"Location": ascii_url(row["url"])})


async def feedback_create(request: Request) -> Response:
    """Message Feedback: 200 (not 201) with the resource, as Twilio answers."""
    p = request.path_params
    await authorized_account(request, p["account_sid"])
    outcome = first(await form(request)).get("Outcome")
    c = ctx(request)

    def run() -> dict[str, Any]:
        with c.db.write() as conn:
            return use.give_feedback(conn, p["account_sid"], p["sid"], request.url.path, outcome, c.clock.now())

    return _json(feedback_json(await in_thread(run)))


async def media_delete(request: Request) -> Response:
    p = request.path_params
    await authorized_account(request, p["account_sid"])
    c = ctx(request)

    def run() -> None:
        with c.db.write() as conn:
            use.media_delete(conn, p["account_sid"], p["sid"], p["media_sid"], request.url.path)

    await in_thread(run)
    return Response(status_code=204)


BASE = V + "/Accounts/{account_sid}/Messages"
#: A send: the most frequent request of all (api/app.py tries it first).
create_route = Route(BASE + ".json", create, methods=["POST"])

routes = [
    create_route,
    Route(BASE + ".json", list_, methods=["GET"]),
    Route(BASE + "/{sid}.json", fetch, methods=["GET"]),
    Route(BASE + "/{sid}.json", update, methods=["POST"]),
    Route(BASE + "/{sid}.json", delete, methods=["DELETE"]),
    Route(BASE + "/{sid}/Events.json", events, methods=["GET"]),
    Route(BASE + "/{sid}/Media.json", media_list, methods=["GET"]),
    Route(BASE + "/{sid}/Media/{media_sid}.json", media_fetch, methods=["GET"]),
    Route(BASE + "/{sid}/Media/{media_sid}.json", media_delete, methods=["DELETE"]),
    Route(BASE + "/{sid}/Media/{media_sid}", media_content, methods=["GET"]),
    Route(BASE + "/{sid}/Feedback.json", feedback_create, methods=["POST"]),
]
