"""Settings: environment over file over defaults, typed once at the edge."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pigeon import bootstrap
from pigeon.app.retention import Rule
from pigeon.app.retention import rules as retention_rules
from pigeon.config import ConfigError, Settings, denied_networks, load_settings


def test_defaults_and_environment(tmp_path: Path) -> None:
    s = load_settings({})
    assert (s.host, s.port, s.request_log_days, s.proxy_hops) == ("127.0.0.1", 8080, 30.0, 0)
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("pigeon.db")
    s = load_settings({"PIGEON_PORT": "9090", "PIGEON_REQUEST_LOG_DAYS": "7", "PIGEON_RUN_WORKERS": "false"})
    assert (s.port, s.request_log_days, s.run_workers) == (9090, 7.0, False)
    s = load_settings({"PIGEON_WEBHOOK_CONCURRENCY": "20", "PIGEON_WEBHOOK_PREFETCH": "0"})
    assert (s.webhook_concurrency, s.webhook_prefetch, s.webhook_receiver_share) == (20, 0, 0)
    assert load_settings({"PIGEON_WEBHOOK_RECEIVER_SHARE": "100"}).webhook_receiver_share == 100
    assert load_settings({}).webhook_history_days == 30.0
    assert load_settings({"PIGEON_WEBHOOK_HISTORY_DAYS": "0"}).webhook_history_days == 0.0  # forever
    assert (s.message_days, s.error_log_days) == (0.0, 30.0)  # messages kept for ever unless asked
    s = load_settings({"PIGEON_MESSAGE_DAYS": "400", "PIGEON_ERROR_LOG_DAYS": "0"})
    assert (s.message_days, s.error_log_days) == (400.0, 0.0)
    assert load_settings({}).api_concurrency_per_account == 250
    # where clouds serve instance credentials: link-local, AWS's IPv6 address, Alibaba Cloud's
    default = denied_networks(load_settings({}).webhook_denied_networks)
    assert default == ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32"]
    assert denied_networks(load_settings({"PIGEON_WEBHOOK_DENIED_NETWORKS": "none"}).webhook_denied_networks) == []
    assert load_settings({"PIGEON_API_CONCURRENCY_PER_ACCOUNT": "0"}).api_concurrency_per_account == 0  # no limit
    # Media content URLs are public unless the operator asks for credentials, as on Twilio.
    assert load_settings({}).media_basic_auth is False
    assert load_settings({"PIGEON_MEDIA_BASIC_AUTH": "true"}).media_basic_auth is True


def test_file_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "pigeon.toml"
    path.write_text(
        '[pigeon]\nport = 7000\nhost = "0.0.0.0"\n[[simulator.scenarios]]\nsuffix = "0110"\noutcome = "failed"\n'
    )
    s = load_settings({"PIGEON_CONFIG": str(path), "PIGEON_PORT": "7001"})
    assert (s.host, s.port) == ("0.0.0.0", 7001)
    assert s.file_tables["simulator"]["scenarios"][0]["suffix"] == "0110"


def test_bad_values_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PIGEON_PORT"):
        load_settings({"PIGEON_PORT": "eighty"})
    with pytest.raises(ConfigError, match="PIGEON_WEBHOOK_CONCURRENCY: 0 is less than 1"):
        load_settings({"PIGEON_WEBHOOK_CONCURRENCY": "0"})
    with pytest.raises(ConfigError, match="PIGEON_WEBHOOK_PREFETCH: -1 is less than 0"):
        load_settings({"PIGEON_WEBHOOK_PREFETCH": "-1"})
    with pytest.raises(ConfigError, match=r"PIGEON_WEBHOOK_HISTORY_DAYS: -1\.0 is less than 0"):
        load_settings({"PIGEON_WEBHOOK_HISTORY_DAYS": "-1"})
    with pytest.raises(ConfigError, match="PIGEON_CONFIG"):
        load_settings({"PIGEON_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="PIGEON_MEDIA_BASIC_AUTH"):
        load_settings({"PIGEON_MEDIA_BASIC_AUTH": "sometimes"})
    with pytest.raises(ConfigError, match=r"PIGEON_WEBHOOK_DENIED_NETWORKS: .*10\.0\.0\.300"):
        load_settings({"PIGEON_WEBHOOK_DENIED_NETWORKS": "127.0.0.0/8, 10.0.0.300/32"})
    with pytest.raises(ConfigError, match="PIGEON_API_CONCURRENCY_PER_ACCOUNT: -1 is less than 0"):
        load_settings({"PIGEON_API_CONCURRENCY_PER_ACCOUNT": "-1"})
    with pytest.raises(ConfigError, match=r"PIGEON_MESSAGE_DAYS: 0\.5 is less than a day"):
        load_settings({"PIGEON_MESSAGE_DAYS": "0.5"})
    with pytest.raises(ConfigError, match=r"PIGEON_ERROR_LOG_DAYS: -2\.0 is less than 0"):
        load_settings({"PIGEON_ERROR_LOG_DAYS": "-2"})
    with pytest.raises(ConfigError, match="a read replica needs PIGEON_DATABASE_URL to be PostgreSQL"):
        load_settings({"PIGEON_DATABASE_REPLICA_URL": "postgresql://replica/pigeon"})  # SQLite by default
    pg = load_settings(
        {
            "PIGEON_DATABASE_URL": "postgresql://primary/pigeon",
            "PIGEON_DATABASE_REPLICA_URL": "postgresql://replica/pigeon",
        }
    )
    assert pg.database_replica_url == "postgresql://replica/pigeon"


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ('[prices.US]\nlong_code = "abc"\n', "PIGEON_CONFIG: [prices.US] long_code = 'abc'"),
        ("[pacing]\nlong_code = 0\n", "PIGEON_CONFIG: [pacing] long_code = 0"),
        (
            '[simulator]\nscenarios = [{suffix = "0199", outcome = "bogus"}]\n',
            "PIGEON_CONFIG: simulator.scenarios[0] (suffix '0199'): outcome must be one of",
        ),
        (
            '[[carriers]]\nname = "a b"\nhost = "h"\nsystem_id = "s"\npassword = "p"\n',
            "PIGEON_CONFIG: carriers[0] ('a b'): name must be letters",
        ),
        ('[[carriers]]\nname = "acme"\nkind = "smpp"\n', "PIGEON_CONFIG: carriers[0] ('acme'): host is required"),
    ],
)
def test_a_configuration_file_that_cannot_be_used_is_a_configuration_error(
    tmp_path: Path, toml: str, problem: str
) -> None:
    """Checked by the one settings loader every command goes through, before anything starts:
    a price that did not parse used to fail every send, and a pacing rate of 0 divided by
    zero; and commands that do not use a table (`pigeon logs` and [pacing]) used to work on
    with a file the server would refuse. Settings made without the loader are checked by
    bootstrap.check_configuration, which `pigeon serve` calls before its worker processes."""
    config = tmp_path / "pigeon.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as refused:
        load_settings({"PIGEON_CONFIG": str(config)})
    assert problem in str(refused.value)
    tables = tomllib.loads(toml)
    with pytest.raises(ConfigError) as also:
        bootstrap.check_configuration(Settings(file_tables=tables))
    assert str(also.value) == str(refused.value)


def test_a_price_list_that_leaves_senders_unpriced_is_warned_of(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "pigeon.toml"
    config.write_text('[prices.US]\nlong_code = "0.0079"\n')
    bootstrap.check_configuration(load_settings({"PIGEON_CONFIG": str(config)}))
    assert "gives no price for long_code, toll_free, short_code, alphanumeric" in caplog.text
    caplog.clear()
    config.write_text(
        '[prices."*"]\nlong_code = "0.05"\ntoll_free = "0.05"\nshort_code = "0.05"\nalphanumeric = "0.05"\n'
    )
    bootstrap.check_configuration(load_settings({"PIGEON_CONFIG": str(config)}))
    assert "no price" not in caplog.text


def test_the_workers_take_the_webhook_settings(tmp_path: Path) -> None:
    from pigeon import bootstrap
    from pigeon.store.engine import Database

    settings = load_settings({"PIGEON_WEBHOOK_CONCURRENCY": "7", "PIGEON_WEBHOOK_PREFETCH": "3"})
    db = Database.from_url(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        workers = bootstrap.build_workers(settings, db)
        assert (workers.webhooks.concurrency, workers.webhooks.prefetch) == (7, 3)
        assert workers.sender._max_connections == 7  # a connection per request slot
        assert workers.retention is not None  # by default: webhook history and the error log
        assert [(r.what, r.keep.days) for r in workers.retention.rules] == [
            ("finished webhook deliveries", 30),
            ("error log entries", 30),
        ]
        everything = load_settings({"PIGEON_WEBHOOK_HISTORY_DAYS": "0", "PIGEON_ERROR_LOG_DAYS": "0"})
        assert bootstrap.build_workers(everything, db).retention is None  # all kept for ever
        assert workers.usage_triggers is not None and workers.usage_triggers.every == 15.0
        assert workers.sink.prices is not None and workers.sink.prices.inbound == {}
        config = tmp_path / "pigeon.toml"
        config.write_text('[prices.inbound.US]\nlong_code = "0.0079"\n')
        priced = load_settings({"PIGEON_CONFIG": str(config), "PIGEON_USAGE_TRIGGER_SECONDS": "2.5"})
        built = bootstrap.build_workers(priced, db)
        assert built.sink.prices is not None and built.sink.prices.inbound == {"US": {"long_code": "0.0079"}}
        assert built.usage_triggers is not None and built.usage_triggers.every == 2.5
        # What the purges remove is counted in the worker's registry, by rule.
        registry = CollectorRegistry()
        purger = bootstrap.build_workers(settings, db, registry=registry).retention
        assert purger is not None
        purger.rules = [Rule("things", timedelta(days=1), lambda conn, *, before, limit, progress: 2)]
        assert asyncio.run(purger.purge_all()) == 2
        assert registry.get_sample_value("pigeon_retention_removed_total", {"what": "things"}) == 2
    finally:
        db.dispose()


UNUSABLE = [
    ({"PIGEON_LOG_LEVEL": "verbose"}, "PIGEON_LOG_LEVEL: 'verbose' is not one of debug, info, warning, error"),
    ({"PIGEON_PORT": "99999"}, "PIGEON_PORT: 99999 is not a port (1 to 65535)"),
    ({"PIGEON_PORT": "0"}, "PIGEON_PORT: 0 is not a port (1 to 65535)"),
    ({"PIGEON_PORT": "-1"}, "PIGEON_PORT: -1 is not a port (1 to 65535)"),
    ({"PIGEON_REQUEST_LOG_DAYS": "-1"}, "PIGEON_REQUEST_LOG_DAYS: -1.0 is less than 0"),
    ({"PIGEON_PROXY_HOPS": "-1"}, "PIGEON_PROXY_HOPS: -1 is less than 0"),
    # nan passed every comparison and kept history for ever; inf and 1e9 crashed the worker at
    # start (OverflowError in pigeon.app.retention.rules).
    ({"PIGEON_MESSAGE_DAYS": "nan"}, "PIGEON_MESSAGE_DAYS: nan is not a finite number"),
    ({"PIGEON_MESSAGE_DAYS": "inf"}, "PIGEON_MESSAGE_DAYS: inf is not a finite number"),
    ({"PIGEON_REQUEST_LOG_DAYS": "-inf"}, "PIGEON_REQUEST_LOG_DAYS: -inf is not a finite number"),
    ({"PIGEON_ACCEPT_BATCH_WAIT_MS": "NaN"}, "PIGEON_ACCEPT_BATCH_WAIT_MS: nan is not a finite number"),
    ({"PIGEON_USAGE_TRIGGER_SECONDS": "Infinity"}, "PIGEON_USAGE_TRIGGER_SECONDS: inf is not a finite number"),
    (
        {"PIGEON_WEBHOOK_HISTORY_DAYS": "1e9"},
        "PIGEON_WEBHOOK_HISTORY_DAYS: 1000000000.0 is more than 36500 days (a hundred years; 0 keeps for ever)",
    ),
    (
        {"PIGEON_ERROR_LOG_DAYS": "1000000000"},
        "PIGEON_ERROR_LOG_DAYS: 1000000000.0 is more than 36500 days (a hundred years; 0 keeps for ever)",
    ),
    (
        {"PIGEON_REQUEST_LOG_DAYS": "36501"},
        "PIGEON_REQUEST_LOG_DAYS: 36501.0 is more than 36500 days (a hundred years; 0 keeps for ever)",
    ),
    (
        {"PIGEON_USAGE_TRIGGER_SECONDS": "86401"},
        "PIGEON_USAGE_TRIGGER_SECONDS: 86401.0 is more than 86400 seconds (a day)",
    ),
]


@pytest.mark.parametrize(("environ", "message"), UNUSABLE, ids=[m.split(":")[0] + str(e) for e, m in UNUSABLE])
def test_values_that_cannot_be_used_are_refused_by_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    assert str(refused.value) == message


def test_retention_up_to_a_hundred_years_is_taken_and_its_rules_built() -> None:
    settings = load_settings(
        {
            "PIGEON_MESSAGE_DAYS": "36500",
            "PIGEON_WEBHOOK_HISTORY_DAYS": "36500",
            "PIGEON_ERROR_LOG_DAYS": "36500",
            "PIGEON_REQUEST_LOG_DAYS": "36500",
            "PIGEON_USAGE_TRIGGER_SECONDS": "86400",
        }
    )
    kept = retention_rules(
        message_days=settings.message_days,
        webhook_history_days=settings.webhook_history_days,
        error_log_days=settings.error_log_days,
    )
    assert {r.keep for r in kept} == {timedelta(days=36500)}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("message_days = nan", "PIGEON_CONFIG: [pigeon] message_days: nan is not a finite number"),
        ("webhook_history_days = inf", "PIGEON_CONFIG: [pigeon] webhook_history_days: inf is not a finite number"),
        (
            "error_log_days = 1e9",
            "PIGEON_CONFIG: [pigeon] error_log_days: 1000000000.0 is more than 36500 days",
        ),
        ('request_log_days = "nan"', "PIGEON_CONFIG: [pigeon] request_log_days: nan is not a finite number"),
    ],
)
def test_the_file_form_of_a_number_setting_is_checked_the_same(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "pigeon.toml"
    path.write_text(f"[pigeon]\n{line}\n")  # TOML writes nan and inf as floats of its own
    with pytest.raises(ConfigError) as refused:
        load_settings({"PIGEON_CONFIG": str(path)})
    assert str(refused.value).startswith(message), refused.value


def test_the_log_level_is_read_in_any_case() -> None:
    assert load_settings({"PIGEON_LOG_LEVEL": "WARNING"}).log_level == "warning"


FILE_MISTAKES = [
    ("[pigeon]\nmesage_days = 30\n", "PIGEON_CONFIG: [pigeon] has no setting 'mesage_days'"),
    ("[pacng]\nlong_code = 0\n", "PIGEON_CONFIG: no table [pacng]; the tables are"),
    ("[[carrier]]\nname = 'x'\n", "PIGEON_CONFIG: no table [carrier]"),
    ("pigeon = 1\n", "PIGEON_CONFIG: [pigeon] is not a table"),
    ("pacing = 1\n", "PIGEON_CONFIG: [pacing] is not a table"),
    # The [simulator] table is read by the same loader, key by key (pigeon.carriers.simulator).
    (
        '[[simulator.scenario]]\nsuffix = "0110"\noutcome = "failed"\n',
        "PIGEON_CONFIG: [simulator]: unknown key(s) scenario;",
    ),
    ("[simulator]\nscenarioss = []\n", "PIGEON_CONFIG: [simulator]: unknown key(s) scenarioss;"),
    ("[simulator]\nscenarios = 3\n", "PIGEON_CONFIG: [simulator] scenarios must be an array of tables"),
    (
        '[[simulator.scenarios]]\nsuffix = "0110"\noutcom = "failed"\n',
        "PIGEON_CONFIG: simulator.scenarios[0] (suffix '0110'): unknown key(s) outcom;",
    ),
    (
        '[[simulator.scenarios]]\nsuffix = "0110"\noutcome = "delivered"\ndealy = 20\n',
        "PIGEON_CONFIG: simulator.scenarios[0] (suffix '0110'): unknown key(s) dealy;",
    ),
]


@pytest.mark.parametrize(("text", "message"), FILE_MISTAKES, ids=[t.split("\n")[0] for t, _ in FILE_MISTAKES])
def test_a_misspelt_key_or_table_in_the_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """As [[carriers]] refuses a key it does not know: a typo otherwise leaves the default in
    force without a word."""
    path = tmp_path / "pigeon.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_settings({"PIGEON_CONFIG": str(path)})
    assert str(refused.value).startswith(message)


def test_every_table_the_loader_reads_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "pigeon.toml"
    path.write_text(
        "[pigeon]\nmessage_days = 30\n[pacing]\nlong_code = 1.0\n[prices.US]\n[simulator]\n"
        '[[carriers]]\nname = "a"\nhost = "h"\nsystem_id = "s"\npassword = "p"\n[[routes]]\nprefix = "+1"\ncarriers = ["a"]\n'
    )
    s = load_settings({"PIGEON_CONFIG": str(path)})
    assert s.message_days == 30.0 and sorted(s.file_tables) == ["carriers", "pacing", "prices", "routes", "simulator"]


PUBLIC_URLS = [
    # Taken for a path before: "Listening on sms.example.com", links `sms.example.com/v1/…`.
    ("sms.example.com", "it must start with http:// or https:// and name a host"),
    ("ftp://sms.example.com", "it must start with http:// or https://"),
    ("https://", "name a host"),
    ("https:///v1", "name a host"),
    ("https://sms.example.com/?x=1", "no query"),
    ("https://sms.example.com/#top", "no query (?…) or fragment"),
    ("https://sms.example.com?", "no query"),
    ("https://sms.example.com:99999", "Port out of range"),
    ("https://user:pw@sms.example.com", "must not hold credentials"),
]


@pytest.mark.parametrize(("url", "problem"), PUBLIC_URLS, ids=[u for u, _ in PUBLIC_URLS])
def test_a_public_url_clients_could_not_reach_is_refused(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"PIGEON_PUBLIC_URL": url})
    said = str(refused.value)
    assert said.startswith(f"PIGEON_PUBLIC_URL: {url!r} is not a URL clients can reach this server at: "), said
    assert problem in said


def test_a_public_url_is_an_http_url_with_a_host_and_perhaps_a_path() -> None:
    for url in ("https://sms.example.com", "http://10.0.0.5:8080/", "https://example.com/pigeon", "http://[::1]:80"):
        assert load_settings({"PIGEON_PUBLIC_URL": url}).public_url == url
    assert load_settings({"PIGEON_PUBLIC_URL": " https://sms.example.com/ "}).base_url == "https://sms.example.com"
    # Without one, links name the address the API listens on (an IPv6 one in brackets).
    assert load_settings({"PIGEON_HOST": "::1", "PIGEON_PORT": "8081"}).base_url == "http://[::1]:8081"
    assert load_settings({"PIGEON_PUBLIC_URL": "https://sms.example.com"}).listen_url == "http://127.0.0.1:8080"


def test_a_value_is_named_as_the_operator_set_it(tmp_path: Path) -> None:
    """The variable, the key of the file or the command-line flag: `PIGEON_API_PROCESSES=0`
    was refused as "--api-processes must be at least 1", a flag the operator never gave."""
    cases: list[tuple[dict[str, str], dict[str, object], str]] = [
        ({"PIGEON_API_PROCESSES": "0"}, {}, "PIGEON_API_PROCESSES: 0 is less than 1"),
        ({}, {"api_processes": 0}, "--api-processes: 0 is less than 1"),
        ({}, {"port": 0}, "--port: 0 is not a port (1 to 65535)"),
    ]
    path = tmp_path / "pigeon.toml"
    path.write_text("[pigeon]\napi_processes = 0\nport = 8080\n")
    cases.append(({"PIGEON_CONFIG": str(path)}, {}, "PIGEON_CONFIG: [pigeon] api_processes: 0 is less than 1"))
    path2 = tmp_path / "log.toml"
    path2.write_text('[pigeon]\nlog_level = "loud"\n')
    cases.append(
        ({"PIGEON_CONFIG": str(path2)}, {}, "PIGEON_CONFIG: [pigeon] log_level: 'loud' is not one of debug, info,")
    )
    for environ, overrides, message in cases:
        with pytest.raises(ConfigError) as refused:
            load_settings(environ, **overrides)
        assert str(refused.value).startswith(message), refused.value
    # The environment wins over the file, and is named when its value is the one refused.
    with pytest.raises(ConfigError, match=r"^PIGEON_API_PROCESSES: -1 is less than 1"):
        load_settings({"PIGEON_CONFIG": str(path), "PIGEON_API_PROCESSES": "-1"})
    assert load_settings({"PIGEON_CONFIG": str(path), "PIGEON_API_PROCESSES": "2"}).api_processes == 2
