"""Hostile SMSC-originated PDUs against a real SmppCarrier and the real intake, on both stores.

A fixed-seed generator sends a few hundred deliver_sm (receipts and mobile-originated texts
with odd data codings, user data headers, TLVs, addresses, lengths and texts) and other PDUs
an ESME should refuse or ignore. Whatever comes, the carrier must answer every request
(deliver_sm_resp, or generic_nack for what cannot be read), keep its bind, record what it
acknowledged, and log no error: an error there was a PDU that failed its transaction, which
the SMSC would then resend for ever. Runs of this generator on PostgreSQL found NUL and
over-long receipt fields doing exactly that (pigeon.domain.storable), and SAR references of
four octets overflowing their column.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pigeon.app import numbers as number_use
from pigeon.app.carrier_events import CarrierEventSink
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.store.tables import messages, unmatched_receipts, unroutable_inbound
from tests.integration.pipeline import Pipeline
from tests.integration.smsc import faults
from tests.integration.smsc.faults import DELIVER_SM, RESP, cstr, pdu, tlv
from tests.integration.smsc.support import carrier_config, message

PDUS = 300


class Generator:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def octets(self, n: int) -> bytes:
        return bytes(self.r.randrange(256) for _ in range(n))

    def address(self) -> bytes:
        r = self.r
        choice = r.random()
        if choice < 0.5:
            return cstr(r.choice(["447700900123", "14155550100", "", "+1415", "abc", "0" * 20]))
        if choice < 0.8:
            return cstr("".join(r.choice("0123456789") for _ in range(r.randrange(0, 70))))
        return self.octets(r.randrange(0, 30)).replace(b"\x00", b"1") + b"\x00"

    def udh(self) -> bytes:
        r = self.r
        choice = r.random()
        if choice < 0.4:
            return bytes([5, 0, 3, r.randrange(256), r.choice([0, 1, 2, 255]), r.choice([0, 1, 2, 3, 255])])
        if choice < 0.6:
            return bytes([6, 8, 4, r.randrange(256), r.randrange(256), r.choice([0, 1, 2]), r.choice([0, 1, 2, 9])])
        n = r.randrange(0, 12)
        return bytes([n]) + self.octets(r.randrange(0, n + 3))

    def receipt_text(self) -> bytes:
        r = self.r
        fields = {
            "id": r.choice(["4200000", "", "x" * 90, "00ff", "\u03a9"]),
            "sub": "001",
            "dlvrd": r.choice(["001", "xyz"]),
            "submit date": r.choice(["2612061200", "9913321299", ""]),
            "done date": r.choice(["2612061201", "0000000000", "99999999999999999999", "bad"]),
            "stat": r.choice(["DELIVRD", "UNDELIV", "REJECTD", "EXPIRED", "DELIVERED_TO_HANDSET", ""]),
            "err": r.choice(["000", "zzz", "99999999999999999999", ""]),
        }
        text = " ".join(f"{k}:{v}" for k, v in fields.items() if r.random() < 0.85) + " text:hi"
        padding = b"\x00" * r.choice([0, 0, 1, 4])
        return text.encode(r.choice(["latin-1", "utf-8", "utf-16-be"]), "replace") + padding

    def tlvs(self) -> bytes:
        r = self.r
        out = b""
        for _ in range(r.randrange(0, 4)):
            tag = r.choice([0x001E, 0x0427, 0x0423, 0x0424, 0x020C, 0x020E, 0x020F, r.randrange(65536)])
            value = {
                0x001E: r.choice([cstr("4200000"), b"", b"noterm", cstr("x" * 90), b"a\x00b\x00"]),
                0x0427: r.choice([bytes([r.randrange(10)]), b"", b"\x02\x02"]),
                0x0423: r.choice([b"\x03\x00\x01", b"", self.octets(5)]),
                0x0424: self.octets(r.choice([0, 10, 300])),
            }.get(tag, r.choice([b"", b"\x00", b"\x00\x01", b"\xff\xff", b"\x00\x00\x00"]))
            out += tlv(tag, value)
        if r.random() < 0.2:  # a SAR part whose reference may be longer than SMPP's two octets
            reference = r.choice([b"\x00\x07", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff\xff"])
            out += tlv(0x020C, reference) + tlv(0x020E, b"\x02") + tlv(0x020F, r.choice([b"\x01", b"\x02"]))
        if r.random() < 0.1:
            out += struct.pack("!HH", 0x001E, 50) + b"short"  # a TLV longer than what is left
        return out

    def deliver_sm(self) -> bytes:
        r = self.r
        esm = r.choice([0x00, 0x04, 0x40, 0x44, 0x08, r.randrange(256)])
        coding = r.choice([0, 1, 3, 4, 8, 8, 0xF0, r.randrange(256)])
        if esm & 0x04 and r.random() < 0.8:
            text = self.receipt_text()
        else:
            text = r.choice(
                ["Hi \u2713".encode("utf-16-be") + b"\x00\x00", b"STOP", b"a\x00b", self.octets(r.randrange(200))]
            )
        if esm & 0x40 or r.random() < 0.1:
            text = self.udh() + text
        text = text[:255]
        length = len(text) if r.random() < 0.85 else r.choice([0, 255, max(0, len(text) - 3)])
        body = (
            cstr(r.choice(["", "CMT"]))
            + bytes([r.randrange(8), r.randrange(20)])
            + self.address()
            + bytes([r.randrange(8), r.randrange(20)])
            + self.address()
            + bytes([esm, 0, 0])
            + cstr("")
            + cstr("")
            + bytes([0, 0, coding, 0, length])
            + text
            + self.tlvs()
        )
        return body[: r.randrange(len(body))] if r.random() < 0.05 else body

    def other(self, sequence: int) -> bytes:
        r = self.r
        return r.choice(
            [
                pdu(0x103, 0, sequence, cstr("") + bytes([1, 1]) + self.address() + bytes([1, 1]) + self.address()),
                pdu(0x0B, 0, sequence, cstr("pigeon") + cstr("")),  # outbind on a bound session
                pdu(r.randrange(0x200, 0x7FFFFFFF), 0, sequence, self.octets(r.randrange(20))),
                pdu(0x04, 0, sequence, self.deliver_sm()),  # submit_sm, from the SMSC
                pdu(DELIVER_SM | RESP, 0, sequence),  # answers to nothing we sent
                pdu(faults.GENERIC_NACK, 3, sequence),
                pdu(0x15, 0, sequence),
            ]
        )


class Hostile(faults.FakeSmsc):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.generator = Generator(seed)
        self.requests: list[int] = []  # sequences of the requests sent, which want an answer
        self.sent_all = False

    async def on_bound(self, conn: faults.Connection) -> None:
        self.spawn(self._flood(conn))

    async def _flood(self, conn: faults.Connection) -> None:
        g = self.generator
        for i in range(PDUS):
            sequence = 1_000_000 + i
            data = pdu(DELIVER_SM, 0, sequence, g.deliver_sm()) if g.r.random() < 0.8 else g.other(sequence)
            if not struct.unpack("!I", data[4:8])[0] & RESP:
                self.requests.append(sequence)
            conn.send(data)
            if i % 20 == 0:
                await asyncio.sleep(0.01)
        self.sent_all = True

    def answered(self) -> bool:
        return self.sent_all and all(s in self.answers for s in self.requests)


@pytest.mark.parametrize("seed", [1, 2])
def test_hostile_pdus_are_all_answered_and_recorded_without_an_error(
    pipe: Pipeline, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    with pipe.db.write() as conn:
        number_use.provision(conn, account_sid=pipe.account_sid, phone_number="+447700900123", now=pipe.clock.now())

    async def scenario() -> None:
        async with Hostile(seed) as smsc:
            settings = carrier_config(smsc.port, name="hostile", response_timeout=1.0)
            carrier = SmppCarrier(settings, metrics=CarrierMetrics(CollectorRegistry()))
            await carrier.start(CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com"))
            try:
                assert await carrier.wait_bound(5)
                await smsc.wait(smsc.answered, timeout=20)
                # A deliver_sm is taken (ESME_ROK) or refused as unreadable (generic_nack); a
                # temporary error would mean its recording failed and it comes again.
                statuses = {(a.command_id, a.status) for a in smsc.answers.values()}
                assert {s for c, s in statuses if c == DELIVER_SM | RESP} == {0}, statuses
                ack = await carrier.submit(message("still bound"))
                assert len(ack.carrier_ids) == 1
                assert [b.connects for b in carrier.status().binds] == [1]
            finally:
                await carrier.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(asyncio.wait_for(scenario(), 60))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    with pipe.db.read() as conn:
        kept = sum(
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (messages, unmatched_receipts, unroutable_inbound)
        )
    assert kept > PDUS // 4  # what was answered was recorded somewhere
