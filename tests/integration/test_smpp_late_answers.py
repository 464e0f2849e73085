"""A submit_sm_resp that comes after the response timeout, from the npm SMSC (smsc.js
``submit_script`` ``{"late_ms": N}``), through the dispatcher into the store, on both stores.

The submit was reported as an unknown outcome and sent again; the late answer names the
carrier's id for the first copy. It must be recorded (an `accepted_late` entry and the
carrier id), so that the first copy's receipts find the message and the doctor counts both
copies; the message's status is left as the rest of the pipeline made it. A late refusal
(``{"late_ms": N, "status": S}``) is recorded too (`refused_late`), and the doctor no longer
counts that submit as one that may have reached the handset.
"""

from __future__ import annotations

from typing import Any

import pytest

from pigeon.domain.diagnosis import count_submits, diagnose_message
from pigeon.domain.diagnosis.facts import MessageFacts
from pigeon.ports import Carrier
from pigeon.store.retention import remove_messages
from tests.integration.pipeline import Pipeline
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import run_within
from tests.integration.test_smpp_dispatch import smpp, until

pytestmark = pytest.mark.usefixtures("npm_smsc")

RESPONSE_TIMEOUT = 0.3
LATE_MS = 1200  # the first submit_sm_resp comes four response timeouts late


def receipts_for(pipe: Pipeline, sid: str, carrier_id: str) -> list[dict[str, Any]]:
    pipe.rematch()  # as the dispatcher worker's sweep does (a receipt may overtake a commit on PostgreSQL)
    return [e for e in pipe.events(sid, "receipt") if e["detail"]["carrier_id"] == carrier_id]


async def sent_twice(pipe: Pipeline, smsc: NodeSmsc, carrier: Carrier) -> tuple[str, str, str]:
    """A message whose first submit is answered late, after its resend was accepted: (SID, the
    first copy's id, the second's), once the late answer is recorded."""
    sid = pipe.send()
    await pipe.round(route=[carrier]).run_once()
    [retry] = pipe.events(sid, "retry")
    assert retry["detail"]["outcome_unknown"] is True

    # The retry goes out (and is answered at once) before the first answer comes.
    pipe.clock.advance(60)
    await pipe.round(route=[carrier]).run_once()
    assert pipe.status(sid) == "sent"
    first, second = (r["message_id"] for r in smsc.accepted())

    await smsc.wait_event(lambda e: e.get("event") == "answered_late")
    await until(lambda: pipe.events(sid, "accepted_late") != [])
    return sid, first, second


def test_a_late_submit_resp_is_recorded_and_its_receipts_find_the_message(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running(receipts=False, submit_script=[{"late_ms": LATE_MS}]) as smsc:
            async with smpp(pipe, smsc, "slow", response_timeout=RESPONSE_TIMEOUT) as carrier:
                sid, first, second = await sent_twice(pipe, smsc, carrier)
                [late] = pipe.events(sid, "accepted_late")
                assert late["status"] is None and pipe.status(sid) == "sent"  # the status is not this entry's
                detail = late["detail"]
                assert (detail["carrier"], detail["carrier_ids"], detail["part"], detail["parts"]) == (
                    "slow",
                    [first],
                    1,
                    1,
                )
                assert "after the response timeout" in detail["reason"] and "sent again" in detail["reason"]
                assert sorted(p["carrier_message_id"] for p in pipe.parts(sid)) == sorted([first, second])

                # The first copy's receipt finds the message and settles it ...
                await smsc.command("receipt", message_id=first, text_id=first, stat="DELIVRD")
                await until(lambda: receipts_for(pipe, sid, first) != [])
                assert pipe.status(sid) == "delivered" and pipe.unmatched() == 0
                # ... and the second copy's cannot move it back.
                await smsc.command("receipt", message_id=second, text_id=second, stat="UNDELIV")
                await until(lambda: receipts_for(pipe, sid, second) != [])
                assert pipe.status(sid) == "delivered"
                assert receipts_for(pipe, sid, second)[0]["detail"]["applied"] is False

                # The doctor counts two copies at the carrier, the late answer in its evidence.
                events, parts = pipe.events(sid), pipe.parts(sid)
                assert count_submits(events, parts).reaching == 2
                facts = MessageFacts(message=pipe.message(sid), events=events, parts=parts, now=pipe.clock.now())
                resent = {f.cause: f for f in diagnose_message(facts)}["pigeon_resent"]
                assert any("accepted_late" in str(row) for row in resent.evidence)

    run_within(scenario, seconds=45)


def test_the_first_copys_failure_waits_and_the_second_copy_delivers_the_message(pipe: Pipeline) -> None:
    """Before, the first final receipt of a single-part message settled it: the first copy's
    UNDELIV made it undelivered for good, although the second copy reached the handset."""

    async def scenario() -> None:
        async with NodeSmsc.running(receipts=False, submit_script=[{"late_ms": LATE_MS}]) as smsc:
            async with smpp(pipe, smsc, "slow", response_timeout=RESPONSE_TIMEOUT) as carrier:
                sid, first, second = await sent_twice(pipe, smsc, carrier)
                await smsc.command("receipt", message_id=first, text_id=first, stat="UNDELIV")
                await until(lambda: receipts_for(pipe, sid, first) != [])
                assert pipe.status(sid) == "sent"  # the second copy may still reach the handset
                await smsc.command("receipt", message_id=second, text_id=second, stat="DELIVRD")
                await until(lambda: receipts_for(pipe, sid, second) != [])
                assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("delivered", None)
                assert [e["detail"]["applied"] for e in pipe.events(sid, "receipt")] == [False, True]

    run_within(scenario, seconds=45)


def test_a_late_refusal_is_recorded_and_the_doctor_stops_counting_that_submit(pipe: Pipeline) -> None:
    """The first submit is refused (ESME_RSYSERR) only after the response timeout: it was
    counted as possibly at the carrier and the message was sent again. The refusal says that
    copy is not there; the status stays the resend's."""

    async def scenario() -> None:
        script = [{"late_ms": LATE_MS, "status": 0x08}]
        async with NodeSmsc.running(receipts=False, submit_script=script) as smsc:
            async with smpp(pipe, smsc, "slow", response_timeout=RESPONSE_TIMEOUT) as carrier:
                sid = pipe.send()
                await pipe.round(route=[carrier]).run_once()
                assert pipe.events(sid, "retry")[0]["detail"]["outcome_unknown"] is True
                pipe.clock.advance(60)
                await pipe.round(route=[carrier]).run_once()
                assert pipe.status(sid) == "sent" and pipe.events(sid, "resend") != []
                before = count_submits(pipe.events(sid), pipe.parts(sid)).reaching
                assert before == 2  # as far as anyone could tell, the carrier may have both

                await smsc.wait_event(lambda e: e.get("event") == "refused_late")
                await until(lambda: pipe.events(sid, "refused_late") != [])
                [refused] = pipe.events(sid, "refused_late")
                assert refused["status"] is None and pipe.status(sid) == "sent"
                detail = refused["detail"]
                assert (detail["carrier"], detail["part"], detail["parts"]) == ("slow", 1, 1)
                assert (detail["command_status"], detail["carrier_code"]) == (0x08, "ESME_RSYSERR")
                assert detail["command"] == "submit_sm_resp" and isinstance(detail["sequence"], int)
                assert "not at the carrier" in detail["reason"]
                assert pipe.events(sid, "accepted_late") == []

                events, parts = pipe.events(sid), pipe.parts(sid)
                assert count_submits(events, parts).reaching == 1
                facts = MessageFacts(message=pipe.message(sid), events=events, parts=parts, now=pipe.clock.now())
                assert "pigeon_resent" not in [f.cause for f in diagnose_message(facts)]

    run_within(scenario, seconds=45)


def test_a_late_answer_for_a_deleted_message_leaves_nothing(pipe: Pipeline) -> None:
    async def scenario() -> None:
        async with NodeSmsc.running(receipts=False, submit_script=[{"late_ms": LATE_MS}]) as smsc:
            async with smpp(pipe, smsc, "slow", response_timeout=RESPONSE_TIMEOUT) as carrier:
                sid = pipe.send()
                await pipe.round(route=[carrier]).run_once()
                assert pipe.events(sid, "retry") != []
                with pipe.db.write() as conn:  # deleted (or erased) while the answer was on its way
                    remove_messages(conn, [sid])
                await smsc.wait_event(lambda e: e.get("event") == "answered_late")
                first = smsc.accepted()[0]["message_id"]
                await smsc.command("receipt", message_id=first, text_id=first, stat="DELIVRD")
                await until(lambda: pipe.unmatched() == 1)  # nothing matched it: no carrier id was kept
                assert pipe.parts(sid) == [] and pipe.events(sid) == []

    run_within(scenario, seconds=45)
