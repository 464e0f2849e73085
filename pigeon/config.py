"""Typed settings, read once by the entry points from the environment and an optional TOML file.

Precedence: environment variable > file (``PIGEON_CONFIG``) > default. Nothing below the
entry points reads the environment; they receive a `Settings` value.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from pigeon.carriers.config import load_carriers
from pigeon.carriers.simulator import scenarios_from_section
from pigeon.domain.pacing import pacing_policy
from pigeon.domain.pricing import PriceTable, price_table

T = TypeVar("T")


class ConfigError(Exception):
    """The configuration is invalid."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = ""
    #: A PostgreSQL streaming replica of database_url, for reads of history (store/replica.py).
    database_replica_url: str = ""
    #: Run the background workers (dispatcher, webhooks, scheduler) inside `pigeon serve`.
    run_workers: bool = True
    #: Processes serving the API on the one port (the first also runs the workers).
    api_processes: int = 1
    #: Group commit: the most rows in one accept batch, and the longest a request waits for it.
    accept_batch_max: int = 200
    accept_batch_wait_ms: float = 2.0
    #: Public base URL of this server, used where Twilio emits absolute URLs (v1 paging).
    public_url: str = ""
    log_level: str = "info"
    #: Seconds that `pigeon serve`, on SIGTERM, waits for requests in progress to finish
    #: before it gives up on them and stops (its workers stop after, as always): a client
    #: that stalls mid-request would otherwise hold the process up for ever.
    shutdown_grace_seconds: int = 30
    #: Days the request log keeps a request (0: forever); idempotency keys always expire after 24 h.
    request_log_days: float = 30.0
    #: Reverse proxies in front of the API that append to X-Forwarded-For (0: ignore the header).
    proxy_hops: int = 0
    #: Requests one account may have in progress at once in an API process; past it, 429 with
    #: Twilio's 20429 (0: no limit). A client pool of a few dozen connections never meets it.
    api_concurrency_per_account: int = 250
    #: Webhook requests (status callbacks, inbound, Event Streams) a worker process has in
    #: flight at most, and deliveries it claims ahead of a free request slot.
    webhook_concurrency: int = 100
    webhook_prefetch: int = 100
    #: Requests one slow receiver may have in flight in a worker process (0: a quarter of
    #: `webhook_concurrency`, at least eight); `webhook_concurrency` lets every receiver use
    #: every slot (pigeon/workers/receivers.py).
    webhook_receiver_share: int = 0
    #: Networks no webhook, status callback or doctor's test request may reach, comma-separated
    #: CIDR blocks; by default the link-local ones, where clouds serve their instance
    #: credentials (169.254.169.254), and the two metadata addresses outside them (AWS's over
    #: IPv6, Alibaba Cloud's). "none" for none.
    webhook_denied_networks: str = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32"
    #: Days finished webhook deliveries and their attempts are kept (0: forever); the message
    #: timeline keeps each callback's outcome regardless (pigeon/store/webhook_history.py).
    webhook_history_days: float = 30.0
    #: Days a message is kept once at rest, with its timeline, media, carrier ids and webhook
    #: deliveries (0: forever; else at least 1, as idempotency keys refer to messages for a
    #: day); the error log (alerts, unmatched receipts, inbound messages for unknown numbers)
    #: keeps its rows for `error_log_days` (pigeon/store/retention.py).
    message_days: float = 0.0
    error_log_days: float = 30.0
    #: Seconds between evaluations of the usage triggers in each worker process.
    usage_trigger_seconds: float = 15.0
    #: Require Basic auth for media content URLs (…/Media/{ME…} without .json). By default
    #: they answer without credentials, as Twilio's do, the unguessable SIDs being the key.
    media_basic_auth: bool = False
    #: The raw [[carriers]], [[routes]] and [simulator] tables of the config file, for bootstrap.
    file_tables: Mapping[str, Any] = field(default_factory=dict)

    @property
    def listen_url(self) -> str:
        """The address the API listens on, as a URL (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or self.listen_url


_ENV = {
    "host": "PIGEON_HOST",
    "port": "PIGEON_PORT",
    "database_url": "PIGEON_DATABASE_URL",
    "database_replica_url": "PIGEON_DATABASE_REPLICA_URL",
    "run_workers": "PIGEON_RUN_WORKERS",
    "api_processes": "PIGEON_API_PROCESSES",
    "accept_batch_max": "PIGEON_ACCEPT_BATCH_MAX",
    "accept_batch_wait_ms": "PIGEON_ACCEPT_BATCH_WAIT_MS",
    "public_url": "PIGEON_PUBLIC_URL",
    "log_level": "PIGEON_LOG_LEVEL",
    "shutdown_grace_seconds": "PIGEON_SHUTDOWN_GRACE_SECONDS",
    "request_log_days": "PIGEON_REQUEST_LOG_DAYS",
    "proxy_hops": "PIGEON_PROXY_HOPS",
    "api_concurrency_per_account": "PIGEON_API_CONCURRENCY_PER_ACCOUNT",
    "webhook_concurrency": "PIGEON_WEBHOOK_CONCURRENCY",
    "webhook_prefetch": "PIGEON_WEBHOOK_PREFETCH",
    "webhook_receiver_share": "PIGEON_WEBHOOK_RECEIVER_SHARE",
    "webhook_denied_networks": "PIGEON_WEBHOOK_DENIED_NETWORKS",
    "webhook_history_days": "PIGEON_WEBHOOK_HISTORY_DAYS",
    "message_days": "PIGEON_MESSAGE_DAYS",
    "error_log_days": "PIGEON_ERROR_LOG_DAYS",
    "usage_trigger_seconds": "PIGEON_USAGE_TRIGGER_SECONDS",
    "media_basic_auth": "PIGEON_MEDIA_BASIC_AUTH",
}


def denied_networks(text: str) -> list[str]:
    """The CIDR blocks of PIGEON_WEBHOOK_DENIED_NETWORKS ("none" for none: an empty variable
    means the default, as for every setting)."""
    if text.strip().lower() == "none":
        return []
    return [n.strip() for n in text.split(",") if n.strip()]


def default_database_url(cwd: Path | None = None) -> str:
    return f"sqlite:///{(cwd or Path.cwd()) / 'pigeon.db'}"


def _coerce(name: str, raw: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: cannot read {raw!r} as {kind.__name__}") from exc


#: The tables of the configuration file besides [pigeon], each read by the composition root
#: (pigeon.bootstrap: carriers and routes by pigeon.carriers.config, the others by
#: `_file_table`). A table that is not one of them is a typo, refused rather than ignored.
FILE_TABLES = ("carriers", "routes", "simulator", "pacing", "prices")
#: Those written [[carriers]]: pigeon.carriers.config checks that they are.
ARRAYS_OF_TABLES = ("carriers", "routes")


def _read_file(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The [pigeon] settings and the other tables of the configuration file. A key or a table
    it does not know is refused by name, as [[carriers]] refuses a key: a misspelt one
    (`mesage_days`, `[pacng]`) would otherwise leave the default in force without a word."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"PIGEON_CONFIG={path}: {exc}") from exc
    section = data.pop("pigeon", {})
    if not isinstance(section, dict):
        raise ConfigError("PIGEON_CONFIG: [pigeon] is not a table")
    for key in section:
        if key not in _ENV:
            raise ConfigError(f"PIGEON_CONFIG: [pigeon] has no setting {key!r}; the settings are {', '.join(_ENV)}")
    for name, table in data.items():
        if name not in FILE_TABLES:
            raise ConfigError(
                f"PIGEON_CONFIG: no table [{name}]; the tables are [pigeon], {', '.join(f'[{t}]' for t in FILE_TABLES)}"
            )
        if name not in ARRAYS_OF_TABLES and not isinstance(table, dict):
            raise ConfigError(f"PIGEON_CONFIG: [{name}] is not a table")
    return dict(section), data


def _refused_as_config_error(read: Callable[[], T]) -> T:
    try:
        return read()
    except (ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"PIGEON_CONFIG: {exc}") from exc


def file_table(tables: Mapping[str, Any], name: str, read: Callable[[Any], T]) -> T:
    """`read` of the configuration file's table `name` (an empty one when the file has none),
    its refusal as a ConfigError."""
    return _refused_as_config_error(lambda: read(tables.get(name, {})))


def prices_of(section: Any) -> PriceTable:
    """The [prices] table, or the built-in prices when the file has none."""
    return price_table(section) if section else PriceTable()


def check_file_tables(tables: Mapping[str, Any]) -> None:
    """ConfigError for a table of the configuration file that cannot be used, read here as the
    composition root will read it: `load_settings` calls it, so every command refuses a bad
    file in one line before it starts anything, rather than some of them working on with it
    and the server failing later."""
    file_table(tables, "pacing", pacing_policy)
    file_table(tables, "prices", prices_of)
    file_table(tables, "simulator", scenarios_from_section)
    _refused_as_config_error(lambda: load_carriers(tables))  # [[carriers]] and [[routes]] together


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build Settings from `environ` (default: os.environ), the PIGEON_CONFIG file and overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    # Where each value came from, as the operator wrote it: an error names what they set.
    names = dict(_ENV)
    config_path = env.get("PIGEON_CONFIG")
    if config_path:
        values, tables = _read_file(config_path)
        names.update({key: f"PIGEON_CONFIG: [pigeon] {key}" for key in values})
    for key, var in _ENV.items():
        if var in env and env[var] != "":
            values[key] = env[var]
            names[key] = var
    for key, value in overrides.items():
        if value is not None:  # the entry points' command-line flags (`--api-processes`)
            values[key] = value
            names[key] = "--" + key.replace("_", "-")
    kinds = {f.name: f.type for f in fields(Settings)}
    typed: dict[str, Any] = {}
    for key, value in values.items():
        kind = {"str": str, "int": int, "bool": bool, "float": float}.get(str(kinds[key]), str)
        typed[key] = _coerce(names.get(key, key), value, kind)
    if not typed.get("database_url"):
        typed["database_url"] = default_database_url()
    _check(typed, names)
    check_file_tables(tables)
    typed["file_tables"] = tables
    return Settings(**typed)


LOG_LEVELS = ("debug", "info", "warning", "error")


def _check(typed: dict[str, Any], names: Mapping[str, str]) -> None:
    """ConfigError for values that are of the right type but cannot be used, each named as
    `names` says the operator set it (a variable, a key of the file, a flag)."""
    if "log_level" in typed:
        # Read in any case, as logging does; refused here rather than by logging's own
        # ValueError, a traceback, once the process is half started.
        typed["log_level"] = typed["log_level"].strip().lower()
        if typed["log_level"] not in LOG_LEVELS:
            raise ConfigError(f"{names['log_level']}: {typed['log_level']!r} is not one of {', '.join(LOG_LEVELS)}")
    if "port" in typed and not 0 < typed["port"] < 65536:
        raise ConfigError(f"{names['port']}: {typed['port']} is not a port (1 to 65535)")
    if typed.get("public_url"):
        typed["public_url"] = _public_url(names["public_url"], typed["public_url"])
    _check_float_ranges(typed, names)
    for key, least in (
        ("api_processes", 1),
        ("api_concurrency_per_account", 0),
        ("webhook_concurrency", 1),
        ("webhook_prefetch", 0),
        ("webhook_receiver_share", 0),
        ("webhook_history_days", 0),
        ("error_log_days", 0),
        ("message_days", 0),
        ("usage_trigger_seconds", 0.1),
        ("request_log_days", 0),
        ("proxy_hops", 0),
        ("shutdown_grace_seconds", 0),
    ):
        if key in typed and typed[key] < least:
            raise ConfigError(f"{names[key]}: {typed[key]} is less than {least}")
    if 0 < typed.get("message_days", 0) < 1:
        raise ConfigError(
            f"{names['message_days']}: {typed['message_days']} is less than a day, and an Idempotency-Key"
            " refers to its message for a day (0 keeps messages for ever)"
        )
    for network in denied_networks(typed.get("webhook_denied_networks", Settings.webhook_denied_networks)):
        try:
            ipaddress.ip_network(network)
        except ValueError as exc:
            raise ConfigError(f"{names['webhook_denied_networks']}: {exc}") from exc
    if typed.get("database_replica_url") and not str(typed["database_url"]).startswith("postgresql"):
        raise ConfigError(
            f"{names['database_replica_url']}: a read replica needs PIGEON_DATABASE_URL to be PostgreSQL"
            " (SQLite's readers never wait for its writer, and need none)"
        )


#: The most each setting in days or seconds may be: a value past it is a slip (a unit, a
#: digit too many), and past Python's timedelta (999,999,999 days) it crashed the worker at
#: start (OverflowError building the retention rules). 36,500 days is a hundred years; 0
#: keeps for ever.
MOST_DAYS = 36_500
MOST = {
    "request_log_days": (MOST_DAYS, "days (a hundred years; 0 keeps for ever)"),
    "webhook_history_days": (MOST_DAYS, "days (a hundred years; 0 keeps for ever)"),
    "message_days": (MOST_DAYS, "days (a hundred years; 0 keeps for ever)"),
    "error_log_days": (MOST_DAYS, "days (a hundred years; 0 keeps for ever)"),
    "usage_trigger_seconds": (86_400, "seconds (a day)"),
}


def _check_float_ranges(typed: Mapping[str, Any], names: Mapping[str, str]) -> None:
    """ConfigError for a number setting that is not finite (`nan` passed every comparison and
    silently kept history for ever; `inf` crashed the worker at start) or past its most."""
    for key, value in typed.items():
        if not isinstance(value, float):
            continue
        if not math.isfinite(value):
            raise ConfigError(f"{names[key]}: {value} is not a finite number")
        if key in MOST and value > MOST[key][0]:
            most, unit = MOST[key]
            raise ConfigError(f"{names[key]}: {value} is more than {most} {unit}")


def _public_url(name: str, url: str) -> str:
    """PIGEON_PUBLIC_URL, checked: clients are given links under it (media, v1 paging) and the
    banner's examples, so it must be an absolute http(s) URL, to which a path is appended.
    `sms.example.com` alone would be taken for a path, and every such link would go nowhere."""
    url = url.strip()
    problem = None
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        problem = str(exc)
    else:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problem = "it must start with http:// or https:// and name a host, e.g. https://sms.example.com"
        elif parts.query or parts.fragment or url.endswith(("?", "#")):
            problem = "it must have no query (?…) or fragment (#…): Pigeon appends paths to it"
        elif parts.username is not None or parts.password is not None:
            problem = "it must not hold credentials: every link Pigeon gives out would show them"
    if problem is not None:
        raise ConfigError(f"{name}: {url!r} is not a URL clients can reach this server at: {problem}")
    return url
