"""Keeping a bind up, and the status snapshot ``pigeon carriers`` shows.

A `BindKeeper` owns one role ("transceiver", or "transmitter" and "receiver" for carriers
configured with two binds): connect, bind, serve the session until it ends, then reconnect
after an exponential backoff with jitter — forever, until the carrier stops. A refused bind
(wrong password, SMSC refusing) is retried the same way: operators fix credentials without
restarting Pigeon, and `status()` says why the carrier is not bound meanwhile.

The backoff starts over only after a session that stayed bound one enquire_link interval.
Some SMSCs accept a bind and end it at once (the account's bind limit reached, the client's
address not allowed): counting such a bind as a recovery would rebind every reconnect_min
seconds for ever, and some SMSCs blacklist a client for that.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.config import SmppCarrierConfig
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp_errors import carrier_code
from pigeon.carriers.smpp_late import ForgottenSubmit
from pigeon.carriers.smpp_session import BindRefused, SessionSettings, SmppSession
from pigeon.carriers.smpp_tls import TlsSetupError, describe_failure
from pigeon.ports import Clock

__all__ = [
    "BindHost",
    "BindKeeper",
    "BindStatus",
    "CarrierStatus",
    "address_text",
    "session_settings",
    "unbind_wait",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BindStatus:
    role: str  # "transceiver" | "transmitter" | "receiver"
    state: str  # "connecting" | "bound" | "backoff" | "bind_refused" | "stopped"
    since: datetime
    address: str  # "host:port" this bind is connected to, or tries next (backup_hosts)
    last_error: str | None
    connects: int  # successful binds so far; more than one means reconnects happened


@dataclass(frozen=True)
class CarrierStatus:
    """What ``pigeon carriers`` shows for one carrier."""

    name: str
    kind: str
    address: str
    system_id: str
    tls: bool  # SMPP over TLS
    binds: tuple[BindStatus, ...]
    window_size: int
    window_in_use: int
    waiting: int
    throughput_limit: float  # messages/s, 0 = not paced by us
    throughput_recent: float  # submit_sm/s over the last 10 s
    throttled_for: float  # seconds left of a throttle pause
    submitted: int
    receipts: int
    inbound: int
    last_error: str | None

    @property
    def bound(self) -> bool:
        return any(b.state == "bound" and b.role != "receiver" for b in self.binds)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["binds"] = [{**asdict(b), "since": b.since.isoformat()} for b in self.binds]
        data["bound"] = self.bound
        return data


class BindHost(Protocol):
    """What a BindKeeper needs from its carrier."""

    config: SmppCarrierConfig
    metrics: CarrierMetrics
    clock: Clock
    stopping: bool
    last_error: str | None

    def on_deliver(self, session: SmppSession, header: pdu.Header, body: bytes) -> None: ...

    def on_late(self, session: SmppSession, submit: ForgottenSubmit, header: pdu.Header, body: bytes) -> None: ...

    def bind_changed(self) -> None: ...

    async def sleep_unless_stopped(self, seconds: float) -> None: ...


def session_settings(config: SmppCarrierConfig, role: str, address: tuple[str, int] | None = None) -> SessionSettings:
    host, port = address or (config.host, config.port)
    return SessionSettings(
        host=host,
        port=port,
        role=role,
        system_id=config.system_id,
        password=config.password,
        system_type=config.system_type,
        address_range=config.address_range,
        connect_timeout=config.connect_timeout,
        response_timeout=config.response_timeout,
        enquire_link_interval=config.enquire_link_interval,
        tls=config.tls,
        unbind_wait=unbind_wait(config),
    )


def unbind_wait(config: SmppCarrierConfig) -> float:
    """How long closing a session waits for the unbind's answer, and then for the connection
    to close: 2 s at most, less than response_timeout, and a twelfth of ``bind_lease``. A
    process whose lease is about to run out unbinds a third of the lease before that
    (`pigeon.workers.bind_leases`), so whatever the configuration its bind is closed with half
    of that third to spare (for the hosts' clocks), before another process may bind."""
    return min(config.response_timeout, 2.0, config.bind_lease / 12)


class BindKeeper:
    """Keeps one role bound: connect, bind, serve, and after a loss reconnect with backoff."""

    def __init__(self, carrier: BindHost, role: str) -> None:
        self.carrier = carrier
        self.role = role
        self.session: SmppSession | None = None
        self.state = "connecting"
        self.since = carrier.clock.now()
        self.last_error: str | None = None
        self.connects = 0
        self._address = 0  # index into config.addresses: moves on after each failed attempt
        self.first_attempt = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def _set(self, state: str, error: str | None = None) -> None:
        if state != self.state:
            self.state, self.since = state, self.carrier.clock.now()
        if error:
            self.last_error = error
            self.carrier.last_error = f"{self.role}: {error}"

    async def run(self) -> None:
        c = self.carrier
        delay = c.config.reconnect_min
        while not c.stopping:
            bound_for = await self._bind_and_serve()
            if bound_for is None:
                self._address = (self._address + 1) % len(c.config.addresses)  # the next address, if any
            elif bound_for >= c.config.enquire_link_interval:
                delay = c.config.reconnect_min  # it worked for a while: start the backoff over
            self.first_attempt.set()
            if c.stopping:
                break
            # Full jitter on top of the exponential delay: binds of many processes that lost
            # the same SMSC do not all come back in the same instant.
            await c.sleep_unless_stopped(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, c.config.reconnect_max)
        self._set("stopped")

    async def _bind_and_serve(self) -> float | None:
        """One connection, from connect to its end: the seconds it stayed bound, None if it never
        got bound. Never raises but cancellation."""
        c, config = self.carrier, self.carrier.config
        self._set("connecting")
        host, port = config.addresses[self._address]
        session = SmppSession(
            session_settings(config, self.role, (host, port)),
            c.on_deliver,
            label=f"{config.name}/{self.role}",
            on_late=c.on_late,
        )
        try:
            await session.open()
        except BindRefused as exc:
            c.metrics.errors.labels(config.name, "bind").inc()
            self._set("bind_refused", f"bind refused: {carrier_code(exc.status)}")
            return None
        except TlsSetupError as exc:  # a TLS file went missing since the start
            c.metrics.errors.labels(config.name, "connection").inc()
            self._set("backoff", f"TLS: {exc}")
            return None
        except ssl.SSLError as exc:
            c.metrics.errors.labels(config.name, "connection").inc()
            self._set("backoff", f"cannot connect to {address_text(host, port)}: {describe_failure(exc)}")
            return None
        except (OSError, TimeoutError) as exc:
            c.metrics.errors.labels(config.name, "connection").inc()
            self._set("backoff", f"cannot connect to {address_text(host, port)}: {exc.__class__.__name__} {exc}")
            return None
        except Exception as exc:  # a bug must cost a reconnect, never the bind for good
            log.exception("binding failed unexpectedly", extra={"carrier": config.name, "role": self.role})
            self._set("backoff", f"{exc.__class__.__name__}: {exc}")
            return None
        self.connects += 1
        self.session = session
        self._set("bound")
        c.bind_changed()
        self.first_attempt.set()
        log.info("bound", extra={"carrier": config.name, "role": self.role, "address": address_text(host, port)})
        bound_at = time.monotonic()
        try:
            await session.run()
        except Exception as exc:
            log.exception("session failed unexpectedly", extra={"carrier": config.name, "role": self.role})
            session.close_reason = session.close_reason or f"{exc.__class__.__name__}: {exc}"
            await session.close(session.close_reason)
        finally:
            self.session = None
            c.bind_changed()
        bound_for = time.monotonic() - bound_at
        if not c.stopping:
            c.metrics.errors.labels(config.name, "connection").inc()
            self._set("backoff", session.close_reason)
            log.warning(
                "bind lost",
                extra={
                    "carrier": config.name,
                    "role": self.role,
                    "reason": session.close_reason,
                    "bound_for": round(bound_for, 3),
                },
            )
        return bound_for

    def status(self) -> BindStatus:
        host, port = self.carrier.config.addresses[self._address]
        return BindStatus(self.role, self.state, self.since, address_text(host, port), self.last_error, self.connects)


def address_text(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
