"""What carriers report, taken durably: receipts to the receipt rules, mobile-originated
messages to the inbound intake. A carrier acknowledges an event to its network only after
the call here returns, that is after the event is committed."""

from __future__ import annotations

import asyncio

from pigeon.app.inbound import Intake, receive
from pigeon.app.receipts import ReceiptSink
from pigeon.ports import Clock, InboundSms, Receipt
from pigeon.store.engine import Database


class CarrierEventSink:
    def __init__(self, db: Database, clock: Clock, *, base_url: str) -> None:
        self.db = db
        self.clock = clock
        self.base_url = base_url
        self.receipts = ReceiptSink(db, clock)

    async def on_receipt(self, receipt: Receipt) -> None:
        await self.receipts.on_receipt(receipt)

    def take_inbound(self, message: InboundSms) -> Intake:
        with self.db.write() as conn:
            return receive(conn, message, now=self.clock.now(), base_url=self.base_url)

    async def on_inbound(self, message: InboundSms) -> None:
        await asyncio.to_thread(self.take_inbound, message)
