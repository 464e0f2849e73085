"""deliver_sm with national numbers under TON 0 ("unknown"), through a real SmppCarrier and the
real intake, on both stores: they are kept as the SMSC wrote them, never given a "+" that would
make them another country's numbers, and nothing on the way fails on them."""

from __future__ import annotations

import asyncio
import logging

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pigeon.app.carrier_events import CarrierEventSink
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.store.tables import alerts, messages, opt_outs, unroutable_inbound
from tests.integration.pipeline import SENDER, Pipeline
from tests.integration.smsc import faults
from tests.integration.smsc.faults import DELIVER_SM, RESP, deliver_sm_body
from tests.integration.smsc.support import carrier_config

UNKNOWN_TON = 0
NATIONAL_HANDSET, NATIONAL_NUMBER = "07700900123", "02079460000"


class NationalAddresses(faults.FakeSmsc):
    """After bind: texts from a national number to one of ours, and to a national number."""

    async def on_bound(self, conn: faults.Connection) -> None:
        ours = (1, SENDER.removeprefix("+"))
        self.sequences = [
            conn.request(
                DELIVER_SM, deliver_sm_body(text, esm_class=0, source=(UNKNOWN_TON, NATIONAL_HANDSET), destination=ours)
            )
            for text in (b"hello", b"STOP")  # STOP: an opt-out, and an automatic reply to a number not in E.164
        ] + [
            conn.request(
                DELIVER_SM,
                deliver_sm_body(b"to whom?", esm_class=0, destination=(UNKNOWN_TON, NATIONAL_NUMBER)),
            )
        ]


def test_national_numbers_are_kept_as_sent_and_nothing_fails_on_them(
    pipe: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with NationalAddresses() as smsc:
            carrier = SmppCarrier(
                carrier_config(smsc.port, name="national"), metrics=CarrierMetrics(CollectorRegistry())
            )
            await carrier.start(CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com"))
            try:
                await smsc.wait(lambda: hasattr(smsc, "sequences") and all(s in smsc.answers for s in smsc.sequences))
                answers = [smsc.answers[s] for s in smsc.sequences]
                assert [(a.command_id, a.status) for a in answers] == [(DELIVER_SM | RESP, 0)] * 3
            finally:
                await carrier.stop()

    with caplog.at_level(logging.WARNING):
        asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with pipe.db.read() as conn:
        received = conn.execute(
            sa.select(messages.c.from_, messages.c.body).where(messages.c.direction == "inbound")
        ).all()
        unroutable = conn.execute(sa.select(unroutable_inbound.c.from_, unroutable_inbound.c.to)).all()
        opted_out = conn.execute(sa.select(opt_outs.c.recipient)).scalars().all()
        alerted = conn.execute(sa.select(alerts.c.alert_text)).scalars().all()
    assert sorted(received) == [(NATIONAL_HANDSET, "STOP"), (NATIONAL_HANDSET, "hello")]
    assert opted_out == [NATIONAL_HANDSET]
    # The reply to STOP cannot go to a number that is not E.164: refused, and the account told.
    assert [text for text in alerted if "automatic" in text] == [
        f"The automatic STOP reply to {NATIONAL_HANDSET} could not be sent: "
        f"The 'To' number {NATIONAL_HANDSET} is not a valid phone number."
    ]
    # Not E.164, so it matches none of the accounts' numbers: kept aside, as any stranger's.
    assert unroutable == [("+447700900123", NATIONAL_NUMBER)]
