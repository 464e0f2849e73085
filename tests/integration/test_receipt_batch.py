"""Receipts applied as one batch (app.receipt_batch) end exactly as applied one by one.

Pairs of identical messages are sent and dispatched; each scenario's receipts go to the first
of a pair one at a time through `apply_receipt`, and to the second through a single
`apply_receipts` call holding every scenario's receipts interleaved. Each pair must then have
the same status, timeline, callbacks, alerts and part receipts.
"""

from __future__ import annotations

import asyncio
from itertools import zip_longest
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app.late_acceptance import record_late_acceptance
from pigeon.app.receipt_batch import apply_receipts, rematch_parked
from pigeon.app.receipts import apply_receipt
from pigeon.ports import LateAcceptance, Receipt
from pigeon.store import dispatch as dispatch_store
from pigeon.workers.simulator import SimulatedReceiptsWorker
from tests.integration.pipeline import Pipeline

#: scenario -> (body, receipts as (part index or "extra" for a second submit's id, stat, err
#: [, the code the carrier's receipt_errors gives err]))
SCENARIOS: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "delivered": ("hello", [(0, "DELIVRD", "000")]),
    "duplicate": ("hello", [(0, "DELIVRD", "000"), (0, "DELIVRD", "000")]),
    "undelivered": ("hello", [(0, "UNDELIV", "001")]),
    "enroute then delivered": ("hello", [(0, "ENROUTE", "000"), (0, "DELIVRD", "000")]),
    "delivered then undelivered": ("hello", [(0, "DELIVRD", "000"), (0, "UNDELIV", "001")]),
    "rejected": ("hello", [(0, "REJECTD", "004")]),
    "unknown state": ("hello", [(0, "UNKNOWN", "000")]),
    "two parts": ("x" * 200, [(0, "DELIVRD", "000"), (1, "DELIVRD", "000")]),
    "two parts, one fails": ("x" * 200, [(1, "UNDELIV", "002"), (0, "DELIVRD", "000")]),
    "resent: the second submit's answer first": ("hello", [("extra", "UNDELIV", "001"), (0, "DELIVRD", "000")]),
    "resent: both delivered": ("hello", [(0, "DELIVRD", "000"), ("extra", "DELIVRD", "000")]),
    # "late": the id of a copy the carrier accepted after its submit was given up on.
    "taken twice: a copy's failure waits": ("hello", [("late", "UNDELIV", "001"), (0, "DELIVRD", "000")]),
    "taken twice: both fail": ("hello", [(0, "UNDELIV", "001"), ("late", "UNDELIV", "002")]),
    "taken twice: one fails, one is to come": ("hello", [(0, "UNDELIV", "001"), ("late", "ENROUTE", "000")]),
    "undelivered, the carrier's code": ("hello", [(0, "UNDELIV", "027", 30006)]),
    "two parts, one fails with the carrier's code": ("x" * 200, [(0, "DELIVRD", "000"), (1, "UNDELIV", "011", 30004)]),
}

VOLATILE = {"carrier_id", "carrier_ids", "raw", "delivery_id"}


def _receipt(carrier_id: str, stat: str, err: str, error_code: int | None = None) -> Receipt:
    return Receipt(
        carrier="simulator",
        carrier_id=carrier_id,
        stat=stat,
        err=err,
        done_date="2601151201",
        raw=f"id:{carrier_id} stat:{stat} err:{err}",
        error_code=error_code,
    )


def _ids(pipe: Pipeline, sid: str, extra: str, *, late: bool) -> dict[Any, str]:
    ids: dict[Any, str] = {p["part_index"]: p["carrier_message_id"] for p in pipe.parts(sid)}
    with pipe.db.write() as conn:  # a second submit of the same message (a resend) has its own id
        if late:  # the carrier's late answer to a submit given up on
            copy = LateAcceptance("simulator", sid, pipe.account_sid, extra, part=1, parts=1)
            assert record_late_acceptance(conn, copy, now=pipe.clock.now())
        else:
            dispatch_store.record_carrier_ids(
                conn,
                carrier="simulator",
                ids=[extra],
                message_sid=sid,
                account_sid=pipe.account_sid,
                at=pipe.clock.now(),
            )
    ids["extra" if not late else "late"] = extra
    return ids


def _state(pipe: Pipeline, sid: str) -> dict[str, Any]:
    message = pipe.message(sid)
    timeline = [
        (e["kind"], e["status"], e["error_code"], {k: v for k, v in (e["detail"] or {}).items() if k not in VOLATILE})
        for e in pipe.events(sid)
    ]
    callbacks = [{k: v for k, v in c.items() if k not in {"MessageSid", "SmsSid"}} for c in pipe.callbacks(sid)]
    return {
        "status": message["status"],
        "error_code": message["error_code"],
        "timeline": timeline,
        "callbacks": callbacks,
        "alerts": [a["error_code"] for a in pipe.alerts(sid)],
        "parts": sorted((p["part_index"], p["receipt_stat"] or "") for p in pipe.parts(sid)),
    }


def test_a_batch_of_receipts_ends_as_the_same_receipts_one_by_one(pipe: Pipeline) -> None:
    pairs = {name: (pipe.send(body=body), pipe.send(body=body)) for name, (body, _) in SCENARIOS.items()}
    sids = [sid for pair in pairs.values() for sid in pair]
    for _ in range(4 * len(sids)):  # one long code: a segment a second
        if all(pipe.status(sid) == "sent" for sid in sids):
            break
        pipe.dispatch()
        pipe.clock.advance(1)
    assert [pipe.status(sid) for sid in sids] == ["sent"] * len(sids)
    one_by_one: list[list[Receipt]] = []
    batched: list[list[Receipt]] = []
    for n, (name, (_, receipts)) in enumerate(SCENARIOS.items()):
        first, second = pairs[name]
        late = any(part == "late" for part, *_ in receipts)
        ids = (_ids(pipe, first, f"extra-a-{n}", late=late), _ids(pipe, second, f"extra-b-{n}", late=late))
        one_by_one.append([_receipt(ids[0][part], *rest) for part, *rest in receipts])
        batched.append([_receipt(ids[1][part], *rest) for part, *rest in receipts])
    orphan = _receipt("nobody-knows-this-id", "DELIVRD", "000")

    now = pipe.clock.now()
    with pipe.db.write() as conn:
        expected = [apply_receipt(conn, r, now=now) for scenario in one_by_one for r in scenario]
        expected.append(apply_receipt(conn, orphan, now=now))
    interleaved = [r for round_ in zip_longest(*batched) for r in round_ if r is not None]
    with pipe.db.write() as conn:
        got = apply_receipts(conn, [*interleaved, orphan], now=now)

    assert sum(g is None for g in got) == sum(e is None for e in expected) == 1
    for name, (first, second) in pairs.items():
        assert _state(pipe, second) == _state(pipe, first), name
    for name, code in [
        ("undelivered, the carrier's code", 30006),
        ("two parts, one fails with the carrier's code", 30004),
        ("taken twice: both fail", 30005),
    ]:
        assert {pipe.message(sid)["error_code"] for sid in pairs[name]} == {code}, name
    assert {pipe.status(sid) for sid in pairs["taken twice: a copy's failure waits"]} == {"delivered"}
    assert {pipe.status(sid) for sid in pairs["taken twice: one fails, one is to come"]} == {"sent"}
    assert pipe.unmatched() == 2  # the orphan, parked twice


def test_a_batch_applies_a_receipt_that_overtook_its_submit_once_the_submit_is_recorded(pipe: Pipeline) -> None:
    early = _receipt("simulator-early", "DELIVRD", "000")
    with pipe.db.write() as conn:
        assert apply_receipts(conn, [early], now=pipe.clock.now()) == [None]
    assert pipe.unmatched() == 1


@pytest.mark.parametrize(
    ("receipt", "status", "error_code"),
    [
        (("DELIVRD", "000"), "delivered", None),
        (("UNDELIV", "027", 30006), "undelivered", 30006),  # the code the carrier's receipt_errors gave
    ],
)
def test_a_parked_receipt_whose_submit_was_recorded_without_seeing_it_is_rematched(
    pipe: Pipeline, receipt: tuple[Any, ...], status: str, error_code: int | None
) -> None:
    """On PostgreSQL the transaction that parks a receipt and the one recording its carrier id
    can run side by side, each blind to the other's row; the dispatcher's sweep applies it, as
    the carrier reported it."""
    sid = pipe.send()
    pipe.dispatch()
    assert pipe.status(sid) == "sent"
    with pipe.db.write() as conn:
        assert apply_receipts(conn, [_receipt("late-recorded", *receipt)], now=pipe.clock.now()) == [None]
    with pipe.db.write() as conn:  # recorded as if by a transaction that took no parked receipt
        dispatch_store.record_carrier_ids(
            conn,
            carrier="simulator",
            ids=["late-recorded"],
            message_sid=sid,
            account_sid=pipe.account_sid,
            at=pipe.clock.now(),
        )
    with pipe.db.write() as conn:
        assert rematch_parked(conn, now=pipe.clock.now()) == 1
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == (status, error_code)
    assert pipe.unmatched() == 0
    with pipe.db.write() as conn:
        assert rematch_parked(conn, now=pipe.clock.now()) == 0


def test_the_receipts_worker_takes_the_writer_lock_only_when_a_receipt_is_due(pipe: Pipeline) -> None:
    """Most polls of the built-in network's receipt worker find nothing due; a read tells it so,
    and only a due receipt costs a write transaction (on SQLite, a turn of its only writer)."""
    sid = pipe.send()
    assert pipe.dispatch() == 1
    worker = SimulatedReceiptsWorker(pipe.db, pipe.clock)
    began: list[bool] = []

    def on_begin(conn: Any) -> None:
        began.append(bool(conn.info.get("write")))

    sa.event.listen(pipe.db.engine, "begin", on_begin)
    try:
        assert asyncio.run(worker.run_once()) == 0  # the receipt is not due yet
        assert not any(began)
        pipe.clock.advance(10)
        assert asyncio.run(worker.run_once()) == 1
        assert any(began)
    finally:
        sa.event.remove(pipe.db.engine, "begin", on_begin)
    assert pipe.status(sid) == "delivered"
