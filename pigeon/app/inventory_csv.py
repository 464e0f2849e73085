"""Loading the inventory of numbers free to buy from a CSV file (`pigeon inventory import`).

The file has a header row. Columns, in any order (only `phone_number` is required):

    phone_number          E.164 ("+14155550100"); national digits are read in iso_country
    iso_country           ISO 3166 alpha-2 ("US"); default: the country of the number
    number_type           local | toll_free | mobile; default: toll_free or mobile when the
                          numbering plan says so, else local
    locality              city, e.g. "San Francisco"
    region                state or province, e.g. "CA"
    postal_code           e.g. "94103"
    rate_center           e.g. "SNFC CA"
    lata                  e.g. "722"
    latitude, longitude   decimal degrees, e.g. 37.77, -122.41
    sms, mms, voice, fax  capabilities: true/false, yes/no, 1/0; default true (fax: false)
    address_requirements  none | any | local | foreign; default none

A file with any bad row changes nothing: every problem is reported with its line number.
Numbers already in the inventory are updated; numbers an account holds are skipped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import numbers, storable
from pigeon.domain.errors import PigeonError
from pigeon.domain.inventory import (
    ADDRESS_REQUIREMENTS,
    NUMBER_TYPES,
    friendly_name,
    parse_coordinate,
    parse_flag,
)
from pigeon.store import inventory as store

Row = dict[str, Any]

COLUMNS = (
    "phone_number",
    "iso_country",
    "number_type",
    "locality",
    "region",
    "postal_code",
    "rate_center",
    "lata",
    "latitude",
    "longitude",
    "sms",
    "mms",
    "voice",
    "fax",
    "address_requirements",
)
_TEXT_LIMITS = {"locality": 64, "region": 64, "postal_code": 16, "rate_center": 64, "lata": 8}
_FLAGS = {
    "sms": ("sms_capable", True),
    "mms": ("mms_capable", True),
    "voice": ("voice_capable", True),
    "fax": ("fax_capable", False),
}


class InventoryFileError(PigeonError):
    """The inventory file has problems; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the inventory file; nothing was imported.")
        self.problems = problems


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped_owned: list[str] = field(default_factory=list)


def _number(raw: Mapping[str, str], problems: list[str]) -> tuple[str | None, str | None]:
    given = (raw.get("phone_number") or "").strip()
    country = (raw.get("iso_country") or "").strip().upper() or None
    if country is not None and (len(country) != 2 or not country.isalpha()):
        problems.append(f"iso_country {country!r} is not a two-letter country code")
        return None, None
    if not given:
        problems.append("phone_number is empty")
        return None, None
    if numbers.is_short_code(given) and not given.startswith("+") and country is None:
        problems.append(f"{given} looks like a short code; provision short codes with `pigeon numbers add`")
        return None, None
    e164 = numbers.to_e164(given, country)
    if e164 is None:
        problems.append(f"phone_number {given!r} is not a valid phone number")
        return None, None
    country = country or numbers.region_of(e164)
    if country is None:
        problems.append(f"the country of {e164} is unknown; give iso_country")
    return e164, country


def _number_type(raw: Mapping[str, str], e164: str, problems: list[str]) -> str:
    given = (raw.get("number_type") or "").strip().lower().replace("-", "_").replace("tollfree", "toll_free")
    if not given:
        kind = numbers.number_type(e164)
        return kind if kind in ("toll_free", "mobile") else "local"
    if given not in NUMBER_TYPES:
        problems.append(f"number_type {given!r} is not one of {', '.join(NUMBER_TYPES)}")
    return given


def _details(raw: Mapping[str, str], problems: list[str]) -> Row:
    values: Row = {}
    for column, limit in _TEXT_LIMITS.items():
        text = (raw.get(column) or "").strip()
        if len(text) > limit:
            problems.append(f"{column} is longer than {limit} characters")
        values[column] = text or None
    for column, bound in (("latitude", 90.0), ("longitude", 180.0)):
        text = (raw.get(column) or "").strip()
        if text and parse_coordinate(text, bound) is None:
            problems.append(f"{column} {text!r} is not a number between -{bound:g} and {bound:g}")
        values[column] = text or None
    for column, (target, default) in _FLAGS.items():
        text = (raw.get(column) or "").strip()
        flag = parse_flag(text) if text else default
        if flag is None:
            problems.append(f"{column} {text!r} is not true or false")
        values[target] = bool(flag)
    requirement = (raw.get("address_requirements") or "").strip().lower() or "none"
    if requirement not in ADDRESS_REQUIREMENTS:
        problems.append(f"address_requirements {requirement!r} is not one of {', '.join(ADDRESS_REQUIREMENTS)}")
    values["address_requirements"] = requirement
    return values


def parse_row(raw: Mapping[str, str], now: datetime) -> tuple[Row | None, list[str]]:
    """One CSV record as an inventory row, or the problems that keep it out."""
    # No store keeps NUL the same way (PostgreSQL refuses it, SQLite keeps it): refused here.
    held = [k for k, v in raw.items() if isinstance(v, str) and storable.NUL in v]
    if held:
        return None, [f"{name} holds a NUL character" for name in held]
    problems: list[str] = []
    e164, country = _number(raw, problems)
    if e164 is None:
        return None, problems
    row: Row = {
        "phone_number": e164,
        "iso_country": country,
        "number_type": _number_type(raw, e164, problems),
        "friendly_name": friendly_name(e164),
        **_details(raw, problems),
        "date_added": now,
    }
    return (None if problems else row), problems


def parse_csv(text: str, now: datetime) -> list[Row]:
    """Every row of an inventory file, or InventoryFileError listing every problem."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if "phone_number" not in header:
        raise InventoryFileError(["line 1: the header must name a phone_number column"])
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InventoryFileError([f"line 1: unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}"])
    reader.fieldnames = header
    rows: list[Row] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        if None in record:
            problems.append(f"line {line}: more fields than columns in the header")
            continue
        row, row_problems = parse_row(record, now)
        problems += [f"line {line}: {p}" for p in row_problems]
        if row is None:
            continue
        if row["phone_number"] in seen:
            problems.append(f"line {line}: {row['phone_number']} is also on line {seen[row['phone_number']]}")
            continue
        seen[row["phone_number"]] = line
        rows.append(row)
    if problems:
        raise InventoryFileError(problems)
    return rows


def import_rows(conn: Connection, rows: Iterable[Row], *, replace: bool = True) -> ImportReport:
    """Put parsed rows into the inventory. With `replace=False` numbers already there are left
    as they are (the built-in sample uses that, so it never undoes an operator's changes)."""
    rows = list(rows)
    report = ImportReport()
    held = store.owned(conn, [r["phone_number"] for r in rows])
    for row in rows:
        number = row["phone_number"]
        if number in held:
            report.skipped_owned.append(number)
            continue
        if not replace and store.get(conn, number) is not None:
            continue
        (report.added if store.put(conn, row) else report.updated).append(number)
    return report


def import_csv(conn: Connection, text: str, now: datetime) -> ImportReport:
    return import_rows(conn, parse_csv(text, now))
