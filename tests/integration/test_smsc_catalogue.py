"""SmppCarrier against the catalogue of misbehaving SMSCs (tests/integration/smsc/faults.py).

One test per fault; each asserts the outcome the fault's docstring promises.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.carriers.smpp_errors import Action, StatusRule
from pigeon.domain.errors import (
    CarrierOutcomeUnknown,
    CarrierPermanentError,
    CarrierRetryableError,
    CarrierUnavailable,
)
from pigeon.ports import Continuation
from tests.integration.smsc import faults
from tests.integration.smsc.support import RecordingEvents, carrier_config, message


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


@asynccontextmanager
async def against(
    fault: type[faults.FakeSmsc], *, wait_bound: bool = True, **config: Any
) -> AsyncIterator[tuple[Any, SmppCarrier, RecordingEvents]]:
    async with fault() as smsc:
        events = RecordingEvents()
        settings = carrier_config(smsc.port, **{"name": "faulty", "response_timeout": 0.5, **config})
        carrier = SmppCarrier(settings, metrics=CarrierMetrics(CollectorRegistry()))
        await carrier.start(events)
        try:
            if wait_bound:
                assert await carrier.wait_bound(5), carrier.status()
            yield smsc, carrier, events
        finally:
            await carrier.stop()


def errors(carrier: SmppCarrier, kind: str) -> float:
    value = carrier.metrics.registry.get_sample_value(
        "pigeon_carrier_errors_total", {"carrier": "faulty", "kind": kind}
    )
    return value or 0.0


def test_the_catalogue_names_one_fault_per_class() -> None:
    assert len({cls.__name__ for cls in faults.CATALOGUE}) == len(faults.CATALOGUE) >= 8
    assert all(cls.__doc__ and "Expected:" in cls.__doc__ for cls in faults.CATALOGUE)


def test_bind_refused() -> None:
    async def scenario() -> None:
        async with against(faults.BindRefused, wait_bound=False) as (smsc, carrier, _):
            (bind,) = carrier.status().binds
            assert bind.state == "bind_refused" and "ESME_RBINDFAIL" in (bind.last_error or "")
            assert not carrier.status().bound
            with pytest.raises(CarrierUnavailable):
                await carrier.submit(message("not now"))
            await smsc.wait(lambda: smsc.bind_attempts >= 3)  # it keeps trying, with backoff
            assert errors(carrier, "bind") >= 2
            assert smsc.submits == []

    run(scenario)


def record_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the carriers' binds ask for between two connections, in order."""
    pauses: list[float] = []
    original = SmppCarrier.sleep_unless_stopped

    async def recording(self: SmppCarrier, seconds: float) -> None:
        pauses.append(seconds)
        await original(self, seconds)

    monkeypatch.setattr(SmppCarrier, "sleep_unless_stopped", recording)
    return pauses


def test_bind_then_unbind(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses = record_pauses(monkeypatch)

    async def scenario() -> None:
        async with against(
            faults.BindThenUnbind, wait_bound=False, reconnect_min=0.02, reconnect_max=10.0, enquire_link_interval=5.0
        ) as (smsc, _carrier, _):
            await smsc.wait(lambda: smsc.bind_attempts >= 5)
        # Each pause is the doubled delay with jitter (half to all of it); before, every
        # accepted bind started the backoff over, and each pause was at most reconnect_min.
        assert len(pauses) >= 4
        assert all(pause >= 0.02 * 2**n / 2 for n, pause in enumerate(pauses[:4])), pauses

    run(scenario)


class UnbindAfterAWhile(faults.FakeSmsc):
    """Not a fault: each session is ended with an unbind after `HOLD` seconds."""

    HOLD = 0.3

    async def on_bound(self, conn: faults.Connection) -> None:
        async def unbind_later() -> None:
            await asyncio.sleep(self.HOLD)
            conn.request(faults.UNBIND)

        self.spawn(unbind_later())


def test_a_session_that_lasted_an_enquire_link_interval_starts_the_backoff_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses = record_pauses(monkeypatch)

    async def scenario() -> None:
        async with against(UnbindAfterAWhile, reconnect_min=0.02, reconnect_max=10.0, enquire_link_interval=0.1) as (
            smsc,
            _carrier,
            _,
        ):
            await smsc.wait(lambda: smsc.bind_attempts >= 4)
        assert len(pauses) >= 3 and max(pauses) <= 0.02, pauses

    run(scenario)


def test_no_submit_resp() -> None:
    async def scenario() -> None:
        async with against(faults.NoSubmitResp) as (smsc, carrier, _):
            with pytest.raises(CarrierRetryableError) as raised:
                await carrier.submit(message("into the void"))
            assert raised.value.carrier_code == "smpp:response_timeout"
            assert "may have accepted" in raised.value.message
            assert len(smsc.submits) == 1
            status = carrier.status()
            assert status.window_in_use == 0 and status.bound
            assert errors(carrier, "response_timeout") == 1

    run(scenario)


@pytest.mark.parametrize("may_fail_over", [False, True])
def test_first_submit_unanswered(may_fail_over: bool) -> None:
    async def scenario() -> None:
        config = {"failover_on_unknown_outcome": may_fail_over}
        async with against(faults.FirstSubmitUnanswered, **config) as (smsc, carrier, events):
            with pytest.raises(CarrierOutcomeUnknown) as raised:
                await carrier.submit(message("taken, never answered"))
            assert raised.value.carrier_code == "smpp:response_timeout"
            assert raised.value.may_fail_over is may_fail_over and raised.value.retryable
            assert raised.value.progress is not None and raised.value.progress.stopped_at == 1
            await events.wait(lambda e: len(e.receipts) == 1)
            assert events.receipts[0].carrier_id == smsc.submits[0].message_id  # the SMSC has it
            ack = await carrier.submit(message("taken, never answered"))
            assert ack.carrier_ids == (smsc.submits[1].message_id,)
            assert carrier.status().binds[0].connects == 1

    run(scenario)


def test_first_submit_answered_late(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with against(faults.FirstSubmitAnsweredLate) as (smsc, carrier, events):
            slow = message("answered late")
            with pytest.raises(CarrierOutcomeUnknown) as raised:
                await carrier.submit(slow)
            assert raised.value.carrier_code == "smpp:response_timeout"
            await events.wait(lambda e: len(e.late) == 1)
            [late] = events.late
            assert (late.carrier, late.message_sid, late.account_sid) == ("faulty", slow.message_sid, slow.account_sid)
            assert (late.carrier_id, late.part, late.parts) == (smsc.submits[0].message_id, 1, 1)
            ack = await carrier.submit(message("answered at once"))
            assert ack.carrier_ids == (smsc.submits[1].message_id,)
            assert events.late == [late] and carrier.status().binds[0].connects == 1
            assert "answer to no request in flight" in caplog.text  # the answer to no submit at all

    with caplog.at_level(logging.WARNING, logger="pigeon.carriers.smpp_session"):
        run(scenario)


def test_first_submit_refused_late() -> None:
    async def scenario() -> None:
        async with against(faults.FirstSubmitRefusedLate) as (smsc, carrier, events):
            slow = message("refused late")
            with pytest.raises(CarrierOutcomeUnknown) as raised:
                await carrier.submit(slow)
            assert raised.value.carrier_code == "smpp:response_timeout"
            await events.wait(lambda e: len(e.refused_late) == 1)
            [late] = events.refused_late
            assert (late.carrier, late.message_sid, late.account_sid) == ("faulty", slow.message_sid, slow.account_sid)
            assert (late.part, late.parts, late.command_status, late.status_name) == (1, 1, 0x08, "ESME_RSYSERR")
            assert late.raw["command"] == "submit_sm_resp" and late.raw["sequence"] == smsc.submits[0].sequence
            ack = await carrier.submit(message("answered at once"))
            assert ack.carrier_ids == (smsc.submits[1].message_id,)
            assert events.late == [] and carrier.status().binds[0].connects == 1
            refused = carrier.metrics.registry.get_sample_value(
                "pigeon_carrier_submits_total", {"carrier": "faulty", "outcome": "refused_late"}
            )
            assert refused == 1

    run(scenario)


def test_unbind_during_submit() -> None:
    async def scenario() -> None:
        async with against(faults.UnbindDuringSubmit) as (smsc, carrier, _):
            with pytest.raises(CarrierRetryableError) as raised:
                await carrier.submit(message("first"))
            assert raised.value.carrier_code == "smpp:connection_lost"
            assert await carrier.wait_bound(5)
            ack = await carrier.submit(message("second"))
            assert ack.carrier_ids == (smsc.submits[-1].message_id,)
            assert carrier.status().binds[0].connects == 2
            assert smsc.bind_attempts == 2

    run(scenario)


def test_throttle_bursts() -> None:
    async def scenario() -> None:
        async with against(faults.ThrottleBursts, window=3) as (smsc, carrier, _):
            bodies = [f"burst {i}" for i in range(8)]
            acks = await asyncio.gather(*(carrier.submit(message(b)) for b in bodies))
            accepted = [s for s in smsc.submits if s.status == 0]
            assert Counter(s.short_message.decode() for s in accepted) == Counter(bodies)
            assert sorted(a.carrier_ids[0] for a in acks) == sorted(s.message_id or "" for s in accepted)
            throttles = carrier.metrics.registry.get_sample_value(
                "pigeon_carrier_throttles_total", {"carrier": "faulty"}
            )
            assert throttles == len(smsc.submits) - len(bodies) > 0

    run(scenario)


def test_receipt_before_submit_resp() -> None:
    async def scenario() -> None:
        async with against(faults.ReceiptBeforeSubmitResp) as (smsc, carrier, events):
            ack = await carrier.submit(message("fast network"))
            await events.wait(lambda e: len(e.receipts) == 1)
            assert events.receipts[0].carrier_id == ack.carrier_ids[0]
            assert [a.status for a in smsc.answers.values()] == [0]

    run(scenario)


def test_receipt_for_unknown_id() -> None:
    async def scenario() -> None:
        async with against(faults.ReceiptForUnknownId) as (smsc, _, events):
            await events.wait(lambda e: len(e.receipts) == 1)
            (receipt,) = events.receipts
            assert (receipt.carrier_id, receipt.stat) == ("999999", "UNDELIV")
            await smsc.wait(lambda: len(smsc.answers) == 1)
            assert [a.status for a in smsc.answers.values()] == [0]

    run(scenario)


@pytest.mark.parametrize(("id_format", "matches"), [("hex_to_decimal", True), ("as_is", False)])
def test_hex_ids(id_format: str, matches: bool) -> None:
    async def scenario() -> None:
        async with against(faults.HexIds, receipt_id_format=id_format) as (smsc, carrier, events):
            ack = await carrier.submit(message("hex"))
            await events.wait(lambda e: len(e.receipts) == 1)
            raw_id = smsc.submits[0].message_id or ""
            assert raw_id == f"{int(raw_id, 16):010X}"  # zero-padded upper-case hex
            assert ack.raw["message_ids"] == [raw_id]
            assert (events.receipts[0].carrier_id == ack.carrier_ids[0]) is matches

    run(scenario)


def test_odd_texts() -> None:
    """The carrier's side: over-long ids are cut alike in the submit's answer and the receipt.
    What the store makes of the rest is in test_smpp_dispatch (on both stores)."""

    async def scenario() -> None:
        async with against(faults.OddTexts) as (smsc, carrier, events):
            await events.wait(lambda e: len(e.receipts) == 1 and len(e.inbound) == 1)
            ack = await carrier.submit(message("odd"))
            await events.wait(lambda e: len(e.receipts) == 2)
            raw_id = smsc.submits[0].message_id or ""
            assert len(raw_id) == 90 and ack.carrier_ids == (raw_id[:80],)
            assert events.receipts[1].carrier_id == ack.carrier_ids[0]
            await smsc.wait(lambda: len(smsc.answers) == 3)
            assert {a.status for a in smsc.answers.values()} == {0}

    run(scenario)


def test_reused_ids() -> None:
    """The carrier's side: the acks carry the ids as given, the repeated one and the empty
    one alike. What the store makes of them is in test_smpp_dispatch (on both stores)."""

    async def scenario() -> None:
        async with against(faults.ReusedIds) as (_, carrier, _events):
            acks = [await carrier.submit(message(f"m{i}")) for i in range(3)]
            assert [a.carrier_ids for a in acks] == [("7",), ("7",), ("",)]

    run(scenario)


def test_garbled_pdu() -> None:
    async def scenario() -> None:
        async with against(faults.GarbledPdu) as (smsc, carrier, events):
            await smsc.wait(lambda: len(smsc.answers) == 1)
            (answer,) = smsc.answers.values()
            assert (answer.command_id, answer.status) == (faults.GENERIC_NACK, 0x02)
            assert errors(carrier, "pdu") == 1
            ack = await carrier.submit(message("still here"))
            assert len(ack.carrier_ids) == 1
            assert carrier.status().binds[0].connects == 1 and events.inbound == []

    run(scenario)


def _logged_without_numbers(caplog: pytest.LogCaptureFixture) -> None:
    """The garbled PDUs were logged (their layout, to find the fault), but neither their
    sender's nor their recipient's number, as text or as hex: a log is out of `pigeon
    erase`'s reach."""
    logged = [r for r in caplog.records if r.name.startswith("pigeon.carriers") and "pdu" in r.__dict__]
    assert logged
    for record in logged:
        for number in ("447700900123", "14155550100"):
            assert number not in str(record.__dict__) and number.encode().hex() not in str(record.__dict__)


def test_garbled_pdus_are_logged_without_numbers(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        for fault in (faults.GarbledDataSm, faults.UnreadableTlvs):
            async with against(fault) as (smsc, _carrier, _events):
                await smsc.wait(lambda: len(smsc.answers) == 2)

    with caplog.at_level(logging.WARNING, logger="pigeon.carriers"):
        run(scenario)
    _logged_without_numbers(caplog)


def test_garbled_data_sm() -> None:
    async def scenario() -> None:
        async with against(faults.GarbledDataSm) as (smsc, carrier, events):
            await smsc.wait(lambda: len(smsc.answers) == 2)
            answers = [smsc.answers[s] for s in smsc.sequences]
            assert [(a.command_id, a.status) for a in answers] == [
                (faults.GENERIC_NACK, 0x02),  # ESME_RINVCMDLEN, as for a garbled deliver_sm
                (faults.DATA_SM | faults.RESP, 0),
            ]
            assert errors(carrier, "pdu") == 1
            assert [m.body for m in events.inbound] == ["still readable"]
            assert carrier.status().binds[0].connects == 1

    run(scenario)


def test_unreadable_tlvs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with against(faults.UnreadableTlvs) as (smsc, carrier, events):
            await smsc.wait(lambda: len(smsc.answers) == 2)
            answers = [smsc.answers[s] for s in smsc.sequences]
            assert [(a.command_id, a.status) for a in answers] == [(faults.DELIVER_SM | faults.RESP, 0)] * 2
            assert sorted(r.carrier_id for r in events.receipts) == ["4200100", "4200101"]
            assert errors(carrier, "tlv") == 2 and errors(carrier, "pdu") == 0

    with caplog.at_level(logging.WARNING, logger="pigeon.carriers.smpp"):
        run(scenario)
    logged = [r for r in caplog.records if "unreadable optional parameters" in r.getMessage()]
    assert all(r.levelno == logging.WARNING for r in logged)
    assert sorted((r.__dict__["command_id"], r.__dict__["sequence"]) for r in logged) == [
        ("0x00000005", 1),
        ("0x00000005", 2),
    ]


def test_vendor_status() -> None:
    async def scenario() -> None:
        async with against(faults.VendorStatus) as (_, carrier, _events):
            with pytest.raises(CarrierRetryableError) as raised:
                await carrier.submit(message("vendor says no"))
            assert (raised.value.carrier_code, raised.value.error_code) == ("0x00000401", 30008)
            assert carrier.status().bound and carrier.status().binds[0].connects == 1

        overrides = {0x401: StatusRule(Action.PERMANENT, 30007)}
        async with against(faults.VendorStatus, status_map=overrides) as (_, carrier, _events):
            with pytest.raises(CarrierPermanentError) as refused:
                await carrier.submit(message("vendor says no"))
            assert (refused.value.carrier_code, refused.value.error_code) == ("0x00000401", 30007)

    run(scenario)


def test_later_part_refused() -> None:
    async def scenario() -> None:
        async with against(faults.LaterPartRefused) as (smsc, carrier, _):
            with pytest.raises(CarrierRetryableError) as raised:
                await carrier.submit(message("x" * 400))  # three parts
            first = smsc.submits[0].message_id
            assert raised.value.carrier_code == "ESME_RSUBMITFAIL"
            assert getattr(raised.value, "accepted_carrier_ids", None) == (first,)
            assert f"part 1 was accepted as {first}" in raised.value.message
            assert len(smsc.submits) == 2  # part 3 was never sent
            progress = raised.value.progress
            assert progress is not None
            assert (progress.parts, progress.first_part, progress.stopped_at) == (3, 1, 2)
            udh = smsc.submits[0].short_message[:6]
            assert udh[:3] == b"\x05\x00\x03" and progress.reference == udh[3]
            assert progress.reference is not None

            # The rest only: parts 2 and 3, with part 1's reference and part count.
            rest = Continuation(reference=progress.reference, parts=3, first_part=2)
            ack = await carrier.submit(message("x" * 400, continuation=rest))
            assert ack.first_part == 2 and len(ack.carrier_ids) == 2
            sent = [s.short_message[:6] for s in smsc.submits[2:]]
            assert sent == [bytes([5, 0, 3, progress.reference, 3, n]) for n in (2, 3)]
            assert ack.carrier_ids == tuple(s.message_id for s in smsc.submits[2:])

    run(scenario)


def test_silent_link() -> None:
    async def scenario() -> None:
        async with against(faults.SilentLink, enquire_link_interval=0.2, response_timeout=0.3) as (smsc, carrier, _):
            await carrier.submit(message("before"))
            await smsc.wait(lambda: smsc.bind_attempts >= 2)
            assert carrier.status().binds[0].last_error == "enquire_link unanswered"
            assert await carrier.wait_bound(5)
            await carrier.submit(message("after"))
            assert carrier.status().binds[0].connects == 2

    run(scenario)


def test_every_fault_has_a_test() -> None:
    tested = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    snake = {
        "".join("_" + c.lower() if c.isupper() else c for c in cls.__name__).lstrip("_") for cls in faults.CATALOGUE
    }
    assert snake <= tested, snake - tested
