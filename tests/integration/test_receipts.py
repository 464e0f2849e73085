"""Delivery receipts on both stores: matching by carrier id, duplicates, late and early receipts,
multipart aggregation, the mapped codes, alerts and callbacks.

Messages go out through the real dispatcher; receipts come from the built-in network's spool
(`deliver_simulated_receipts`) or are handed to `apply_receipt` directly, as a connector would.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from pigeon.app.dispatch import DispatchSettings, Outcome, claim, mark_sending, record, submit
from pigeon.app.receipts import ReceiptSink, apply_receipt
from pigeon.ports import Receipt
from tests.integration.pipeline import Pipeline, ScriptedCarrier

LONG_BODY = "x" * 200  # two GSM-7 segments
THREE_PARTS = "y" * 400


def _sent(pipe: Pipeline, body: str = "hello", to: str = "+14155552671") -> tuple[str, list[str]]:
    """A message sent through a scripted carrier (no receipts owed); its carrier ids, part by part."""
    carrier = ScriptedCarrier("carrier")
    sid = pipe.send(body=body, to=to)
    pipe.dispatch(route=[carrier])
    assert pipe.status(sid) == "sent"
    return sid, [p["carrier_message_id"] for p in pipe.parts(sid)]


def _submitted_unrecorded(pipe: Pipeline, body: str = "hello") -> tuple[str, Outcome, DispatchSettings]:
    """A message the carrier "fast" took, whose answer is not recorded yet: (SID, outcome, settings)."""
    sid = pipe.send(body=body)
    carrier = ScriptedCarrier("fast")
    settings = DispatchSettings(lookahead=timedelta(0))
    with pipe.db.write() as conn:
        jobs = mark_sending(
            conn, claim(conn, now=pipe.clock.now(), worker_id="d", settings=settings), now=pipe.clock.now()
        )
    [outcome] = [asyncio.run(submit(job, [carrier])) for job in jobs]
    assert outcome.ack is not None
    return sid, outcome, settings


def test_a_receipt_is_matched_by_carrier_id_and_recorded_raw(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    assert pipe.receipt(cid, "DELIVRD", carrier="carrier") == sid
    assert pipe.status(sid) == "delivered"
    [event] = pipe.events(sid, "receipt")
    assert event["status"] == "delivered"
    assert event["detail"] == {
        "carrier": "carrier",
        "carrier_id": cid,
        "part": 1,
        "parts": 1,
        "stat": "DELIVRD",
        "err": "000",
        "done_date": "2601151201",
        "raw": f"id:{cid} stat:DELIVRD err:000",
        "duplicate": False,
        "applied": True,
    }
    assert pipe.parts(sid)[0]["receipt_stat"] == "DELIVRD"


def test_the_same_id_at_another_carrier_does_not_match(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    assert pipe.receipt(cid, "DELIVRD", carrier="someone-else") is None
    assert pipe.status(sid) == "sent"
    assert pipe.unmatched() == 1


@pytest.mark.parametrize(
    ("stat", "err", "status", "code"),
    [
        ("UNDELIV", "001", "undelivered", 30003),
        ("UNDELIV", "002", "undelivered", 30005),
        ("UNDELIV", "003", "undelivered", 30006),
        ("REJECTD", "004", "undelivered", 30007),
        ("EXPIRED", "000", "undelivered", 30003),
        ("FAILED", "000", "failed", 30008),
    ],
)
def test_failure_receipts_set_the_mapped_code_an_alert_and_a_callback(
    pipe: Pipeline, stat: str, err: str, status: str, code: int
) -> None:
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, stat, err=err, carrier="carrier")
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == (status, code)
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == code and alert["log_level"] == "warning"
    assert stat in alert["alert_text"]
    last = pipe.callbacks(sid)[-1]
    assert (last["MessageStatus"], last["ErrorCode"]) == (status, str(code))


def test_the_carriers_own_code_for_its_err_value_comes_first(pipe: Pipeline) -> None:
    """Pigeon's table reads err 001 as an unreachable handset; this carrier's receipt_errors
    says it means an unknown one."""
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, "UNDELIV", err="001", carrier="carrier", error_code=30005)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("undelivered", 30005)
    assert pipe.callbacks(sid)[-1]["ErrorCode"] == "30005"
    [event] = pipe.events(sid, "receipt")
    assert (event["error_code"], event["detail"]["err"]) == (30005, "001")  # the raw err stays
    assert event["detail"]["err_means"] == 30005  # and where the code came from


def test_a_delivered_receipt_ignores_the_carriers_code(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, "DELIVRD", err="001", carrier="carrier", error_code=30005)
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("delivered", None)


def test_a_parked_receipt_keeps_the_carriers_code(pipe: Pipeline) -> None:
    sid, outcome, settings = _submitted_unrecorded(pipe)
    assert outcome.ack is not None
    [cid] = outcome.ack.carrier_ids
    assert pipe.receipt(cid, "UNDELIV", err="027", carrier="fast", error_code=30006) is None
    with pipe.db.write() as conn:
        record(conn, [outcome], now=pipe.clock.now(), settings=settings)
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30006)


def test_multipart_takes_the_carriers_code_of_the_part_that_failed(pipe: Pipeline) -> None:
    sid, ids = _sent(pipe, body=LONG_BODY)
    pipe.receipt(ids[0], "DELIVRD", carrier="carrier")
    pipe.receipt(ids[1], "UNDELIV", err="027", carrier="carrier", error_code=30004)
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30004)


def test_intermediate_receipts_are_recorded_without_a_status_change(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, "ENROUTE", carrier="carrier")
    pipe.receipt(cid, "ACCEPTD", carrier="carrier")
    assert pipe.status(sid) == "sent"
    assert [e["detail"]["applied"] for e in pipe.events(sid, "receipt")] == [False, False]
    pipe.receipt(cid, "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"


def test_a_duplicate_receipt_is_recorded_as_such_without_a_second_change(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550108")  # the network delivers twice
    pipe.dispatch()
    assert pipe.receipts(advance=1) == 2
    assert pipe.status(sid) == "delivered"
    first, second = pipe.events(sid, "receipt")
    assert (first["detail"]["applied"], first["detail"]["duplicate"], first["status"]) == (True, False, "delivered")
    assert (second["detail"]["applied"], second["detail"]["duplicate"], second["status"]) == (False, True, None)
    assert first["detail"]["carrier_id"] == second["detail"]["carrier_id"]
    assert [s for k, s in pipe.timeline(sid) if k == "status"] == ["sending", "sent", "delivered"]
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


def test_a_late_receipt_never_moves_delivered_backwards(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, "DELIVRD", carrier="carrier")
    for stat, err in (("ENROUTE", "000"), ("ACCEPTD", "000"), ("UNDELIV", "001"), ("REJECTD", "004")):
        pipe.receipt(cid, stat, err=err, carrier="carrier")
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("delivered", None)
    receipts = pipe.events(sid, "receipt")
    assert [e["detail"]["applied"] for e in receipts] == [True, False, False, False, False]
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]
    assert pipe.alerts(sid) == []


def test_a_late_delivered_receipt_does_not_undo_undelivered(pipe: Pipeline) -> None:
    sid, [cid] = _sent(pipe)
    pipe.receipt(cid, "UNDELIV", err="002", carrier="carrier")
    pipe.receipt(cid, "DELIVRD", carrier="carrier")
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30005)


def test_a_receipt_that_overtakes_the_submit_response_is_applied_once_recorded(pipe: Pipeline) -> None:
    sid, outcome, settings = _submitted_unrecorded(pipe)
    assert outcome.ack is not None
    [cid] = outcome.ack.carrier_ids
    # The carrier's receipt arrives before we have recorded its id: parked, not lost.
    assert pipe.receipt(cid, "DELIVRD", carrier="fast") is None
    assert pipe.unmatched() == 1
    assert pipe.status(sid) == "sending"
    with pipe.db.write() as conn:
        record(conn, [outcome], now=pipe.clock.now(), settings=settings)
    assert pipe.status(sid) == "delivered"
    assert pipe.unmatched() == 0
    assert [s for k, s in pipe.timeline(sid) if k == "status"] == ["sending", "sent", "delivered"]
    [event] = pipe.events(sid, "receipt")
    assert event["detail"]["applied"] is True
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


def test_a_receipt_for_an_id_we_never_sent_stays_parked(pipe: Pipeline) -> None:
    assert pipe.receipt("no-such-id", "DELIVRD") is None
    assert pipe.unmatched() == 1


def test_a_receipt_for_a_deleted_message_matches_nothing(pipe: Pipeline) -> None:
    """A deleted message goes with its carrier ids: its late receipt is kept with the receipts
    that matched nothing (the error log's retention removes it), and creates nothing."""
    from pigeon.store.retention import remove_messages

    sid, [cid] = _sent(pipe)
    with pipe.db.write() as conn:
        remove_messages(conn, [sid])
    assert pipe.parts(sid) == []
    assert pipe.receipt(cid, "DELIVRD", carrier="carrier") is None
    assert pipe.unmatched() == 1 and pipe.events(sid) == []


# -- multipart ----------------------------------------------------------------------------------------


def test_multipart_is_delivered_only_when_every_part_is(pipe: Pipeline) -> None:
    sid, ids = _sent(pipe, body=LONG_BODY)
    assert len(ids) == 2
    assert [p["part_index"] for p in pipe.parts(sid)] == [0, 1]
    pipe.receipt(ids[1], "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "sent"
    pipe.receipt(ids[0], "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"
    receipts = pipe.events(sid, "receipt")
    assert [(e["detail"]["part"], e["detail"]["parts"], e["detail"]["applied"]) for e in receipts] == [
        (2, 2, False),
        (1, 2, True),
    ]
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


def test_the_last_parts_receipts_applied_at_once_deliver_the_message(pipe: Pipeline) -> None:
    """PostgreSQL: two processes may apply a message's last two parts' receipts at once (binds
    held by different processes). Under READ COMMITTED each saw the other's part still open
    and neither moved the message: it stayed sent for ever. The message is locked first, so
    the second waits and then sees the first part's receipt."""
    if pipe.db.is_sqlite:
        pytest.skip("SQLite has one writer at a time")
    sid, ids = _sent(pipe, body=LONG_BODY)
    first, second = (Receipt(carrier="carrier", carrier_id=i, stat="DELIVRD", err="000") for i in ids)
    with pipe.db.engine.connect() as conn:
        tx = conn.begin()
        apply_receipt(conn, first, now=pipe.clock.now())
        other = threading.Thread(
            target=lambda: pipe.db.transact(lambda c: apply_receipt(c, second, now=pipe.clock.now()))
        )
        other.start()
        other.join(0.5)  # without the lock it runs to its commit here, beside this transaction
        tx.commit()
    other.join()
    assert pipe.status(sid) == "delivered"
    assert [e["detail"]["applied"] for e in pipe.events(sid, "receipt")] == [False, True]


@pytest.mark.parametrize(("part", "stat", "status"), [(0, "DELIVRD", "delivered"), (2, "UNDELIV", "undelivered")])
def test_a_carrier_that_reports_on_whole_messages_settles_one_with_any_parts_receipt(
    pipe: Pipeline, part: int, stat: str, status: str
) -> None:
    """Some SMSCs send one receipt for a concatenated message, for its first part or its last
    (`multipart_receipts = "any_part"`): waiting for every part would leave it sent for ever."""
    sid, ids = _sent(pipe, body=THREE_PARTS)
    pipe.receipt(ids[1], "ENROUTE", carrier="carrier", whole_message=True)
    assert pipe.status(sid) == "sent"
    pipe.receipt(ids[part], stat, carrier="carrier", whole_message=True)
    assert pipe.status(sid) == status
    assert pipe.callback_statuses(sid)[-1] == status


def test_a_parked_receipt_for_a_whole_message_keeps_saying_so(pipe: Pipeline) -> None:
    sid, outcome, settings = _submitted_unrecorded(pipe, body=LONG_BODY)
    assert outcome.ack is not None
    last = outcome.ack.carrier_ids[-1]
    assert pipe.receipt(last, "DELIVRD", carrier="fast", whole_message=True) is None  # overtook its submit
    with pipe.db.write() as conn:
        record(conn, [outcome], now=pipe.clock.now(), settings=settings)
    assert pipe.status(sid) == "delivered"


def test_multipart_through_the_built_in_network(pipe: Pipeline) -> None:
    sid = pipe.send(body=THREE_PARTS)
    pipe.dispatch()
    assert len(pipe.parts(sid)) == 3
    assert pipe.receipts(advance=1) == 3
    assert pipe.status(sid) == "delivered"
    assert all(p["receipt_stat"] == "DELIVRD" for p in pipe.parts(sid))


def test_multipart_undelivered_with_the_failed_parts_code(pipe: Pipeline) -> None:
    sid, ids = _sent(pipe, body=LONG_BODY)
    pipe.receipt(ids[0], "DELIVRD", carrier="carrier")
    pipe.receipt(ids[1], "UNDELIV", err="002", carrier="carrier")
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("undelivered", 30005)


def test_multipart_takes_the_code_of_the_first_part_that_failed(pipe: Pipeline) -> None:
    sid, ids = _sent(pipe, body=THREE_PARTS)
    pipe.receipt(ids[2], "REJECTD", err="004", carrier="carrier")
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30007)
    pipe.receipt(ids[0], "UNDELIV", err="002", carrier="carrier")
    pipe.receipt(ids[1], "DELIVRD", carrier="carrier")
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("undelivered", 30007)
    assert pipe.callback_statuses(sid) == ["sending", "sent", "undelivered"]
    assert len(pipe.alerts(sid)) == 1


def test_multipart_duplicate_receipts_change_nothing(pipe: Pipeline) -> None:
    sid = pipe.send(to="+14155550108", body=LONG_BODY)
    pipe.dispatch()
    assert pipe.receipts(advance=1) == 4
    assert pipe.status(sid) == "delivered"
    receipts = pipe.events(sid, "receipt")
    assert sum(e["detail"]["duplicate"] for e in receipts) == 2
    assert sum(e["detail"]["applied"] for e in receipts) == 1
    assert pipe.callback_statuses(sid) == ["sending", "sent", "delivered"]


def test_a_late_intermediate_receipt_for_a_delivered_part_does_not_hold_the_message(pipe: Pipeline) -> None:
    """Part 1 delivered, then a stale ENROUTE for part 1 arrives out of order, then part 2 delivered."""
    sid, ids = _sent(pipe, body=LONG_BODY)
    pipe.receipt(ids[0], "DELIVRD", carrier="carrier")
    pipe.receipt(ids[0], "ENROUTE", carrier="carrier")
    pipe.receipt(ids[1], "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"
    assert [p["receipt_stat"] for p in pipe.parts(sid)] == ["DELIVRD", "DELIVRD"]


def test_a_part_reported_delivered_then_failed_keeps_its_first_final_answer(pipe: Pipeline) -> None:
    sid, ids = _sent(pipe, body=LONG_BODY)
    pipe.receipt(ids[0], "DELIVRD", carrier="carrier")
    pipe.receipt(ids[0], "UNDELIV", err="001", carrier="carrier")  # contradicts itself
    pipe.receipt(ids[1], "DELIVRD", carrier="carrier")
    assert pipe.status(sid) == "delivered"  # as a single-part message would stay


def test_receipts_handed_over_together_share_a_commit_and_each_caller_waits_for_it(pipe: Pipeline) -> None:
    """A carrier reports receipts one deliver_sm at a time, many at once: the sink applies the
    ones that arrive while a transaction commits in the next one (group commit)."""
    carrier = ScriptedCarrier("carrier")
    sids = []
    for i in range(20):
        sids.append(pipe.send(to=f"+1415555{2700 + i:04d}"))
        pipe.dispatch(route=[carrier])
        pipe.clock.advance(1)  # the sender's next slot
    ids = [p["carrier_message_id"] for sid in sids for p in pipe.parts(sid)]
    assert len(ids) == 20
    sink = ReceiptSink(pipe.db, pipe.clock)

    async def report() -> None:
        await asyncio.gather(
            *(sink.on_receipt(Receipt("carrier", cid, "DELIVRD", "000", None, f"id:{cid}")) for cid in ids)
        )

    asyncio.run(report())
    assert [pipe.status(sid) for sid in sids] == ["delivered"] * 20  # every caller returned after its commit
    assert sink._committer.rows == 20 and sink._committer.batches < 20
