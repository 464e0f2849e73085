"""A message that fails after its carrier took it is not charged (pigeon.app.failed_charges),
on each store: a carrier receipt ``stat:FAILED`` keeps the status Twilio's contract gives it
(failed, 30008) but zeroes the price, takes the message back out of usage on the day it was
counted, and says so on the timeline, by every path a receipt takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pigeon.app import usage
from pigeon.app import usage_triggers as trigger_use
from pigeon.app.failed_charges import CHARGE_WITHDRAWN
from pigeon.app.receipt_batch import apply_receipts
from pigeon.app.receipt_batch import deliver_simulated_receipts as deliver_in_batches
from pigeon.carriers.simulator import DEFAULT_SCENARIOS, Scenario, SimulatedNetwork
from pigeon.domain.pricing import PriceTable, price_table
from pigeon.domain.usage import price_micros
from pigeon.ports import Receipt
from tests.integration.pipeline import SENDER, Pipeline, ScriptedCarrier
from tests.integration.smsc import faults
from tests.integration.test_smpp_dispatch import reached, run, smpp, until

MEDIA = ("https://cdn.example.com/cat.jpg",)

#: The built-in network's script with one more row: the carrier takes the message, then its
#: receipt says FAILED (as an SMSC's deliver_sm does: "stat:FAILED err:005").
FAILS_AFTER_SUBMIT = "+14155550110"


def outbound_usage(pipe: Pipeline, day: date | None = None) -> tuple[int, int, int]:
    """sms-outbound (messages, segments, price micros) of one day, or of all time."""
    with pipe.db.read() as conn:
        if day is None:
            records = usage.usage_records(conn, pipe.account_sid, "AllTime", {}, today=pipe.clock.now().date())
        else:
            params = {"StartDate": day.isoformat(), "EndDate": day.isoformat()}
            records = usage.usage_records(conn, pipe.account_sid, "Records", params, today=pipe.clock.now().date())
    [record] = [r for r in records if r.category == "sms-outbound"]
    return (record.messages, record.segments, record.price_micros)


def failed_receipt(carrier: str, carrier_id: str) -> Receipt:
    return Receipt(
        carrier=carrier,
        carrier_id=carrier_id,
        stat="FAILED",
        err="005",
        done_date="2601151201",
        raw=f"id:{carrier_id} sub:001 dlvrd:000 submit date:2601151200 done date:2601151201 stat:FAILED err:005",
    )


def assert_charge_withdrawn(pipe: Pipeline, sid: str, *, price: str | None, segments: int) -> None:
    m = pipe.message(sid)
    assert (m["status"], m["error_code"]) == ("failed", 30008)
    assert m["price"] == ("0.00000" if price is not None else None)
    [entry] = pipe.events(sid, CHARGE_WITHDRAWN)
    assert entry["detail"]["price"] == price
    assert entry["detail"]["segments"] == segments
    kinds = [e["kind"] for e in pipe.events(sid)]
    assert kinds.index(CHARGE_WITHDRAWN) > kinds.index("receipt")  # after the receipt that failed it
    assert pipe.callback_statuses(sid)[-2:] == ["sent", "failed"]


def test_a_failed_receipt_for_a_sent_message_withdraws_its_price_and_usage(pipe: Pipeline) -> None:
    """SMPP-style: a carrier's deliver_sm says stat:FAILED for a message it took (applied one by
    one, as `ReceiptSink` applies an SMPP carrier's receipts)."""
    pipe.carriers = [ScriptedCarrier("acme")]
    failed, kept = pipe.send(body="x" * 200), pipe.send(body="kept")  # two segments, one
    pipe.dispatch()
    pipe.clock.advance(2)
    pipe.dispatch()
    price = pipe.message(failed)["price"]
    charged = price_micros(price) + price_micros(pipe.message(kept)["price"])
    assert outbound_usage(pipe) == (2, 3, charged)

    pipe.receipt("acme-1-0", "FAILED", err="005", carrier="acme")

    assert_charge_withdrawn(pipe, failed, price=price, segments=2)
    assert outbound_usage(pipe) == (1, 1, price_micros(pipe.message(kept)["price"]))
    # A second copy of the receipt, and the other part's, change nothing: withdrawn once.
    pipe.receipt("acme-1-0", "FAILED", err="005", carrier="acme")
    pipe.receipt("acme-1-1", "FAILED", err="005", carrier="acme")
    assert outbound_usage(pipe) == (1, 1, price_micros(pipe.message(kept)["price"]))
    assert len(pipe.events(failed, CHARGE_WITHDRAWN)) == 1
    # An undelivered message reached the carrier's network: charged, as on Twilio.
    pipe.receipt("acme-2-0", "UNDELIV", err="001", carrier="acme")
    assert pipe.status(kept) == "undelivered" and pipe.message(kept)["price"] == "-0.00790"
    assert pipe.events(kept, CHARGE_WITHDRAWN) == []


def test_the_built_in_networks_failed_receipts_in_batches_withdraw_the_charge(pipe: Pipeline) -> None:
    """The receipt worker's path (`receipt_batch`), with the built-in network scripted to take
    a message and then report it FAILED."""
    scenarios = {**DEFAULT_SCENARIOS, FAILS_AFTER_SUBMIT[-4:]: (Scenario("undelivered", "FAILED", "005"),)}
    pipe.network = SimulatedNetwork(pipe.spool, pipe.clock, scenarios=scenarios)
    sid = pipe.send(to=FAILS_AFTER_SUBMIT)
    pipe.dispatch()
    price = pipe.message(sid)["price"]
    assert pipe.status(sid) == "sent" and price == "-0.00790"
    pipe.clock.advance(1)
    with pipe.db.write() as conn:
        assert deliver_in_batches(conn, now=pipe.clock.now()) == 1
    assert_charge_withdrawn(pipe, sid, price=price, segments=1)
    assert outbound_usage(pipe) == (0, 0, 0)


def test_the_built_in_networks_0105_refuses_the_submit_and_never_charges(pipe: Pipeline) -> None:
    """Issue 3's scripted outcome: "0105 unknown error (failed, 30008)". Nothing reached a
    carrier: no price, no usage, nothing to withdraw."""
    sid = pipe.send(to="+14155550105")
    pipe.dispatch()
    m = pipe.message(sid)
    assert (m["status"], m["error_code"], m["price"]) == ("failed", 30008, None)
    assert pipe.events(sid, CHARGE_WITHDRAWN) == []
    assert outbound_usage(pipe) == (0, 0, 0)


def test_a_receipt_that_overtook_its_submit_answer_withdraws_the_charge_it_meets(pipe: Pipeline) -> None:
    """A FAILED receipt parked before the submit answer was recorded is applied in the
    transaction that records the message sent and counts it: it leaves it uncounted."""
    pipe.carriers = [ScriptedCarrier("acme")]
    sid = pipe.send()
    assert pipe.receipt("acme-1-0", "FAILED", err="005", carrier="acme") is None  # parked
    pipe.dispatch()
    assert_charge_withdrawn(pipe, sid, price="-0.00790", segments=1)
    assert outbound_usage(pipe) == (0, 0, 0)


def test_a_failure_reported_the_next_day_comes_off_the_day_it_was_counted(pipe: Pipeline) -> None:
    """Taken from today, a daily usage would go below zero and a daily trigger's value drop
    for a message sent the day before; and a trigger fired does not fire again."""
    pipe.carriers = [ScriptedCarrier("acme")]
    sent_on = pipe.clock.now().date()
    with pipe.db.write() as conn:
        trigger = trigger_use.create(
            conn,
            pipe.account_sid,
            {"CallbackUrl": "https://hooks.example.com/t", "UsageCategory": "sms", "TriggerValue": "1"},
            pipe.clock.now(),
        )
    first = pipe.send()
    pipe.dispatch()
    assert fired(pipe) == [trigger["sid"]]
    pipe.clock.advance(24 * 3600)
    with pipe.db.write() as conn:
        apply_receipts(conn, [failed_receipt("acme", "acme-1-0")], now=pipe.clock.now())
    assert_charge_withdrawn(pipe, first, price="-0.00790", segments=1)
    assert outbound_usage(pipe, sent_on) == (0, 0, 0)
    assert outbound_usage(pipe, pipe.clock.now().date()) == (0, 0, 0)  # not (-1, -1, -7900)
    second = pipe.send(body="again")
    pipe.dispatch()
    assert pipe.status(second) == "sent" and outbound_usage(pipe) == (1, 1, 7900)
    assert fired(pipe) == []  # reached again, but fired already


def fired(pipe: Pipeline) -> Sequence[str]:
    with pipe.db.read() as conn:
        due = trigger_use.reached(conn, today=pipe.clock.now().date())
    with pipe.db.write() as conn:
        return trigger_use.fire(conn, due, now=pipe.clock.now())


def test_an_unpriced_message_that_fails_is_taken_out_of_usage_and_keeps_no_price(pipe: Pipeline) -> None:
    """A route the price table leaves unpriced still counts a sent message (README, [prices]);
    failed, it is uncounted and its price stays null."""
    pipe.carriers = [ScriptedCarrier("acme")]
    sid = pipe.send(to="+447700900123")
    pipe.dispatch(prices=price_table({"US": {"long_code": "0.0079"}}))
    assert outbound_usage(pipe) == (1, 1, 0)
    pipe.receipt("acme-1-0", "FAILED", err="005", carrier="acme")
    assert_charge_withdrawn(pipe, sid, price=None, segments=1)
    assert outbound_usage(pipe) == (0, 0, 0)


def test_a_withdrawn_price_keeps_its_unit_and_the_timeline_the_price_withdrawn(pipe: Pipeline) -> None:
    pipe.carriers = [ScriptedCarrier("acme")]
    sid = pipe.send()
    pipe.dispatch(prices=PriceTable(prices={"US": {"long_code": "0.0100"}}, unit="EUR"))
    pipe.receipt("acme-1-0", "FAILED", err="005", carrier="acme")
    m = pipe.message(sid)
    assert (m["price"], m["price_unit"]) == ("0.00000", "EUR")
    [entry] = pipe.events(sid, CHARGE_WITHDRAWN)
    assert (entry["detail"]["price"], entry["detail"]["price_unit"]) == ("-0.01000", "EUR")


def usage_by_category(pipe: Pipeline) -> dict[str, tuple[int, int, int]]:
    with pipe.db.read() as conn:
        records = usage.usage_records(conn, pipe.account_sid, "AllTime", {}, today=pipe.clock.now().date())
    return {r.category: (r.messages, r.segments, r.price_micros) for r in records}


def test_an_mms_comes_off_the_category_it_was_counted_in(pipe: Pipeline) -> None:
    """An MMS is counted in mms-outbound; one whose media went as links in a text, in
    sms-outbound (`dispatch_record`): each failed comes off its own."""
    service = pipe.add_service(SENDER)  # converts MMS to text with links
    as_mms = pipe.send(body="look", media=MEDIA)
    as_links = pipe.send(from_=None, service=service, body="look", media=MEDIA)
    pipe.dispatch(route=[ScriptedCarrier("mms")])
    pipe.clock.advance(5)
    pipe.dispatch(route=[ScriptedCarrier("text", carries_media=False)])
    assert {pipe.status(as_mms), pipe.status(as_links)} == {"sent"}
    counted = usage_by_category(pipe)
    assert counted["mms-outbound"][0] == 1 and counted["sms-outbound"][0] == 1
    pipe.receipt("mms-1-0", "FAILED", err="005", carrier="mms")
    pipe.receipt("text-1-0", "FAILED", err="005", carrier="text")
    assert {pipe.message(sid)["price"] for sid in (as_mms, as_links)} == {"0.00000"}
    counted = usage_by_category(pipe)
    assert counted["mms-outbound"] == counted["sms-outbound"] == (0, 0, 0)


def test_an_smscs_deliver_sm_saying_failed_withdraws_the_charge(pipe: Pipeline) -> None:
    """End to end over SMPP: a real SmppCarrier, an SMSC of the catalogue whose deliver_sm says
    stat:FAILED for a message it took; the receipt reaches the store through the carrier's
    event sink (`ReceiptSink`)."""

    async def scenario() -> None:
        async with faults.ReceiptSaysFailed() as smsc, smpp(pipe, smsc, "failing") as carrier:
            sid = pipe.send()
            await pipe.round(route=[carrier]).run_once()
            await until(lambda: reached(pipe, sid, "failed"))
            assert_charge_withdrawn(pipe, sid, price="-0.00790", segments=1)
            assert "stat:FAILED err:005" in pipe.events(sid, "receipt")[0]["detail"]["raw"]
            assert outbound_usage(pipe) == (0, 0, 0)

    run(scenario)
