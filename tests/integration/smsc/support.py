"""What the SMPP tests share: a recording CarrierEvents, carrier settings for tests, messages."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from pigeon.carriers.config import SmppCarrierConfig
from pigeon.domain.segments import plan_segments
from pigeon.ports import InboundSms, OutboundMessage, Receipt


class RecordingEvents:
    """A CarrierEvents that keeps everything; ``fail_receipts`` makes the next N calls raise."""

    def __init__(self) -> None:
        self.receipts: list[Receipt] = []
        self.inbound: list[InboundSms] = []
        self.fail_receipts = 0
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
