"""A scheduled message's sender, chosen from its Messaging Service's pool at its SendAt (and an
accepted message's, chosen again when its number leaves the account).

On Twilio a Messaging Service picks a message's sender when the message leaves `scheduled`,
from the pool as it is then. A scheduled message's sender was fixed at its create, so a pool
that changed before its SendAt was ignored: a number taken out of the service still sent it,
and the message of a deleted service went out anyway.

So when a dispatcher claims a scheduled message that was sent through a service without a
From (``sender_from_pool``, recorded at the create: a request that named a From, even a number
of the pool, keeps it), the pool chooses again (`send_sender.pool_sender`: sticky sender,
short code, alphanumeric sender, geomatch, MMS, as a send now), before the claim's other
checks see the message. A sender other than the one chosen at the create is written to the
message (with its content hash) and a ``sender_chosen`` timeline entry says which it was
before. When the pool has no sender for it now, the message fails with the code a send would
get now: 21701 (the service is gone), 21704 (its pool is empty), 21703 (nothing in it reaches
the recipient), with a ``no_pool_sender`` timeline entry, an alert, its status callback and
its event (`pigeon.app.never_sent`; the status callback of a deleted service is gone with it).

A number leaving its account (released, or moved to another account: `pigeon.app.sender_exit`)
leaves such scheduled messages alone: they choose at their SendAt, from the pool as it is then,
which no longer holds the number. An accepted message whose pool chose the number is not
chosen again by the dispatcher (its sender is the one chosen at its create), so the release
chooses again for it, in its own transaction, from the pool less the number
(`choose_instead_of`), with a ``sender_chosen`` entry saying why; only those the pool has no
other sender for fail, as a message from that number does (21606).

The queue of the sender chosen is not minded here, as it is not for a scheduled message at its
create: it joins that queue now. The cost is the scheduled messages' alone: the pool of each
service is read once per claim, and the sticky sender once per message when the service has
it on; a claim of queued messages reads nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import never_sent
from pigeon.app.send_request import content_hash
from pigeon.app.send_sender import Pool, pool_sender, read_pool
from pigeon.domain.errors import ApiError
from pigeon.domain.status import MessageStatus
from pigeon.store import dispatch as dispatch_store
from pigeon.store import message_batch
from pigeon.store import services as service_store
from pigeon.store.settings import content_key

log = logging.getLogger(__name__)

#: The timeline entries: another sender chosen at the SendAt, or none to be had.
CHOSEN, NONE = "sender_chosen", "no_pool_sender"

Row = dict[str, Any]


def choose_at_send_at(conn: Connection, rows: Sequence[Row], *, now: datetime) -> list[Row]:
    """Choose again the sender of each claimed scheduled message whose service's pool chose it
    (module docstring), in place; those for which the pool has none now fail. Returns the
    others. Run in the claim's transaction."""
    due = [
        r
        for r in rows
        if r["status"] == MessageStatus.SCHEDULED and r["sender_from_pool"] and r["messaging_service_sid"]
    ]
    if not due:
        return list(rows)
    changed, refused = _choose(conn, due, leaving=None)
    _change(conn, changed, now=now)
    failed: set[str] = set()
    for code, why in refused.items():
        failed |= why.keys()
        _fail(conn, [r for r in due if r["sid"] in why], code=code, why=why, now=now)
    if changed or failed:
        log.info(
            "chose the senders of scheduled messages at their SendAt",
            extra={"changed": len(changed), "failed": len(failed)},
        )
    return [r for r in rows if r["sid"] not in failed]


def choose_instead_of(conn: Connection, rows: Sequence[Row], *, leaving: str, reason: str, now: datetime) -> set[str]:
    """Give these accepted messages, whose pool chose `leaving`, a number that is leaving
    their account (module docstring), another sender from their pool as it is without it,
    with a ``sender_chosen`` entry saying `reason`. Returns the SIDs of those given one; the
    pool has none for the others, which the caller fails. Their rows must be held."""
    changed, _ = _choose(conn, rows, leaving=leaving)
    _change(conn, changed, now=now, reason=reason)
    return {r["sid"] for r, _ in changed}


def _choose(
    conn: Connection, rows: Sequence[Row], *, leaving: str | None
) -> tuple[list[tuple[Row, str]], dict[int, dict[str, str]]]:
    """(each message given another sender than its own, with it; the code, by SID the why, of
    those for which the pool has none), choosing from each service's pool as it is now, less
    the number `leaving`."""
    pools: dict[tuple[str, str], Pool | None] = {}
    changed: list[tuple[Row, str]] = []
    refused: dict[int, dict[str, str]] = {}  # code -> sid -> why
    for row in rows:
        key = (row["messaging_service_sid"], row["account_sid"])
        if key not in pools:
            service = service_store.get_service(conn, key[0], account_sid=key[1])
            pools[key] = _without(read_pool(conn, service), leaving) if service is not None else None
        try:
            pool = pools[key]
            if pool is None:
                raise ApiError(21701, f"The Messaging Service {key[0]} does not exist on this account.")
            sender = pool_sender(
                conn, pool, row["to"], media=bool(row["num_media"]), has_room=None, excluding=row["sid"]
            )
        except ApiError as exc:
            refused.setdefault(exc.code, {})[row["sid"]] = exc.message
            continue
        if sender != row["from_"]:
            changed.append((row, sender))
    return changed, refused


def _without(pool: Pool, number: str | None) -> Pool:
    """`pool` less `number` (still in it while it leaves, in the transaction that takes it out)."""
    if number is None:
        return pool
    return Pool(pool.service, [n for n in pool.numbers if n["phone_number"] != number], pool.alpha_senders)


def _fail(conn: Connection, rows: Sequence[Row], *, code: int, why: dict[str, str], now: datetime) -> None:
    """Fail these messages with `code`, each for the reason `why` gives it."""
    never_sent.fail_many(
        conn,
        [r["sid"] for r in rows],
        now=now,
        code=code,
        kind=NONE,
        detail=lambda r: {
            "messaging_service_sid": r["messaging_service_sid"],
            "sender_was": r["from_"],
            "reason": why[r["sid"]],
        },
        text=lambda r: (
            f"Message {r['sid']} was not sent: when its SendAt came, its Messaging Service had no "
            f"sender for it. {why[r['sid']]}"
        ),
    )


def _change(conn: Connection, changed: Sequence[tuple[Row, str]], *, now: datetime, reason: str | None = None) -> None:
    """Write the senders chosen (the message's row, and the one in hand), with their timeline
    entries (`reason`: why the sender was chosen again, when not for the SendAt)."""
    if not changed:
        return
    media = dispatch_store.media_to_send(conn, [r["sid"] for r, _ in changed if r["num_media"]])
    key = content_key(conn)
    dispatch_store.set_pool_senders(
        conn,
        [
            (
                r["sid"],
                sender,
                content_hash(sender, r["to"], r["body"], media[r["sid"]].urls if r["sid"] in media else (), key=key),
            )
            for r, sender in changed
        ],
        at=now,
    )
    message_batch.add_events(
        conn,
        [
            message_batch.event(
                message_sid=r["sid"],
                account_sid=r["account_sid"],
                at=now,
                kind=CHOSEN,
                detail={
                    "sender": sender,
                    "sender_was": r["from_"],
                    "messaging_service_sid": r["messaging_service_sid"],
                    **({"reason": reason} if reason else {}),
                },
            )
            for r, sender in changed
        ],
    )
    for row, sender in changed:
        row["from_"] = sender
