"""A single-part message at its carrier twice, on both stores: its first submit went
unanswered, it was sent again, and the carrier's late answer to the first submit was recorded
too (`record_late_acceptance`). Each copy has its own id and receipt; as for each part of a
multipart message, the message is delivered when either copy is, and fails only when both do.

Before, the first final receipt settled a single-part message: a copy reported undelivered
made it `undelivered` for good (the status machine moves nothing out of it), even when the
other copy then reached the handset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pigeon.app.dispatch import DispatchSettings, claim, mark_sending, record, submit
from pigeon.app.late_acceptance import record_late_acceptance
from pigeon.domain.errors import CarrierOutcomeUnknown
from pigeon.ports import LateAcceptance
from tests.integration.pipeline import Pipeline, ScriptedCarrier
from tests.integration.test_dispatch import slow_round_that_lost_its_lease

LATE_ID = "late-1"  # the carrier's id for the first copy, in its late answer


def _late_copy(pipe: Pipeline, sid: str, carrier_id: str = LATE_ID, carrier: str = "carrier") -> None:
    late = LateAcceptance(
        carrier=carrier, message_sid=sid, account_sid=pipe.account_sid, carrier_id=carrier_id, part=1, parts=1
    )
    with pipe.db.write() as conn:
        assert record_late_acceptance(conn, late, now=pipe.clock.now())


def _taken_twice(pipe: Pipeline) -> tuple[str, str, str]:
    """A message sent (again) through "carrier", which then answered its first submit late:
    (SID, the first copy's id, the second copy's id)."""
    sid = pipe.send()
    pipe.dispatch(route=[ScriptedCarrier("carrier")])
    [second] = [p["carrier_message_id"] for p in pipe.parts(sid)]
    _late_copy(pipe, sid)
    return sid, LATE_ID, second


def _receipts(pipe: Pipeline, sid: str) -> list[tuple[str, bool, Any]]:
    return [
        (e["detail"]["carrier_id"], e["detail"]["applied"], e["detail"].get("copies"))
        for e in pipe.events(sid, "receipt")
    ]


def test_a_copys_failure_waits_and_the_other_copy_delivers_the_message(pipe: Pipeline) -> None:
    sid, first, second = _taken_twice(pipe)
    pipe.receipt(first, "UNDELIV", err="001", carrier="carrier")
    assert pipe.status(sid) == "sent"  # the second copy may still reach the handset
    pipe.receipt(second, "DELIVRD", carrier="carrier")
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("delivered", None)
    assert _receipts(pipe, sid) == [(first, False, 2), (second, True, 2)]  # each recorded raw
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]
    assert pipe.alerts(sid) == []


def test_a_message_taken_twice_fails_only_when_both_copies_do(pipe: Pipeline) -> None:
    sid, first, second = _taken_twice(pipe)
    pipe.receipt(first, "UNDELIV", err="001", carrier="carrier")
    pipe.receipt(first, "ENROUTE", carrier="carrier")  # a stale answer for a settled copy
    assert pipe.status(sid) == "sent"
    pipe.receipt(second, "UNDELIV", err="002", carrier="carrier")
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("undelivered", 30005)  # the receipt that settled it
    assert [applied for _, applied, _ in _receipts(pipe, sid)] == [False, False, True]
    assert pipe.callback_statuses(sid) == ["sending", "sent", "undelivered"]
    assert [a["error_code"] for a in pipe.alerts(sid)] == [30005]


def test_a_delivered_copy_settles_the_message_whatever_the_other_says_later(pipe: Pipeline) -> None:
    sid, first, second = _taken_twice(pipe)
    pipe.receipt(second, "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"
    pipe.receipt(first, "UNDELIV", err="001", carrier="carrier")
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("delivered", None)
    assert _receipts(pipe, sid) == [(second, True, 2), (first, False, 2)]
    assert pipe.alerts(sid) == []


def test_copies_at_two_carriers_with_the_same_id_keep_their_own_receipts(pipe: Pipeline) -> None:
    """failover_on_unknown_outcome: the copies are at two carriers, whose ids may be equal."""
    sid, _, second = _taken_twice(pipe)
    _late_copy(pipe, sid, carrier_id=second, carrier="other")
    pipe.receipt(second, "UNDELIV", err="001", carrier="other")
    pipe.receipt(LATE_ID, "UNDELIV", err="001", carrier="carrier")
    assert pipe.status(sid) == "sent"
    pipe.receipt(second, "UNDELIV", err="002", carrier="carrier")
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30005)


def test_a_copys_failure_while_the_message_is_being_sent_again_waits_for_that_submit(pipe: Pipeline) -> None:
    """The first copy's receipt came while the resend was in flight: the message is `sending`,
    from which a receipt may move it, and the copy being sent has no receipt yet either."""
    sid = pipe.send()
    unanswered = CarrierOutcomeUnknown("no answer", carrier_code="smpp:response_timeout")
    carrier = ScriptedCarrier("carrier", unanswered)
    pipe.dispatch(route=[carrier])
    assert pipe.status(sid) == "queued" and pipe.parts(sid) == []
    _late_copy(pipe, sid)  # the answer comes while the message waits for its retry

    pipe.clock.advance(3600)  # the retry is due
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        jobs = claim(conn, now=pipe.clock.now(), worker_id="d", settings=settings)
        [job] = mark_sending(conn, jobs, now=pipe.clock.now())
    outcome = asyncio.run(submit(job, [carrier]))
    assert outcome.ack is not None
    pipe.receipt(LATE_ID, "UNDELIV", err="001", carrier="carrier")
    assert pipe.status(sid) == "sending"
    with pipe.db.write() as conn:
        record(conn, [outcome], now=pipe.clock.now(), settings=settings)
    assert pipe.status(sid) == "sent"
    [second] = outcome.ack.carrier_ids
    pipe.receipt(second, "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"
    assert pipe.callback_statuses(sid)[-2:] == ["sent", "delivered"]


def test_a_copy_accepted_after_its_dispatchers_lease_ran_out_counts_as_a_copy(pipe: Pipeline) -> None:
    """The dispatcher's own late answer (`accepted_late` in `record`): another dispatcher sent
    the message again meanwhile, through the built-in network."""
    sid = pipe.send()
    outcomes = slow_round_that_lost_its_lease(pipe, {sid: None})
    with pipe.db.write() as conn:
        record(conn, outcomes, now=pipe.clock.now(), settings=DispatchSettings())
    assert len(pipe.parts(sid)) == 2
    pipe.receipt("slow-1-0", "UNDELIV", err="001", carrier="slow")
    assert pipe.status(sid) == "sent"
    assert pipe.receipts(advance=60) == 1  # the rescuer's copy, delivered
    assert pipe.status(sid) == "delivered" and pipe.message(sid)["late_copy"]


@contextmanager
def _statements(pipe: Pipeline) -> Iterator[list[str]]:
    seen: list[str] = []

    def keep(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)


def test_a_message_the_carrier_took_once_reads_no_copies(pipe: Pipeline) -> None:
    """The common case, the hot path: its failure settles it at once, without reading its parts
    or locking it."""
    sid = pipe.send()
    pipe.dispatch(route=[ScriptedCarrier("carrier")])
    [cid] = [p["carrier_message_id"] for p in pipe.parts(sid)]
    with _statements(pipe) as seen:
        pipe.receipt(cid, "UNDELIV", err="001", carrier="carrier")
    assert pipe.status(sid) == "undelivered"
    assert not [s for s in seen if "carrier_refs.message_sid =" in s or "FOR UPDATE" in s]
    assert "copies" not in pipe.events(sid, "receipt")[0]["detail"]
