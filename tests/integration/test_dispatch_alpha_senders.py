"""Unrelated accounts that send as the same alphanumeric sender ID ("INFO") each have a queue and a
pace of their own; a number's queue and pace stay the number's. Both stores, and the upgrade
of a store whose "INFO" row was shared.

Before, the queue depth summed every account's messages from "INFO" and the pacing row was
keyed by the text alone: account B's send as "INFO" was refused with 21611 because account A
had filled "INFO"'s queue, and B's traffic went out paced behind A's backlog.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.domain.numbers import SenderKind
from pigeon.domain.pacing import DEFAULT_RATES, PacingPolicy, queue_key
from pigeon.store import dispatch as dispatch_store
from pigeon.store import pacing as pacing_store
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.schema import alembic_config, upgrade
from pigeon.store.tables import accounts, messages, sender_pacing
from tests.integration.pipeline import SENDER, Pipeline, ScriptedCarrier

ALPHA = "INFO"
UK = "+447700900001"
#: An alphanumeric sender's queue holds three segments (ten hours at this rate).
TINY = PacingPolicy(rates={**DEFAULT_RATES, SenderKind.ALPHANUMERIC: 3 / 36_000})


def _other_account(pipe: Pipeline) -> str:
    with pipe.db.write() as conn:
        return str(account_use.create_account(conn, friendly_name="unrelated", now=pipe.clock.now())["sid"])


def _send_as(pipe: Pipeline, account_sid: str, to: str = UK, pacing: PacingPolicy | None = None) -> str:
    with pipe.db.write() as conn:
        req = SendRequest(to=to, from_=ALPHA, body="hello")
        new = prepare_message(conn, account_sid, req, pipe.clock.now(), pacing=pacing)
        insert_messages(conn, [new])
    return str(new.message["sid"])


def test_one_account_filling_its_alphanumeric_queue_leaves_another_accounts_alone(pipe: Pipeline) -> None:
    other = _other_account(pipe)
    for i in range(3):
        pipe.send(f"+44770090010{i}", from_=ALPHA, pacing=TINY)
    with pytest.raises(ApiError) as refused:
        pipe.send(from_=ALPHA, to=UK, pacing=TINY)  # its own queue is full
    assert refused.value.code == 21611

    sid = _send_as(pipe, other, pacing=TINY)  # another account's "INFO": an empty queue
    assert pipe.status(sid) == "queued"
    with pipe.db.read() as conn:
        assert dispatch_store.queued_segments(conn, ALPHA, account_sid=pipe.account_sid) == 3
        assert dispatch_store.queued_segments(conn, ALPHA, account_sid=other) == 1


def test_the_doctor_counts_the_accounts_own_queue_of_an_alphanumeric_sender(pipe: Pipeline) -> None:
    other = _other_account(pipe)
    pipe.send_in_order(3, to=UK, from_=ALPHA)
    theirs = _send_as(pipe, other)
    with pipe.db.read() as conn:
        facts = diagnose.message_facts(conn, pipe.message(theirs), pipe.clock.now())
    assert facts.queue_ahead == 0  # not the other account's three


def test_a_number_has_one_queue_whoever_asks(pipe: Pipeline) -> None:
    pipe.send_in_order(2)
    with pipe.db.read() as conn:
        assert dispatch_store.queued_segments(conn, SENDER, account_sid="AC" + "0" * 32) == 2


def test_each_accounts_alphanumeric_sender_is_paced_apart(pipe: Pipeline) -> None:
    """ "INFO" at 0.5 segments a second ([pacing.senders] applies to every account's "INFO"):
    account A's second message waits two seconds; account B's first goes at once."""
    other = _other_account(pipe)
    slow = PacingPolicy(overrides={ALPHA: 0.5})
    first, second = pipe.send_in_order(2, to=UK, from_=ALPHA)
    theirs = _send_as(pipe, other, to="+447700900002")
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier], pacing=slow) == 2
    assert {m.message_sid for m in carrier.submitted} == {first, theirs}
    assert pipe.status(second) == "queued"
    with pipe.db.read() as conn:
        free = pacing_store.next_free(conn, [queue_key(pipe.account_sid, ALPHA), queue_key(other, ALPHA)])
    now = pipe.clock.now()
    assert free == {
        f"{pipe.account_sid}:{ALPHA}": now + timedelta(seconds=4),  # two messages, two seconds each
        f"{other}:{ALPHA}": now + timedelta(seconds=2),
    }
    pipe.clock.advance(2)
    assert pipe.dispatch(route=[carrier], pacing=slow) == 1
    assert pipe.status(second) == "sent"


def test_a_number_keeps_its_pacing_row(pipe: Pipeline) -> None:
    pipe.send()
    pipe.dispatch(route=[ScriptedCarrier("c1")])
    with pipe.db.read() as conn:
        keys = set(conn.execute(sa.select(sender_pacing.c.sender)).scalars())
    assert keys == {SENDER}


def test_the_upgrade_gives_each_account_with_reserved_slots_its_own_alphanumeric_row(db: Database) -> None:
    """0023: a shared "INFO" row becomes one row per account with slots reserved in it, at its
    latest; an account with nothing reserved starts afresh; a number's row stays. Downgrading
    puts the latest back under "INFO"."""
    cfg = alembic_config(db.engine)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0022")
    now = datetime(2026, 12, 9, 12, tzinfo=UTC)
    a, b, c = ("AC" + ch * 32 for ch in "abc")
    with db.write() as conn:
        for sid in (a, b, c):
            conn.execute(
                accounts.insert().values(
                    sid=sid,
                    owner_account_sid=sid,
                    friendly_name="upgrade",
                    auth_token="t" * 32,
                    date_created=now,
                    date_updated=now,
                )
            )

        def message(n: int, account: str, sender: str, status: str, paced: datetime | None) -> None:
            conn.execute(
                messages.insert().values(
                    sid=f"SM{n:032d}",
                    account_sid=account,
                    direction="outbound-api",
                    from_=sender,
                    to=UK,
                    status=status,
                    paced_at=paced,
                    next_attempt_at=paced or now,
                    date_created=now,
                    date_updated=now,
                )
            )

        message(1, a, ALPHA, "queued", now + timedelta(hours=2))  # A's backlog, reserved hours ahead
        message(2, a, ALPHA, "queued", now + timedelta(hours=3))
        message(3, b, ALPHA, "queued", now + timedelta(seconds=5))  # B's one slot, interleaved early
        message(4, c, ALPHA, "queued", None)  # C: nothing reserved yet
        message(5, c, ALPHA, "delivered", now + timedelta(hours=4))  # long gone
        message(6, a, SENDER, "queued", now + timedelta(seconds=9))
        conn.execute(
            sender_pacing.insert(),
            [
                {"sender": ALPHA, "next_send_at": now + timedelta(hours=3, seconds=1)},
                {"sender": SENDER, "next_send_at": now + timedelta(seconds=10)},
            ],
        )

    def rows() -> dict[str, datetime]:
        with db.read() as conn:
            return {r.sender: r.next_send_at for r in conn.execute(sa.select(sender_pacing))}

    upgrade(db.engine)
    assert rows() == {
        f"{a}:{ALPHA}": now + timedelta(hours=3),
        f"{b}:{ALPHA}": now + timedelta(seconds=5),
        SENDER: now + timedelta(seconds=10),
    }
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0022")
    assert rows() == {ALPHA: now + timedelta(hours=3), SENDER: now + timedelta(seconds=10)}
    upgrade(db.engine)
