"""The debugger's pure parts: request fingerprints and keys, export shapes, and the request-log
middleware (on a small ASGI app with a writer that only collects rows)."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import hashlib
import hmac
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.errors import EXCEPTION_HANDLERS
from pigeon.api.request_log import RequestLogMiddleware, _addressed_sid
from pigeon.app import export
from pigeon.domain.errors import ApiError
from pigeon.domain.idempotency import (
    MAX_KEY_LENGTH,
    REDACTED,
    key_problem,
    request_hash,
    same_request,
    unkeyed_request_hash,
)
from pigeon.store.messages import MessageFilter
from pigeon.testing import FrozenClock

AC = "AC" + "a" * 32
SM = "SM" + "b" * 32
ME = "ME" + "c" * 32

# -- request fingerprints and keys --------------------------------------------------------------


KEY = bytes(range(32))  # an install's content key


def fp(fields: list[tuple[str, str]]) -> str:
    return request_hash(fields, key=KEY)


def test_request_hash_ignores_field_order_but_not_values() -> None:
    a = [("To", "+14155550100"), ("From", "+14155550101"), ("Body", "hi")]
    assert fp(a) == fp(list(reversed(a)))
    assert fp(a) != fp([("To", "+14155550100"), ("From", "+14155550101"), ("Body", "hi!")])
    assert fp(a) != fp([*a, ("StatusCallback", "https://app.example/cb")])
    assert len(fp(a)) == 64


def test_request_hash_keeps_the_order_of_repeated_fields() -> None:
    one = [("MediaUrl", "https://x.example/1.png"), ("MediaUrl", "https://x.example/2.png"), ("To", "+1")]
    two = [("MediaUrl", "https://x.example/2.png"), ("MediaUrl", "https://x.example/1.png"), ("To", "+1")]
    assert fp(one) != fp(two)  # the media order is the message's
    assert fp(one) == fp([("To", "+1"), *one[:2]])


def test_request_hash_cannot_be_forged_by_moving_a_separator() -> None:
    assert fp([("Body", "a=b")]) != fp([("Body=a", "b")])
    assert fp([("A", "b"), ("C", "d")]) != fp([("A", "b\x1fC\x1fd")])


def test_request_hash_is_keyed_so_that_a_short_body_cannot_be_found_by_trying_them_all() -> None:
    """It covers the Body: unkeyed, a six-digit code came back from it in seconds."""
    fields = [("To", "+14155550100"), ("From", "+14155550101"), ("Body", "Your code is 483920")]
    candidates = {
        hashlib.sha256(json.dumps(sorted(fields), ensure_ascii=False, separators=(",", ":")).encode()).hexdigest(),
        hashlib.sha256(json.dumps(sorted(fields)).encode()).hexdigest(),
        unkeyed_request_hash(fields),
    }
    assert fp(fields) not in candidates
    assert fp(fields) != request_hash(fields, key=bytes(32))  # another install, another fingerprint
    assert fp(fields) != hmac.new(KEY, json.dumps(sorted(fields)).encode(), "sha256").hexdigest()  # a key of its own


def test_same_request_keyed_unkeyed_from_before_the_upgrade_or_redacted() -> None:
    fields = [("To", "+1"), ("Body", "hi")]
    other = [("To", "+1"), ("Body", "hi!")]
    assert same_request(fp(fields), fields, key=KEY) and not same_request(fp(fields), other, key=KEY)
    old = unkeyed_request_hash(fields)  # stored by the release before, kept 24 h
    assert same_request(old, fields, key=KEY) and not same_request(old, other, key=KEY)
    assert same_request(REDACTED, fields, key=KEY) and same_request(REDACTED, other, key=KEY)


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("order-1234", True),
        ("a b", True),
        ("", False),
        ("   ", False),
        ("x" * MAX_KEY_LENGTH, True),
        ("x" * (MAX_KEY_LENGTH + 1), False),
        ("caf\u00e9", False),
        ("tab\there", False),
    ],
)
def test_key_problem(key: str, ok: bool) -> None:
    assert (key_problem(key) is None) is ok


# -- export --------------------------------------------------------------------------------------

T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def _message(**over: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sid": SM,
        "account_sid": AC,
        "direction": "outbound-api",
        "from_": "+14155550101",
        "to": "+14155550100",
        "status": "undelivered",
        "error_code": 30007,
        "error_message": "Message filtered",
        "num_segments": 1,
        "num_media": 0,
        "price": "-0.00790",
        "price_unit": "USD",
        "encoding": "GSM-7",
        "messaging_service_sid": None,
        "carrier": "simulator",
        "date_created": T0,
        "date_sent": T0 + timedelta(seconds=1),
        "date_updated": T0 + timedelta(seconds=2),
        "content_hash": "f" * 64,
        "body": "Your code is 1234",
    }
    row.update(over)
    return row


EVENTS = [
    {"at": T0, "kind": "created", "status": "queued", "error_code": None, "detail": {"num_segments": 1}},
    {"at": T0 + timedelta(seconds=2), "kind": "receipt", "status": "undelivered", "error_code": 30007, "detail": None},
]


def test_json_export_nests_each_timeline() -> None:
    records = [export.message_record(_message(), EVENTS), export.message_record(_message(sid="SM" + "d" * 32), [])]
    text = "".join(export.render("json", records, exported_at=T0, filters={"to": "+14155550100"}))
    doc = json.loads(text)
    assert doc["exported_at"] == "2024-05-06T07:08:09.123Z"
    assert doc["filters"] == {"to": "+14155550100"}
    first = doc["messages"][0]
    assert set(first) == {*export.COLUMNS[:-1], "events"}
    assert (first["from"], first["date_sent"], first["error_code"]) == (
        "+14155550101",
        "2024-05-06T07:08:10.123Z",
        30007,
    )
    assert (first["price"], first["price_unit"]) == ("-0.00790", "USD")
    assert first["events"] == [
        {
            "at": "2024-05-06T07:08:09.123Z",
            "kind": "created",
            "status": "queued",
            "error_code": None,
            "detail": {"num_segments": 1},
        },
        {
            "at": "2024-05-06T07:08:11.123Z",
            "kind": "receipt",
            "status": "undelivered",
            "error_code": 30007,
            "detail": {},
        },
    ]
    assert doc["messages"][1]["events"] == []


def test_json_export_of_nothing_is_still_a_document() -> None:
    doc = json.loads("".join(export.render("json", [], exported_at=T0, filters={})))
    assert doc["messages"] == []


def test_csv_export_has_one_row_per_message_with_a_compact_timeline() -> None:
    records = [export.message_record(_message(), EVENTS), export.message_record(_message(error_code=None), [])]
    text = "".join(export.render("csv", records, exported_at=T0, filters={}))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(export.COLUMNS)
    assert len(rows) == 3
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["sid"] == SM and first["error_code"] == "30007" and first["messaging_service_sid"] == ""
    # The price as the message resource shows it: a number a spreadsheet sums, not text.
    assert (first["price"], first["price_unit"]) == ("-0.00790", "USD")
    assert rows[0].index("price") < rows[0].index("body")
    timeline = json.loads(first["timeline"])
    assert [e["kind"] for e in timeline] == ["created", "receipt"]
    assert " " not in first["timeline"].replace("Your code", "")  # compact
    assert dict(zip(rows[0], rows[2], strict=True))["timeline"] == "[]"


def test_csv_export_defuses_spreadsheet_formulas_in_free_text() -> None:
    record = export.message_record(_message(body='=HYPERLINK("http://evil.example")'), [])
    row = dict(zip(export.COLUMNS, export.csv_row(record), strict=True))
    assert row["body"] == '\'=HYPERLINK("http://evil.example")'
    assert row["from"] == "+14155550101"  # numbers are left alone


def test_csv_export_defuses_formulas_in_every_cell_from_outside() -> None:
    """An inbound text from an alphanumeric originator that is a formula, as a carrier may
    deliver it: its From is as much a stranger's as its body."""
    evil = '=HYPERLINK("//x.example")'
    record = export.message_record(_message(direction="inbound", from_=evil, to="+14155550100", body="STOP"), [])
    row = dict(zip(export.COLUMNS, export.csv_row(record), strict=True))
    assert row["from"] == "'" + evil and row["to"] == "+14155550100" and row["body"] == "STOP"


def test_an_export_s_header_names_every_filter_that_was_set() -> None:
    """Each field of MessageFilter that is set shows in the header: a filter left out (the
    console's phone number) made a filtered export look like the whole account's."""
    values: dict[str, Any] = {
        "account_sid": AC,
        "to": "+14155550100",
        "from_": "+14155550101",
        "status": "delivered",
        "direction": "outbound-api",
        "date_sent_on": (T0, T0 + timedelta(days=1)),
        "date_sent_after": T0,
        "date_sent_before": T0,
        "created_since": T0,
        "created_before": T0,
        "number": "+14155550102",
    }
    assert set(values) == {f.name for f in dataclasses.fields(MessageFilter)}
    view = export.filter_view(MessageFilter(**values))
    assert len(view) == len(values) and view["number"] == "+14155550102"
    assert export.filter_view(MessageFilter(account_sid=AC, number="+14155550102", status="delivered")) == {
        "account_sid": AC,
        "number": "+14155550102",
        "status": "delivered",
    }


def test_unknown_export_format() -> None:
    with pytest.raises(ValueError, match="xml"):
        export.formatter("xml", exported_at=T0, filters={})


# -- the request-log middleware ------------------------------------------------------------------


class Collector:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def submit(self, row: dict[str, Any]) -> bool:
        self.rows.append(row)
        return True


async def _send(request: Request) -> Response:
    request.state.target_account_sid = request.path_params["account"]
    body = (await request.form())["Body"]
    if body == "bad":
        raise ApiError(21211, "The 'To' number is not valid.")
    if body == "crash":
        raise RuntimeError("boom")
    request.state.created_sid = SM
    request.state.send_summary = ("+14155550100", "+14155550101", "e" * 64)
    return JSONResponse({"sid": SM}, status_code=201)


async def _media(request: Request) -> Response:
    return JSONResponse({"scheme": request.url.scheme})


def _app(writer: Collector, proxy_hops: int = 0) -> Starlette:
    return Starlette(
        routes=[
            Route("/2010-04-01/Accounts/{account}/Messages.json", _send, methods=["POST"]),
            Route("/2010-04-01/Accounts/{account}/Messages/{sid}/Media/{media}.json", _media),
            Route("/2010-04-01/Accounts/{account}/Doctor/Numbers/{number}.json", _media),
            Route("/v2/PhoneNumbers/{number:path}", _media),
            Route("/healthz", _media),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(RequestLogMiddleware, writer=writer, clock=FrozenClock(T0), proxy_hops=proxy_hops)],
    )


def _call(app: Starlette, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.0.0.9", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://pigeon.test") as client:
            return await client.request(method, path, **kw)

    return asyncio.run(go())


def test_middleware_logs_a_create_and_names_it_in_a_header() -> None:
    writer = Collector()
    resp = _call(
        _app(writer),
        "POST",
        f"/2010-04-01/Accounts/{AC}/Messages.json",
        data={"To": "+14155550100", "Body": "top secret text"},
        auth=(AC, "the-auth-token"),
        headers={"User-Agent": "twilio-python/9.13.0", "Idempotency-Key": "order-1"},
    )
    assert resp.status_code == 201
    [row] = writer.rows
    assert resp.headers["Twilio-Request-Id"] == row["sid"] and row["sid"].startswith("RQ")
    assert row["at"] == T0 and row["duration_ms"] >= 0
    assert (row["account_sid"], row["method"], row["status"], row["error_code"]) == (AC, "POST", 201, None)
    assert row["claimed_account_sid"] is None  # proven: account_sid says it
    assert (row["resource_sid"], row["source_ip"], row["user_agent"]) == (SM, "10.0.0.9", "twilio-python/9.13.0")
    assert (row["idempotency_key"], row["to"], row["from_"], row["content_hash"]) == (
        "order-1",
        "+14155550100",
        "+14155550101",
        "e" * 64,
    )
    flat = json.dumps(row, default=str)
    assert "top secret" not in flat and "the-auth-token" not in flat and "Basic" not in flat


def test_middleware_records_the_error_code_of_a_refusal_and_of_a_crash() -> None:
    writer = Collector()
    app = _app(writer)
    refused = _call(app, "POST", f"/2010-04-01/Accounts/{AC}/Messages.json", data={"Body": "bad"})
    crashed = _call(app, "POST", f"/2010-04-01/Accounts/{AC}/Messages.json", data={"Body": "crash"})
    assert (refused.status_code, crashed.status_code) == (400, 500)
    assert [(r["status"], r["error_code"]) for r in writer.rows] == [(400, 21211), (500, 20500)]
    assert "Twilio-Request-Id" in refused.headers


def test_middleware_names_the_addressed_resource_and_skips_non_api_paths() -> None:
    writer = Collector()
    app = _app(writer)
    _call(app, "GET", f"/2010-04-01/Accounts/{AC}/Messages/{SM}/Media/{ME}.json")
    _call(app, "GET", "/healthz")
    [row] = writer.rows
    assert row["resource_sid"] == SM
    assert row["account_sid"] is None  # never authenticated
    assert row["claimed_account_sid"] == AC  # only named by the URL
    assert _addressed_sid(f"/2010-04-01/Accounts/{AC}/Messages/not-a-sid.json") is None


@pytest.mark.parametrize("number", ["%2B14155552671", "+14155552671", "14155552671", "%2B1%20415%20555%202671"])
def test_middleware_logs_paths_that_name_a_number_without_it(number: str) -> None:
    """`pigeon erase` finds a number in the request log's columns of sends, not in its paths:
    the doctor's and Lookup's paths that name one are logged without it."""
    writer = Collector()
    app = _app(writer)
    _call(app, "GET", f"/2010-04-01/Accounts/{AC}/Doctor/Numbers/{number}.json", params={"TestRequest": "false"})
    _call(app, "GET", f"/v2/PhoneNumbers/{number}")
    assert [r["path"] for r in writer.rows] == [
        f"/2010-04-01/Accounts/{AC}/Doctor/Numbers/(number).json",
        "/v2/PhoneNumbers/(number)",
    ]
    assert writer.rows[0]["claimed_account_sid"] == AC
    assert [(r["to"], r["from_"], r["resource_sid"]) for r in writer.rows] == [(None, None, None)] * 2


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "10.0.0.9"),  # not behind a proxy: the header is anyone's to forge
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the client put the first entry there
        (2, "203.0.113.7, 10.1.1.1", "203.0.113.7"),
        (3, "203.0.113.7", "203.0.113.7"),
    ],
)
def test_source_address_behind_proxies(hops: int, forwarded: str, expected: str) -> None:
    writer = Collector()
    _call(
        _app(writer, hops),
        "GET",
        f"/2010-04-01/Accounts/{AC}/Messages/{SM}/Media/{ME}.json",
        headers={"X-Forwarded-For": forwarded},
    )
    assert writer.rows[0]["source_ip"] == expected


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        (0, "10.0.0.9"),
        (1, "203.0.113.7"),  # the line the proxy added, not the client's first one
        (2, "198.51.100.1"),
        (3, "6.6.6.6"),
    ],
)
def test_source_address_reads_every_forwarded_line(hops: int, expected: str) -> None:
    """A proxy may add an X-Forwarded-For line of its own (HAProxy's `option forwardfor`)
    rather than extend the client's: the lines are one list, in order."""
    writer = Collector()
    _call(
        _app(writer, hops),
        "GET",
        f"/2010-04-01/Accounts/{AC}/Messages/{SM}/Media/{ME}.json",
        headers=[("X-Forwarded-For", "6.6.6.6, 198.51.100.1"), ("X-Forwarded-For", "203.0.113.7")],
    )
    assert writer.rows[0]["source_ip"] == expected


def _served(app: Starlette, raw: bytes) -> bytes:
    """`raw` sent over TCP to `app` served by uvicorn as `pigeon serve` configures it."""
    import socket

    import uvicorn

    from pigeon.serving import uvicorn_config

    async def go() -> bytes:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn_config(app, shutdown_grace=1))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection(*sock.getsockname())
            writer.write(raw)
            answer = await reader.read()
            writer.close()
            return answer
        finally:
            server.should_exit = True
            await serving
            sock.close()

    return asyncio.run(go())


@pytest.mark.parametrize(("hops", "expected"), [(0, "127.0.0.1"), (1, "203.0.113.7"), (2, "6.6.6.6")])
def test_served_request_log_source_is_not_uvicorns_rewrite(hops: int, expected: str) -> None:
    """uvicorn's proxy_headers (on by default) trusted X-Forwarded-For from 127.0.0.1 and put
    its value in the scope's client, so that with PIGEON_PROXY_HOPS=0 a local caller chose
    the logged address; the request log reads the header alone, as PIGEON_PROXY_HOPS says."""
    writer = Collector()
    answer = _served(
        _app(writer, hops),
        f"GET /2010-04-01/Accounts/{AC}/Messages/{SM}/Media/{ME}.json HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "X-Forwarded-For: 6.6.6.6\r\n"
        "X-Forwarded-Proto: https\r\n"
        "X-Forwarded-For: 203.0.113.7\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.endswith(b'{"scheme":"http"}')  # the connection's, not X-Forwarded-Proto's
    [row] = writer.rows
    assert row["source_ip"] == expected


# -- pigeon errors -------------------------------------------------------------------------------


def test_pigeon_errors_prints_the_explanation_as_json() -> None:
    from typer.testing import CliRunner

    from pigeon.cli_debugger import debugger_app

    done = CliRunner().invoke(debugger_app, ["errors", "79001", "--json"])
    assert done.exit_code == 0, done.output
    view = json.loads(done.stdout)
    assert (view["name"], view["kind"], view["more_info"]) == (
        "Possible duplicate message",
        "debugger",
        "/v1/Errors/79001",
    )
    assert view["causes"] and view["remedy"]


@pytest.mark.parametrize("code", ["12345", "not-a-code", "\u00b2"])  # a digit to isdigit(), not to int()
def test_pigeon_errors_refuses_an_unknown_code(code: str) -> None:
    from typer.testing import CliRunner

    from pigeon.cli_debugger import debugger_app

    done = CliRunner().invoke(debugger_app, ["errors", code])
    assert done.exit_code == 1
    assert f"does not know error code {code}" in " ".join(done.output.split())


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["requests", "--status", "99999999999999999999"], "--status"),
        (["requests", "--status", "42"], "--status"),
        (["requests", "--code", "99999999999999999999"], "--code"),
        (["requests", "--limit", "99999999999999999999"], "--limit"),
        (["alerts", "--code", "-99999999999999999999"], "--code"),
        (["alerts", "--limit", "0"], "--limit"),
    ],
)
def test_request_and_alert_filters_out_of_range_are_one_line(
    args: list[str], flag: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A number no store can hold (SQLite's integers stop at 2**63) ended in an OverflowError
    traceback: it is refused in one line, status 2, as other operator mistakes are."""
    from typer.testing import CliRunner

    from pigeon.cli_debugger import debugger_app

    monkeypatch.setenv("PIGEON_DATABASE_URL", f"sqlite:///{tmp_path / 'pigeon.db'}")
    done = CliRunner().invoke(debugger_app, args)
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    [line] = done.output.strip().splitlines()
    assert line.startswith(f"{flag} must be between") and args[-1] in line


@pytest.mark.parametrize("limit", ["99999999999999999999", "0", "-5"])
def test_pigeon_logs_limit_out_of_range_is_one_line(limit: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pigeon logs --limit` had the same OverflowError traceback as `pigeon requests`."""
    from typer.testing import CliRunner

    from pigeon.cli import app

    monkeypatch.setenv("PIGEON_DATABASE_URL", f"sqlite:///{tmp_path / 'pigeon.db'}")
    done = CliRunner().invoke(app, ["logs", "--limit", limit])
    assert done.exit_code == 2, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
    [line] = done.output.strip().splitlines()
    assert line.startswith("--limit must be between") and limit in line
