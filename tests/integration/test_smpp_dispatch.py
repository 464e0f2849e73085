"""The dispatcher with a real SmppCarrier against misbehaving SMSCs (tests/integration/smsc/faults.py),
on both stores: what reaches the store and the timeline when a multipart message is refused
part-way, and when a submit is never answered.

The rules under test are in `pigeon.app.dispatch_jobs`' docstring: parts a carrier accepted keep
their carrier ids and are not sent again (the retry sends the rest, same concatenation
reference); a submit whose outcome is unknown is retried on the same carrier, not failed over,
unless the carrier allows it, and either way the possible duplicate is on the timeline.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from pigeon.app.carrier_events import CarrierEventSink
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp import SmppCarrier
from pigeon.carriers.smpp_errors import Action, StatusRule
from pigeon.domain.diagnosis import count_submits, diagnose_message
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.store.tables import messages, unmatched_receipts
from tests.integration.pipeline import Pipeline
from tests.integration.smsc import faults
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import carrier_config

LONG = "x" * 400  # GSM-7, three parts: 153 + 153 + 94 septets


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 60))


@asynccontextmanager
async def smpp(
    pipe: Pipeline, smsc: faults.FakeSmsc | NodeSmsc, name: str, **config: Any
) -> AsyncIterator[SmppCarrier]:
    """A carrier bound to `smsc` (a catalogue fault, or the npm SMSC), its events into `pipe`'s store."""
    settings = carrier_config(smsc.port, **{"name": name, "response_timeout": 0.5, **config})
    carrier = SmppCarrier(settings, metrics=CarrierMetrics(CollectorRegistry()))
    await carrier.start(CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com"))
    try:
        assert await carrier.wait_bound(5), carrier.status()
        yield carrier
    finally:
        await carrier.stop()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def reached(pipe: Pipeline, sid: str, status: str) -> bool:
    """Whether the message is in `status`, after the sweep the dispatcher worker runs every second
    (these tests drive single rounds, not the worker): a receipt that overtook its submit's
    commit on PostgreSQL is parked, and only the sweep applies it."""
    pipe.rematch()
    return pipe.status(sid) == status


def udh(submit: faults.Submit) -> tuple[int, int, int]:
    """(reference, total, sequence) of a part's 8-bit concatenation header."""
    head = submit.short_message[:6]
    assert head[:3] == b"\x05\x00\x03", head
    return head[3], head[4], head[5]


def receipts(pipe: Pipeline, sid: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in pipe.events(sid, "receipt")]


def findings(pipe: Pipeline, sid: str) -> dict[str, Any]:
    facts = MessageFacts(
        message=pipe.message(sid), events=pipe.events(sid), parts=pipe.parts(sid), now=pipe.clock.now()
    )
    return {f.cause: f for f in diagnose_message(facts)}


# -- task: parts accepted before a later part is refused ------------------------------------------


def test_parts_accepted_before_a_refusal_keep_their_ids_and_are_not_sent_again(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with faults.LaterPartRefused() as smsc, smpp(pipe, smsc, "faulty") as carrier:
            sid = pipe.send(body=LONG)
            await pipe.round(route=[carrier]).run_once()

            # Part 1 is out: its id is stored at once, so its receipt finds the message.
            first_id = smsc.submits[0].message_id
            assert pipe.status(sid) == "queued" and pipe.message(sid)["carrier"] == "faulty"
            [ref] = pipe.parts(sid)
            assert (ref["carrier_message_id"], ref["part_index"], ref["part_count"]) == (first_id, 0, 3)
            [retry] = pipe.events(sid, "retry")
            assert retry["detail"]["accepted_parts"] == [
                {"carrier": "faulty", "part": 1, "parts": 3, "carrier_id": first_id}
            ]
            assert retry["detail"]["hold"]["next_part"] == 2 and retry["detail"]["hold"]["exclusive"] is True
            assert "outcome_unknown" not in retry["detail"]
            await until(lambda: len(receipts(pipe, sid)) == 1)
            assert receipts(pipe, sid)[0]["part"] == 1 and receipts(pipe, sid)[0]["applied"] is False
            assert pipe.status(sid) == "queued"  # one part's receipt does not deliver three parts

            pipe.clock.advance(60)
            await pipe.round(route=[carrier]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))

            accepted = [s for s in smsc.submits if s.status == 0]
            reference = udh(accepted[0])[0]
            assert [udh(s) for s in accepted] == [(reference, 3, 1), (reference, 3, 2), (reference, 3, 3)]
            assert len(smsc.submits) == 4  # part 1, part 2 refused, then parts 2 and 3 only
            parts = pipe.parts(sid)
            assert [p["part_index"] for p in parts] == [0, 1, 2] and {p["part_count"] for p in parts} == {3}
            assert [p["carrier_message_id"] for p in parts] == [s.message_id for s in accepted]
            sending = [e for e in pipe.events(sid, "status") if e["status"] == "sending"]
            assert sending[1]["detail"] | {"from_part": 2, "carrier": "faulty"} == sending[1]["detail"]
            sent = next(e for e in pipe.events(sid, "status") if e["status"] == "sent")
            assert sent["detail"]["carrier_ids"] == [s.message_id for s in accepted]
            assert pipe.events(sid, "resend") == []
            assert count_submits(pipe.events(sid), parts).reaching == 1
            assert "pigeon_resent" not in findings(pipe, sid)

    run(scenario)


def test_a_permanent_refusal_of_a_later_part_fails_the_message_and_keeps_the_accepted_part(pipe: Pipeline) -> None:
    permanent = {0x45: StatusRule(Action.PERMANENT, 30007)}

    async def scenario() -> None:
        async with faults.LaterPartRefused() as smsc, smpp(pipe, smsc, "faulty", status_map=permanent) as carrier:
            sid = pipe.send(body=LONG)
            await pipe.round(route=[carrier]).run_once()
            assert pipe.status(sid) == "failed" and pipe.message(sid)["error_code"] == 30007
            first_id = smsc.submits[0].message_id
            assert [p["carrier_message_id"] for p in pipe.parts(sid)] == [first_id]
            failed = next(e for e in pipe.events(sid, "status") if e["status"] == "failed")
            assert [p["carrier_id"] for p in failed["detail"]["accepted_parts"]] == [first_id]
            assert "faulty accepted part 1 of 3" in pipe.alerts(sid)[0]["alert_text"]
            # The part that went out still reports back, on the failed message's timeline.
            await until(lambda: len(receipts(pipe, sid)) == 1)
            assert receipts(pipe, sid)[0]["carrier_id"] == first_id
            assert pipe.status(sid) == "failed" and len(smsc.submits) == 2

    run(scenario)


class SecondPartUnanswered(faults.FakeSmsc):
    """Part 2 of the first message is taken (id, receipt) and its submit_sm_resp lost."""

    async def on_submit(self, conn: faults.Connection, submit: faults.Submit) -> None:
        if len(self.submits) == 2:
            submit.message_id, submit.status = self.next_id(), 0
            self.send_receipt(conn, submit.message_id, tlv_id=submit.message_id)
        else:
            await super().on_submit(conn, submit)


def test_an_unanswered_later_part_is_resent_alone_with_the_same_reference_as_a_resend(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with SecondPartUnanswered() as smsc, smpp(pipe, smsc, "faulty") as carrier:
            sid = pipe.send(body=LONG)
            await pipe.round(route=[carrier]).run_once()
            [retry] = pipe.events(sid, "retry")
            hold = retry["detail"]["hold"]
            assert (hold["next_part"], hold["unknown_part"], hold["accepted_ids"]) == (
                2,
                2,
                [smsc.submits[0].message_id],
            )
            assert retry["detail"]["outcome_unknown"] is True

            pipe.clock.advance(60)
            await pipe.round(route=[carrier]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            reference = udh(smsc.submits[0])[0]
            assert [udh(s)[2] for s in smsc.submits] == [1, 2, 2, 3]  # part 1 never again
            assert {udh(s)[0] for s in smsc.submits} == {reference}  # the handset can drop the repeat
            [resend] = pipe.events(sid, "resend")
            assert (
                resend["status"] == "sending"
                and "never answered the submit of part 2 of 3" in (resend["detail"]["reason"])
            )
            assert pipe.unmatched() == 1  # the first part 2's receipt: its id was never announced
            assert "pigeon_resent" in findings(pipe, sid)

    run(scenario)


# -- task: a submit that is never answered ----------------------------------------------------------


def test_an_unanswered_submit_is_retried_on_the_same_carrier_not_failed_over(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with (
            faults.FirstSubmitUnanswered() as silent,
            faults.FakeSmsc() as backup_smsc,
            smpp(pipe, silent, "primary") as primary,
            smpp(pipe, backup_smsc, "backup") as backup,
        ):
            sid = pipe.send()
            await pipe.round(route=[primary, backup]).run_once()
            # The primary SMSC has the message: sending it to the backup would surely duplicate it.
            assert backup_smsc.submits == []
            assert pipe.status(sid) == "queued" and pipe.message(sid)["carrier"] == "primary"
            [retry] = pipe.events(sid, "retry")
            assert retry["detail"]["outcome_unknown"] is True
            assert retry["detail"]["refused_by"][0]["carrier_code"] == "smpp:response_timeout"
            assert retry["detail"]["hold"]["exclusive"] is True
            assert pipe.events(sid, "failover") == []
            carrier_retrying = findings(pipe, sid)["carrier_retrying"]
            assert "1 unanswered" in carrier_retrying.summary and "to primary only" in carrier_retrying.summary

            pipe.clock.advance(60)
            await pipe.round(route=[primary, backup]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            assert len(silent.submits) == 2 and backup_smsc.submits == []
            [resend] = pipe.events(sid, "resend")
            assert resend["status"] == "sending" and resend["detail"]["attempt"] == 2
            assert "primary never answered the submit of the message" in resend["detail"]["reason"]
            assert pipe.timeline(sid)[1:5] == [
                ("status", "sending"),
                ("retry", "queued"),
                ("resend", "sending"),
                ("status", "sent"),
            ]
            resent = findings(pipe, sid)["pigeon_resent"]
            assert "2 times" in resent.summary and "never answered" in resent.summary

    run(scenario)


def test_failover_on_unknown_outcome_moves_on_at_once_and_records_the_possible_duplicate(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with (
            faults.FirstSubmitUnanswered() as silent,
            faults.FakeSmsc() as backup_smsc,
            smpp(pipe, silent, "primary", failover_on_unknown_outcome=True) as primary,
            smpp(pipe, backup_smsc, "backup") as backup,
        ):
            sid = pipe.send()
            await pipe.round(route=[primary, backup]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            assert len(backup_smsc.submits) == 1 and pipe.message(sid)["carrier"] == "backup"
            [failover] = pipe.events(sid, "failover")
            assert failover["detail"]["refused_by"][0]["outcome_unknown"] is True
            [resend] = pipe.events(sid, "resend")
            assert "failover_on_unknown_outcome let backup take the message too" in resend["detail"]["reason"]
            assert count_submits(pipe.events(sid), pipe.parts(sid)).reaching == 2
            assert "pigeon_resent" in findings(pipe, sid)

    run(scenario)


def test_a_plain_refusal_still_fails_over(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with (
            faults.VendorStatus() as refusing,
            faults.FakeSmsc() as backup_smsc,
            smpp(pipe, refusing, "primary") as primary,
            smpp(pipe, backup_smsc, "backup") as backup,
        ):
            sid = pipe.send(body=LONG)
            await pipe.round(route=[primary, backup]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            assert len(refusing.submits) == 1  # part 1 refused: nothing of it is out there
            assert Counter(udh(s)[2] for s in backup_smsc.submits) == Counter({1: 1, 2: 1, 3: 1})
            assert pipe.events(sid, "resend") == []

    run(scenario)


def test_a_sender_refused_by_the_primary_goes_out_through_the_backup(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with (
            faults.SenderRefused() as refusing,
            faults.FakeSmsc() as backup_smsc,
            smpp(pipe, refusing, "primary") as primary,
            smpp(pipe, backup_smsc, "backup") as backup,
        ):
            sid = pipe.send()
            await pipe.round(route=[primary, backup]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            assert len(refusing.submits) == len(backup_smsc.submits) == 1
            [failover] = pipe.events(sid, "failover")
            assert failover["detail"]["refused_by"][0]["carrier_code"] == "ESME_RINVSRCADR"

    run(scenario)


def test_an_unknown_handset_fails_at_once_without_trying_the_backup(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with (
            faults.UnknownSubscriber() as refusing,
            faults.FakeSmsc() as backup_smsc,
            smpp(pipe, refusing, "primary") as primary,
            smpp(pipe, backup_smsc, "backup") as backup,
        ):
            sid = pipe.send()
            await pipe.round(route=[primary, backup]).run_once()
            msg = pipe.message(sid)
            assert (msg["status"], msg["error_code"]) == ("failed", 30005)
            assert backup_smsc.submits == []

    run(scenario)


# -- texts past what SMPP allows (pigeon.domain.storable) -----------------------------------------


def test_texts_and_fields_past_smpps_limits_are_recorded_on_both_stores(pipe: Pipeline) -> None:
    """On PostgreSQL each of these failed its transaction before: the SMSC was answered with a
    temporary error and sent it again, for ever (found by fuzzing deliver_sm)."""

    async def scenario() -> None:
        async with faults.OddTexts() as smsc, smpp(pipe, smsc, "odd") as carrier:
            await until(lambda: len(smsc.answers) == 2)  # the unknown receipt and the padded text
            sid = pipe.send(body="hello")
            await pipe.round(route=[carrier]).run_once()
            await until(lambda: reached(pipe, sid, "delivered"))
            await until(lambda: len(smsc.answers) == 3)
            assert {(a.command_id, a.status) for a in smsc.answers.values()} == {(faults.DELIVER_SM | faults.RESP, 0)}

            # The 90-character id is kept as its first 80, in the parts and in the receipt alike.
            long_id = smsc.submits[0].message_id
            assert long_id is not None and len(long_id) == 90
            [part] = pipe.parts(sid)
            assert part["carrier_message_id"] == long_id[:80]
            [receipt] = receipts(pipe, sid)
            assert receipt["applied"] is True and "\x00" not in receipt["raw"]

            with pipe.db.read() as conn:
                [parked] = conn.execute(sa.select(unmatched_receipts)).mappings().all()
                [inbound] = conn.execute(
                    sa.select(messages.c.sid, messages.c.body).where(messages.c.direction == "inbound")
                ).all()
            assert (parked["carrier_message_id"], parked["stat"]) == ("999999", "DELIVERED_TO_HAN")
            assert "\x00" not in parked["raw"]
            assert inbound.body == faults.OddTexts.PADDED_TEXT
            [received] = pipe.events(inbound.sid, "received")
            assert received["detail"]["raw"]["nul_characters_removed"] == 3

    run(scenario)


def test_a_reused_carrier_id_names_its_newest_message_and_nothing_is_sent_twice(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with faults.ReusedIds() as smsc, smpp(pipe, smsc, "reusing") as carrier:
            sids = [pipe.send(to=f"+1415555{7100 + i}", body=f"m{i}") for i in range(3)]
            for _ in range(3):  # one a round: the sender's pace is one a second
                await pipe.round(route=[carrier]).run_once()
                pipe.clock.advance(2)
            assert [pipe.status(s) for s in sids] == ["sent"] * 3
            assert len(smsc.submits) == 3  # each once: every answer was recorded
            assert [p["carrier_message_id"] for s in sids for p in pipe.parts(s)] == ["7"]
            assert pipe.parts(sids[1])[0]["carrier_message_id"] == "7"
            # Both timelines say why a receipt for 7 goes to the second message.
            [lost] = pipe.events(sids[0], "carrier_id_reused")
            assert lost["detail"] == {"carrier": "reusing", "carrier_id": "7", "part": 1, "taken_by": sids[1]}
            [took] = pipe.events(sids[1], "carrier_id_reused")
            assert took["detail"] == {"carrier": "reusing", "carrier_id": "7", "previous_holder": sids[0]}
            assert pipe.events(sids[2], "carrier_id_reused") == []  # an empty id takes nothing
            smsc.send_receipt(smsc.connections[0], "7", tlv_id="7")
            await until(lambda: reached(pipe, sids[1], "delivered"))
            assert pipe.status(sids[0]) == "sent" and pipe.status(sids[2]) == "sent"

    run(scenario)
