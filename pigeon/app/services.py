"""Messaging Services and their sender pools, with Twilio's rules and error codes.

A number or short code is in one service's pool at most (21712; 21710 when it is already in
this one); removing a sender that is not in the pool is 21711. A pool holds one alphanumeric
sender (21714 for a second; 21710 for the same text in any case). Deleting a service empties
its pool: numbers and short codes stay on the account, alphanumeric senders go.

What changes a pool, and deleting a service, first take the service's row
(`store.lock_service`): on PostgreSQL they take turns, so a sender added while its service is
being deleted waits and finds no service (21701) instead of joining a pool that is gone, and
two adds of alphanumeric senders at once do not both pass the one-per-service check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import number_opt_outs
from pigeon.domain import flags, integers, numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.segments import MAX_BODY_CHARS, character_count
from pigeon.domain.sids import Prefix, is_sid
from pigeon.domain.urls import ascii_url, is_valid_http_url
from pigeon.store import numbers as number_store
from pigeon.store import services as store

Row = dict[str, Any]

MAX_FRIENDLY_NAME = 64
MAX_VALIDITY_PERIOD = 36_000
#: Twilio's limit on senders in one pool.
MAX_POOL_SIZE = 400
USECASES = frozenset({"notifications", "marketing", "verification", "discussion", "poll", "undeclared"})
SCAN_MESSAGE_CONTENT = frozenset({"inherit", "enable", "disable"})

_URLS = {"InboundRequestUrl": "inbound_request_url", "FallbackUrl": "fallback_url", "StatusCallback": "status_callback"}
_METHODS = {"InboundMethod": "inbound_method", "FallbackMethod": "fallback_method"}
_FLAGS = {
    "StickySender": "sticky_sender",
    "MmsConverter": "mms_converter",
    "SmartEncoding": "smart_encoding",
    "FallbackToLongCode": "fallback_to_long_code",
    "AreaCodeGeomatch": "area_code_geomatch",
    "SynchronousValidation": "synchronous_validation",
    "UseInboundWebhookOnNumber": "use_inbound_webhook_on_number",
}
#: Pigeon's own parameters (not Twilio's): the replies to STOP, START and HELP keywords.
_REPLIES = {"OptOutReply": "opt_out_reply", "OptInReply": "opt_in_reply", "HelpReply": "help_reply"}


def missing(name: str) -> ApiError:
    return ApiError(20001, f"Missing required parameter {name} in the post body")


def _flag(name: str, raw: str) -> bool:
    value = flags.flag(raw)
    if value is None:
        raise ApiError(20422, f"{name} must be true or false, not {raw[:40]!r}.")
    return value


def _validity(raw: str) -> int:
    value = integers.whole_number(raw)
    if value is None:
        raise ApiError(21624, "ValidityPeriod must be a whole number of seconds (digits 0-9).")
    if not 1 <= value <= MAX_VALIDITY_PERIOD:
        raise ApiError(21624, f"ValidityPeriod {value} is out of range: it must be between 1 and 36000 seconds.")
    return value


def _choice(name: str, raw: str, allowed: frozenset[str], code: int) -> str:
    value = raw.strip().lower()
    if value not in allowed:
        raise ApiError(code, f"{name} {raw!r} is not one of {', '.join(sorted(allowed))}.")
    return value


_PARSERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "ValidityPeriod": ("validity_period", _validity),
    "Usecase": ("usecase", lambda raw: _choice("Usecase", raw, USECASES, 21713)),
    "ScanMessageContent": (
        "scan_message_content",
        lambda raw: _choice("ScanMessageContent", raw, SCAN_MESSAGE_CONTENT, 20422),
    ),
}

#: The parameter that sets each column; a Service's JSON names its fields as the columns.
PARAM_OF_COLUMN: dict[str, str] = {
    "friendly_name": "FriendlyName",
    **{column: param for param, column in {**_URLS, **_METHODS, **_FLAGS, **_REPLIES}.items()},
    **{column: param for param, (column, _parse) in _PARSERS.items()},
}


def _urls_and_methods(params: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param, column in _URLS.items():
        if param in params:
            url = params[param].strip()
            if url and not is_valid_http_url(url):
                raise ApiError(21402, f"{param} {url!r} is not a valid http or https URL.")
            values[column] = ascii_url(url) if url else None
    for param, column in _METHODS.items():
        if param in params:
            method = params[param].strip().upper()
            if method not in {"GET", "POST"}:
                raise ApiError(21403, f"{param} must be GET or POST, not {params[param]!r}.")
            values[column] = method
    return values


def settings_from_params(params: Mapping[str, str]) -> dict[str, Any]:
    """Validated column values from Service create/update parameters (unknown ones are ignored,
    as Twilio ignores them)."""
    values: dict[str, Any] = {}
    if "FriendlyName" in params:
        name = params["FriendlyName"]
        if len(name) > MAX_FRIENDLY_NAME:
            raise ApiError(20422, f"FriendlyName may be at most {MAX_FRIENDLY_NAME} characters long.")
        values["friendly_name"] = name
    values.update(_urls_and_methods(params))
    for param, column in _FLAGS.items():
        if param in params:
            values[column] = _flag(param, params[param])
    for param, (column, parse) in _PARSERS.items():
        if param in params:
            values[column] = parse(params[param])
    for param, column in _REPLIES.items():
        if param in params:
            values[column] = _reply(param, params[param])
    return values


def _reply(param: str, raw: str) -> str | None:
    """A keyword reply's text, held to a message Body's limit (21617, as the Messages API
    answers a Body too long): every confirmation is sent as a message, and one too long to
    send would fail each time with only an alert. Blank: none of the service's own, so the
    default reply is sent (the way to go back to it)."""
    text = raw.strip()
    if character_count(text) > MAX_BODY_CHARS:
        raise ApiError(
            21617,
            f"{param} is {character_count(text)} characters long: a reply is sent as a message, whose body "
            f"may be at most {MAX_BODY_CHARS} characters (a character outside the BMP, such as most emoji, counts two).",
        )
    return text or None


# -- services ---------------------------------------------------------------------------------


def create(conn: Connection, account_sid: str, params: Mapping[str, str], now: datetime) -> Row:
    if not params.get("FriendlyName", "").strip():
        raise missing("FriendlyName")
    return store.create_service(conn, account_sid=account_sid, now=now, **settings_from_params(params))


def fetch(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    """A service of the account, as the resource at `path` (404 otherwise)."""
    row = store.get_service(conn, sid, account_sid=account_sid) if is_sid(sid, Prefix.SERVICE) else None
    if row is None:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return row


def update(conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime) -> Row:
    fetch(conn, account_sid, sid, path)
    values = settings_from_params(params)
    if "friendly_name" in values and not values["friendly_name"].strip():
        raise ApiError(20422, "FriendlyName may not be empty.")
    store.update_service(conn, sid, now=now, **values)
    return fetch(conn, account_sid, sid, path)


def delete(conn: Connection, account_sid: str, sid: str, path: str, now: datetime) -> None:
    """Delete a service. Its numbers and short codes stay on the account, out of any service,
    each keeping the service's opt-outs as its own (`number_opt_outs.keep_service_opt_outs`).
    The pool is read with the service's row held: a sender added meanwhile waits for the
    deletion, or is added first and then leaves the pool with the others. Its numbers' rows are
    held too before their opt-outs are copied: a STOP being taken by one of them
    (`pigeon.app.inbound`) is recorded first, and copied with the rest."""
    fetch(conn, account_sid, sid, path)  # another account's service is not locked, only 404
    store.lock_service(conn, sid)
    fetch(conn, account_sid, sid, path)  # deleted by someone else meanwhile: 404
    for number in store.hold_pool_numbers(conn, sid):
        number_opt_outs.keep_service_opt_outs(conn, number)
    store.delete_service(conn, sid, now=now)


def list_for_account(conn: Connection, account_sid: str, *, offset: int, limit: int) -> list[Row]:
    return store.list_services(conn, account_sid, offset=offset, limit=limit)


# -- sender pools -----------------------------------------------------------------------------


def pool_service(conn: Connection, account_sid: str, service_sid: str) -> Row:
    """The service whose pool a request works on: 21705 for a malformed SID, 21701 if none."""
    if not is_sid(service_sid, Prefix.SERVICE):
        raise ApiError(21705, f"The Messaging Service SID {service_sid!r} is not valid.")
    row = store.get_service(conn, service_sid, account_sid=account_sid)
    if row is None:
        raise ApiError(21701, f"The Messaging Service {service_sid} does not exist on this account.")
    return row


def _pool_service_locked(conn: Connection, account_sid: str, service_sid: str) -> Row:
    """The service as `pool_service` finds it, its row held until the transaction ends
    (PostgreSQL), for a change to its pool: one that waited for the service's deletion then
    finds no service (21701)."""
    pool_service(conn, account_sid, service_sid)  # another account's service is not locked
    store.lock_service(conn, service_sid)
    return pool_service(conn, account_sid, service_sid)


def _check_room(conn: Connection, service_sid: str) -> None:
    if store.pool_size(conn, service_sid) >= MAX_POOL_SIZE:
        raise ApiError(21714, f"The Messaging Service {service_sid} already holds {MAX_POOL_SIZE} senders.")


def _account_number(conn: Connection, account_sid: str, sid: str, short_code: bool, path: str) -> Row:
    """A number (PN) or short code (SC) of the account, or 20404."""
    prefix = Prefix.SHORT_CODE if short_code else Prefix.PHONE_NUMBER
    row = number_store.get_number(conn, sid, account_sid=account_sid) if is_sid(sid, prefix) else None
    if row is None or (row["number_type"] == "short_code") != short_code:
        kind = "ShortCode" if short_code else "PhoneNumber"
        raise ApiError(
            20404, f"The requested resource {path} was not found: no {kind} {sid} on this account.", status=404
        )
    return row


def add_number(
    conn: Connection, account_sid: str, service_sid: str, sid: str | None, *, short_code: bool, path: str, now: datetime
) -> Row:
    """Put a number (PhoneNumberSid) or short code (ShortCodeSid) of the account into the pool."""
    _pool_service_locked(conn, account_sid, service_sid)
    if not sid:
        raise missing("ShortCodeSid" if short_code else "PhoneNumberSid")
    number = _account_number(conn, account_sid, sid, short_code, path)
    if number["messaging_service_sid"] == service_sid:
        raise ApiError(21710, f"{number['phone_number']} is already in the Messaging Service {service_sid}.")
    if number["messaging_service_sid"] is not None:
        raise ApiError(
            21712, f"{number['phone_number']} is in the Messaging Service {number['messaging_service_sid']} already."
        )
    if not (number["sms_capable"] or number["mms_capable"]):
        # A service sends and takes texts: a sender that can do neither would be picked for
        # sends it cannot make, and its texts would never arrive.
        raise ApiError(21715, f"{number['phone_number']} can take neither SMS nor MMS: it cannot join a service.")
    _check_room(conn, service_sid)
    if not store.attach_number(conn, sid, service_sid, now=now):
        raise ApiError(21712, f"{number['phone_number']} was just added to another Messaging Service.")
    return {**number, "messaging_service_sid": service_sid, "date_updated": now}


def fetch_number(conn: Connection, account_sid: str, service_sid: str, sid: str, *, short_code: bool, path: str) -> Row:
    pool_service(conn, account_sid, service_sid)
    number = _account_number(conn, account_sid, sid, short_code, path)
    if number["messaging_service_sid"] != service_sid:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return number


def remove_number(
    conn: Connection, account_sid: str, service_sid: str, sid: str, *, short_code: bool, path: str, now: datetime
) -> None:
    """Take a number or short code out of the pool; it keeps the service's opt-outs as its own
    (`number_opt_outs.keep_service_opt_outs`). Taking it out updates its row, which waits for a
    STOP being taken by it (`pigeon.app.inbound` holds the row): the copy that follows has it."""
    _pool_service_locked(conn, account_sid, service_sid)
    number = _account_number(conn, account_sid, sid, short_code, path)
    if number["messaging_service_sid"] != service_sid or not store.detach_number(conn, sid, service_sid, now=now):
        raise ApiError(21711, f"{number['phone_number']} is not in the Messaging Service {service_sid}.")
    number_opt_outs.keep_service_opt_outs(conn, number)


def list_numbers(
    conn: Connection, account_sid: str, service_sid: str, *, short_codes: bool, offset: int, limit: int
) -> list[Row]:
    pool_service(conn, account_sid, service_sid)
    return store.pool_numbers(conn, service_sid, short_codes=short_codes, offset=offset, limit=limit)


def is_valid_alpha_sender(value: str) -> bool:
    """Twilio's rule for an AlphaSender: up to 11 of A-Z a-z 0-9 space - + _ &, not only digits."""
    return numbers.is_alphanumeric_sender(value) and not set(value) & {".", ","}


def add_alpha_sender(
    conn: Connection, account_sid: str, service_sid: str, alpha_sender: str | None, now: datetime
) -> Row:
    """Put an alphanumeric sender into the pool, which may hold one, as on Twilio: 21710 for
    the one it has (in any case), 21714 for another. A pool that holds several already (added
    before Pigeon kept to the rule) keeps them; it only takes no more."""
    _pool_service_locked(conn, account_sid, service_sid)
    if not alpha_sender:
        raise missing("AlphaSender")
    if not is_valid_alpha_sender(alpha_sender):
        raise ApiError(
            21709,
            f"AlphaSender {alpha_sender!r} is not valid: up to 11 letters, digits, spaces and - + _ &, "
            "with at least one letter.",
        )
    already = ApiError(21710, f"The alphanumeric sender {alpha_sender!r} is already in the Messaging Service.")
    if store.find_alpha_sender(conn, service_sid, alpha_sender) is not None:
        raise already
    if store.count_alpha_senders(conn, service_sid) > 0:
        raise ApiError(
            21714,
            f"The Messaging Service {service_sid} has an alphanumeric sender already, and a service may have "
            "one: remove it before adding another.",
        )
    _check_room(conn, service_sid)
    added = store.add_alpha_sender(
        conn, account_sid=account_sid, service_sid=service_sid, alpha_sender=alpha_sender, now=now
    )
    if added is None:  # the same text, added by a request that did not wait for the lock
        raise already
    return added


def fetch_alpha_sender(conn: Connection, account_sid: str, service_sid: str, sid: str, path: str) -> Row:
    pool_service(conn, account_sid, service_sid)
    row = store.get_alpha_sender(conn, sid, account_sid=account_sid)
    if row is None or row["messaging_service_sid"] != service_sid:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return row


def remove_alpha_sender(conn: Connection, account_sid: str, service_sid: str, sid: str, path: str) -> None:
    _pool_service_locked(conn, account_sid, service_sid)
    row = store.get_alpha_sender(conn, sid, account_sid=account_sid)
    if row is None:
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    if row["messaging_service_sid"] != service_sid:
        raise ApiError(21711, f"The alphanumeric sender {sid} is not in the Messaging Service {service_sid}.")
    store.delete_alpha_sender(conn, sid)


def list_alpha_senders(conn: Connection, account_sid: str, service_sid: str, *, offset: int, limit: int) -> list[Row]:
    pool_service(conn, account_sid, service_sid)
    return store.list_alpha_senders(conn, service_sid, offset=offset, limit=limit)
