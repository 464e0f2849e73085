"""The bind lease keeper: each process binds to a carrier only while it holds one of its slots.

For every leased carrier (every SMPP carrier; the built-in network needs none) the keeper,
every third of the carrier's ``bind_lease``:

* holding a slot: renews it, recording how the bind is (and at once when that changes, since
  other processes leave traffic only to a holder that is bound or binding). A renewal
  that fails because another process took the slot (this one was too slow: its lease ran
  out) unbinds at once. When the store cannot be reached, the keeper keeps trying; once the
  lease is within one renewal interval of running out it unbinds on its own, so that the
  process taking the slot over never binds while this one still does. A call to the store
  that hangs (a connection gone dead without a reset) is not waited for past that moment
  either, and no second call is made beside it. Such an unbind (*fenced*) is at once: the
  lease is what keeps the count of binds, so the submits in flight are not waited for; they
  end unanswered, and are sent again as possible duplicates (`pigeon.app.dispatch_jobs`);
* holding none: tries to take a free or expired slot, and binds when it got one (the slot
  says "binding" until the first bind attempt is over, then "bound" or "unbound"). A process
  that died holding a slot keeps it until its lease runs out; a process standing by tries
  again the moment it does, and takes it over. A slot freed by a clean shutdown is free at
  once, at no time a standby could know in advance, so a standby also looks every ``poll``
  (a second): until it has taken the slot no process has the carrier bound, and messages
  for it are retried or failed over as for a carrier that is down.

A clean shutdown (``stop``, then `close`) goes in this order: the keeper stops looking for
slots and binds nothing more, but renews those it holds while the process finishes its work
(the dispatcher's submits), and while `close` unbinds (waiting for the carrier's own submits
in flight); only then does it stop renewing and release them. A lease that ran out while this
process still had the bind would let a standby bind beside it. Each process holds at most one
slot per carrier (one bind, or transmitter+receiver pair, as `SmppCarrier` keeps).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from pigeon.app import bind_leases
from pigeon.app.bind_leases import BindState, Kept, Lease
from pigeon.domain.errors import StoreUnavailable
from pigeon.ports import Clock, Reach
from pigeon.store.engine import Database

__all__ = ["BindLeaseKeeper", "Leasable"]

log = logging.getLogger(__name__)


class Leasable(Protocol):
    """A carrier that binds on command (`pigeon.carriers.leased.LeasedCarrier`)."""

    name: str
    slots: int
    lease_seconds: float
    slot: int | None
    expires_at: datetime | None

    async def bind(self) -> None: ...

    async def unbind(self, *, at_once: bool = False) -> None: ...

    def is_bound(self) -> bool: ...


@dataclass
class _Keeping:
    carrier: Leasable
    lease: Lease | None = None
    reported: BindState | None = None
    due: float = 0.0  # time.monotonic() of the next renewal or attempt
    #: The last call to the store, while it has not come back (its thread cannot be stopped).
    call: asyncio.Future[Kept] | None = None
    #: Held by a step from start to end: `close` unbinds no carrier in the middle of its bind.
    stepping: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def interval(self) -> float:
        return self.carrier.lease_seconds / 3

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.carrier.lease_seconds)


class BindLeaseKeeper:
    def __init__(
        self, db: Database, clock: Clock, carriers: Sequence[Leasable], *, holder: str, poll: float = 1.0
    ) -> None:
        self.db = db
        self.clock = clock
        self.holder = holder
        self.poll = poll  # how often a change of bind state is looked for
        self._keeping = [_Keeping(c) for c in carriers]
        self._leaving = False  # shutting down: renew the slots held, take none, bind nothing
        self._closed = asyncio.Event()  # the carriers are unbound: renewals end

    def reach(self) -> Reach:
        """What the dispatcher may submit to from this process now."""
        return Reach(
            leased=frozenset(k.carrier.name for k in self._keeping),
            bound_here=frozenset(k.carrier.name for k in self._keeping if k.lease and k.carrier.is_bound()),
        )

    async def start(self) -> None:
        """Take what slots are free and bind; returns once each carrier's binds were tried once."""
        await self.step()

    async def step(self) -> None:
        """One step for every carrier now: renew, or try to take a slot (the loop's work)."""
        done = await asyncio.gather(*(self._locked_step(k) for k in self._keeping), return_exceptions=True)
        for k, result in zip(self._keeping, done, strict=True):
            if isinstance(result, Exception):  # one carrier's trouble must not stop the others
                log.error("bind lease step failed", exc_info=result, extra=self._extra(k))

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the leases. From ``stop`` on, only renew those held: until `close`."""
        await asyncio.gather(*(self._keep(k, stop) for k in self._keeping))

    async def close(self) -> None:
        """Unbind everything while `run` still renews the slots, then free them (a clean shutdown)."""
        if self._closed.is_set():
            return
        self._leaving = True
        await asyncio.gather(*(self._unbind(k) for k in self._keeping))
        self._closed.set()
        for k in self._keeping:
            async with k.stepping:  # a renewal under way is over; `run` makes no more
                pass
        for k in self._keeping:
            if k.lease is None:
                continue
            slot, k.lease = k.lease.slot, None
            self._show(k)
            try:
                await asyncio.to_thread(
                    bind_leases.let_go, self.db, carrier=k.carrier.name, slot=slot, holder=self.holder
                )
            except Exception:
                log.exception("could not release a bind lease; it runs out on its own", extra=self._extra(k, slot))

    async def _unbind(self, k: _Keeping) -> None:
        async with k.stepping:  # a step binding this carrier now ends first; the next renew only
            pass
        await k.carrier.unbind()

    async def _locked_step(self, k: _Keeping) -> None:
        async with k.stepping:
            if not self._closed.is_set():
                await self._step(k)

    async def _keep(self, k: _Keeping, stop: asyncio.Event) -> None:
        while not self._closed.is_set():
            self._leaving = self._leaving or stop.is_set()
            if self._leaving and k.lease is None:
                return  # standing by (or fenced) ends with the shutdown
            changed = k.lease is not None and _state(k.carrier) != k.reported
            if changed or time.monotonic() >= k.due:
                try:
                    await self._locked_step(k)
                except Exception:  # the keeper must outlive any one failure
                    log.exception("bind lease step failed", extra=self._extra(k))
            wait = max(0.005, min(self.poll, k.due - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for((self._closed if stop.is_set() else stop).wait(), wait)

    async def _step(self, k: _Keeping) -> None:
        held = k.lease.slot if k.lease else None
        if held is None and self._leaving:
            return
        state = _state(k.carrier)
        now = self.clock.now()
        if k.call is not None and not k.call.done():
            log.warning("bind lease: the store has still not answered", extra=self._extra(k, held))
            k.due = time.monotonic() + min(self.poll, k.interval)
            await self._fence(k, self.clock.now())
            return
        k.call = asyncio.ensure_future(
            asyncio.to_thread(
                bind_leases.keep,
                self.db,
                carrier=k.carrier.name,
                slots=k.carrier.slots,
                holder=self.holder,
                held=held,
                state=state,
                now=now,
                duration=k.duration,
            )
        )
        k.call.add_done_callback(_retrieve)
        try:
            kept = await asyncio.wait_for(asyncio.shield(k.call), _patience(k, now))
        except TimeoutError:
            log.warning("bind lease: the store did not answer in time", extra=self._extra(k, held))
            k.due = time.monotonic() + min(self.poll, k.interval)
            await self._fence(k, self.clock.now())
            return
        except Exception as exc:
            if isinstance(exc, StoreUnavailable):  # said in one line: no traceback to add
                log.warning("bind lease: the store did not answer: %s", exc, extra=self._extra(k, held))
            else:
                log.exception("bind lease: the store did not answer", extra=self._extra(k, held))
            k.due = time.monotonic() + min(self.poll, k.interval)
            await self._fence(k, self.clock.now())
            return
        k.due = time.monotonic() + _next_try(k, kept.free_at, now, self.poll)
        k.lease, k.reported = kept.lease, state
        self._show(k)
        if held is not None and kept.lease is None:
            log.warning("bind lease lost to another process; unbinding at once", extra=self._extra(k, held))
            await k.carrier.unbind(at_once=True)
        elif self._leaving:
            return  # renewed; nothing is bound during a shutdown
        elif held is None and kept.lease is not None:
            log.info("bind lease taken; binding", extra=self._extra(k, kept.lease.slot))
            await k.carrier.bind()
            await self._step(k)  # binding is over, bound or not: say so at once
        elif kept.lease is not None:
            await k.carrier.bind()  # nothing while it runs; starts one whose start failed before

    async def _fence(self, k: _Keeping, now: datetime) -> None:
        """Unbind at once when the lease is about to run out unrenewed: another process may
        take it then, and the bind must be closed by that time (`SmppCarrier.stop`)."""
        if k.lease is None or now < k.lease.expires_at - timedelta(seconds=k.interval):
            return
        log.warning("bind lease could not be renewed in time; unbinding at once", extra=self._extra(k, k.lease.slot))
        k.lease = None
        self._show(k)
        await k.carrier.unbind(at_once=True)

    def _show(self, k: _Keeping) -> None:
        k.carrier.slot = k.lease.slot if k.lease else None
        k.carrier.expires_at = k.lease.expires_at if k.lease else None

    def _extra(self, k: _Keeping, slot: int | None = None) -> dict[str, object]:
        return {"carrier": k.carrier.name, "slot": slot, "holder": self.holder}


def _patience(k: _Keeping, now: datetime) -> float:
    """Seconds to wait for the store: holding a slot, until the moment `_fence` unbinds (at
    least a little, up to half of what is left of the lease, if that moment has passed);
    standing by, a renewal interval."""
    if k.lease is None:
        return k.interval
    to_fence = (k.lease.expires_at - timedelta(seconds=k.interval) - now).total_seconds()
    to_expiry = (k.lease.expires_at - now).total_seconds()
    return max(to_fence, min(1.0, to_expiry / 2), 0.0)


def _retrieve(call: asyncio.Future[Kept]) -> None:
    """A call given up on may fail later: its error is logged at the time, not as unretrieved."""
    if not call.cancelled():
        call.exception()


def _state(carrier: Leasable) -> BindState:
    return "bound" if carrier.is_bound() else "unbound"


def _next_try(k: _Keeping, free_at: datetime | None, now: datetime, poll: float) -> float:
    """Seconds to the next step: a renewal interval; standing by, a poll (a holder's clean
    shutdown frees its slot at any moment), or the moment the first slot's lease runs out if
    that is sooner (a takeover then waits for no interval)."""
    if k.lease is not None:
        return k.interval
    if free_at is None:
        return min(k.interval, poll)
    return min(k.interval, poll, max(0.0, (free_at - now).total_seconds()) + 0.005)
