"""Concatenated inbound messages, put back together in the store.

A carrier acknowledges a part to its SMSC only once `take_part` has committed it, and the
SMSC never sends an acknowledged part again: so the parts of a message live in the store
(table inbound_parts), not in the memory of the process whose bind happened to receive
them. A restart between two parts, or parts that come on different binds or to different
processes (several workers binding one carrier), still make one message.

One transaction per part: it stores the part and, when the part is the last one missing,
decodes the message from the parts' joined octets (`pigeon.domain.reassembly`), has it
recorded by the caller's intake in the same transaction, and marks the parts handed over.
Recording and hand-over therefore commit together or not at all: a crash before the commit
leaves every part stored (the unacknowledged last part comes again), a crash after it leaves
nothing to hand over twice.

A message whose parts stop coming is handed over without them once the first part is older
than the carrier's timeout (`sweep`, run by `pigeon.workers.reassembly` in every worker
process), flagged ``incomplete`` with its ``missing_parts`` in ``raw``. A part that comes
after that starts a message of its own, handed over in turn: late text is shown, not lost.

A handed-over part's octets are dropped, its digest kept for another timeout, so that a copy
the SMSC resends (it missed our deliver_sm_resp) is recognised and dropped instead of
starting a second, partial message.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import storable
from pigeon.domain.reassembly import Arrival, Part, arrival, assemble, digest
from pigeon.ports import InboundPart, InboundSms
from pigeon.store import inbound_parts as parts_store
from pigeon.store.engine import Database
from pigeon.store.inbound_parts import MessageKey

log = logging.getLogger(__name__)

#: Records a reassembled message (the inbound intake) in the transaction that hands its parts over.
Recorder = Callable[[Connection, InboundSms], Any]


def take_part(conn: Connection, part: InboundPart, *, now: datetime) -> InboundSms | None:
    """Store one part; the message, with its parts marked handed over, when this part was the
    last one missing. Call inside a write transaction and record the message in it."""
    if not 1 <= part.sequence <= part.total:
        raise ValueError(f"part {part.sequence} of {part.total}")
    # Addresses as the store keeps them (pigeon.domain.storable); the text is made storable
    # once the parts are joined, in pigeon.app.inbound.
    part = dataclasses.replace(
        part,
        sender=storable.fitted(part.sender, storable.ADDRESS_LENGTH),
        recipient=storable.fitted(part.recipient, storable.ADDRESS_LENGTH),
    )
    key = MessageKey.of(part)
    parts_store.lock(conn, key)
    part_digest = digest(part.data)
    what = arrival(parts_store.held(conn, key, part.sequence), part_digest)
    if what in (Arrival.DUPLICATE, Arrival.RESENT):
        return None
    if what is Arrival.NEW_MESSAGE:
        parts_store.forget_handed_over(conn, key)
    parts_store.add(
        conn,
        key,
        sequence=part.sequence,
        data=part.data,
        digest=part_digest,
        data_coding=part.data_coding,
        received_at=now,
        due_at=now + timedelta(seconds=part.timeout),
    )
    rows = parts_store.pending(conn, key)
    if {r["sequence"] for r in rows} != set(range(1, key.total + 1)):
        return None
    return _hand_over(conn, key, rows, now=now)


def take_due(conn: Connection, key: MessageKey, *, now: datetime) -> InboundSms | None:
    """The message under `key` without its missing parts, if its timeout has run out and no one
    handed it over meanwhile. Call inside a write transaction and record the message in it."""
    parts_store.lock(conn, key)
    rows = parts_store.pending(conn, key)
    if not rows or min(r["due_at"] for r in rows) > now:
        return None
    return _hand_over(conn, key, rows, now=now)


def _hand_over(conn: Connection, key: MessageKey, rows: Sequence[dict[str, Any]], *, now: datetime) -> InboundSms:
    message = assemble(
        [Part(r["sequence"], r["data"], r["data_coding"]) for r in rows],
        reference=key.reference,
        bits=key.reference_bits,
        total=key.total,
    )
    # Resent copies are recognised for as long as the carrier waits for a missing part.
    window = max(r["due_at"] - r["received_at"] for r in rows)
    parts_store.mark_handed_over(conn, [r["id"] for r in rows], now=now, keep_until=now + window)
    return InboundSms(
        carrier=key.carrier,
        sender=key.sender,
        recipient=key.recipient,
        body=message.text,
        num_segments=message.num_segments,
        raw=message.raw,
    )


def sweep(db: Database, record: Recorder, *, now: datetime, limit: int = 100) -> int:
    """Hand over the messages whose timeout ran out, each in a transaction of its own with
    `record`, and forget handed-over parts past their window; how many messages went."""
    with db.read() as conn:
        due = parts_store.due_messages(conn, now=now, limit=limit)
        forget = parts_store.has_expired_memories(conn, now=now)
    handed = 0
    for key in due:
        try:
            with db.write() as conn:
                message = take_due(conn, key, now=now)
                if message is not None:
                    record(conn, message)
                    handed += 1
        except Exception:
            # The message stays stored and due: the next sweep tries it again. The others
            # are not held up by it.
            log.exception("handing over an incomplete inbound message failed", extra={"carrier": key.carrier})
    if forget:
        with db.write() as conn:
            parts_store.forget_expired(conn, now=now)
    return handed
