"""Every JSON body the server returns for Messages, Media, Accounts and IncomingPhoneNumbers
validates against Twilio's own OpenAPI description (../shared/twilio/), and carries every
property the schema lists and no other (issue 2, "Proof").

The twilio SDK drives the server through a recording HTTP client; a few requests the SDK
cannot make (no credentials, a refused list page) go out raw and are recorded the same way.
Each recorded response is matched to its operation in the spec by path template, method and
status code. Error bodies have no schema in the spec; they are checked against Twilio's
documented error body (REFERENCE.md §b).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.status import MessageStatus
from pigeon.store import messages as message_store
from tests.acceptance.conftest import LocalHttpClient, Server
from tests.acceptance.support import (
    Tenant,
    add_service,
    deliver,
    fresh_number,
    move_to,
    new_tenant,
    set_date_sent,
    stock,
    store,
)

pytestmark = pytest.mark.acceptance

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "twilio"
SPEC: dict[str, Any] = json.loads((SHARED / "twilio_api_v2010_messaging.json").read_text())
SPEC_URI = "urn:pigeon:twilio-api-v2010-messaging"
REGISTRY: Registry[Any] = Registry().with_resource(SPEC_URI, DRAFT4.create_resource(SPEC))

# Twilio's error body (REFERENCE.md §b): 401s add `detail`; some errors carry a `details` object.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "more_info", "status"],
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "more_info": {"type": "string", "pattern": r"^https://www\.twilio\.com/docs/errors/\d+$"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "details": {"type": "object"},
    },
    "additionalProperties": False,
}

# -- formats the spec uses --------------------------------------------------------------------

FORMATS = FormatChecker()


@FORMATS.checks("date-time-rfc-2822", raises=(TypeError, ValueError))
def _rfc2822(value: object) -> bool:
    # Twilio writes GMT with a numeric zone: 'Thu, 24 Aug 2023 05:01:45 +0000'.
    return not isinstance(value, str) or (parsedate_to_datetime(value) is not None and value.endswith(" +0000"))


@FORMATS.checks("phone-number")
def _phone_number(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"\+[1-9]\d{1,14}|\d{3,8}|[A-Za-z0-9 \-+_&.,]{1,11}", value))


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    # Twilio's paging URIs are relative to the host; webhook URLs are absolute http(s).
    return not isinstance(value, str) or value.startswith("/2010-04-01/") or bool(re.match(r"https?://[^/\s]+", value))


@FORMATS.checks("uri-map")
def _uri_map(value: object) -> bool:
    return not isinstance(value, dict) or all(str(v).startswith("/2010-04-01/") for v in value.values())


@FORMATS.checks("currency")
def _currency(value: object) -> bool:
    return not isinstance(value, str) or bool(re.fullmatch(r"[A-Z]{3}", value))


# -- from a recorded response to its schema ------------------------------------------------------


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


# Literal paths first: .../IncomingPhoneNumbers/Local.json is not .../IncomingPhoneNumbers/{Sid}.json.
TEMPLATES = sorted(SPEC["paths"], key=lambda t: (t.count("{"), -len(t)))
PATTERNS = [(t, _template_regex(t)) for t in TEMPLATES]


def path_template(path: str) -> str | None:
    return next((t for t, rx in PATTERNS if rx.match(path)), None)


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def response_schema(method: str, template: str, status: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the schema object in the spec, a {"$ref": ...} to it that the validator can follow)."""
    parts = ("paths", template, method.lower(), "responses", str(status), "content", "application/json", "schema")
    node: Any = SPEC
    for part in parts:
        node = node[part]
    return node, {"$ref": f"{SPEC_URI}#{quote(_pointer(*parts), safe='/~')}"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = SPEC
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def key_problems(instance: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Properties the schema lists that the body lacks, and keys the schema does not know."""
    schema = _resolve(schema)
    problems: list[str] = []
    if isinstance(instance, dict) and "properties" in schema:
        listed = set(schema["properties"])
        problems += [f"{where}: missing {k!r}" for k in sorted(listed - set(instance))]
        problems += [f"{where}: extra {k!r}" for k in sorted(set(instance) - listed)]
        for key, sub in schema["properties"].items():
            if key in instance:
                problems += key_problems(instance[key], sub, f"{where}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            problems += key_problems(item, schema["items"], f"{where}[{i}]")
    return problems


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    text: str
    content_type: str


class RecordingHttpClient(LocalHttpClient):
    """The acceptance tests' local HTTP client, keeping every response it saw."""

    def __init__(self, base: str, log: list[Exchange]) -> None:
        super().__init__(base)
        self.exchanges = log

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
        response = super().request(method, url, *args, **kw)
        content_type = str((response.headers or {}).get("content-type", ""))
        self.exchanges.append(
            Exchange(method.upper(), urlsplit(url).path, response.status_code, response.text, content_type)
        )
        return response


def check_exchange(ex: Exchange) -> list[str]:
    """What is wrong with one recorded response, judged by the spec (or the error body)."""
    template = path_template(ex.path)
    if template is None:
        return ["path is not in the spec"]
    if ex.status == 204:
        return [] if ex.text == "" else ["a 204 must have no body"]
    if not ex.content_type.startswith("application/json"):
        return [f"content type {ex.content_type!r} is not application/json"]
    body = json.loads(ex.text)
    if ex.status >= 400:
        validator = OAS30Validator(ERROR_SCHEMA, format_checker=FORMATS)
        problems = [e.message for e in validator.iter_errors(body)]
        if body.get("status") != ex.status:
            problems.append(f"body status {body.get('status')} is not the HTTP status")
        return problems
    try:
        schema, ref = response_schema(ex.method, template, ex.status)
    except KeyError:
        return [f"the spec has no {ex.status} response for {ex.method} {template}"]
    validator = OAS30Validator(ref, registry=REGISTRY, format_checker=FORMATS)
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(body)]
    return problems + key_problems(body, schema)


class Conformance:
    """Records what the server answers and checks it against the spec."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.exchanges: list[Exchange] = []

    def client(self, username: str, password: str, account_sid: str | None = None) -> Client:
        return Client(
            username, password, account_sid, http_client=RecordingHttpClient(self.server.base_url, self.exchanges)
        )

    def tenant_client(self, tenant: Tenant) -> Client:
        return self.client(tenant.sid, tenant.auth_token)

    def raw(self, method: str, path: str, auth: tuple[str, str] | None, **kw: Any) -> httpx.Response:
        response = httpx.request(method, self.server.base_url + path, auth=auth, timeout=10, **kw)
        self.exchanges.append(
            Exchange(
                method,
                urlsplit(str(response.url)).path,
                response.status_code,
                response.text,
                response.headers.get("content-type", ""),
            )
        )
        return response

    def problems(self) -> list[str]:
        found: list[str] = []
        for ex in self.exchanges:
            label = f"{ex.method} {ex.path} -> {ex.status}"
            found += [f"{label}: {p}" for p in check_exchange(ex)]
        return found

    def covered(self) -> set[tuple[str, str, int]]:
        return {(ex.method, path_template(ex.path) or ex.path, ex.status) for ex in self.exchanges}


@pytest.fixture
def conformance(shared_server: Server) -> Conformance:
    return Conformance(shared_server)


def assert_conforms(conf: Conformance, expected: set[tuple[str, str, int]]) -> None:
    missing = expected - conf.covered()
    assert not missing, f"scenario did not exercise: {sorted(missing)}"
    problems = conf.problems()
    assert not problems, "\n".join(problems)


V = "/2010-04-01/Accounts"
MSGS = V + "/{AccountSid}/Messages.json"
MSG = V + "/{AccountSid}/Messages/{Sid}.json"
MEDIA_LIST = V + "/{AccountSid}/Messages/{MessageSid}/Media.json"
MEDIA = V + "/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json"
FEEDBACK = V + "/{AccountSid}/Messages/{MessageSid}/Feedback.json"


def test_messages_and_media_conform(conformance: Conformance, shared_server: Server) -> None:
    tenant = new_tenant(shared_server)
    client = conformance.tenant_client(tenant)
    sms = client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="plain")
    mms = client.messages.create(
        to=fresh_number(),
        from_=tenant.numbers[0],
        body="pics",
        media_url=[f"https://m.example.com/{i}.png" for i in range(3)],
    )
    failed = client.messages.create(to=fresh_number(), from_=tenant.numbers[1], body="will fail")
    with store(shared_server) as db:
        service = add_service(db, tenant.sid, tenant.numbers[1])
        deliver(db, sms.sid)
        set_date_sent(db, sms.sid, datetime.now(UTC))
        with db.write() as conn:
            message_store.transition(
                conn, failed.sid, MessageStatus.FAILED, at=datetime.now(UTC), error_code=30008, error_message=None
            )
            message_store.update_fields(conn, sms.sid, price="-0.00790")
    scheduled = client.messages.create(
        to=fresh_number(),
        messaging_service_sid=service,
        body="later",
        send_at=datetime.now(UTC) + timedelta(hours=2),
        schedule_type="fixed",
    )

    client.messages(sms.sid).fetch()
    client.messages(failed.sid).fetch()
    client.messages.list(page_size=2)
    client.messages.list(to=sms.to, date_sent_after=datetime(2020, 1, 1))
    client.messages(sms.sid).update(body="")
    client.messages(sms.sid).feedback.create(outcome="confirmed")
    client.messages(scheduled.sid).update(status="canceled")
    media = client.messages(mms.sid).media.list(page_size=2)
    client.messages(mms.sid).media(media[0].sid).fetch()
    with store(shared_server) as db:
        move_to(db, mms.sid, MessageStatus.FAILED)  # media are deleted once the message is done
    client.messages(mms.sid).media(media[0].sid).delete()
    client.messages(mms.sid).delete()

    # Refusals, through the SDK where it can make them and raw where it cannot.
    for bad in ({"to": "nope"}, {"body": "x" * 1601}, {"validity_period": 0}):
        with pytest.raises(TwilioException):
            client.messages.create(**{"to": fresh_number(), "from_": tenant.numbers[0], "body": "x", **bad})
    with pytest.raises(TwilioException):
        client.messages(new_sid(Prefix.SMS)).fetch()
    with pytest.raises(TwilioException):
        client.messages(failed.sid).update(status="canceled")  # 30409: only scheduled ones
    with pytest.raises(TwilioException):
        conformance.client(tenant.sid, "wrong").messages(sms.sid).fetch()
    conformance.raw("GET", f"{V}/{tenant.sid}/Messages.json", auth=None)
    conformance.raw("GET", f"{V}/{tenant.sid}/Messages.json?PageSize=1001", auth=(tenant.sid, tenant.auth_token))
    conformance.raw("GET", f"{V}/{shared_server.account_sid}/Messages.json", auth=(tenant.sid, tenant.auth_token))

    assert_conforms(
        conformance,
        {
            ("POST", MSGS, 201),
            ("GET", MSGS, 200),
            ("GET", MSG, 200),
            ("POST", MSG, 200),
            ("DELETE", MSG, 204),
            ("GET", MEDIA_LIST, 200),
            ("GET", MEDIA, 200),
            ("DELETE", MEDIA, 204),
            ("POST", FEEDBACK, 200),
            ("POST", MSGS, 400),
            ("GET", MSG, 404),
            ("GET", MSG, 401),
            ("GET", MSGS, 401),
            ("GET", MSGS, 400),
            ("GET", MSGS, 403),
        },
    )


def test_accounts_conform(conformance: Conformance, shared_server: Server) -> None:
    parent = conformance.client(shared_server.account_sid, shared_server.auth_token)
    parent.api.accounts(shared_server.account_sid).fetch()
    sub = parent.api.accounts.create(friendly_name="Conformance")
    parent.api.accounts.list(page_size=1, limit=3)
    parent.api.accounts(sub.sid).update(friendly_name="Conformance 2")
    as_sub = conformance.client(sub.sid, sub.auth_token)
    as_sub.api.accounts(sub.sid).fetch()
    with pytest.raises(TwilioException):
        as_sub.api.accounts(shared_server.account_sid).fetch()
    with pytest.raises(TwilioException):
        parent.api.accounts(new_sid(Prefix.ACCOUNT)).fetch()

    accounts, account = V + ".json", V + "/{Sid}.json"
    assert_conforms(
        conformance,
        {
            ("GET", account, 200),
            ("POST", accounts, 201),
            ("GET", accounts, 200),
            ("POST", account, 200),
            ("GET", account, 403),
            ("GET", account, 404),
        },
    )


def test_incoming_phone_numbers_conform(conformance: Conformance, shared_server: Server) -> None:
    tenant = new_tenant(shared_server, numbers=0)
    client = conformance.tenant_client(tenant)
    first, second = stock(shared_server, fresh_number(), fresh_number())
    number = client.incoming_phone_numbers.create(phone_number=first, sms_url="https://app.example.com/sms")
    second_sid = client.incoming_phone_numbers.local.create(phone_number=second).sid
    client.incoming_phone_numbers.list(page_size=1)
    assert [n.sid for n in client.incoming_phone_numbers.local.list()] == [number.sid, second_sid]
    assert client.incoming_phone_numbers.toll_free.list() == []
    assert client.incoming_phone_numbers.mobile.list() == []
    client.incoming_phone_numbers(number.sid).fetch()
    client.incoming_phone_numbers(number.sid).update(sms_method="GET", friendly_name="Support")
    for bad in (
        {"phone_number": "12ab"},
        {"phone_number": shared_server.numbers[0]},
        {"phone_number": fresh_number(), "sms_method": "PUT"},
    ):
        with pytest.raises(TwilioException):
            client.incoming_phone_numbers.create(**bad)
    client.incoming_phone_numbers(number.sid).delete()
    with pytest.raises(TwilioException):
        client.incoming_phone_numbers(number.sid).fetch()

    numbers, one = V + "/{AccountSid}/IncomingPhoneNumbers.json", V + "/{AccountSid}/IncomingPhoneNumbers/{Sid}.json"
    assert_conforms(
        conformance,
        {
            ("POST", numbers, 201),
            ("GET", numbers, 200),
            ("GET", one, 200),
            ("POST", one, 200),
            ("DELETE", one, 204),
            ("POST", numbers, 400),
            ("GET", one, 404),
            ("POST", V + "/{AccountSid}/IncomingPhoneNumbers/Local.json", 201),
            *[
                ("GET", V + f"/{{AccountSid}}/IncomingPhoneNumbers/{kind}.json", 200)
                for kind in ("Local", "TollFree", "Mobile")
            ],
        },
    )


def test_the_checker_catches_what_it_should() -> None:
    """The checker itself: a wrong type, a bad date, a missing and an extra key are all found."""
    sid, account = new_sid(Prefix.SMS), new_sid(Prefix.ACCOUNT)
    good: dict[str, Any] = {
        k: None for k in _resolve({"$ref": "#/components/schemas/api.v2010.account.message"})["properties"]
    }
    good.update(sid=sid, account_sid=account, num_segments="1", status="queued", direction="outbound-api")
    good["date_created"] = "Thu, 24 Aug 2023 05:01:45 +0000"
    path = f"{V}/{account}/Messages/{sid}.json"

    def problems(body: dict[str, Any]) -> list[str]:
        return check_exchange(Exchange("GET", path, 200, json.dumps(body), "application/json"))

    assert problems(good) == []
    bad = {**good, "num_segments": 1, "date_created": "2023-08-24T05:01:45Z", "surprise": True}
    del bad["price"]
    found = "\n".join(problems(bad))
    assert "1 is not of type 'string'" in found
    assert "date-time-rfc-2822" in found
    assert "missing 'price'" in found and "extra 'surprise'" in found
