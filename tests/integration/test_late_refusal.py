"""A carrier's late refusal of a submit given up as unanswered, recorded on both stores
(`pigeon.app.late_acceptance.record_late_refusal`, through the `CarrierEventSink`): a
`refused_late` entry on the message's timeline, and nothing else about the message changes
(the resend decides its status). The SMPP side is in test_smpp_late_answers.py."""

from __future__ import annotations

import asyncio

from pigeon.app.carrier_events import CarrierEventSink
from pigeon.ports import LateRefusal
from pigeon.store.retention import remove_messages
from tests.integration.pipeline import Pipeline, ScriptedCarrier


def _refusal(pipe: Pipeline, sid: str) -> LateRefusal:
    return LateRefusal(
        carrier="carrier",
        message_sid=sid,
        account_sid=pipe.account_sid,
        part=1,
        parts=1,
        command_status=0x58,
        status_name="ESME_RTHROTTLED",
        raw={"sequence": 12, "command": "submit_sm_resp"},
    )


def _sink(pipe: Pipeline) -> CarrierEventSink:
    return CarrierEventSink(pipe.db, pipe.clock, base_url="https://pigeon.example.com")


def test_a_late_refusal_is_recorded_and_changes_nothing_else(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch(route=[ScriptedCarrier("carrier")])
    message, parts, callbacks = pipe.message(sid), pipe.parts(sid), pipe.callbacks(sid)
    pipe.clock.advance(5)
    asyncio.run(_sink(pipe).on_late_refusal(_refusal(pipe, sid)))
    [entry] = pipe.events(sid, "refused_late")
    assert (entry["status"], entry["error_code"], entry["at"]) == (None, None, pipe.clock.now())
    assert {k: v for k, v in entry["detail"].items() if k != "reason"} == {
        "carrier": "carrier",
        "part": 1,
        "parts": 1,
        "command_status": 0x58,
        "carrier_code": "ESME_RTHROTTLED",
        "sequence": 12,
        "command": "submit_sm_resp",
    }
    assert "not at the carrier" in entry["detail"]["reason"]
    assert pipe.message(sid) == message and pipe.parts(sid) == parts and pipe.callbacks(sid) == callbacks
    assert pipe.alerts(sid) == []


def test_a_late_refusal_for_a_deleted_message_leaves_nothing(pipe: Pipeline) -> None:
    sid = pipe.send()
    pipe.dispatch(route=[ScriptedCarrier("carrier")])
    with pipe.db.write() as conn:
        remove_messages(conn, [sid])
    assert _sink(pipe).take_late_refusal(_refusal(pipe, sid)) is False
    assert pipe.events(sid) == []
