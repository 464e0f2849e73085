"""Numbers free to buy: AvailablePhoneNumbers search and buying one (released numbers come back
through pigeon.app.numbers.release).

Filters follow Twilio's AvailablePhoneNumbers parameters (REFERENCE.md §c); AreaCode and
the Near*/In* location filters apply where the inventory knows the location. Buying
(IncomingPhoneNumbers create) takes the number out of the inventory in the same transaction
that puts it on the account, so two buyers never get one number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import numbers as number_use
from pigeon.app.inventory_csv import import_rows, parse_csv
from pigeon.domain import integers, numbers
from pigeon.domain.errors import ApiError
from pigeon.domain.flags import read_flag
from pigeon.domain.inventory import (
    COUNTRY_NAMES,
    InvalidPattern,
    distance_miles,
    is_area_code,
    parse_contains,
    parse_coordinate,
)
from pigeon.domain.quoted import shown
from pigeon.store import inventory as store
from pigeon.store.inventory import InventoryQuery

Row = dict[str, Any]

#: AvailablePhoneNumbers list resources -> inventory number_type (None: we stock none of them).
RESOURCE_TYPES: dict[str, str | None] = {
    "Local": "local",
    "TollFree": "toll_free",
    "Mobile": "mobile",
    "National": None,
    "Voip": None,
    "SharedCost": None,
    "MachineToMachine": None,
}
NANP = ("US", "CA")
MAX_DISTANCE = 500
DEFAULT_DISTANCE = 25
_EXCLUDES = {
    "ExcludeAllAddressRequired": ("any", "local", "foreign"),
    "ExcludeLocalAddressRequired": ("local",),
    "ExcludeForeignAddressRequired": ("foreign",),
}


def _flag(params: Mapping[str, str], name: str) -> bool | None:
    return read_flag(name, params.get(name))


def _area_prefix(params: Mapping[str, str], country: str) -> str | None:
    raw = params.get("AreaCode", "").strip()
    if not raw:
        return None
    if not is_area_code(raw):
        raise ApiError(21451, f"AreaCode {raw!r} is not a valid three-digit area code.")
    # Area codes apply to North American numbers only (Twilio ignores them elsewhere).
    return f"+1{raw}" if country in NANP else None


class _Nowhere(Exception):
    """A location filter given as a phone number whose location the store does not know:
    nothing can be in the same place."""


def build_query(
    country: str, number_type: str, params: Mapping[str, str], conn: Connection | None = None
) -> InventoryQuery | None:
    """An inventory query from AvailablePhoneNumbers parameters, or the ApiError they deserve.
    InRegion, InPostalCode and InLocality given a phone number (in E.164) mean that number's
    region, postal code or locality (Twilio), read from the store with `conn`; None when the
    store does not know it there (no number can be in the same place)."""
    contains = params.get("Contains", "")
    try:
        like = parse_contains(contains).like if contains else None
    except InvalidPattern as exc:
        raise ApiError(20422, f"Contains {contains!r}: {exc}") from None
    exclude = sorted({req for name, reqs in _EXCLUDES.items() if _flag(params, name) for req in reqs})

    def place(name: str, column: str) -> str | None:
        value = params.get(name, "").strip() or None
        e164 = numbers.to_e164(value) if value and value.startswith("+") else None
        if e164 is None or conn is None:
            return value
        known = store.place_of(conn, e164)
        resolved = known.get(column) if known else None
        if not resolved:
            raise _Nowhere
        return str(resolved)

    try:
        region = place("InRegion", "region")
        postal_code = place("InPostalCode", "postal_code")
        locality = place("InLocality", "locality")
    except _Nowhere:
        return None
    return InventoryQuery(
        iso_country=country,
        number_type=number_type,
        prefix=_area_prefix(params, country),
        digits_like=like,
        sms=_flag(params, "SmsEnabled"),
        mms=_flag(params, "MmsEnabled"),
        voice=_flag(params, "VoiceEnabled"),
        fax=_flag(params, "FaxEnabled"),
        exclude_address=exclude,
        region=region,
        postal_code=postal_code,
        locality=locality,
        rate_center=params.get("InRateCenter", "").strip() or None,
        lata=params.get("InLata", "").strip() or None,
    )


def _point(row: Mapping[str, Any]) -> tuple[float, float] | None:
    lat = parse_coordinate(row.get("latitude") or "", 90)
    lon = parse_coordinate(row.get("longitude") or "", 180)
    return (lat, lon) if lat is not None and lon is not None else None


def _near(conn: Connection, params: Mapping[str, str]) -> tuple[tuple[float, float] | None, float] | None:
    """The (point, radius in miles) of a NearLatLong or NearNumber search, if one was asked for;
    the point is None for a NearNumber whose location the inventory does not know."""
    # NearLatLong is read as given: " 37.7,-122.4" is refused like "3.77e1,-122.4".
    near_number, near_latlong = params.get("NearNumber", "").strip(), params.get("NearLatLong", "")
    if not near_number and not near_latlong:
        return None
    raw_distance = params.get("Distance") or str(DEFAULT_DISTANCE)
    distance = integers.whole_number(raw_distance)
    if distance is None or distance > MAX_DISTANCE:
        raise ApiError(
            20422, f"Distance must be a whole number of miles from 0 to {MAX_DISTANCE}, not {shown(raw_distance)}."
        )
    if near_latlong:
        lat_raw, _, lon_raw = near_latlong.partition(",")
        lat, lon = parse_coordinate(lat_raw, 90), parse_coordinate(lon_raw, 180)
        if lat is None or lon is None:
            raise ApiError(
                20422,
                f"NearLatLong must be 'latitude,longitude' in decimal degrees (such as 37.77,-122.42), "
                f"not {shown(near_latlong)}.",
            )
        return (lat, lon), float(distance)
    e164 = numbers.to_e164(near_number)
    if e164 is None:
        raise ApiError(20422, f"NearNumber {near_number!r} is not a valid phone number.")
    # A number for sale, or one an account holds (it kept its location when it was bought).
    known = store.place_of(conn, e164)
    return (_point(known) if known else None), float(distance)


def search(
    conn: Connection, country: str, resource: str, params: Mapping[str, str], *, offset: int, limit: int
) -> list[Row]:
    """Free numbers of `country` for one AvailablePhoneNumbers list resource (Local, TollFree...)."""
    number_type = RESOURCE_TYPES.get(resource)
    query = build_query(country, number_type or "", params, conn)
    near = _near(conn, params)
    if number_type is None or query is None:
        return []
    if near is None:
        return store.search(conn, query, offset=offset, limit=limit)
    centre, radius = near
    if centre is None:
        return []
    rows = [r for r in store.search(conn, query) if (p := _point(r)) and distance_miles(centre, p) <= radius]
    return rows[offset : offset + limit]


def serves_country(conn: Connection, country: str) -> bool:
    """Whether AvailablePhoneNumbers answers for `country` (upper case): one numbers are sold
    in, or one the inventory has numbers for (an operator may stock any country)."""
    return country in COUNTRY_NAMES or store.stocks_country(conn, country)


def countries(conn: Connection) -> dict[str, list[str]]:
    """Countries with free numbers -> the number types stocked there."""
    found: dict[str, list[str]] = {}
    for country, number_type in store.countries(conn):
        found.setdefault(country, []).append(number_type)
    return found


# -- buying -----------------------------------------------------------------------------------


def _take_by_area_code(conn: Connection, area_code: str, number_type: str | None) -> Row:
    if not is_area_code(area_code):
        raise ApiError(21451, f"AreaCode {area_code!r} is not a valid three-digit area code.")
    for country in NANP:
        query = InventoryQuery(iso_country=country, number_type=number_type or "local", prefix=f"+1{area_code}")
        for row in store.search(conn, query, limit=20):
            if store.take(conn, row["phone_number"]) is not None:
                return row
    raise ApiError(21452, f"No phone numbers are available in area code {area_code}.")


def _take_number(conn: Connection, phone_number: str, number_type: str | None) -> Row:
    e164 = numbers.to_e164(phone_number)
    if e164 is None:
        raise ApiError(21421, f"PhoneNumber {phone_number!r} is not a valid phone number.")
    row = store.get(conn, e164)
    if row is None or (number_type is not None and row["number_type"] != number_type) or store.owned(conn, [e164]):
        raise ApiError(21422, f"The phone number {e164} is not available.")
    if store.take(conn, e164) is None:
        raise ApiError(21422, f"The phone number {e164} is not available.")
    return row


def buy(
    conn: Connection,
    *,
    account_sid: str,
    now: datetime,
    phone_number: str | None = None,
    area_code: str | None = None,
    number_type: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Row:
    """Take a number out of the inventory and put it on the account (IncomingPhoneNumbers create).
    `number_type` restricts the purchase to one kind (the Local/TollFree/Mobile create paths)."""
    number_use.check_fallback(settings or {})
    if phone_number:
        row = _take_number(conn, phone_number, number_type)
    elif area_code:
        row = _take_by_area_code(conn, area_code, number_type)
    else:
        raise ApiError(21421, "PhoneNumber or AreaCode is required.")
    return number_use.provision(
        conn, account_sid=account_sid, phone_number=row["phone_number"], now=now, settings=settings, stocked=row
    )


# -- the built-in sample ----------------------------------------------------------------------


def seed_default(conn: Connection, now: datetime) -> int:
    """Load the built-in sample inventory (inventory_seed.csv: fictional US, CA, GB and DE
    numbers). Numbers already in the inventory or on an account are left alone, so calling
    it again is harmless. Returns how many numbers it added."""
    text = resources.files("pigeon.app").joinpath("inventory_seed.csv").read_text(encoding="utf-8")
    return len(import_rows(conn, parse_csv(text, now), replace=False).added)
