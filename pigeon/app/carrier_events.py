"""What carriers report, taken durably: receipts to the receipt rules, mobile-originated
messages to the inbound intake, a submit's late acceptance or refusal to
`pigeon.app.late_acceptance`. A carrier acknowledges an event to its network only after the
call here returns, that is after the event is committed.

The parts of a concatenated message are kept in the store until the last one comes
(`pigeon.app.reassembly`); the message is then recorded in the transaction that stores that
last part and hands the parts over, so it is recorded once whatever crashes when."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Connection

from pigeon.app import reassembly
from pigeon.app.inbound import Intake, receive
from pigeon.app.late_acceptance import record_late_acceptance, record_late_refusal
from pigeon.app.receipts import ReceiptSink
from pigeon.domain.pricing import PriceTable
from pigeon.ports import Clock, InboundPart, InboundSms, LateAcceptance, LateRefusal, Receipt
from pigeon.store.engine import Database


class CarrierEventSink:
    def __init__(self, db: Database, clock: Clock, *, base_url: str, prices: PriceTable | None = None) -> None:
        self.db = db
        self.clock = clock
        self.base_url = base_url
        self.prices = prices  # received messages' prices (None: free)
        self.receipts = ReceiptSink(db, clock)

    async def on_receipt(self, receipt: Receipt) -> None:
        await self.receipts.on_receipt(receipt)

    def _receive(self, conn: Connection, message: InboundSms) -> Intake:
        return receive(conn, message, now=self.clock.now(), base_url=self.base_url, prices=self.prices)

    def take_inbound(self, message: InboundSms) -> Intake:
        with self.db.write() as conn:
            return self._receive(conn, message)

    async def on_inbound(self, message: InboundSms) -> None:
        await asyncio.to_thread(self.take_inbound, message)

    def take_inbound_part(self, part: InboundPart) -> Intake | None:
        """Store the part; what became of its message if the part completed it."""
        with self.db.write() as conn:
            message = reassembly.take_part(conn, part, now=self.clock.now())
            return self._receive(conn, message) if message is not None else None

    async def on_inbound_part(self, part: InboundPart) -> bool:
        return await asyncio.to_thread(self.take_inbound_part, part) is not None

    def take_late_acceptance(self, late: LateAcceptance) -> bool:
        with self.db.write() as conn:
            return record_late_acceptance(conn, late, now=self.clock.now())

    async def on_late_acceptance(self, late: LateAcceptance) -> None:
        await asyncio.to_thread(self.take_late_acceptance, late)

    def take_late_refusal(self, late: LateRefusal) -> bool:
        with self.db.write() as conn:
            return record_late_refusal(conn, late, now=self.clock.now())

    async def on_late_refusal(self, late: LateRefusal) -> None:
        await asyncio.to_thread(self.take_late_refusal, late)

    def sweep_inbound_parts(self, limit: int = 100) -> int:
        """Hand over messages whose missing parts did not come in time (see `reassembly.sweep`)."""
        return reassembly.sweep(self.db, self._receive, now=self.clock.now(), limit=limit)
