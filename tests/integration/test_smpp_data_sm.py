"""data_sm from the SMSC (SMPP 3.4 §4.7), against the npm `smpp` SMSC and a real store: SMSCs
send receipts and mobile-originated texts as data_sm, and the connector takes them as it takes
deliver_sm — texts into the inbound pipeline, receipts to their messages — answering each with
a data_sm_resp once the store has it, and with ESME_RX_T_APPN when the store cannot take it now.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pigeon.app.carrier_events import CarrierEventSink
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.store.engine import Database
from pigeon.store.tables import messages, phone_numbers, webhook_deliveries
from pigeon.testing import FrozenClock
from tests.integration.locked_sqlite import locked_sqlite
from tests.integration.pipeline import SENDER, Pipeline, make_pipeline
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import carrier_config, run_within
from tests.integration.test_smpp_dispatch import reached

pytestmark = pytest.mark.usefixtures("npm_smsc")

APP = "https://app.example.com/sms"
HANDSET = "447700900123"
ESME_RX_T_APPN = 0x64


@asynccontextmanager
async def bound(pipe: Pipeline, smsc: NodeSmsc) -> AsyncIterator[SmppCarrier]:
    """A carrier bound to the SMSC, its events into `pipe`'s store."""
    carrier = SmppCarrier(carrier_config(smsc.port), metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com"))
    try:
        assert await carrier.wait_bound(5), carrier.status()
        yield carrier
    finally:
        await carrier.stop()


def answered(command: str, kind: str) -> Any:
    """The SMSC's event for a `command` of `kind` the ESME acknowledged with its own response."""
    return lambda e: e.get("event") == "deliver_acked" and e["kind"] == kind and e["resp"] == f"{command}_resp"


def with_webhook(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        conn.execute(phone_numbers.update().where(phone_numbers.c.phone_number == SENDER).values(sms_url=APP))


def inbound(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(messages).where(messages.c.direction == "inbound")).mappings()
        return [dict(r) for r in rows]


def inbound_webhooks(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(sa.select(webhook_deliveries).where(webhook_deliveries.c.kind == "inbound")).mappings()
        return [dict(r) for r in rows]


# -- mobile-originated texts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mo", "text"),
    [
        ({"text": "Hello from data_sm €"}, "Hello from data_sm €"),
        ({"parts": ["first half, ", "second half"], "concat": "sar"}, "first half, second half"),
        ({"parts": ["Grüße ", "aus ☃"], "concat": "udh16", "data_coding": 8}, "Grüße aus ☃"),
    ],
    ids=["whole", "sar-parts", "udh-parts-ucs2"],
)
def test_a_text_in_data_sm_reaches_the_inbound_pipeline(pipe: Pipeline, mo: dict[str, Any], text: str) -> None:
    with_webhook(pipe)

    async def scenario() -> None:
        async with NodeSmsc.running(deliver_command="data_sm") as smsc, bound(pipe, smsc):
            await smsc.command("mo", source=HANDSET, destination=SENDER.lstrip("+"), **mo)
            parts = len(mo.get("parts", [text]))
            await smsc.wait_count(answered("data_sm", "mo"), parts)
            assert not [e for e in smsc.events if e.get("event") == "deliver_refused"]

    run_within(scenario, 30)
    [message] = inbound(pipe.db)
    assert (message["from_"], message["to"], message["body"]) == (f"+{HANDSET}", SENDER, text)
    assert message["status"] == "received" and message["num_segments"] == len(mo.get("parts", [text]))
    [webhook] = inbound_webhooks(pipe.db)
    params = dict(webhook["params"])  # stored as [name, value] pairs, in the order they are sent
    assert (webhook["url"], params["Body"], params["MessageSid"]) == (APP, text, message["sid"])


# -- receipts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stat", "err", "status", "code"),
    [
        (False, "UNDELIV", "002", "undelivered", 30005),  # the err is in network_error_code only
        (False, "DELIVRD", "000", "delivered", None),
        (True, "UNDELIV", "004", "undelivered", 30007),
    ],
    ids=["tlvs-undelivered", "tlvs-delivered", "text-undelivered"],
)
def test_a_receipt_in_data_sm_settles_its_message(
    pipe: Pipeline, text: bool, stat: str, err: str, status: str, code: int | None
) -> None:
    to = "+14155552671"
    smsc_options: dict[str, Any] = {
        "deliver_command": "data_sm",
        "data_sm_receipt_text": text,
        "receipt_stat": {to[1:]: stat},
        "receipt_err": {to[1:]: err},
    }

    async def scenario() -> None:
        async with NodeSmsc.running(**smsc_options) as smsc, bound(pipe, smsc) as carrier:
            sid = pipe.send(to=to)
            await pipe.round(route=[carrier]).run_once()
            await smsc.wait_event(answered("data_sm", "receipt"))
            deadline = asyncio.get_running_loop().time() + 10
            while not reached(pipe, sid, status):
                assert asyncio.get_running_loop().time() < deadline, pipe.message(sid)
                await asyncio.sleep(0.02)
            assert pipe.message(sid)["error_code"] == code
            [event] = pipe.events(sid, "receipt")
            raw = event["detail"]["raw"]
            assert ("stat:" in raw) is text and "receipted_message_id=" in raw

    run_within(scenario, 30)


# -- a store that cannot take it now ----------------------------------------------------------------


@pytest.fixture
def locked(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Pipeline, sqlite3.Connection]]:
    """The pipeline on a SQLite store, and another program's connection to it: BEGIN IMMEDIATE
    there holds the write lock, so Pigeon's writes fail (StoreUnavailable) until ROLLBACK."""
    db, other = locked_sqlite(tmp_path, busy_ms=50)
    other.execute("ROLLBACK")
    pipeline = make_pipeline(db, clock)
    try:
        with_webhook(pipeline)
        yield pipeline, other
    finally:
        pipeline.spool.stop()
        other.close()
        db.dispose()


@pytest.mark.parametrize("command", ["deliver_sm", "data_sm"])
def test_a_text_the_store_cannot_take_now_is_refused_for_now_and_taken_when_resent(
    locked: tuple[Pipeline, sqlite3.Connection], command: str
) -> None:
    """data_sm is answered as deliver_sm is: ESME_RX_T_APPN in its own response, so the SMSC keeps
    it and sends it again; once the store takes it, it is acknowledged and recorded once."""
    pipe, other = locked

    async def scenario() -> None:
        async with NodeSmsc.running(deliver_command=command) as smsc, bound(pipe, smsc):
            other.execute("BEGIN IMMEDIATE")
            await smsc.command("mo", source=HANDSET, destination=SENDER.lstrip("+"), text="locked out")
            refused = await smsc.wait_event(lambda e: e.get("event") == "deliver_refused")
            assert (refused["command"], refused["resp"], refused["status"]) == (
                command,
                f"{command}_resp",
                ESME_RX_T_APPN,
            )
            other.execute("ROLLBACK")
            acked = await smsc.wait_event(answered(command, "mo"))
            assert acked["attempts"] >= 2

    run_within(scenario, 30)
    [message] = inbound(pipe.db)
    assert message["body"] == "locked out"
    assert len(inbound_webhooks(pipe.db)) == 1
