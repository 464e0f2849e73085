"""Phone numbers of an account: provisioning, webhook configuration, release."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import number_opt_outs, number_transfer, sender_exit
from pigeon.domain import numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.inventory import NUMBER_TYPES, friendly_name
from pigeon.domain.urls import ascii_url, is_valid_http_url
from pigeon.store import inventory as inventory_store
from pigeon.store import numbers as store

Row = dict[str, Any]

#: API parameter -> column, for the settings a customer may change on a number.
URL_PARAMS = {
    "SmsUrl": "sms_url",
    "SmsFallbackUrl": "sms_fallback_url",
    "StatusCallback": "status_callback",
    "VoiceUrl": "voice_url",
}
METHOD_PARAMS = {
    "SmsMethod": "sms_method",
    "SmsFallbackMethod": "sms_fallback_method",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceMethod": "voice_method",
}


def settings_from_params(params: Mapping[str, str]) -> dict[str, Any]:
    """Validated column values from IncomingPhoneNumber create/update parameters."""
    values: dict[str, Any] = {}
    if params.get("SmsApplicationSid"):
        # On Twilio it takes the number's texts instead of SmsUrl: taking it and sending the
        # texts elsewhere (or nowhere) would lose them without a word.
        raise ApiError(
            20422,
            "SmsApplicationSid is not supported: Pigeon has no TwiML Applications. Set SmsUrl "
            "(and SmsFallbackUrl) on the number instead.",
        )
    if "FriendlyName" in params:
        if len(params["FriendlyName"]) > 64:
            raise ApiError(20422, "FriendlyName may be at most 64 characters long.")
        values["friendly_name"] = params["FriendlyName"]
    for param, column in URL_PARAMS.items():
        if param in params:
            url = params[param].strip()
            if url and not is_valid_http_url(url):
                raise ApiError(21402, f"{param} {url!r} is not a valid http or https URL.")
            values[column] = ascii_url(url) if url else None
    for param, column in METHOD_PARAMS.items():
        if param in params:
            method = params[param].strip().upper()
            if method not in {"GET", "POST"}:
                raise ApiError(21403, f"{param} must be GET or POST, not {params[param]!r}.")
            values[column] = method
    return values


def kind_of(phone_number: str) -> tuple[str, str | None]:
    """(number_type, iso_country) for a number being provisioned (a short code's country is
    not in its digits: None)."""
    if numbers.is_short_code(phone_number):
        return "short_code", None
    kind = numbers.number_type(phone_number)
    label = {"toll_free": "toll_free", "mobile": "mobile"}.get(kind, "local")
    return label, numbers.region_of(phone_number)


def country_of(phone_number: str, given: str | None) -> str | None:
    """The country a number is provisioned in. A short code's binds it (it sends to and takes
    texts from that country only), so it must be given, as an ISO country the numbering plan
    knows: without one it would send anywhere, and one misspelt ("us", "USA") would refuse
    every send. A long code's is its number's: a `given` one must agree with it."""
    country = numbers.iso_country(given) if given is not None else None
    if given is not None and country is None:
        raise ApiError(20422, f"{given!r} is not an ISO country code (two letters, such as US or GB).")
    if numbers.is_short_code(phone_number):
        if country is None:
            raise ApiError(20422, f"The short code {phone_number} needs its country (an ISO code, such as US).")
        return country
    region = numbers.region_of(phone_number)
    if country is not None and region is not None and not numbers.in_country(phone_number, country):
        raise ApiError(20422, f"{phone_number} is a number of {region}, not of {country}.")
    return country or region


#: The inventory's columns a bought number keeps (pigeon.app.inventory.buy), for its release to
#: restock it as it was and for searches near it.
PLACE = ("locality", "region", "postal_code", "rate_center", "lata", "latitude", "longitude")
#: Where a number came from (its `origin`): bought from the inventory, or the operator's own.
ORIGINS = ("twilio", "hosted")
#: The settings that only a number that can take SMS may have (21407).
SMS_SETTINGS = {
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
}


def check_sms_settings(sms_capable: bool, values: Mapping[str, Any]) -> None:
    """21407: SMS settings on a number that cannot take SMS, where they would never be used
    (clearing a URL, which leaves nothing set, is allowed)."""
    given = [param for param, column in SMS_SETTINGS.items() if values.get(column) is not None]
    if given and not sms_capable:
        raise ApiError(21407, f"This number cannot take SMS: {', '.join(given)} cannot be set on it.")


def provision(
    conn: Connection,
    *,
    account_sid: str,
    phone_number: str,
    now: datetime,
    sms: bool = True,
    mms: bool = True,
    voice: bool = True,
    iso_country: str | None = None,
    settings: Mapping[str, Any] | None = None,
    stocked: Mapping[str, Any] | None = None,
) -> Row:
    """Put a number on an account. Refuses a number that another account (or this one) holds.
    `stocked`: the inventory row it was bought from (pigeon.app.inventory.buy), whose country,
    kind, capabilities, name, location and address requirements it takes (the inventory knows
    better than the numbering plan, e.g. for fictional ranges); without one, the number is the
    operator's own ("hosted"), its kind and country read from the plan (`country_of`). A short
    code is always a short code, with an SC sid."""
    normalised = numbers.number_or_short_code(phone_number)
    if normalised is None:
        raise ApiError(21421, f"PhoneNumber {phone_number!r} is not a valid phone number.")
    if store.find_by_number(conn, normalised) is not None:
        raise ApiError(21422, f"The phone number {normalised} is not available.")
    kind, _ = kind_of(normalised)
    values: dict[str, Any] = {"origin": "hosted"}
    if stocked is not None:
        sms, mms, voice = stocked["sms_capable"], stocked["mms_capable"], stocked["voice_capable"]
        number_type, country = stocked["number_type"], stocked["iso_country"]
        values |= {column: stocked.get(column) for column in PLACE}
        values |= {
            "origin": "twilio",
            "friendly_name": stocked["friendly_name"],
            "fax_capable": stocked["fax_capable"],
            "address_requirements": stocked["address_requirements"],
        }
    else:
        number_type, country = kind, country_of(normalised, iso_country)
        # Twilio names a number as people write it ("(415) 555-0101"), not in E.164.
        values["friendly_name"] = friendly_name(normalised)
    if kind == "short_code":
        number_type = kind
    values |= {k: v for k, v in (settings or {}).items() if v or k != "friendly_name"}
    check_fallback(values)
    check_sms_settings(sms, values)
    return store.add_number(
        conn,
        account_sid=account_sid,
        phone_number=normalised,
        now=now,
        number_type=number_type,
        iso_country=country,
        sms_capable=sms,
        mms_capable=mms and number_type != "short_code",
        voice_capable=voice and number_type != "short_code",
        **values,
    )


def set_short_code_country(conn: Connection, short_code: str, country: str, now: datetime) -> Row:
    """Bind a short code to its country (`pigeon numbers country`): the way to mend one stored
    without a country, or with a misspelt one, before the country was required."""
    row = store.find_by_number(conn, short_code)
    if row is None or row["number_type"] != "short_code":
        raise ApiError(20404, f"No account holds the short code {short_code}.", status=404)
    store.update_number(conn, row["sid"], now=now, iso_country=country_of(short_code, country))
    return store.get_number(conn, row["sid"]) or row


def check_fallback(number: Mapping[str, Any]) -> None:
    """21406: a fallback URL with no primary SMS URL to fall back from."""
    if number.get("sms_fallback_url") and not number.get("sms_url"):
        raise ApiError(21406, "SmsFallbackUrl needs an SmsUrl to fall back from.")


def fetch(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    """An IncomingPhoneNumber of the account; short codes are the ShortCode resource's, not this one's."""
    row = store.get_number(conn, sid, account_sid=account_sid)
    if row is None or row["number_type"] == "short_code":
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return row


def update(
    conn: Connection,
    account_sid: str,
    sid: str,
    path: str,
    params: Mapping[str, str],
    now: datetime,
    *,
    acting_sid: str | None = None,
) -> Row:
    """Change a number's settings; with AccountSid naming another account, move it there too
    (`number_transfer`, which `acting_sid`, the account of the request's credentials, must be
    allowed to do). Everything is checked before anything changes."""
    current = _fetch_locked(conn, account_sid, sid, path)
    values = settings_from_params(params)
    # Checked on the number as it would be after the update, as create checks a new one.
    check_fallback({**current, **values})
    check_sms_settings(current["sms_capable"], values)
    to_account_sid = params.get("AccountSid", account_sid).strip()
    if to_account_sid != account_sid:
        number_transfer.check(conn, acting_sid=acting_sid or account_sid, to_account_sid=to_account_sid)
    if values:
        store.update_number(conn, sid, now=now, **values)
    if to_account_sid != account_sid:
        number_transfer.move(conn, {**current, **values}, to_account_sid=to_account_sid, now=now)
    return fetch(conn, to_account_sid, sid, path)


def _fetch_locked(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    """The number as `fetch` finds it, its row held until the transaction ends (PostgreSQL):
    two moves or releases of one number at once then take turns, and the second finds the
    number where the first left it (on another account: 404) rather than undoing it. A text
    being taken by the number holds its row too (`pigeon.app.inbound`): its STOP is recorded
    before the opt-outs are copied to where the number goes, or after, where it went."""
    fetch(conn, account_sid, sid, path)  # another account's number is not locked, only 404
    store.lock_number(conn, sid)
    return fetch(conn, account_sid, sid, path)


def release(conn: Connection, account_sid: str, sid: str, path: str, now: datetime | None = None) -> int:
    """Take a number off the account. It goes back into the inventory, free to buy again; the
    account's messages still waiting to go from it fail (`sender_exit`), and the opt-outs of
    its Messaging Service stay on it (`number_opt_outs`). Returns how many messages failed."""
    row = _fetch_locked(conn, account_sid, sid, path)
    return _take_off(conn, row, now or row["date_updated"])


def release_all(conn: Connection, account_sid: str, now: datetime) -> int:
    """Release every number the account holds, its short codes too, each as `release` does:
    for an account being closed (`pigeon.app.account_status`), whose numbers would otherwise
    stay on it for ever, out of reach of its parent and of every buyer. A short code is not
    put back into the inventory (they are not for sale there): the operator provisions it
    again. Returns how many messages failed."""
    failed = 0
    for listed in store.list_numbers(conn, account_sid=account_sid):
        store.lock_number(conn, listed["sid"])  # as `_fetch_locked`: a move or release at once waits
        row = store.get_number(conn, listed["sid"], account_sid=account_sid)
        if row is not None:  # not moved or released meanwhile
            failed += _take_off(conn, row, now)
    return failed


def _take_off(conn: Connection, row: Mapping[str, Any], now: datetime) -> int:
    failed = sender_exit.fail_waiting(conn, row, now=now, kind="number_released", why="was released")
    number_opt_outs.keep_service_opt_outs(conn, row)
    store.delete_number(conn, str(row["sid"]))
    _restock(conn, row, now)
    return failed


def _restock(conn: Connection, number: Mapping[str, Any], now: datetime) -> None:
    """Put a released number back into the inventory as it was stocked: its location and
    address requirements came with it (short codes are not for sale)."""
    country = number["iso_country"] or numbers.region_of(number["phone_number"])
    if number["number_type"] == "short_code" or country is None:
        return
    inventory_store.put(
        conn,
        {
            "phone_number": number["phone_number"],
            "iso_country": country,
            "number_type": number["number_type"] if number["number_type"] in NUMBER_TYPES else "local",
            "friendly_name": friendly_name(number["phone_number"]),
            **{column: number.get(column) for column in PLACE},
            "address_requirements": number.get("address_requirements") or "none",
            "sms_capable": number["sms_capable"],
            "mms_capable": number["mms_capable"],
            "voice_capable": number["voice_capable"],
            "fax_capable": number["fax_capable"],
            "date_added": now,
        },
    )


def list_for_account(
    conn: Connection,
    account_sid: str,
    *,
    phone_number: str | None,
    friendly_name: str | None,
    offset: int,
    limit: int,
    number_type: str | None = None,
    origin: str | None = None,
) -> list[Row]:
    """The account's numbers (not its short codes). `origin` (Twilio's Origin filter): twilio,
    the numbers bought from the inventory, or hosted, the ones an operator put on the account."""
    if origin is not None and origin.strip().lower() not in ORIGINS:
        raise ApiError(20422, f"Origin must be twilio or hosted, not {origin!r}.")
    like = None
    if phone_number:
        # Twilio: partial match, with '*' standing for any one digit.
        like = "%" + phone_number.replace("%", "").replace("_", "").replace("*", "_") + "%"
    return store.list_numbers(
        conn,
        account_sid=account_sid,
        phone_number_like=like,
        friendly_name=friendly_name,
        short_codes=False,
        number_type=number_type,
        origin=origin.strip().lower() if origin else None,
        offset=offset,
        limit=limit,
    )
