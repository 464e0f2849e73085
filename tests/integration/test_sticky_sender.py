"""Sticky sender counts only the messages a recipient heard, or is about to: one at a carrier or
past it, or waiting in a sender's queue. A canceled message, a scheduled one (not yet sent, and
through a pool its sender is chosen again at its SendAt), and one failed before any carrier took
it leave the recipient with the pool's own choice. Before, the newest message in any status
counted, and a canceled message pinned the recipient to a number it never heard from. Both
stores; the read stays on the (account_sid, to, date_created) index (it read the whole table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import messages as message_use
from pigeon.domain.senders import spread
from pigeon.domain.status import MessageStatus
from pigeon.store import services as service_store
from pigeon.store.engine import Database
from pigeon.store.messages import transition
from pigeon.store.retention import remove_messages
from tests.integration.pipeline import OTHER_SENDER, SENDER, TO, Pipeline, ScriptedCarrier
from tests.integration.plans import postgresql_plans

#: What the pool gives TO with no history: the recipient's hash decides.
NATURAL = spread([SENDER, OTHER_SENDER], TO)[0]
OTHER = OTHER_SENDER if NATURAL == SENDER else SENDER


def _pool_choice(pipe: Pipeline, service: str) -> str:
    """The sender the pool gives TO now; the message that asked is removed, to leave no trace."""
    pipe.clock.advance(1)
    sid = pipe.send(from_=None, service=service)
    sender = str(pipe.message(sid)["from_"])
    with pipe.db.write() as conn:
        remove_messages(conn, [sid])
    return sender


def _from_other(pipe: Pipeline, service: str, **kw: Any) -> str:
    pipe.clock.advance(1)
    return pipe.send(from_=OTHER, service=service, **kw)


def _fail(pipe: Pipeline, sid: str, code: int) -> None:
    with pipe.db.write() as conn:
        transition(conn, sid, MessageStatus.FAILED, at=pipe.clock.now(), error_code=code)


def test_messages_the_recipient_never_heard_do_not_pin_it(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)  # sticky sender on, as Twilio's default
    assert _pool_choice(pipe, service) == NATURAL

    # Scheduled from the other number, then canceled: nothing went out.
    canceled = _from_other(pipe, service, send_at=pipe.clock.now() + timedelta(hours=1))
    with pipe.db.write() as conn:
        message_use.cancel(conn, pipe.account_sid, canceled, "/p", pipe.clock.now())
    assert pipe.status(canceled) == "canceled"
    assert _pool_choice(pipe, service) == NATURAL

    # Scheduled and still waiting: the recipient has not heard it yet.
    _from_other(pipe, service, send_at=pipe.clock.now() + timedelta(hours=1))
    assert _pool_choice(pipe, service) == NATURAL

    # Failed before any carrier took it (as a 30001, a 30036 or a 21610 at the claim do).
    _fail(pipe, _from_other(pipe, service), 30001)
    assert _pool_choice(pipe, service) == NATURAL


def test_messages_sent_or_about_to_be_pin_it(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    queued = _from_other(pipe, service)  # waiting in the other number's queue: about to be heard
    assert _pool_choice(pipe, service) == OTHER
    _fail(pipe, queued, 30001)
    assert _pool_choice(pipe, service) == NATURAL

    sent = _from_other(pipe, service)
    assert pipe.dispatch(route=[ScriptedCarrier("c1")]) == 1
    assert pipe.status(sent) == "sent"
    assert _pool_choice(pipe, service) == OTHER
    # A carrier took it, then reported it failed: the recipient may have it all the same.
    _fail(pipe, sent, 30008)
    assert pipe.message(sent)["date_sent"] is not None
    assert _pool_choice(pipe, service) == OTHER


def test_another_service_s_messages_do_not_pin_it(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, OTHER_SENDER)
    pipe.clock.advance(1)
    pipe.send(from_=OTHER)  # no service: the number alone
    assert _pool_choice(pipe, service) == NATURAL


def _sticky_reads(pipe: Pipeline) -> list[tuple[str, Any]]:
    """Run one pool send with sticky sender on; the statements that read the sticky sender."""
    reads: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "messages.messaging_service_sid =" in statement and "ORDER BY messages.date_created DESC" in statement:
            reads.append((statement, parameters))

    sa.event.listen(pipe.db.engine, "before_cursor_execute", keep)
    try:
        _pool_choice(pipe, "MG" + "5" * 32)
    finally:
        sa.event.remove(pipe.db.engine, "before_cursor_execute", keep)
    return reads


def test_the_read_is_on_the_recipients_index_on_sqlite(pipe: Pipeline) -> None:
    if not pipe.db.is_sqlite:
        pytest.skip("query plans are checked on SQLite")
    pipe.add_service(SENDER, OTHER_SENDER)
    [(statement, parameters)] = _sticky_reads(pipe)
    with pipe.db.read() as conn:
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, tuple(parameters))]
    assert any("USING INDEX ix_messages_account_sid_to_date_created" in step for step in plan), plan
    assert not any(step.startswith("SCAN messages") or "TEMP B-TREE" in step for step in plan), plan


@pytest.mark.postgres
def test_the_read_is_on_the_recipients_index_on_postgresql(pg: Database) -> None:
    """However stale the statistics: a store never analysed, with many messages."""
    now = datetime.now(UTC)
    with pg.write() as conn:
        account = account_use.create_account(conn, friendly_name="plans", now=now)
        service = service_store.create_service(conn, account_sid=account["sid"], now=now, friendly_name="pool")
        conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
        conn.execute(
            sa.text(
                'INSERT INTO messages (sid, account_sid, messaging_service_sid, direction, "to", from_, body, status,'
                " date_created, date_updated) SELECT 'SM' || lpad(to_hex(g), 32, '0'), :account, :service,"
                " 'outbound-api', '+1415555' || (g % 500), '+14155550100', 'hi', 'delivered',"
                " :now - make_interval(secs => g), :now - make_interval(secs => g)"
                " FROM generate_series(1, 30000) AS g"
            ),
            {"account": account["sid"], "service": service["sid"], "now": now},
        )

    def sticky(statement: str) -> bool:
        return "messages.messaging_service_sid =" in statement and "ORDER BY messages.date_created DESC" in statement

    with postgresql_plans(pg.engine, sticky) as plans, pg.read() as conn:
        found = service_store.last_sender_to(conn, service["sid"], "+141555542", account_sid=account["sid"])
    assert found == "+14155550100"
    [(_, plan)] = plans
    assert "ix_messages_account_sid_to_date_created" in plan and "Seq Scan" not in plan, plan
