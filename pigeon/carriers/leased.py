"""`LeasedCarrier`: a carrier that binds only while its process holds one of its bind leases.

A carrier account allows ``binds`` binds at once across every Pigeon process; each is a slot
leased in the store (DESIGN.md §8). The lease keeper (`pigeon.workers.bind_leases`) takes and
renews the slots, and tells this carrier when to `bind` (it holds a slot) and `unbind` (it
lost the slot, or is shutting down). Each bind is a fresh inner carrier from ``make``: an
`SmppCarrier` that was stopped stays stopped, and no new one starts before it is.

Without a slot, `submit` raises `CarrierUnavailable` ("lease:not_held"): nothing was sent.
The dispatcher does not let it come to that when another process has the carrier bound; it
leaves the message for that process instead (`pigeon.app.dispatch`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from pigeon.domain.errors import CarrierUnavailable
from pigeon.ports import Carrier, CarrierEvents, OutboundMessage, SubmitAck

__all__ = ["Bindable", "LeasedCarrier"]


class Bindable(Carrier, Protocol):
    """The inner carrier: a Carrier that says whether it is bound, reports its status, and
    can stop without waiting for its submits in flight."""

    async def stop(self, *, at_once: bool = False) -> None: ...

    def is_bound(self) -> bool: ...

    def status(self) -> Any: ...


class LeasedCarrier:
    def __init__(
        self,
        name: str,
        *,
        slots: int,
        lease_seconds: float,
        make: Callable[[], Bindable],
        carries_media: bool = False,
    ) -> None:
        self.name = name
        self.carries_media = carries_media  # as the carriers `make` makes: known before any bind
        self.slots = slots
        self.lease_seconds = lease_seconds
        #: The slot this process holds and until when, as the lease keeper last renewed it.
        self.slot: int | None = None
        self.expires_at: datetime | None = None
        self._make = make
        self._inner: Bindable | None = None
        self._leaving: Bindable | None = None  # stopping, not yet stopped
        self._events: CarrierEvents | None = None

    def __repr__(self) -> str:
        return f"LeasedCarrier({self.name!r}, slots={self.slots}, slot={self.slot})"

    # --- Carrier protocol ---------------------------------------------------------------

    async def start(self, events: CarrierEvents) -> None:
        """Remember where to report; binding waits for a lease (`bind`)."""
        self._events = events

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        inner = self._inner
        if inner is None:
            raise CarrierUnavailable(
                f"{self.name} is not bound in this process: it holds none of the carrier's {self.slots} bind lease(s)",
                carrier_code="lease:not_held",
            )
        return await inner.submit(message)

    async def stop(self) -> None:
        await self.unbind()

    # --- for the lease keeper -----------------------------------------------------------

    async def bind(self) -> None:
        """Start a new inner carrier; returns once its binds were tried once (bound or not).
        Nothing when one runs already (it reconnects by itself), or is still stopping."""
        if self._inner is not None or self._leaving is not None or self._events is None:
            return
        inner = self._make()
        try:
            await inner.start(self._events)
        except BaseException:
            await inner.stop()  # a half-started carrier must not keep a socket open
            raise
        self._inner = inner

    async def unbind(self, *, at_once: bool = False) -> None:
        """Stop the inner carrier (in-flight submits finish, then unbind; ``at_once``: no
        waiting for them, and a stop under way is cut short); submits are refused from the
        moment this is called. Returns once the inner carrier is stopped."""
        inner = self._inner or self._leaving
        self._inner = None
        if inner is None:
            return
        self._leaving = inner
        try:
            await inner.stop(at_once=at_once)
        finally:
            if self._leaving is inner:
                self._leaving = None

    def is_bound(self) -> bool:
        return self._inner is not None and self._inner.is_bound()

    def status(self) -> dict[str, Any]:
        """The inner carrier's status (standing by when it holds no slot), with the lease."""
        if self._inner is not None:
            snapshot = self._inner.status()
            status: dict[str, Any] = dict(snapshot.as_dict() if hasattr(snapshot, "as_dict") else snapshot)
        else:
            status = {"name": self.name, "kind": "smpp", "bound": False, "binds": []}
        status["lease"] = {
            "slot": self.slot,
            "slots": self.slots,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "state": "held" if self.slot is not None else "standby",
        }
        return status
