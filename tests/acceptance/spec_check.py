"""Checking recorded responses against one of Twilio's OpenAPI descriptions (../shared/twilio/).

Like test_openapi_conformance.py, for the other spec files: each response the SDK received is
matched to its operation by path template, method and status; a JSON body must validate
against the response schema and carry every property the schema lists and no other. Error
bodies are checked against Twilio's documented error body (REFERENCE.md §b).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4
from twilio.rest import Client

from tests.acceptance.conftest import LocalHttpClient

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "twilio"

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


def format_checker(base_url: str) -> FormatChecker:
    """The spec's formats. URLs must be relative 2010-04-01 URIs or absolute URLs of this
    server (never twilio.com: the SDK would follow them there)."""
    checker = FormatChecker()

    def own_or_relative(value: str) -> bool:
        return value.startswith(("/2010-04-01/", base_url + "/")) or (
            bool(re.match(r"https?://[^/\s]+", value)) and "twilio.com" not in value
        )

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        return not isinstance(value, str) or own_or_relative(value)

    @checker.checks("uri-map")
    def _uri_map(value: object) -> bool:
        return not isinstance(value, dict) or all(own_or_relative(str(v)) for v in value.values())

    @checker.checks("date-time", raises=ValueError)
    def _iso(value: object) -> bool:
        # Twilio's v1 form: 2015-07-30T20:12:31Z
        return not isinstance(value, str) or bool(
            re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", value) and datetime.fromisoformat(value[:-1])
        )

    @checker.checks("date-time-rfc-2822", raises=(TypeError, ValueError))
    def _rfc2822(value: object) -> bool:
        return not isinstance(value, str) or (parsedate_to_datetime(value) is not None and value.endswith(" +0000"))

    @checker.checks("phone-number")
    def _phone(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"\+[1-9]\d{1,14}|\(\d{3}\) \d{3}-\d{4}", value))

    @checker.checks("iso-country-code")
    def _country(value: object) -> bool:
        return not isinstance(value, str) or bool(re.fullmatch(r"[A-Z]{2}", value))

    @checker.checks("http-method")
    def _method(value: object) -> bool:
        return not isinstance(value, str) or value in {"GET", "POST"}

    return checker


@dataclass
class Exchange:
    method: str
    url: str
    status: int
    text: str
    content_type: str

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


class RecordingHttpClient(LocalHttpClient):
    """The acceptance tests' local HTTP client, keeping every request URL (as the SDK built it,
    before the rewrite of *.twilio.com) and every response."""

    def __init__(self, base: str, log: list[Exchange]) -> None:
        super().__init__(base)
        self.exchanges = log

    def request(self, method: str, url: str, *args: Any, **kw: Any) -> Any:
        response = super().request(method, url, *args, **kw)
        content_type = str((response.headers or {}).get("content-type", ""))
        self.exchanges.append(Exchange(method.upper(), url, response.status_code, response.text, content_type))
        return response


@dataclass
class Spec:
    """One spec file, and the exchanges to check against it."""

    filename: str
    base_url: str
    exchanges: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.doc: dict[str, Any] = json.loads((SHARED / self.filename).read_text())
        self.uri = f"urn:pigeon:{self.filename}"
        self.registry: Registry[Any] = Registry().with_resource(self.uri, DRAFT4.create_resource(self.doc))
        self.formats = format_checker(self.base_url)
        templates = sorted(self.doc["paths"], key=lambda t: (t.count("{"), -len(t)))
        self.patterns = [(t, _template_regex(t)) for t in templates]

    def client(self, username: str, password: str, account_sid: str | None = None) -> Client:
        return Client(username, password, account_sid, http_client=RecordingHttpClient(self.base_url, self.exchanges))

    def template(self, path: str) -> str | None:
        return next((t for t, rx in self.patterns if rx.match(path)), None)

    def covered(self) -> set[tuple[str, str, int]]:
        return {(ex.method, self.template(ex.path) or ex.path, ex.status) for ex in self.exchanges}

    def problems(self) -> list[str]:
        found: list[str] = []
        for ex in self.exchanges:
            if self.template(ex.path) is not None:
                found += [f"{ex.method} {ex.path} -> {ex.status}: {p}" for p in self._check(ex)]
        return found

    def assert_conforms(self, expected: set[tuple[str, str, int]]) -> None:
        missing = expected - self.covered()
        assert not missing, f"scenario did not exercise: {sorted(missing)}"
        problems = self.problems()
        assert not problems, "\n".join(problems)

    def _check(self, ex: Exchange) -> list[str]:
        template = self.template(ex.path)
        assert template is not None
        if ex.status == 204:
            return [] if ex.text == "" else ["a 204 must have no body"]
        if not ex.content_type.startswith("application/json"):
            return [f"content type {ex.content_type!r} is not application/json"]
        body = json.loads(ex.text)
        if ex.status >= 400:
            validator = OAS30Validator(ERROR_SCHEMA, format_checker=self.formats)
            problems = [e.message for e in validator.iter_errors(body)]
            return problems + ([] if body.get("status") == ex.status else ["body status is not the HTTP status"])
        parts = ("paths", template, ex.method.lower(), "responses", str(ex.status), "content", "application/json")
        node: Any = self.doc
        try:
            for part in (*parts, "schema"):
                node = node[part]
        except KeyError:
            return [f"the spec has no {ex.status} response for {ex.method} {template}"]
        ref = {"$ref": f"{self.uri}#{quote(_pointer(*parts, 'schema'), safe='/~')}"}
        validator = OAS30Validator(ref, registry=self.registry, format_checker=self.formats)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator.iter_errors(body)]
        return problems + self._keys(body, node)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema

    def _keys(self, instance: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
        """Properties the schema lists that the body lacks, and keys the schema does not know."""
        schema = self._resolve(schema)
        problems: list[str] = []
        if isinstance(instance, dict) and "properties" in schema:
            listed = set(schema["properties"])
            problems += [f"{where}: missing {k!r}" for k in sorted(listed - set(instance))]
            problems += [f"{where}: extra {k!r}" for k in sorted(set(instance) - listed)]
            for key, sub in schema["properties"].items():
                if key in instance:
                    problems += self._keys(instance[key], sub, f"{where}.{key}")
        elif isinstance(instance, list) and "items" in schema:
            for i, item in enumerate(instance):
                problems += self._keys(item, schema["items"], f"{where}[{i}]")
        return problems


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
