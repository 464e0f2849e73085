"""SmppCarrier against an SMSC this project did not write: the npm `smpp` package in server mode.

Each test starts its own SMSC process (tests/integration/smsc/smsc.js) and checks what that
SMSC decoded with its own code — data_coding, UDH, septets, text — not what we meant to send.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.domain.errors import CarrierError, CarrierRetryableError, CarrierUnavailable
from pigeon.domain.segments import encode_part, plan_segments
from pigeon.ports import SubmitAck
from pigeon.store.engine import Database
from pigeon.store.schema import upgrade
from pigeon.workers.loop import run_loop
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import RecordingEvents, carrier_config, message, run_within

pytestmark = pytest.mark.usefixtures("npm_smsc")
run = functools.partial(run_within, seconds=45)


@asynccontextmanager
async def connected(
    smsc_options: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[tuple[NodeSmsc, SmppCarrier, RecordingEvents]]:
    async with migrated_store() as store, NodeSmsc.running(**(smsc_options or {})) as smsc:
        async with process(smsc, store, **config) as (carrier, events):
            yield smsc, carrier, events


@asynccontextmanager
async def migrated_store() -> AsyncIterator[Database]:
    """A store for inbound parts, as `pigeon db upgrade` makes it."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Database.from_url(f"sqlite:///{tmp}/pigeon.db")
        await asyncio.to_thread(upgrade, store.engine)
        try:
            yield store
        finally:
            store.dispose()


@asynccontextmanager
async def process(smsc: NodeSmsc, store: Database, **config: Any) -> AsyncIterator[tuple[SmppCarrier, RecordingEvents]]:
    """What one Pigeon worker process runs for this carrier: the bind, and the reassembly sweeper."""
    events = RecordingEvents(store)
    carrier = SmppCarrier(carrier_config(smsc.port, **config), metrics=CarrierMetrics(CollectorRegistry()))
    stop = asyncio.Event()
    sweeper = asyncio.create_task(run_loop("reassembly", events.sweep, stop, idle=0.1))
    await carrier.start(events)
    try:
        assert await carrier.wait_bound(5), carrier.status()
        yield carrier, events
    finally:
        await carrier.stop()
        stop.set()
        await sweeper


def texts(records: list[dict[str, Any]]) -> str:
    return "".join(r["text"] for r in records)


# --- bind and encodings -----------------------------------------------------------------------


def test_binds_as_transceiver_and_submits_gsm7_as_unpacked_septets() -> None:
    body = "Hello @ [world] € £5 ñ"

    async def scenario() -> None:
        async with connected() as (smsc, carrier, _):
            ack = await carrier.submit(message(body, to="+447700900123", sender="+14155550100"))
            state = await smsc.state()
            assert [b["mode"] for b in state["binds"]] == ["transceiver"]
            (record,) = smsc.accepted()
            assert ack.carrier_ids == (record["message_id"],)
            assert record["data_coding"] == 0 and record["esm_class"] == 0
            assert record["text"] == body  # decoded by the npm package's own GSM 03.38 table
            payload = bytes.fromhex(record["payload_hex"])
            assert payload == encode_part(body, "GSM-7") and max(payload) < 0x80
            assert len(payload) == len(body) + 3  # "[", "]" and "€" cost an escape septet each
            assert (record["source_addr"], record["source_addr_ton"], record["source_addr_npi"]) == (
                "14155550100",
                1,
                1,
            )
            assert (record["destination_addr"], record["dest_addr_ton"]) == ("447700900123", 1)
            assert record["registered_delivery"] == 1

    run(scenario)


@pytest.mark.parametrize("body", ["Привет, мир", "Hi 👋🏽 — see you 🇬🇧"], ids=["cyrillic", "emoji"])
def test_submits_ucs2_with_data_coding_8(body: str) -> None:
    async def scenario() -> None:
        async with connected() as (smsc, carrier, _):
            await carrier.submit(message(body))
            (record,) = smsc.accepted()
            assert record["data_coding"] == 8
            assert record["text"] == body
            assert bytes.fromhex(record["payload_hex"]) == body.encode("utf-16-be")

    run(scenario)


def test_a_latin1_default_alphabet_sends_latin1_explicitly_and_reads_data_coding_0_as_latin1() -> None:
    async def scenario() -> None:
        async with connected(default_alphabet="latin1") as (smsc, carrier, events):
            ack = await carrier.submit(message("café @ 5"))
            (record,) = smsc.accepted()
            assert record["data_coding"] == 3 and ack.raw["data_coding"] == 3
            assert bytes.fromhex(record["payload_hex"]) == b"caf\xe9 @ 5"
            assert record["text"] == "café @ 5"  # decoded by the npm package as Latin-1

            latin1 = "café".encode("latin-1").hex()
            await smsc.command("mo", source="447700900123", destination="14155550100", parts_hex=[latin1])
            await events.wait(lambda e: len(e.inbound) == 1)
            (sms,) = events.inbound
            assert sms.body == "café" and sms.raw["data_coding"] == 0

    run(scenario)


def test_the_binds_throughput_and_window_count_the_parts_sent_not_the_messages_segments() -> None:
    """A latin1 carrier splits by octets (140, then 134 a part): 150 plain characters are one
    GSM-7 segment (``num_segments``, Twilio's count, which per-sender pacing follows) and two
    submit_sm. The bind's own limit takes a turn for each submit_sm actually sent."""
    body = "x" * 150
    assert len(plan_segments(body).parts) == 1

    async def scenario() -> None:
        async with connected(default_alphabet="latin1", throughput=1000.0) as (smsc, carrier, _):
            ack = await carrier.submit(message(body))
            assert len(smsc.accepted()) == len(ack.carrier_ids) == 2
            assert carrier.status().throughput_recent == 2 / 10  # two turns in the last 10 s

    run(scenario)


def test_alphanumeric_and_short_code_senders_get_their_ton_npi_and_validity_goes_along() -> None:
    async def scenario() -> None:
        async with connected() as (smsc, carrier, _):
            await carrier.submit(message("one", sender="Pigeon", validity_period=3600))
            await carrier.submit(message("two", sender="72345"))
            alpha, short = smsc.accepted()
            assert alpha["validity_period"] and not short["validity_period"]  # relative, "000000010000000R"
            assert (alpha["source_addr"], alpha["source_addr_ton"], alpha["source_addr_npi"]) == ("Pigeon", 5, 0)
            assert (short["source_addr"], short["source_addr_ton"], short["source_addr_npi"]) == ("72345", 3, 0)

    run(scenario)


def test_multipart_gsm7_parts_carry_udh_and_at_most_153_septets() -> None:
    body = ("The quick brown fox jumps over the lazy dog {0}. " * 9).format("€")

    async def scenario() -> None:
        async with connected() as (smsc, carrier, _):
            ack = await carrier.submit(message(body))
            records = smsc.accepted()
            assert len(records) == len(ack.carrier_ids) == 3
            assert ack.carrier_ids == tuple(r["message_id"] for r in records)
            reference = ack.raw["reference"]
            for seq, record in enumerate(records, start=1):
                assert record["esm_class"] & 0x40 and record["data_coding"] == 0
                assert record["udh_hex"] == bytes([5, 0, 3, reference, 3, seq]).hex()
                assert len(bytes.fromhex(record["payload_hex"])) <= 153
            assert texts(records) == body

    run(scenario)


def test_multipart_ucs2_never_splits_an_emoji_and_16_bit_references_when_configured() -> None:
    body = "😀" * 30 + "x" + "👍🏽" * 20  # surrogate pairs straddle every 67-unit boundary

    async def scenario() -> None:
        async with connected(sixteen_bit_reference=True) as (smsc, carrier, _):
            ack = await carrier.submit(message(body))
            records = smsc.accepted()
            assert len(records) == len(ack.carrier_ids) >= 2
            reference = ack.raw["reference"]
            for seq, record in enumerate(records, start=1):
                udh = bytes.fromhex(record["udh_hex"])
                assert udh == bytes([6, 8, 4, reference >> 8, reference & 0xFF, len(records), seq])
                assert record["data_coding"] == 8
                assert len(bytes.fromhex(record["payload_hex"])) <= 132  # 66 code units beside a 7-octet UDH
                assert "\ufffd" not in record["text"]  # each part decodes on its own
            assert texts(records) == body

    run(scenario)


def test_sar_tlvs_instead_of_a_udh_when_configured() -> None:
    body = "Long message, SAR style. " * 12  # 300 GSM-7 characters: two segments

    async def scenario() -> None:
        async with connected(long_messages="sar") as (smsc, carrier, events):
            ack = await carrier.submit(message(body))
            records = smsc.accepted()
            assert len(records) == len(ack.carrier_ids) == 2
            reference = ack.raw["reference"]
            for seq, record in enumerate(records, start=1):
                assert record["esm_class"] == 0 and record["udh_hex"] == ""  # no UDH in short_message
                assert record["sar"] == [reference, 2, seq]
                assert record["message_payload_hex"] is None
            assert texts(records) == body
            await events.wait(lambda e: len(e.receipts) == 2)

    run(scenario)


@pytest.mark.parametrize(
    ("body", "data_coding"), [("Pay-load! " * 40, 0), ("Привет, мир! " * 20, 8)], ids=["gsm7", "ucs2"]
)
def test_the_whole_text_in_message_payload_when_configured(body: str, data_coding: int) -> None:
    async def scenario() -> None:
        async with connected(long_messages="payload") as (smsc, carrier, events):
            ack = await carrier.submit(message(body))
            (record,) = smsc.accepted()
            assert ack.carrier_ids == (record["message_id"],) and ack.raw["reference"] is None
            assert record["payload_hex"] == "" and record["esm_class"] == 0 and record["sar"] is None
            assert record["data_coding"] == data_coding
            assert record["message_payload_text"] == body  # decoded by the npm package itself
            assert bytes.fromhex(record["message_payload_hex"]) == encode_part(
                body, "UCS-2" if data_coding else "GSM-7"
            )
            await events.wait(lambda e: len(e.receipts) == 1)
            assert events.receipts[0].carrier_id == ack.carrier_ids[0]

    run(scenario)


def test_one_segment_goes_in_short_message_whatever_the_mode() -> None:
    async def scenario() -> None:
        async with connected(long_messages="payload") as (smsc, carrier, _):
            await carrier.submit(message("short"))
            (record,) = smsc.accepted()
            assert record["text"] == "short" and record["message_payload_hex"] is None

    run(scenario)


# --- receipts -------------------------------------------------------------------------------


def test_receipts_with_tlvs_reach_the_events_with_the_submit_ids() -> None:
    async def scenario() -> None:
        async with connected({"receipt_stat": {"447700900404": "UNDELIV"}}) as (smsc, carrier, events):
            ok = await carrier.submit(message("delivered please"))
            bad = await carrier.submit(message("x" * 200, to="+447700900404"))  # two parts, two receipts
            await events.wait(lambda e: len(e.receipts) == 3)
            by_id = {r.carrier_id: r for r in events.receipts}
            assert set(by_id) == {*ok.carrier_ids, *bad.carrier_ids}
            delivered = by_id[ok.carrier_ids[0]]
            assert (delivered.carrier, delivered.stat, delivered.err) == ("node", "DELIVRD", "000")
            assert delivered.raw.startswith(f"id:{ok.carrier_ids[0]} sub:001 dlvrd:001")
            assert "receipted_message_id=" in delivered.raw and "message_state=2" in delivered.raw
            assert delivered.done_date is not None and len(delivered.done_date) == 10
            assert {by_id[i].stat for i in bad.carrier_ids} == {"UNDELIV"}
            await smsc.wait_count(lambda e: e.get("event") == "deliver_acked", 3)
            assert carrier.status().receipts == 3

    run(scenario)


def test_the_carriers_receipt_errors_give_each_err_value_its_code() -> None:
    smsc_options = {"receipt_stat": {"447700900027": "UNDELIV"}, "receipt_err": {"447700900027": "027"}}

    async def scenario() -> None:
        async with connected(smsc_options, receipt_errors={"027": 30006}) as (_, carrier, events):
            ack = await carrier.submit(message("absent", to="+447700900027"))
            await events.wait(lambda e: len(e.receipts) == 1)
            (receipt,) = events.receipts
            assert (receipt.carrier_id, receipt.stat, receipt.err) == (ack.carrier_ids[0], "UNDELIV", "027")
            assert receipt.error_code == 30006

    run(scenario)


def test_a_carrier_sending_one_receipt_per_long_message_marks_its_receipts_so() -> None:
    """multipart_receipts = "any_part": the receipts say they settle the whole message
    (pigeon.app.receipts then takes any part's final state for the message's)."""

    async def scenario() -> None:
        async with connected({}, multipart_receipts="any_part") as (_, carrier, events):
            await carrier.submit(message("x" * 200))
            await events.wait(lambda e: len(e.receipts) == 2)
            assert all(r.whole_message for r in events.receipts)
        async with connected({}) as (_, carrier, events):  # the default: each part for itself
            await carrier.submit(message("x" * 200))
            await events.wait(lambda e: len(e.receipts) == 2)
            assert not any(r.whole_message for r in events.receipts)

    run(scenario)


def test_hex_submit_ids_match_decimal_receipt_ids() -> None:
    async def scenario() -> None:
        async with connected({"id_format": "hex"}, receipt_id_format="hex_to_decimal") as (smsc, carrier, events):
            ack = await carrier.submit(message("hex please"))
            (record,) = smsc.accepted()
            assert record["message_id"] != record["numeric_id"]  # e.g. "00003E9324" vs "4100900"
            assert ack.carrier_ids == (record["numeric_id"],)
            assert ack.raw["message_ids"] == [record["message_id"]]
            await events.wait(lambda e: len(e.receipts) == 1)
            assert events.receipts[0].carrier_id == ack.carrier_ids[0]

    run(scenario)


def test_a_receipt_is_acknowledged_only_once_recorded() -> None:
    async def scenario() -> None:
        async with connected() as (smsc, carrier, events):
            events.fail_receipts = 1  # the first attempt to record it fails
            ack = await carrier.submit(message("store hiccup"))
            refused = await smsc.wait_event(lambda e: e.get("event") == "deliver_refused")
            assert refused["status"] == 0x64  # ESME_RX_T_APPN: the SMSC keeps it and resends
            acked = await smsc.wait_event(lambda e: e.get("event") == "deliver_acked")
            assert acked["attempts"] == 2
            assert [r.carrier_id for r in events.receipts] == list(ack.carrier_ids)

    run(scenario)


def test_transmitter_and_receiver_binds() -> None:
    async def scenario() -> None:
        async with connected(bind="transmitter+receiver") as (smsc, carrier, events):
            await smsc.wait_count(lambda e: e.get("event") == "bind", 2)
            ack = await carrier.submit(message("two binds"))
            await events.wait(lambda e: len(e.receipts) == 1)
            assert events.receipts[0].carrier_id == ack.carrier_ids[0]
            modes = sorted(b["mode"] for b in (await smsc.state())["binds"])
            assert modes == ["receiver", "transmitter"]
            assert {b.role: b.state for b in carrier.status().binds} == {"transmitter": "bound", "receiver": "bound"}

    run(scenario)


# --- inbound --------------------------------------------------------------------------------


def test_inbound_single_message() -> None:
    async def scenario() -> None:
        async with connected() as (smsc, _, events):
            await smsc.command("mo", source="447700900123", destination="14155550100", text="Hello @ you €")
            await events.wait(lambda e: len(e.inbound) == 1)
            (sms,) = events.inbound
            assert (sms.carrier, sms.sender, sms.recipient) == ("node", "+447700900123", "+14155550100")
            assert (sms.body, sms.num_segments) == ("Hello @ you €", 1)
            await smsc.wait_event(lambda e: e.get("event") == "deliver_acked" and e["kind"] == "mo")

    run(scenario)


def test_inbound_long_text_in_message_payload() -> None:
    text = "A long reply without concatenation, carried in the message_payload TLV. " * 4

    async def scenario() -> None:
        async with connected() as (smsc, _, events):
            await smsc.command("mo", source="447700900123", destination="14155550100", text=text, message_payload=True)
            await events.wait(lambda e: len(e.inbound) == 1)
            assert (events.inbound[0].body, events.inbound[0].num_segments) == (text, 1)

    run(scenario)


@pytest.mark.parametrize(
    ("concat", "data_coding", "parts"),
    [
        ("udh8", 0, ["First part, ", "second part, ", "third."]),
        ("udh16", 8, ["Привет ", "мир 👋"]),
        ("sar", 0, ["SAR ", "reassembled"]),
    ],
)
def test_inbound_multipart_is_reassembled(concat: str, data_coding: int, parts: list[str]) -> None:
    async def scenario() -> None:
        async with connected() as (smsc, _, events):
            # Sent last part first: reassembly goes by part number, not arrival.
            await smsc.command(
                "mo",
                source="447700900123",
                destination="14155550100",
                parts=parts,
                concat=concat,
                data_coding=data_coding,
                reverse=True,
                ref=0x1234 if concat != "udh8" else 0x42,
            )
            await events.wait(lambda e: len(e.inbound) == 1)
            (sms,) = events.inbound
            assert sms.body == "".join(parts)
            assert sms.num_segments == len(parts)
            await smsc.wait_count(lambda e: e.get("event") == "deliver_acked", len(parts))

    run(scenario)


def test_inbound_ucs2_split_inside_a_surrogate_pair_is_decoded_whole() -> None:
    data = "ok 👍 done".encode("utf-16-be")
    cut = "ok ".encode("utf-16-be").__len__() + 2  # between the two halves of 👍

    async def scenario() -> None:
        async with connected() as (smsc, _, events):
            await smsc.command(
                "mo",
                source="447700900123",
                destination="14155550100",
                parts_hex=[data[:cut].hex(), data[cut:].hex()],
                data_coding=8,
            )
            await events.wait(lambda e: len(e.inbound) == 1)
            assert events.inbound[0].body == "ok 👍 done"

    run(scenario)


def test_inbound_with_a_part_that_never_comes_is_handed_over_incomplete() -> None:
    async def scenario() -> None:
        async with connected(reassembly_timeout=0.5) as (smsc, _, events):
            parts = ["one ", "two ", "three"]
            await smsc.command("mo", source="447700900123", destination="14155550100", parts=parts, omit=[2])
            await smsc.wait_count(lambda e: e.get("event") == "deliver_acked", 2)
            assert events.inbound == []  # still waiting for part 2
            await events.wait(lambda e: len(e.inbound) == 1, timeout=5)
            (sms,) = events.inbound
            assert (sms.body, sms.num_segments) == ("one three", 2)
            assert sms.raw["incomplete"] is True and sms.raw["missing_parts"] == [2]

    run(scenario)


def test_inbound_parts_acknowledged_before_a_restart_are_not_lost() -> None:
    parts = ["Acknowledged before ", "the restart, ", "finished after it."]
    mo = {"source": "447700900123", "destination": "14155550100", "parts": parts, "ref": 0x51}

    async def scenario() -> None:
        async with migrated_store() as store, NodeSmsc.running() as smsc:
            async with process(smsc, store) as (_, before):
                await smsc.command("mo", omit=[2, 3], **mo)
                await smsc.wait_count(lambda e: e.get("event") == "deliver_acked", 1)
            assert before.inbound == []  # the process stops with part 1 taken and acknowledged
            async with process(smsc, store) as (_, after):
                await smsc.command("mo", omit=[1], **mo)  # the SMSC never sends part 1 again
                await after.wait(lambda e: len(e.inbound) == 1)
                (sms,) = after.inbound
                assert (sms.body, sms.num_segments) == ("".join(parts), 3)
                assert "incomplete" not in sms.raw

    run(scenario)


def test_inbound_parts_dealt_to_two_processes_make_one_message() -> None:
    parts = ["Dealt ", "over ", "two ", "binds."]

    async def scenario() -> None:
        async with migrated_store() as store, NodeSmsc.running() as smsc:
            async with process(smsc, store) as (_, one), process(smsc, store) as (_, two):
                # The SMSC deals its deliver_sm round robin over the bound sessions.
                await smsc.command("mo", source="447700900123", destination="14155550100", parts=parts, ref=9)
                await smsc.wait_count(lambda e: e.get("event") == "deliver_acked", len(parts))
                await asyncio.sleep(0.3)  # a second, wrong hand-over would come within a sweep
                (sms,) = one.inbound + two.inbound
                assert (sms.body, sms.num_segments) == ("".join(parts), 4)

    run(scenario)


# --- throttling and reconnection ------------------------------------------------------------


def test_throttled_part_is_retried_first_in_line() -> None:
    async def scenario() -> None:
        async with connected({"throttle_first": 3}, window=1) as (smsc, carrier, _):
            bodies = [f"message {i}" for i in range(5)]
            acks = await asyncio.gather(*(carrier.submit(message(b)) for b in bodies))
            submits = [e["record"] for e in smsc.events if e.get("event") == "submit"]
            assert [r["text"] for r in submits[:4]] == ["message 0"] * 4  # 3 throttled, then accepted
            assert [r["text"] for r in smsc.accepted()] == bodies
            assert all(len(a.carrier_ids) == 1 for a in acks)
            assert carrier.metrics.registry.get_sample_value("pigeon_carrier_throttles_total", {"carrier": "node"}) == 3

    run(scenario)


def test_throttling_with_a_full_window_loses_and_duplicates_nothing() -> None:
    async def scenario() -> None:
        async with connected({"throttle_first": 4}, window=8) as (smsc, carrier, _):
            bodies = [f"burst {i}" for i in range(12)]
            await asyncio.gather(*(carrier.submit(message(b)) for b in bodies))
            accepted = [r["text"] for r in smsc.accepted()]
            assert Counter(accepted) == Counter(bodies)
            throttled = [
                e["record"]["text"] for e in smsc.events if e.get("event") == "submit" and e["record"]["status"]
            ]
            retried = [t for t in accepted if t in throttled]
            assert retried == sorted(retried, key=bodies.index)  # retried parts keep their order

    run(scenario)


def test_throttling_past_the_budget_is_retryable_for_failover() -> None:
    async def scenario() -> None:
        async with connected({"throttle_first": 100}, throttle_retries=2) as (smsc, carrier, _):
            with pytest.raises(CarrierRetryableError) as raised:
                await carrier.submit(message("never accepted"))
            assert raised.value.carrier_code == "ESME_RTHROTTLED"
            assert raised.value.error_code == 30001
            assert len([e for e in smsc.events if e.get("event") == "submit"]) == 3  # first try + 2 retries

    run(scenario)


def test_permanent_refusal_maps_to_a_twilio_code() -> None:
    async def scenario() -> None:
        async with connected({"reject": {"447700900999": 0x0B}}) as (_, carrier, _events):
            with pytest.raises(CarrierError) as raised:
                await carrier.submit(message("nobody", to="+447700900999"))
            assert not raised.value.retryable
            assert (raised.value.carrier_code, raised.value.error_code) == ("ESME_RINVDSTADR", 30005)

    run(scenario)


async def submit_until_accepted(carrier: SmppCarrier, body: str) -> SubmitAck:
    """What the dispatcher does with a retryable error, minus the store: try again later."""
    for _ in range(100):
        try:
            return await carrier.submit(message(body))
        except (CarrierUnavailable, CarrierRetryableError):
            await carrier.wait_bound(5)
    raise AssertionError(f"{body!r} was never accepted")


def test_smsc_drops_mid_stream_and_comes_back_nothing_lost_nothing_twice() -> None:
    async def scenario() -> None:
        async with connected({"drop_after_submits": 7, "down_ms": 300}) as (smsc, carrier, events):
            bodies = [f"stream {i:02d}" for i in range(25)]
            acks = await asyncio.gather(*(submit_until_accepted(carrier, b) for b in bodies))
            accepted = smsc.accepted()
            assert Counter(r["text"] for r in accepted) == Counter(bodies)  # each exactly once
            id_of = {r["text"]: r["message_id"] for r in accepted}
            assert [a.carrier_ids[0] for a in acks] == [id_of[b] for b in bodies]
            await smsc.wait_event(lambda e: e.get("event") == "dropped")
            # Receipts owed while we were away arrive after the rebind.
            await events.wait(lambda e: {r.carrier_id for r in e.receipts} >= set(id_of.values()), timeout=15)
            assert carrier.status().binds[0].connects == 2

    run(scenario)


def test_status_and_metrics_describe_the_bind() -> None:
    async def scenario() -> None:
        async with connected(throughput=50.0, window=4) as (_, carrier, _events):
            await carrier.submit(message("count me"))
            status = carrier.status()
            assert status.bound and status.window_size == 4 and status.window_in_use == 0
            assert status.throughput_limit == 50.0 and status.submitted == 1
            data = status.as_dict()
            assert data["binds"][0]["state"] == "bound" and "password" not in repr(data) and "secret" not in repr(data)
            registry = carrier.metrics.registry
            labels = {"carrier": "node", "outcome": "accepted"}
            assert registry.get_sample_value("pigeon_carrier_submits_total", labels) == 1
            assert registry.get_sample_value("pigeon_carrier_submit_latency_seconds_count", {"carrier": "node"}) == 1
            assert registry.get_sample_value("pigeon_carrier_bound", {"carrier": "node"}) == 1
        assert "secret" not in repr(carrier) and "secret" not in repr(carrier.config)

    run(scenario)
