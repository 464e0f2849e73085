"""What the SMPP tests share: a recording CarrierEvents, carrier settings for tests, messages."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from pigeon.app import reassembly
from pigeon.carriers.config import SmppCarrierConfig
from pigeon.domain.segments import plan_segments
from pigeon.ports import (
    InboundPart,
    InboundSms,
    LateAcceptance,
    LateRefusal,
    OutboundMessage,
    Receipt,
    SystemClock,
)
from pigeon.store.engine import Database


class RecordingEvents:
    """A CarrierEvents that keeps everything; ``fail_receipts`` makes the next N calls raise.

    Parts of concatenated inbound messages go through the real reassembly in ``parts_db`` (a
    migrated store); the messages they make, and those `sweep` hands over, are kept in
    ``inbound`` like whole ones.
    """

    def __init__(self, parts_db: Database | None = None) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundSms] = []
        self.late: list[LateAcceptance] = []
        self.refused_late: list[LateRefusal] = []
        self.fail_receipts = 0
        self.parts_db = parts_db
        self.clock = SystemClock()
        self._changed = asyncio.Condition()

    async def on_receipt(self, receipt: Receipt) -> None:
        if self.fail_receipts > 0:
            self.fail_receipts -= 1
            raise RuntimeError("the store is down")
        async with self._changed:
            self.receipts.append(receipt)
            self._changed.notify_all()

    async def on_inbound(self, message: InboundSms) -> None:
        async with self._changed:
            self.inbound.append(message)
            self._changed.notify_all()

    async def on_late_acceptance(self, late: LateAcceptance) -> None:
        async with self._changed:
            self.late.append(late)
            self._changed.notify_all()

    async def on_late_refusal(self, late: LateRefusal) -> None:
        async with self._changed:
            self.refused_late.append(late)
            self._changed.notify_all()

    def _store(self) -> Database:
        if self.parts_db is None:
            raise RuntimeError("this RecordingEvents was given no store for inbound parts")
        return self.parts_db

    def _take_part(self, part: InboundPart) -> InboundSms | None:
        with self._store().write() as conn:
            return reassembly.take_part(conn, part, now=self.clock.now())

    async def on_inbound_part(self, part: InboundPart) -> bool:
        message = await asyncio.to_thread(self._take_part, part)
        if message is None:
            return False
        await self.on_inbound(message)
        return True

    async def sweep(self) -> int:
        """One round of the reassembly sweeper over ``parts_db``."""
        taken: list[InboundSms] = []
        db = self._store()
        count = await asyncio.to_thread(
            reassembly.sweep, db, lambda _conn, message: taken.append(message), now=self.clock.now()
        )
        for message in taken:
            await self.on_inbound(message)
        return count

    async def wait(self, done: Callable[[RecordingEvents], bool], timeout: float = 10.0) -> None:
        async def until() -> None:
            async with self._changed:
                while not done(self):
                    await self._changed.wait()

        await asyncio.wait_for(until(), timeout)


def carrier_config(port: int, **overrides: Any) -> SmppCarrierConfig:
    """Settings scaled down for tests: short timeouts, fast reconnects and throttle pauses."""
    base = SmppCarrierConfig(
        name="node",
        host="127.0.0.1",
        port=port,
        system_id="pigeon",
        password="secret",
        connect_timeout=2.0,
        response_timeout=2.0,
        enquire_link_interval=5.0,
        reconnect_min=0.05,
        reconnect_max=0.4,
        throttle_pause=0.05,
        throttle_retries=5,
        reassembly_timeout=5.0,
    )
    return dataclasses.replace(base, **overrides)


_counter = iter(range(1, 1_000_000))


def message(body: str, *, to: str = "+447700900123", sender: str = "+14155550100", **overrides: Any) -> OutboundMessage:
    plan = plan_segments(body)
    fields: dict[str, Any] = {
        "message_sid": f"SM{next(_counter):032x}",
        "account_sid": "AC" + "0" * 32,
        "sender": sender,
        "recipient": to,
        "body": body,
        "encoding": plan.encoding,
        "parts": plan.parts,
    }
    fields.update(overrides)
    return OutboundMessage(**fields)


def run_within(scenario: Callable[[], Awaitable[None]], seconds: float) -> None:
    """Run an async test scenario on a new loop; it fails if it takes more than `seconds`."""
    asyncio.run(asyncio.wait_for(scenario(), seconds))
