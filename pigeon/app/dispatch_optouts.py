"""Opt-outs at the claim: a recipient who texted STOP after a message was accepted does not get it.

A send is refused with 21610 when an opt-out blocks it (`pigeon.app.send`), but a message may
wait a long time between its create and its submit: until its SendAt when scheduled, up to
ten hours behind a paced queue, a Messaging Service's until it is queued. A STOP texted
meanwhile must stop it too, as Twilio fails such a message with 21610 and does not charge it.
So the dispatcher checks again, at the claim (`check_claimed`), with the create's scope
rules: an opt-out of the message's sender, of the Messaging Service it was sent through, and,
from a number, of the service the number is in now (which the claim's check of the numbers'
holders reads with them, `sender_exit.check_claimed`).

A claimed message that one blocks fails, before it is queued or marked `sending`, with 21610:
an ``opted_out`` timeline entry naming the opt-out (its sender, scope, keyword, time and the
inbound message that made it), an alert, its status callback and its Event Streams event;
no price, no usage (`pigeon.app.never_sent`). So does a message left `sending` by a dispatcher
that died: resent, it would reach someone who said STOP since.

Not checked: the automatic reply to a keyword (``keyword_reply``): the confirmation of a STOP
goes to the recipient who just opted out, and must go out. The check is one read per claimed
batch, in the claim's transaction, on the opt-outs' (account, sender, recipient) key
(`store.optouts.blocking_many`), skipped when the batch holds nothing but such replies. A
STOP that commits after that read is the next message's to stop: the claimed one goes out,
as one already at the carrier would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import never_sent
from pigeon.store import optouts as optout_store

log = logging.getLogger(__name__)

#: The error of a message to a recipient who opted out (as a send to them gets).
OPTED_OUT = 21610
#: The timeline entry of a message the claim found opted out.
KIND = "opted_out"

Row = dict[str, Any]


def check_claimed(
    conn: Connection, rows: Sequence[Row], *, number_services: Mapping[str, str | None], now: datetime
) -> list[Row]:
    """Of the messages just claimed, those no opt-out blocks; the others fail with 21610
    (module docstring). `number_services`: the Messaging Service each of their From numbers is
    in now (read by the claim's check of the numbers' holders, `sender_exit.check_claimed`).
    Run in the claim's transaction."""
    checked = [r for r in rows if not r["keyword_reply"] and r["from_"]]
    if not checked:
        return list(rows)
    sends = [optout_store.Sending(r["account_sid"], _senders(r, number_services), r["to"]) for r in checked]
    blocked = {
        r["sid"]: opt_out
        for r, opt_out in zip(checked, optout_store.blocking_many(conn, sends), strict=True)
        if opt_out is not None
    }
    if not blocked:
        return list(rows)
    failed = never_sent.fail_many(
        conn,
        [r["sid"] for r in rows if r["sid"] in blocked],
        now=now,
        code=OPTED_OUT,
        kind=KIND,
        detail=lambda r: _detail(r, blocked[r["sid"]]),
        text=lambda r: _text(r, blocked[r["sid"]]),
        from_statuses=never_sent.CLAIMED,
    )
    log.info("failed claimed messages to recipients who opted out", extra={"failed": len(failed)})
    return [r for r in rows if r["sid"] not in blocked]


def _senders(row: Row, number_services: Mapping[str, str | None]) -> tuple[str, ...]:
    """What an opt-out may name to block the message, as at its create (`store.send_lookup`,
    `store.optouts.find_opt_out`): its sender, the Messaging Service it was sent through, and
    the one its From number is in now (an alphanumeric sender is in none)."""
    sender = row["from_"]
    return tuple(dict.fromkeys(s for s in (sender, row["messaging_service_sid"], number_services.get(sender)) if s))


def _detail(message: Row, opt_out: Row) -> dict[str, Any]:
    return {
        "sender": message["from_"],
        "opted_out_of": opt_out["sender"],
        "scope": opt_out["scope"],
        "keyword": opt_out["keyword"],
        "opted_out_at": opt_out["date_created"].isoformat(),
        "inbound_message_sid": opt_out["inbound_message_sid"],
    }


def _text(message: Row, opt_out: Row) -> str:
    where = (
        f"any number of Messaging Service {opt_out['sender']}"
        if opt_out["scope"] == "service"
        else str(opt_out["sender"])
    )
    return (
        f"Message {message['sid']} was not sent: {message['to']} opted out of messages from {where} by texting "
        f"{opt_out['keyword']} at {opt_out['date_created'].isoformat()}, after the message was accepted."
    )
