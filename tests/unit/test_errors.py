"""The error catalogue against Twilio's published data, and the exception tree."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pigeon.domain import errors
from pigeon.domain.error_catalogue import CATALOGUE, PIGEON_CODES, ErrorInfo, _index, explain
from pigeon.domain.errors import (
    ApiError,
    AuthenticationError,
    CarrierError,
    CarrierOutcomeUnknown,
    CarrierPermanentError,
    CarrierRetryableError,
    CarrierUnavailable,
    InvalidTransition,
    NotFound,
    PigeonError,
    WebhookError,
)
from pigeon.domain.segments import SubmitProgress

TWILIO = Path(__file__).resolve().parents[2].parent / "shared" / "twilio"

# Codes the brief and DESIGN.md name; REFERENCE.md §g is checked separately.
REQUIRED = {
    20001,
    20003,
    20004,
    20005,
    20007,
    20008,
    20009,
    20404,
    20409,
    20429,
    20500,
    20503,
    21211,
    21212,
    21401,
    21402,
    21403,
    21406,
    21407,
    21408,
    21421,
    21422,
    21451,
    21452,
    21602,
    21603,
    21604,
    21606,
    21609,
    21610,
    21611,
    21612,
    21614,
    21617,
    21619,
    21620,
    21621,
    21623,
    21624,
    21654,
    21655,
    21656,
    21659,
    21660,
    21701,
    21702,
    21703,
    21704,
    21705,
    21710,
    21711,
    21712,
    21714,
    35111,
    35114,
    35115,
    35117,
    35118,
    30001,
    30002,
    30003,
    30004,
    30005,
    30006,
    30007,
    30008,
    30009,
    30010,
    30011,
    30019,
    30022,
    30023,
    30027,
    30032,
    30034,
    30036,
    30410,
    30450,
    11200,
    11205,
    11206,
    11210,
    11215,
    11750,
    12100,
    12200,
    12300,
    14101,
    14102,
    14103,
    14104,
    14105,
    14107,
    14108,
    14109,
    14110,
}

# Codes newer than the 2023-05 dictionary snapshot, with the names on their
# pages at twilio.com/docs/api/errors.
NEWER_THAN_SNAPSHOT = {
    11216: "HTTP invalid redirect",
    21659: "'From' is not a Twilio phone number or Short Code country mismatch",
    21660: "Mismatch between the 'From' number and the account",
    30036: "Validity Period Expired",
    35115: "Scheduling does not support this timestamp",
    35117: "Scheduling does not support this timestamp",
}

# Where a name differs from the snapshot's `message` on purpose. None so far.
NAME_EXCEPTIONS: dict[int, str] = {}

HTTP_STATUS = {
    20003: 401,
    20004: 405,
    20008: 403,
    20404: 404,
    20409: 409,
    20413: 413,
    20429: 429,
    20500: 500,
    20503: 503,
    # A permission refusal (only the main account's credentials move numbers), not bad input.
    21474: 403,
    # Twilio's dictionary gives 404 (REFERENCE.md's summary row says 400 for the whole block).
    21701: 404,
}

KIND_BY_WHERE = {"API": "api", "DLR": "delivery", "Debugger": "webhook"}

TWILIO_TEXT_FIELDS = ("description", "causes", "solutions", "secondary_message", "docs")
RUN = 8  # words in a row that count as copied


def _shared(name: str) -> Path:
    path = TWILIO / name
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@cache
def _twilio_entries() -> dict[int, dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(_shared("twilio-error-codes.json").read_text(encoding="utf-8"))
    return {int(entry["code"]): entry for entry in entries}


def _reference_rows() -> Iterator[tuple[list[int], str]]:
    """(codes, where) for each row of the error table in REFERENCE.md §g."""
    text = _shared("REFERENCE.md").read_text(encoding="utf-8")
    section = text.split("\n## g.", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or not cells[0][:1].isdigit():
            continue
        codes: list[int] = []
        for part in re.split(r"[,/]", cells[0]):
            bounds = [int(n) for n in re.findall(r"\d{5}", part)]
            if len(bounds) == 2:
                codes.extend(range(bounds[0], bounds[1] + 1))
            else:
                codes.extend(bounds)
        yield codes, cells[2]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _runs(text: str) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + RUN]) for i in range(len(words) - RUN + 1)}


def _texts(info: ErrorInfo) -> tuple[str, ...]:
    return (info.meaning, *info.causes, *info.remedy)


# --- the catalogue ---------------------------------------------------------


def test_required_codes_are_catalogued() -> None:
    assert sorted(REQUIRED - CATALOGUE.keys()) == []


def test_every_code_in_reference_table_is_catalogued() -> None:
    listed = {code for codes, _ in _reference_rows() for code in codes}
    assert len(listed) > 60  # the table parsed
    assert sorted(listed - CATALOGUE.keys()) == []


def test_kind_and_status_follow_reference_table() -> None:
    for codes, where in _reference_rows():
        kind = KIND_BY_WHERE.get(where.split()[0], where.split()[0])
        found = [int(s) for s in re.findall(r"\b[1-5]\d\d\b", where)]
        # "API 500/503" pairs with "20500 / 20503"; "API 401 ... or 403" gives
        # the usual status first; a bare "API" gives none.
        statuses: list[int | None] = list(found) if len(found) == len(codes) else []
        statuses = statuses or [found[0] if found else None] * len(codes)
        for code, status in zip(codes, statuses, strict=True):
            info = CATALOGUE[code]
            assert info.kind == kind, code
            if kind == "api":
                assert info.http_status is not None, code
                # A status the dictionary states for the code itself wins over the table's
                # row, which gives one status for a block of codes.
                status = _dictionary_status(code) or status
                assert status is None or info.http_status == status, code
            else:
                assert info.http_status is None, code


def test_names_follow_twilio() -> None:
    twilio = _twilio_entries()
    for code, info in CATALOGUE.items():
        if code in PIGEON_CODES:
            assert code not in twilio, f"{code} is Twilio's: Pigeon's own codes must not collide"
            continue
        if code in twilio:
            expected = NAME_EXCEPTIONS.get(code, twilio[code]["message"])
        else:
            assert code in NEWER_THAN_SNAPSHOT, f"{code} is not a Twilio code"
            expected = NEWER_THAN_SNAPSHOT[code]
        assert info.name == expected, code


def _dictionary_status(code: int) -> int | None:
    """The HTTP status Twilio's dictionary states in the entry of `code` ("HTTP status: 404"),
    if it states one."""
    entry = _twilio_entries().get(code, {})
    text = " ".join(str(entry.get(field) or "") for field in ("description", "docs"))
    found = re.search(r"HTTP status:?\s*(\d{3})", text, re.IGNORECASE)
    return int(found.group(1)) if found else None


def test_http_status_follows_the_dictionary_where_it_states_one() -> None:
    stated = {code: _dictionary_status(code) for code, info in CATALOGUE.items() if info.kind == "api"}
    stated = {code: status for code, status in stated.items() if status is not None}
    assert 21701 in stated  # the check found the statement it is for
    assert {code: CATALOGUE[code].http_status for code in stated} == stated


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_http_status_matches_kind(code: int) -> None:
    info = CATALOGUE[code]
    if info.kind != "api":
        assert info.http_status is None
    elif code in HTTP_STATUS:
        assert info.http_status == HTTP_STATUS[code]
    elif code // 1000 in (21, 35, 90):
        assert info.http_status == 400
    else:
        assert info.http_status in (400, 403)


def test_explanations_are_in_our_own_words() -> None:
    twilio = _twilio_entries()
    theirs: set[tuple[str, ...]] = set()
    for entry in twilio.values():
        for field in TWILIO_TEXT_FIELDS:
            if isinstance(entry.get(field), str):
                theirs |= _runs(entry[field])
    copied = {
        code: sorted(" ".join(run) for text in _texts(info) for run in _runs(text) & theirs)
        for code, info in CATALOGUE.items()
    }
    assert {code: runs for code, runs in copied.items() if runs} == {}


def test_short_explanations_are_not_twilio_sentences() -> None:
    twilio = _twilio_entries()
    for code, info in CATALOGUE.items():
        entry = twilio.get(code, {})
        theirs = {" ".join(_words(entry[field])) for field in TWILIO_TEXT_FIELDS if isinstance(entry.get(field), str)}
        for text in _texts(info):
            assert " ".join(_words(text)) not in theirs, code


def test_own_words_check_catches_a_copy() -> None:
    copied = "You must specify content (text or media) for your message."
    assert _runs(copied) & _runs(_twilio_entries()[21602]["secondary_message"])


@pytest.mark.parametrize("info", list(CATALOGUE.values()), ids=str)
def test_entry_is_complete(info: ErrorInfo) -> None:
    assert info.name and info.meaning
    assert info.causes and info.remedy
    for text in _texts(info):
        assert text.strip() == text and text.endswith("."), text
    if info.code in PIGEON_CODES:
        assert info.more_info == f"/v1/Errors/{info.code}"
    else:
        assert info.more_info == f"https://www.twilio.com/docs/errors/{info.code}"


def test_pigeon_codes_are_in_a_block_twilio_leaves_empty() -> None:
    twilio = _twilio_entries()
    assert not [code for code in twilio if code in PIGEON_CODES]
    ours = [code for code in CATALOGUE if code in PIGEON_CODES]
    assert ours == [79001]
    assert all(CATALOGUE[code].kind == "debugger" for code in ours)


PACKAGE = Path(__file__).resolve().parents[2] / "pigeon"
# Where the package hands out a code: raising it (ApiError, NotFound, WebhookError, TwimlError),
# setting it on a message, an event or an alert (error_code=, fail_code=, code= in fail() and
# alert calls, "error_code": in a logged row), or passing it to Event Streams' parameter checks.
_EMITTED = re.compile(
    r"(?:\b(?:ApiError|NotFound|WebhookError|TwimlError)\(\s*"
    r"|\b(?:error_code|fail_code|code)\s*=\s*"
    r"|\"error_code\":\s*"
    r"|\b_required\(params,\s*\"\w+\",\s*"
    r"|\b_description\(params,\s*)"
    r"(\d{5}\b|[A-Z][A-Z0-9_]*\b)"
)
# A module's constant for a code (NO_WEBHOOK_CODE = 11200), for the places that name it.
_CONSTANT = re.compile(r"^_?([A-Z][A-Z0-9_]*)\s*(?::\s*int\s*)?=\s*(\d{5})\s*$", re.MULTILINE)


def _emitted_codes() -> dict[int, list[str]]:
    """Every code the package emits, with where (file:line)."""
    sources = {path: path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}
    constants = {name: int(value) for text in sources.values() for name, value in _CONSTANT.findall(text)}
    found: dict[int, list[str]] = {}
    for path, text in sources.items():
        if path.name == "error_catalogue.py":
            continue
        for match in _EMITTED.finditer(text):
            token = match.group(1)
            code = int(token) if token.isdigit() else constants.get(token)
            if code is not None:
                line = text.count("\n", 0, match.start()) + 1
                found.setdefault(code, []).append(f"{path.relative_to(PACKAGE.parent)}:{line}")
    return found


def test_every_code_the_package_emits_is_catalogued() -> None:
    emitted = _emitted_codes()
    # The search itself still finds codes of each kind of place (so it cannot rot into
    # finding nothing): raised, set on an alert, passed to a check, named by a constant.
    assert {21502, 20404, 30008, 91000, 91101, 93101, 11200, 79001} <= emitted.keys()
    assert len(emitted) > 60
    assert {code: where for code, where in sorted(emitted.items()) if code not in CATALOGUE} == {}


def test_explain() -> None:
    info = explain(21610)
    assert info is CATALOGUE[21610]
    assert (info.kind, info.http_status) == ("api", 400)
    assert explain(99999) is None


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOGUE[1] = CATALOGUE[21610]  # type: ignore[index]


def test_index_refuses_a_code_twice() -> None:
    info = CATALOGUE[21610]
    with pytest.raises(ValueError, match="21610"):
        _index([info, info])


# --- the exception tree ----------------------------------------------------


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ApiError, PigeonError),
        (AuthenticationError, ApiError),
        (NotFound, ApiError),
        (InvalidTransition, PigeonError),
        (CarrierError, PigeonError),
        (CarrierRetryableError, CarrierError),
        (CarrierPermanentError, CarrierError),
        (CarrierUnavailable, CarrierRetryableError),
        (CarrierOutcomeUnknown, CarrierRetryableError),
        (WebhookError, PigeonError),
        (PigeonError, Exception),
    ],
)
def test_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)


def test_tree_has_one_root_and_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, PigeonError), name
        assert re.search(rf"\b{name}\b", doc), name
    assert not issubclass(CarrierPermanentError, CarrierRetryableError)
    assert not issubclass(WebhookError, ApiError)


def test_docstring_is_the_default_message() -> None:
    class Quiet(CarrierPermanentError):
        pass

    assert str(PigeonError()) == "Pigeon could not do what was asked."
    assert PigeonError("boom").message == "boom"
    assert str(Quiet()) == CarrierPermanentError.__doc__


def test_api_error_defaults_from_catalogue() -> None:
    err = ApiError(21211)
    assert (err.code, err.status, err.message) == (21211, 400, "Invalid 'To' Phone Number")
    assert str(err) == err.message
    assert err.more_info == "https://www.twilio.com/docs/errors/21211"
    assert err.detail is None
    assert ApiError(20404).status == 404
    assert ApiError(20429).status == 429


def test_api_error_overrides() -> None:
    err = ApiError(21211, "The 'To' number +1555 is not a valid phone number.", status=422)
    assert err.message == "The 'To' number +1555 is not a valid phone number."
    assert err.status == 422


def test_api_error_without_catalogue_status() -> None:
    assert ApiError(30003).status == 400  # an asynchronous code has no HTTP status
    unknown = ApiError(12345)
    assert (unknown.status, unknown.message) == (400, "The request was refused.")
    assert unknown.more_info == "https://www.twilio.com/docs/errors/12345"


def test_authentication_error() -> None:
    err = AuthenticationError()
    assert (err.code, err.status, err.message) == (20003, 401, "Authenticate")
    assert err.detail == "Your AccountSid or AuthToken was incorrect."
    other = AuthenticationError("No credentials", message="Authentication Error - No credentials provided")
    assert other.message == "Authentication Error - No credentials provided"
    assert other.detail == "No credentials"


def test_not_found() -> None:
    path = "/2010-04-01/Accounts/AC123/Messages/SM456.json"
    err = NotFound(path)
    assert (err.code, err.status, err.resource) == (20404, 404, path)
    assert err.message == f"The requested resource {path} was not found"


class _Status(enum.StrEnum):
    SENT = "sent"


def test_invalid_transition() -> None:
    err = InvalidTransition("SM456", _Status.SENT)
    assert (err.sid, err.to_status) == ("SM456", "sent")
    assert str(err).startswith("SM456 cannot move to sent")


def test_carrier_errors() -> None:
    throttled = CarrierRetryableError(carrier_code="ESME_RTHROTTLED")
    assert throttled.retryable
    assert throttled.carrier_code == "ESME_RTHROTTLED"
    assert throttled.error_code == 30008
    assert throttled.message.endswith("[ESME_RTHROTTLED]")
    rejected = CarrierPermanentError("invalid destination", carrier_code="0x0000000B", error_code=30005)
    assert not rejected.retryable
    assert (rejected.message, rejected.error_code) == ("invalid destination", 30005)
    unbound = CarrierUnavailable()
    assert unbound.retryable and unbound.carrier_code is None
    assert str(unbound) == CarrierUnavailable.__doc__
    assert not CarrierError().retryable
    assert CarrierError().accepted_carrier_ids == () and CarrierError().progress is None
    unanswered = CarrierOutcomeUnknown(carrier_code="smpp:response_timeout")
    assert unanswered.retryable and not unanswered.may_fail_over  # retried, never failed over by default
    unanswered.progress = SubmitProgress(parts=3, reference=7, first_part=1, accepted_ids=("a1",), stopped_at=2)
    assert unanswered.accepted_carrier_ids == ("a1",)
    assert CarrierOutcomeUnknown(may_fail_over=True).may_fail_over


def test_webhook_error() -> None:
    err = WebhookError(11200, "HTTP 503 from https://app.example/sms", retryable=True, status=503)
    assert str(err) == "HTTP retrieval failure: HTTP 503 from https://app.example/sms"
    assert (err.error_code, err.retryable, err.status) == (11200, True, 503)
    assert err.detail == "HTTP 503 from https://app.example/sms"
    bad_xml = WebhookError(12100, "line 1: not well-formed", retryable=False)
    assert bad_xml.status is None and not bad_xml.retryable
    unknown = WebhookError(19999, "odd", retryable=False)
    assert str(unknown) == "Error 19999: odd"
