"""``[[carriers]]`` and ``[[routes]]`` of the PIGEON_CONFIG file → typed, frozen values.

Read once by the composition root (STYLE "absorb 11"): ``load_carriers(settings.file_tables)``.
Every mistake is a `CarrierConfigError` naming the table and the key, and unknown keys are
mistakes too, so a typo such as ``windwo = 50`` cannot silently leave a default in place.
Passwords never appear in a repr, a log line or an error message.

A complete carrier, with its defaults::

    [[carriers]]
    name = "acme"                    # unique; what routes, logs and metrics call it
    kind = "smpp"
    host = "smsc.acme.example"
    port = 2775
    backup_hosts = []                # the same SMSC account's other addresses: "host" or "host:port"
    system_id = "pigeon"
    password = "secret"              # at most 8 characters (SMPP 3.4)
    system_type = ""
    address_range = ""
    bind = "transceiver"             # or "transmitter+receiver": two sessions, one of the binds below
    window = 10                      # submit_sm outstanding at once
    throughput = 0                   # submit_sm/s on this bind (one per part sent); 0 = no pacing of our own
    receipt_id_format = "as_is"      # "exact" | "hex_to_decimal" | "decimal_to_hex" (smpp_ids)
    sixteen_bit_reference = false    # 16-bit concatenation references (7-octet UDH)
    long_messages = "udh"            # or "sar" (SAR TLVs) or "payload" (one submit_sm, message_payload)
    multipart_receipts = "every_part"  # or "any_part": one receipt per long message (see below)
    default_alphabet = "gsm7"        # what data_coding 0 means to this SMSC: or "latin1", "ascii"
    registered_delivery = true       # ask for delivery receipts
    service_type = ""
    source_ton_npi = { international = [1, 1], short_code = [3, 0], alphanumeric = [5, 0] }
    destination_ton_npi = [1, 1]
    connect_timeout = 10.0           # seconds: TCP connect and bind response
    response_timeout = 10.0          # seconds for a submit_sm_resp
    failover_on_unknown_outcome = false  # see below
    enquire_link_interval = 30.0
    reconnect_min = 1.0              # backoff between reconnects, doubling up to the max; back
                                     # to the min after a bind that lasted enquire_link_interval
    reconnect_max = 60.0
    throttle_pause = 1.0             # pause after ESME_RTHROTTLED / ESME_RMSGQFUL, doubling
    throttle_retries = 5             # resends of one part before the dispatcher fails over
    reassembly_timeout = 120.0       # seconds to wait for the missing parts of an inbound message
    binds = 1                        # binds the account allows at once, across every Pigeon process
    bind_lease = 30.0                # seconds a process's claim on one of those binds lasts unrenewed
    tls = false                      # SMPP over TLS (the carrier's TLS port, often 3550)
    tls_ca_file = ""                 # PEM certificates that sign the SMSC's; "": the system's
    tls_server_name = ""             # the name the SMSC's certificate must carry; "": host
    tls_cert_file = ""               # a client certificate (PEM), for carriers that ask for one
    tls_key_file = ""                # its private key (PEM); "": in tls_cert_file
    tls_key_password = ""            # the key's passphrase, if it has one; never logged
    status_map = { "0x00000401" = { action = "permanent", error_code = 30007 } }
    receipt_errors = { "001" = 30005, "027" = 30003 }  # this carrier's receipt err values

    [[routes]]
    prefix = "+44"                   # or country = "GB"; "+" matches every destination
    carriers = ["acme", "backup"]    # failover order

``failover_on_unknown_outcome``: a submit_sm that was written and never answered (no
submit_sm_resp within ``response_timeout``, or the connection closed first) may have been
accepted. By default the message then stays with this carrier: it is retried here once the
bind works again, and never moved to the next carrier of its route, where it would surely
be sent a second time. ``true`` lets the dispatcher fail over at once instead, for traffic
where a late message is worse than a duplicate; the timeline records the possible
duplicate either way (`pigeon.app.dispatch_jobs`).

``long_messages``: how a message of several segments goes to the SMSC. ``udh``: a submit_sm
per segment with the concatenation header in short_message, which every handset understands.
``sar``: a submit_sm per segment with the header's fields as the sar_msg_ref_num,
sar_total_segments and sar_segment_seqnum TLVs (16-bit references), for SMSCs that build the
header themselves. ``payload``: the whole text in one submit_sm's message_payload TLV, cut
by the SMSC; the carrier then answers with one id, and sends one receipt, for the message.
The message's ``num_segments`` and price are Pigeon's count whichever way it goes.

``sixteen_bit_reference``: every part of a long message carries its concatenation
reference, derived from the message's SID (`pigeon.domain.segments.concat_reference`), so a
copy sent again, by this process or another, carries the same one. It is 8 bits wide by
default: two long messages from one sender to one handset whose parts arrive interleaved
share a reference about 1 time in 256. ``true`` makes it 16 bits (1 in 65,536), in a 7-octet
header that leaves 152 septets or 66 UCS-2 units a part, for an SMSC that takes that header. SAR references (``long_messages = "sar"``) are 16 bits either way.

``multipart_receipts``: most SMSCs send a receipt for each part of a long message, and the
message is delivered once every part is (undelivered as soon as one part is). Some send one
receipt for the whole message, for its first part or its last: with ``every_part`` such a
message would stay ``sent`` for ever. ``any_part`` makes the first final receipt of any part
settle the message.

``default_alphabet``: data_coding 0 is "the SMSC's default alphabet", GSM-7 on most SMSCs,
Latin-1 or ASCII on some (some US aggregators). With ``latin1`` or ``ascii``, data_coding 0
is read in that alphabet, and a GSM-7 message goes in it explicitly (data_coding 3 or 1,
split by octets: 140 alone, 134 a part) when it can, else as UCS-2; the carrier may then
receive another number of parts than the message's ``num_segments`` (`smpp_alphabet`).

``backup_hosts``: carriers often give two or more addresses for one SMSC account. A bind
goes to ``host`` first; each connection or bind that fails moves that bind to the next
address, in turn, and a bind stays on the address where it succeeded. Every address counts
against the same ``binds`` (it is one account), and with ``tls`` each certificate must name
the address connected to, unless ``tls_server_name`` is set.

``receipt_errors``: what this carrier's receipts mean by their ``err`` values (the receipt
text's ``err:``, or the network_error_code TLV's code), as Twilio error codes: carriers
disagree, and the code decides what `pigeon doctor` says about an undelivered message. Keys
are err values as the carrier writes them ("1", "001" and "0001" are one key; non-decimal
values such as "00B" are matched as written), or a receipt state and an err value together
("UNDELIV:001", "REJECTD:001"), for carriers whose err values mean one thing in one state and
another in another: such a key comes before the err value's own; values are delivery codes that
``pigeon errors`` explains. An err value not in the table falls back to Pigeon's own
(`pigeon.domain.receipts.ERR_CODES`), then to the receipt state's code.

``tls``: the SMSC's certificate is always verified (`pigeon.carriers.smpp_tls`); one that is
self-signed is trusted by naming it as ``tls_ca_file``. The files are read at start, so that a
wrong path stops the start, and again at each connection, so that a renewed certificate is
used from the next reconnect on.

``binds`` and ``bind_lease``: a carrier account allows only so many simultaneous binds, and
every ``pigeon worker`` (or ``pigeon serve``) process on every host would otherwise bind on
its own. Each of the ``binds`` allowed is a slot leased in the store (DESIGN.md §8): a process
binds only while it holds a slot, at most one per carrier (a transceiver, or a
transmitter+receiver pair, is one slot), renews it every third of ``bind_lease`` and unbinds
when it cannot (a bind is made between two renewals, so ``bind_lease`` must be more than
twice ``connect_timeout``). That unbind is at once, whatever ``response_timeout``: the
submits in flight are not waited for, and closing waits at most a twelfth of ``bind_lease``
for the unbind's answer and as long again for the connection to end
(`pigeon.carriers.smpp_bind.unbind_wait`), so the bind is closed before the lease runs out. A process that dies without releasing its slot holds it until ``bind_lease``
runs out; then a standing-by process takes it over and binds. The processes' clocks must
agree to well within ``bind_lease``. Messages routed to a carrier bound in another process
are left for that process (`pigeon.app.dispatch`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pigeon.carriers.config_tables import (
    CarrierConfigError,
    SourceTonNpi,
    TableReader,
    TonNpi,
    backup_hosts,
    receipt_errors,
    source_ton_npi,
    status_map,
    tls,
    ton_npi,
)
from pigeon.carriers.smpp_alphabet import DEFAULT_ALPHABETS, DefaultAlphabet
from pigeon.carriers.smpp_errors import StatusRule
from pigeon.carriers.smpp_ids import ID_FORMATS, IdFormat
from pigeon.carriers.smpp_tls import TlsSettings
from pigeon.domain import storable
from pigeon.domain.routing import Route

__all__ = [
    "BIND_KINDS",
    "CarrierConfigError",
    "CarriersConfig",
    "SmppCarrierConfig",
    "SourceTonNpi",
    "TonNpi",
    "load_carriers",
]

BindKind = Literal["transceiver", "transmitter+receiver"]
BIND_KINDS: tuple[BindKind, ...] = ("transceiver", "transmitter+receiver")
LongMessages = Literal["udh", "sar", "payload"]
LONG_MESSAGES: tuple[LongMessages, ...] = ("udh", "sar", "payload")
MultipartReceipts = Literal["every_part", "any_part"]
MULTIPART_RECEIPTS: tuple[MultipartReceipts, ...] = ("every_part", "any_part")

#: The store keeps a carrier's name with each message, carrier id and bind lease, in columns
#: of storable.CARRIER_NAME_LENGTH: a longer name failed every one of those writes on PostgreSQL.
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{storable.CARRIER_NAME_LENGTH - 1}}}")


@dataclass(frozen=True, kw_only=True)
class SmppCarrierConfig:
    name: str
    host: str
    port: int = 2775
    backup_hosts: tuple[tuple[str, int], ...] = ()  # (host, port), tried after host:port in turn
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    address_range: str = ""
    bind: BindKind = "transceiver"
    window: int = 10
    throughput: float = 0.0
    receipt_id_format: IdFormat = "as_is"
    sixteen_bit_reference: bool = False
    long_messages: LongMessages = "udh"
    multipart_receipts: MultipartReceipts = "every_part"
    default_alphabet: DefaultAlphabet = "gsm7"
    registered_delivery: bool = True
    service_type: str = ""
    # Frozen values, made by a factory only because ruff cannot see that from here (RUF009).
    source_ton_npi: SourceTonNpi = field(default_factory=SourceTonNpi)
    destination_ton_npi: TonNpi = field(default_factory=lambda: TonNpi(1, 1))
    connect_timeout: float = 10.0
    response_timeout: float = 10.0
    failover_on_unknown_outcome: bool = False
    enquire_link_interval: float = 30.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    throttle_pause: float = 1.0
    throttle_retries: int = 5
    reassembly_timeout: float = 120.0
    binds: int = 1
    bind_lease: float = 30.0
    tls: TlsSettings | None = None  # None: plain TCP
    status_map: Mapping[int, StatusRule] = field(default_factory=dict)
    receipt_errors: Mapping[str, int] = field(default_factory=dict)  # receipt_errors_key -> Twilio code

    @property
    def kind(self) -> str:
        return "smpp"

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """Where a bind may connect, in the order tried."""
        return ((self.host, self.port), *self.backup_hosts)


@dataclass(frozen=True)
class CarriersConfig:
    carriers: tuple[SmppCarrierConfig, ...] = ()
    routes: tuple[Route, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.carriers)


def load_carriers(file_tables: Mapping[str, Any]) -> CarriersConfig:
    """Parse ``file_tables["carriers"]`` and ``file_tables["routes"]`` (both optional)."""
    raw_carriers = _array_of_tables(file_tables, "carriers")
    carriers = tuple(_parse_carrier(i, table) for i, table in enumerate(raw_carriers))
    names = [c.name for c in carriers]
    for name in names:
        if names.count(name) > 1:
            raise CarrierConfigError(f"carriers: the name {name!r} is used more than once")
    raw_routes = _array_of_tables(file_tables, "routes")
    if raw_routes and not carriers:
        raise CarrierConfigError("routes: there are routes but no [[carriers]]")
    routes = tuple(_parse_route(i, table, names) for i, table in enumerate(raw_routes))
    return CarriersConfig(carriers=carriers, routes=routes)


def _array_of_tables(tables: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = tables.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise CarrierConfigError(f"{key}: expected an array of tables ([[{key}]])")
    return cast(list[Mapping[str, Any]], value)


def _parse_carrier(index: int, table: Mapping[str, Any]) -> SmppCarrierConfig:
    name = table.get("name")
    where = f"carriers[{index}]" + (f" ({name!r})" if isinstance(name, str) else "")
    r = TableReader(where, table)
    name = r.text("name")
    if _NAME.fullmatch(name) is None:
        raise r.fail(
            "name", f"must be letters, digits, '_', '.', '-' (at most {storable.CARRIER_NAME_LENGTH}), got {name!r}"
        )
    kind = r.text("kind", "smpp")
    if kind != "smpp":
        raise r.fail("kind", f"must be 'smpp' (the simulator needs no [[carriers]] entry), got {kind!r}")
    d = SmppCarrierConfig(name="", host="", system_id="", password="")  # the defaults, in one place
    port = r.integer("port", d.port, minimum=1, maximum=65535)
    config = SmppCarrierConfig(
        name=name,
        host=r.text("host"),
        port=port,
        backup_hosts=backup_hosts(r, default_port=port),
        system_id=r.text("system_id", max_len=15),
        password=r.text("password", max_len=8),
        system_type=r.text("system_type", d.system_type, max_len=12),
        address_range=r.text("address_range", d.address_range, max_len=40),
        bind=cast(BindKind, r.choice("bind", d.bind, BIND_KINDS)),
        window=r.integer("window", d.window, minimum=1, maximum=1000),
        throughput=r.number("throughput", d.throughput, positive=False),
        receipt_id_format=cast(IdFormat, r.choice("receipt_id_format", d.receipt_id_format, ID_FORMATS)),
        sixteen_bit_reference=r.flag("sixteen_bit_reference", d.sixteen_bit_reference),
        long_messages=cast(LongMessages, r.choice("long_messages", d.long_messages, LONG_MESSAGES)),
        multipart_receipts=cast(
            MultipartReceipts, r.choice("multipart_receipts", d.multipart_receipts, MULTIPART_RECEIPTS)
        ),
        default_alphabet=cast(DefaultAlphabet, r.choice("default_alphabet", d.default_alphabet, DEFAULT_ALPHABETS)),
        registered_delivery=r.flag("registered_delivery", d.registered_delivery),
        service_type=r.text("service_type", d.service_type, max_len=5),
        source_ton_npi=source_ton_npi(r),
        destination_ton_npi=ton_npi(
            r, "destination_ton_npi", r.table.get("destination_ton_npi"), d.destination_ton_npi
        ),
        connect_timeout=r.number("connect_timeout", d.connect_timeout),
        response_timeout=r.number("response_timeout", d.response_timeout),
        failover_on_unknown_outcome=r.flag("failover_on_unknown_outcome", d.failover_on_unknown_outcome),
        enquire_link_interval=r.number("enquire_link_interval", d.enquire_link_interval),
        reconnect_min=r.number("reconnect_min", d.reconnect_min),
        reconnect_max=r.number("reconnect_max", d.reconnect_max),
        throttle_pause=r.number("throttle_pause", d.throttle_pause),
        throttle_retries=r.integer("throttle_retries", d.throttle_retries, minimum=0, maximum=100),
        reassembly_timeout=r.number("reassembly_timeout", d.reassembly_timeout),
        binds=r.integer("binds", d.binds, minimum=1, maximum=1000),
        bind_lease=r.number("bind_lease", d.bind_lease),
        tls=tls(r),
        status_map=status_map(r),
        receipt_errors=receipt_errors(r),
    )
    if config.reconnect_max < config.reconnect_min:
        raise r.fail("reconnect_max", f"must be >= reconnect_min ({config.reconnect_min})")
    if config.bind_lease <= 2 * config.connect_timeout:
        # A bind (TCP connect, then the bind response, each up to connect_timeout) is made
        # between two renewals: the lease must outlast it.
        raise r.fail("bind_lease", f"must be more than twice connect_timeout ({2 * config.connect_timeout:g} s)")
    r.check_unknown()
    return config


def _parse_route(index: int, table: Mapping[str, Any], carrier_names: Sequence[str]) -> Route:
    r = TableReader(f"routes[{index}]", table)
    carriers = r.names("carriers")
    missing = [c for c in carriers if c not in carrier_names]
    if missing:
        raise r.fail("carriers", f"names no [[carriers]] entry: {', '.join(map(repr, missing))}")
    prefix = r.text("prefix", "") or None
    country = r.text("country", "") or None
    r.check_unknown()
    try:
        return Route(carriers=tuple(carriers), prefix=prefix, country=country.upper() if country else None)
    except ValueError as exc:
        raise CarrierConfigError(f"routes[{index}]: {exc}") from None
