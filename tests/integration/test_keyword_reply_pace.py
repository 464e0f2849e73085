"""The automatic reply to STOP/START/HELP goes out at once, outside its sender's queue, as
Twilio answers keywords apart from the customer's traffic. Both stores.

Before, the confirmation was an ordinary send from the number: refused with 21611 when a
campaign had filled the number's queue (the person who texted STOP got no answer), and paced
behind the whole queue otherwise (50 s behind five 10-segment messages on a long code; up to
ten hours behind a full queue).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app.inbound import receive
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, new_sid
from pigeon.ports import InboundSms
from pigeon.store.engine import Database
from pigeon.store.tables import messages, sender_pacing
from pigeon.testing import FrozenClock
from tests.integration.pipeline import SENDER, TO, Pipeline, ScriptedCarrier, make_pipeline

#: Ten segments of GSM-7 text.
LONG = "x" * 1530


def _text(pipe: Pipeline, body: str) -> tuple[str, ...]:
    """TO texts `body` to SENDER through the real intake; the SIDs of its automatic replies."""
    pipe.clock.advance(1)
    with pipe.db.write() as conn:
        intake = receive(
            conn,
            InboundSms(carrier="simulator", sender=TO, recipient=SENDER, body=body),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )
    return intake.reply_sids


def _fill_queue(pipe: Pipeline) -> None:
    """Ten hours of SENDER's traffic queued (36,000 segments at one a second): 3,600 copies of
    one 10-segment campaign message, to other recipients."""
    sid = pipe.send("+14155559000", body=LONG, callback=None)
    with pipe.db.write() as conn:
        row = dict(conn.execute(sa.select(messages).where(messages.c.sid == sid)).mappings().one())
        row.pop("id", None)
        copies = [
            {**row, "sid": new_sid(Prefix.SMS), "to": f"+1415{5600000 + i}", "content_hash": None} for i in range(3599)
        ]
        conn.execute(messages.insert(), copies)


def _submitted(carrier: ScriptedCarrier) -> list[str]:
    return [m.message_sid for m in carrier.submitted]


def test_a_stop_to_a_number_whose_queue_is_full_is_confirmed_and_the_confirmation_goes_first(pipe: Pipeline) -> None:
    _fill_queue(pipe)
    with pytest.raises(ApiError) as refused:
        pipe.send("+14155559001")
    assert refused.value.code == 21611  # the campaign's next message is refused, as before

    [reply] = _text(pipe, "STOP")
    assert pipe.message(reply)["keyword_reply"] and pipe.alerts(reply) == []
    # Claim rounds at the same instant: each paces the part of the backlog it claims (the
    # claim's order is unchanged: the reply, due since its creation, comes after what was due
    # before it), and the reply goes once it is claimed, not after ten hours of the queue.
    carrier = ScriptedCarrier("c1")
    for _ in range(10):
        pipe.dispatch(route=[carrier], batch=500)
        if reply in _submitted(carrier):
            break
    assert pipe.status(reply) == "sent"
    assert len(_submitted(carrier)) == 2  # the campaign's first message, whose slot was now, and the reply


@pytest.mark.parametrize("word", ["STOP", "START", "HELP"])
def test_a_keyword_reply_goes_ahead_of_the_queue_and_leaves_the_queue_s_slots_as_they_were(
    pipe: Pipeline, word: str
) -> None:
    campaign = [pipe.send(f"+141556010{i:02}", body=LONG) for i in range(5)]
    carrier = ScriptedCarrier("c1")
    assert pipe.dispatch(route=[carrier]) == 1  # the first goes; the others wait for their slots
    slots = {sid: pipe.message(sid)["paced_at"] for sid in campaign[1:]}
    next_free = pipe.next_free()
    assert next_free - pipe.clock.now() > timedelta(seconds=40)

    [reply] = _text(pipe, word)
    assert pipe.dispatch(route=[carrier]) == 1
    assert _submitted(carrier) == [campaign[0], reply]
    # Nothing of the queue moved: its messages keep their slots, the sender its next free one.
    assert {sid: pipe.message(sid)["paced_at"] for sid in campaign[1:]} == slots
    assert pipe.next_free() == next_free


@pytest.mark.postgres
def test_a_keyword_reply_needs_no_pacing_row_and_goes_while_another_transaction_holds_it(
    pg: Database, clock: FrozenClock
) -> None:
    """PostgreSQL only: on SQLite no other transaction holds a row while a claim runs."""
    pipe = make_pipeline(pg, clock)
    try:
        _goes_while_the_row_is_held(pipe)
    finally:
        pipe.spool.stop()


def _goes_while_the_row_is_held(pipe: Pipeline) -> None:
    first = pipe.send(body=LONG)
    carrier = ScriptedCarrier("c1")
    assert pipe.dispatch(route=[carrier]) == 1  # SENDER has its pacing row now
    pipe.clock.advance(10)
    waiting = pipe.send(body=LONG)
    [reply] = _text(pipe, "HELP")
    with pipe.db.engine.connect() as other:
        other.execute(sa.select(sender_pacing).where(sender_pacing.c.sender == SENDER).with_for_update())
        held: dict[str, Any] = {"pacing_wait": timedelta(milliseconds=50)}
        assert pipe.dispatch(route=[carrier], **held) == 1
        other.rollback()
    assert _submitted(carrier) == [first, reply]
    assert pipe.status(waiting) == "queued"  # it needs the row: put back for a few seconds
