"""Reading the carrier configuration's tables: `TableReader`, typed access to one table with
errors that say where, and the carrier keys whose values are tables or lists or come in
groups (addresses, TLS, TON/NPI, status_map, receipt_errors). `pigeon.carriers.config`
assembles a carrier from them; its docstring describes every key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pigeon.carriers.smpp_errors import Action, StatusRule
from pigeon.carriers.smpp_tls import TlsSettings, TlsSetupError, client_context
from pigeon.domain import storable
from pigeon.domain.error_catalogue import explain
from pigeon.domain.receipts import receipt_errors_key

__all__ = [
    "CarrierConfigError",
    "SourceTonNpi",
    "TableReader",
    "TonNpi",
    "backup_hosts",
    "receipt_errors",
    "source_ton_npi",
    "status_map",
    "tls",
    "ton_npi",
]

# SMPP 3.4 §5.2.5 and §5.2.6: the values an SMSC understands.
_TONS = frozenset({0, 1, 2, 3, 4, 5, 6})
_NPIS = frozenset({0, 1, 3, 4, 6, 8, 9, 10, 14, 18})


def _secret(key: str) -> bool:
    """Keys whose values never appear in an error message."""
    return key.endswith("password")


class CarrierConfigError(ValueError):
    """The carriers or routes in the configuration file are invalid."""


@dataclass(frozen=True)
class TonNpi:
    ton: int
    npi: int


@dataclass(frozen=True)
class SourceTonNpi:
    """TON/NPI of the source address, by the kind of sender."""

    international: TonNpi = TonNpi(1, 1)  # "+" E.164 numbers (sent without the "+")
    short_code: TonNpi = TonNpi(3, 0)  # 3-8 digits
    alphanumeric: TonNpi = TonNpi(5, 0)  # sender IDs such as "Pigeon"


_T = TypeVar("_T")


class TableReader:
    """Typed access to one table, with errors that say where; tracks which keys were used."""

    def __init__(self, where: str, table: Mapping[str, Any]) -> None:
        self.where = where
        self.table = table
        self.used: set[str] = set()

    def fail(self, key: str, problem: str) -> CarrierConfigError:
        return CarrierConfigError(f"{self.where}: {key} {problem}")

    def _get(self, key: str, kinds: tuple[type, ...], default: _T | None, what: str) -> Any:
        self.used.add(key)
        if key not in self.table:
            if default is None:
                raise self.fail(key, "is required")
            return default
        value = self.table[key]
        # bool is an int in Python; a TOML `true` is never a number here.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.fail(key, f"must be {what}" if _secret(key) else f"must be {what}, got {value!r}")
        return value

    def text(self, key: str, default: str | None = None, *, max_len: int | None = None, ascii_only: bool = True) -> str:
        value = cast(str, self._get(key, (str,), default, "a string"))
        if max_len is not None and len(value) > max_len:
            shown = "" if _secret(key) else f" ({value!r})"
            raise self.fail(key, f"must be at most {max_len} characters{shown}")
        if ascii_only and not value.isascii():
            raise self.fail(key, "must be ASCII" + ("" if _secret(key) else f", got {value!r}"))
        # SMPP's C-octet strings end at a NUL, and no file name holds one.
        if "\0" in value:
            raise self.fail(key, "must not contain a NUL character")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int | None = None) -> int:
        value = cast(int, self._get(key, (int,), default, "an integer"))
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(key, f"must be {bound}, got {value}")
        return value

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        value = float(self._get(key, (int, float), default, "a number"))
        if value < 0 or (positive and value == 0):
            raise self.fail(key, f"must be {'> 0' if positive else '>= 0'}, got {value}")
        return value

    def names(self, key: str) -> list[str]:
        value = self._get(key, (list,), None, "a list of carrier names")
        if not value or not all(isinstance(item, str) for item in value):
            raise self.fail(key, f"must be a non-empty list of carrier names, got {value!r}")
        return cast(list[str], value)

    def flag(self, key: str, default: bool) -> bool:
        return cast(bool, self._get(key, (bool,), default, "true or false"))

    def choice(self, key: str, default: str | None, choices: Sequence[str]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value

    def check_unknown(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise CarrierConfigError(f"{self.where}: unknown key(s) {', '.join(unknown)}")


_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+))(?::(?P<port>[0-9]{1,5}))?")


def backup_hosts(r: TableReader, *, default_port: int) -> tuple[tuple[str, int], ...]:
    """``backup_hosts = ["smpp2.acme.example", "203.0.113.7:2776", "[2001:db8::7]:2775"]``."""
    raw = r.table.get("backup_hosts", [])
    r.used.add("backup_hosts")
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise r.fail("backup_hosts", f'must be a list of "host" or "host:port", got {raw!r}')
    addresses: list[tuple[str, int]] = []
    for item in raw:
        found = _HOST_PORT.fullmatch(item) if item.isascii() else None
        port = int(found["port"]) if found and found["port"] else default_port
        if found is None or not 1 <= port <= 65535:
            raise r.fail("backup_hosts", f'must be a list of "host" or "host:port" (port 1..65535), got {item!r}')
        address = (found["v6"] or found["host"], port)
        if address in addresses or address == (r.table.get("host"), default_port):
            raise r.fail("backup_hosts", f"names {item!r} twice (host included)")
        addresses.append(address)
    return tuple(addresses)


_TLS_KEYS = ("tls_ca_file", "tls_server_name", "tls_cert_file", "tls_key_file", "tls_key_password")


def tls(r: TableReader) -> TlsSettings | None:
    """The tls_* keys, checked by building a context from them once (the files must be readable
    and hold what they should)."""
    on = r.flag("tls", False)
    # File names and a passphrase need not be ASCII (the SMPP fields must).
    values = {key: r.text(key, "", ascii_only=key == "tls_server_name") for key in _TLS_KEYS}
    if not on:
        given = [key for key, value in values.items() if value]
        if given:
            raise r.fail(given[0], "is set but tls is false: set tls = true to use SMPP over TLS")
        return None
    if (values["tls_key_file"] or values["tls_key_password"]) and not values["tls_cert_file"]:
        key = "tls_key_file" if values["tls_key_file"] else "tls_key_password"
        raise r.fail(key, "is set without tls_cert_file")
    tls = TlsSettings(
        ca_file=values["tls_ca_file"],
        server_name=values["tls_server_name"],
        cert_file=values["tls_cert_file"],
        key_file=values["tls_key_file"],
        key_password=values["tls_key_password"],
    )
    try:
        client_context(tls)
    except TlsSetupError as exc:
        raise r.fail(exc.key, exc.problem) from None
    return tls


def ton_npi(r: TableReader, key: str, value: object, default: TonNpi) -> TonNpi:
    r.used.add(key.split(".")[0])
    if value is None:
        return default
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise r.fail(key, f"must be [ton, npi], got {value!r}")
    ton, npi = value
    if ton not in _TONS:
        raise r.fail(key, f"has an unknown TON {ton} (SMPP 3.4 §5.2.5: {sorted(_TONS)})")
    if npi not in _NPIS:
        raise r.fail(key, f"has an unknown NPI {npi} (SMPP 3.4 §5.2.6: {sorted(_NPIS)})")
    return TonNpi(ton, npi)


def source_ton_npi(r: TableReader) -> SourceTonNpi:
    raw = r.table.get("source_ton_npi", {})
    r.used.add("source_ton_npi")
    if not isinstance(raw, dict):
        raise r.fail("source_ton_npi", "must be a table such as { international = [1, 1] }")
    known = {"international", "short_code", "alphanumeric"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise r.fail("source_ton_npi", f"has unknown sender kind(s) {', '.join(unknown)}; known: {sorted(known)}")
    d = SourceTonNpi()
    return SourceTonNpi(
        international=ton_npi(r, "source_ton_npi.international", raw.get("international"), d.international),
        short_code=ton_npi(r, "source_ton_npi.short_code", raw.get("short_code"), d.short_code),
        alphanumeric=ton_npi(r, "source_ton_npi.alphanumeric", raw.get("alphanumeric"), d.alphanumeric),
    )


def status_map(r: TableReader) -> Mapping[int, StatusRule]:
    raw = r.table.get("status_map", {})
    r.used.add("status_map")
    if not isinstance(raw, dict):
        raise r.fail(
            "status_map", 'must be a table such as { "0x00000401" = { action = "permanent", error_code = 30007 } }'
        )
    rules: dict[int, StatusRule] = {}
    for key, value in raw.items():
        where = f"status_map[{key!r}]"
        try:
            status = int(key, 0)
        except ValueError:
            raise r.fail(where, 'must be keyed by a command_status such as "0x00000401" or "1025"') from None
        if not 0 < status <= 0xFFFFFFFF:
            raise r.fail(where, "must be a non-zero 32-bit command_status")
        if not isinstance(value, dict):
            raise r.fail(where, "must be a table { action = ..., error_code = ... }")
        sub = TableReader(f"{r.where}: {where}", value)
        action = Action(sub.choice("action", None, [a.value for a in Action]))
        error_code = sub.integer(
            "error_code", 30001 if action is Action.THROTTLE else 30008, minimum=10000, maximum=99999
        )
        sub.check_unknown()
        rules[status] = StatusRule(action, error_code)
    return rules


def receipt_errors(r: TableReader) -> Mapping[str, int]:
    raw = r.table.get("receipt_errors", {})
    r.used.add("receipt_errors")
    if not isinstance(raw, dict):
        raise r.fail("receipt_errors", 'must be a table such as { "001" = 30005, "027" = 30003 }')
    table: dict[str, int] = {}
    for err, code in raw.items():
        where = f"receipt_errors[{err!r}]"
        key = receipt_errors_key(err) if err.isascii() else None
        if key is None or len(key.rpartition(":")[2]) > storable.RECEIPT_FIELD_LENGTH:
            raise r.fail(
                where,
                "must be keyed by an err value as receipts carry it (ASCII, at most"
                f' {storable.RECEIPT_FIELD_LENGTH} characters), or by a receipt state and one ("UNDELIV:001")',
            )
        info = explain(code) if type(code) is int else None
        if info is None or info.kind != "delivery":
            raise r.fail(
                where,
                f"must be a delivery error code that `pigeon errors` explains (30003, 30005, 30006, 30007 …), got {code!r}",
            )
        if key in table:
            raise r.fail(where, f"is the same err value as another key ({key})")
        table[key] = code
    return table
