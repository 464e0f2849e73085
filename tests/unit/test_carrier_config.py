"""Unit tests for pigeon.carriers.config: [[carriers]] and [[routes]] → typed values, clear errors."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from pigeon.carriers.config import CarrierConfigError, SmppCarrierConfig, SourceTonNpi, TonNpi, load_carriers
from pigeon.carriers.smpp_errors import Action, StatusRule
from pigeon.domain.routing import Route

FULL = """
[[carriers]]
name = "acme"
kind = "smpp"
host = "smsc.acme.example"
port = 2776
system_id = "pigeon"
password = "s3cr3t!"
system_type = "VMA"
bind = "transmitter+receiver"
window = 50
throughput = 25.5
receipt_id_format = "hex_to_decimal"
sixteen_bit_reference = true
registered_delivery = false
service_type = "CMT"
source_ton_npi = { international = [1, 1], short_code = [3, 1], alphanumeric = [5, 0] }
destination_ton_npi = [1, 1]
connect_timeout = 5
response_timeout = 7.5
failover_on_unknown_outcome = true
enquire_link_interval = 20
reconnect_min = 0.5
reconnect_max = 30
throttle_pause = 2
throttle_retries = 3
reassembly_timeout = 60
binds = 3
bind_lease = 12.5  # more than twice connect_timeout
status_map = { "0x00000401" = { action = "permanent", error_code = 30007 }, "1026" = { action = "throttle" } }

[[carriers]]
name = "backup"
host = "10.0.0.2"
system_id = "pigeon2"
password = "pw"

[[routes]]
prefix = "+44"
carriers = ["acme", "backup"]

[[routes]]
country = "us"
carriers = ["backup"]
"""


def tables(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def carrier(**fields: Any) -> dict[str, Any]:
    return {"carriers": [{"name": "acme", "host": "h", "system_id": "sys", "password": "pw", **fields}]}


def test_a_full_file() -> None:
    config = load_carriers(tables(FULL))
    acme, backup = config.carriers
    assert config.names == ("acme", "backup")
    assert (acme.host, acme.port, acme.system_id, acme.password, acme.system_type) == (
        "smsc.acme.example",
        2776,
        "pigeon",
        "s3cr3t!",
        "VMA",
    )
    assert (acme.bind, acme.window, acme.throughput, acme.receipt_id_format) == (
        "transmitter+receiver",
        50,
        25.5,
        "hex_to_decimal",
    )
    assert acme.sixteen_bit_reference and not acme.registered_delivery and acme.service_type == "CMT"
    assert acme.source_ton_npi == SourceTonNpi(TonNpi(1, 1), TonNpi(3, 1), TonNpi(5, 0))
    assert (acme.connect_timeout, acme.response_timeout, acme.enquire_link_interval) == (5.0, 7.5, 20.0)
    assert (acme.reconnect_min, acme.reconnect_max, acme.throttle_pause, acme.throttle_retries) == (0.5, 30.0, 2.0, 3)
    assert acme.reassembly_timeout == 60.0
    assert (acme.binds, acme.bind_lease) == (3, 12.5)
    assert (backup.binds, backup.bind_lease) == (1, 30.0)  # one bind across all processes unless told
    assert acme.failover_on_unknown_outcome and not backup.failover_on_unknown_outcome  # off unless asked
    assert acme.status_map == {
        0x401: StatusRule(Action.PERMANENT, 30007),
        1026: StatusRule(Action.THROTTLE, 30001),
    }
    assert backup == SmppCarrierConfig(name="backup", host="10.0.0.2", system_id="pigeon2", password="pw")
    assert config.routes == (Route(("acme", "backup"), prefix="+44"), Route(("backup",), country="US"))


def test_nothing_configured() -> None:
    config = load_carriers({})
    assert config.carriers == () and config.routes == () and config.names == ()


def test_passwords_never_show() -> None:
    config = load_carriers(tables(FULL))
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in str(config.carriers[0])
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(password="much-too-long"))
    assert "much-too-long" not in str(raised.value) and "password" in str(raised.value)
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(password=12345678))
    assert "12345678" not in str(raised.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": None}, "carriers[0] ('acme'): host is required"),
        ({"port": 0}, "port must be 1..65535, got 0"),
        ({"port": "2775"}, "port must be an integer, got '2775'"),
        ({"window": 0}, "window must be 1..1000"),
        ({"window": True}, "window must be an integer, got True"),
        ({"throughput": -1}, "throughput must be >= 0"),
        ({"response_timeout": 0}, "response_timeout must be > 0"),
        ({"bind": "receiver"}, "bind must be one of 'transceiver', 'transmitter+receiver'"),
        ({"kind": "http"}, "kind must be 'smpp'"),
        ({"receipt_id_format": "hex"}, "receipt_id_format must be one of"),
        ({"system_id": "x" * 16}, "system_id must be at most 15 characters"),
        ({"system_type": "toolongsystype"}, "system_type must be at most 12"),
        ({"sixteen_bit_reference": "yes"}, "sixteen_bit_reference must be true or false"),
        ({"failover_on_unknown_outcome": 1}, "failover_on_unknown_outcome must be true or false"),
        ({"windwo": 50}, "unknown key(s) windwo"),
        ({"binds": 0}, "binds must be 1..1000, got 0"),
        ({"binds": 1.5}, "binds must be an integer, got 1.5"),
        ({"bind_lease": 0}, "bind_lease must be > 0"),
        ({"bind_lease": 20}, "bind_lease must be more than twice connect_timeout (20 s)"),
        ({"bind_leases": 10}, "unknown key(s) bind_leases"),
        ({"name": "a b"}, "name must be letters"),
        ({"name": "c" * 33}, "(at most 32)"),  # what the store's carrier columns hold
        ({"destination_ton_npi": [1]}, "destination_ton_npi must be [ton, npi]"),
        ({"destination_ton_npi": [9, 1]}, "unknown TON 9"),
        ({"destination_ton_npi": [1, 2]}, "unknown NPI 2"),
        ({"source_ton_npi": [1, 1]}, "source_ton_npi must be a table"),
        ({"source_ton_npi": {"long_code": [1, 1]}}, "unknown sender kind(s) long_code"),
        ({"source_ton_npi": {"short_code": [3, "0"]}}, "source_ton_npi.short_code must be [ton, npi]"),
        ({"reconnect_min": 10, "reconnect_max": 5}, "reconnect_max must be >= reconnect_min"),
        ({"status_map": {"nope": {"action": "retry"}}}, "must be keyed by a command_status"),
        ({"status_map": {"0": {"action": "retry"}}}, "non-zero 32-bit command_status"),
        ({"status_map": {"0x401": "retry"}}, "must be a table"),
        ({"status_map": {"0x401": {"action": "ignore"}}}, "action must be one of"),
        ({"status_map": {"0x401": {"action": "retry", "code": 1}}}, "unknown key(s) code"),
        ({"status_map": []}, "status_map must be a table"),
    ],
)
def test_carrier_mistakes_are_named(fields: dict[str, Any], message: str) -> None:
    table = carrier(**{k: v for k, v in fields.items() if v is not None})
    for key in [k for k, v in fields.items() if v is None]:
        del table["carriers"][0][key]
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(table)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"carriers": {"name": "x"}}, "carriers: expected an array of tables"),
        ({"carriers": [carrier()["carriers"][0]] * 2}, "the name 'acme' is used more than once"),
        ({"routes": [{"prefix": "+44", "carriers": ["acme"]}]}, "there are routes but no [[carriers]]"),
        ({**carrier(), "routes": [{"prefix": "+44", "carriers": ["nobody"]}]}, "names no [[carriers]] entry: 'nobody'"),
        ({**carrier(), "routes": [{"prefix": "+44", "carriers": []}]}, "carriers must be a non-empty list"),
        ({**carrier(), "routes": [{"prefix": "+44"}]}, "routes[0]: carriers is required"),
        ({**carrier(), "routes": [{"carriers": ["acme"]}]}, "routes[0]: a route has exactly one of prefix or country"),
        ({**carrier(), "routes": [{"prefix": "44", "carriers": ["acme"]}]}, "routes[0]: route prefix must be"),
        ({**carrier(), "routes": [{"prefix": "+44", "carriers": ["acme"], "via": 1}]}, "unknown key(s) via"),
        (
            {**carrier(), "routes": [{"country": "UK", "carriers": ["acme"]}]},
            "routes[0]: route country: 'UK' is not a country code known to the numbering plans; did you mean 'GB'?",
        ),
        ({**carrier(), "routes": [{"country": "XX", "carriers": ["acme"]}]}, "'XX' is not a country code"),
    ],
)
def test_file_and_route_mistakes_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(data)
    assert message in str(raised.value)


def test_a_carrier_name_of_32_characters_is_taken() -> None:
    assert load_carriers(carrier(name="c" * 32)).names == ("c" * 32,)


def test_backup_hosts() -> None:
    (acme,) = load_carriers(
        carrier(port=2776, backup_hosts=["smpp2.acme.example", "203.0.113.7:2775", "[2001:db8::7]:3550"])
    ).carriers
    assert acme.backup_hosts == (("smpp2.acme.example", 2776), ("203.0.113.7", 2775), ("2001:db8::7", 3550))
    assert acme.addresses[0] == ("h", 2776) and acme.addresses[1:] == acme.backup_hosts
    (plain,) = load_carriers(carrier()).carriers
    assert plain.backup_hosts == () and plain.addresses == (("h", 2775),)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("smpp2", 'backup_hosts must be a list of "host" or "host:port", got \'smpp2\''),
        ([1], "backup_hosts must be a list"),
        (["smpp2:0"], "(port 1..65535), got 'smpp2:0'"),
        (["smpp2:70000"], "(port 1..65535)"),
        (["a b"], "got 'a b'"),
        (["2001:db8::7"], "got '2001:db8::7'"),  # an IPv6 address needs its brackets
        (["smpp2", "smpp2:2775"], "names 'smpp2:2775' twice"),
        (["h"], "names 'h' twice (host included)"),
    ],
)
def test_backup_host_mistakes(value: Any, message: str) -> None:
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(backup_hosts=value))
    assert message in str(raised.value)


def test_receipt_errors() -> None:
    (acme,) = load_carriers(carrier(receipt_errors={"1": 30005, "027": 30003, "00b": 30006})).carriers
    assert acme.receipt_errors == {"001": 30005, "027": 30003, "00B": 30006}
    assert load_carriers(carrier()).carriers[0].receipt_errors == {}
    # A state and an err value together, for carriers whose err values mean one thing per state.
    (acme,) = load_carriers(carrier(receipt_errors={"undeliverable:1": 30005, "REJECTD:001": 30007})).carriers
    assert acme.receipt_errors == {"UNDELIV:001": 30005, "REJECTD:001": 30007}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1], "receipt_errors must be a table"),
        ({"001": 99999}, "receipt_errors['001'] must be a delivery error code that `pigeon errors` explains"),
        ({"001": 21211}, "got 21211"),  # an API error, not one a receipt can carry
        ({"001": "30005"}, "got '30005'"),
        ({"001": True}, "got True"),
        ({" ": 30005}, "must be keyed by an err value"),
        ({"x" * 17: 30005}, "at most 16 characters"),
        ({"1": 30005, "001": 30003}, "is the same err value as another key (001)"),
        ({"LOST:001": 30005}, "or by a receipt state and one"),  # not an SMPP state
        ({"UNDELIV:": 30005}, "must be keyed by an err value"),
        ({"UNDELIV:1": 30005, "undeliverable:001": 30003}, "is the same err value as another key (UNDELIV:001)"),
    ],
)
def test_receipt_error_mistakes(value: Any, message: str) -> None:
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(receipt_errors=value))
    assert message in str(raised.value)


def test_multipart_receipts() -> None:
    assert load_carriers(carrier()).carriers[0].multipart_receipts == "every_part"
    assert load_carriers(carrier(multipart_receipts="any_part")).carriers[0].multipart_receipts == "any_part"
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(multipart_receipts="last_part"))
    assert "multipart_receipts must be one of 'every_part', 'any_part', got 'last_part'" in str(raised.value)


def test_long_messages() -> None:
    assert load_carriers(carrier()).carriers[0].long_messages == "udh"
    assert load_carriers(carrier(long_messages="payload")).carriers[0].long_messages == "payload"
    with pytest.raises(CarrierConfigError) as raised:
        load_carriers(carrier(long_messages="split"))
    assert "long_messages must be one of 'udh', 'sar', 'payload', got 'split'" in str(raised.value)


def test_a_process_standing_by_for_a_bind_lease_reports_the_carrier_unbound() -> None:
    """The README's alert (`max by (carrier) (pigeon_carrier_bound) == 0`) found no series while
    no process held the lease: only a bound SmppCarrier set the gauge."""
    from pigeon.bootstrap import build_carriers
    from pigeon.carriers.metrics import CarrierMetrics
    from pigeon.carriers.simulator import SimulatedNetwork
    from pigeon.config import Settings
    from pigeon.testing import FrozenClock

    metrics, clock = CarrierMetrics(), FrozenClock()
    settings = Settings(file_tables=carrier())
    carriers, _route = build_carriers(settings, SimulatedNetwork(object(), clock), metrics, clock)  # type: ignore[arg-type]
    assert list(carriers) == ["acme"] and not carriers["acme"].is_bound()  # type: ignore[attr-defined]
    assert metrics.registry.get_sample_value("pigeon_carrier_bound", {"carrier": "acme"}) == 0
