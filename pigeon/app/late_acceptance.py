"""A carrier's late answer to a submit given up as unanswered: an acceptance
(`ports.LateAcceptance`) or a refusal (`ports.LateRefusal`).

The dispatcher reported that submit as an unknown outcome and has perhaps sent the message
again: the carrier may hold two copies. The late answer's id is recorded as the dispatcher
records a late acknowledgement of its own (`pigeon.app.dispatch_record`, "accepted_late"): the
carrier_refs row its receipts match on, and an `accepted_late` entry on the timeline, which
the doctor lists as evidence of a second copy (`pigeon.domain.diagnosis.submits`), and the
message's ``late_copy`` mark, which makes its receipts count per copy. The message's status
is not this answer's to change: the receipts of either copy move it, under the guarded rules
of `pigeon.app.receipts` (a copy's failure waits for the other copy's receipt). A message
deleted (or erased) meanwhile gets nothing: no id, no entry.

A late refusal proves the opposite: that copy is not at the carrier. The dispatcher counted
it as possibly there (an unknown outcome: the message was held at that carrier and sent
again, the resend recorded as a possible duplicate); a `refused_late` entry on the timeline
(the carrier's command_status and its name, the part, the sequence) says it is not, and the
doctor's count of submits that may have reached the handset leaves that submit out. The
status is not this answer's to change either: the resend decides.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Connection

from pigeon.app.dispatch_refusals import apply_early_receipts
from pigeon.app.reused_ids import note_reused_ids
from pigeon.ports import LateAcceptance, LateRefusal
from pigeon.store import dispatch as store
from pigeon.store import messages as message_store

__all__ = ["LATE_REASON", "REFUSED_REASON", "record_late_acceptance", "record_late_refusal"]

log = logging.getLogger(__name__)

LATE_REASON = "the carrier answered after the response timeout; the message may have been sent again"
REFUSED_REASON = (
    "the carrier refused this submit after the response timeout: this copy is not at the carrier, "
    "although it was counted as possibly sent"
)


def _still_there(conn: Connection, late: LateAcceptance | LateRefusal) -> bool:
    # Locked first, so that a deletion committing meanwhile cannot leave an orphan behind.
    message_store.lock_message(conn, late.message_sid)
    if message_store.get_message(conn, late.message_sid, account_sid=late.account_sid) is not None:
        return True
    log.warning(
        "late submit answer for a message that no longer exists",
        extra={"sid": late.message_sid, "carrier": late.carrier},
    )
    return False


def record_late_acceptance(conn: Connection, late: LateAcceptance, *, now: datetime) -> bool:
    """Keep the late copy's carrier id and its timeline entry, in the caller's transaction;
    False (and nothing written) when the message no longer exists."""
    if not _still_there(conn, late):
        return False
    detail = {
        "carrier": late.carrier,
        "carrier_ids": [late.carrier_id],
        "part": late.part,
        "parts": late.parts,
        **late.raw,
        "reason": LATE_REASON,
    }
    message_store.add_event(
        conn, message_sid=late.message_sid, account_sid=late.account_sid, at=now, kind="accepted_late", detail=detail
    )
    message_store.mark_late_copies(conn, [late.message_sid])
    refs = store.carrier_ref_rows(
        carrier=late.carrier,
        ids=[late.carrier_id],
        message_sid=late.message_sid,
        account_sid=late.account_sid,
        at=now,
        first_part=late.part,
        parts=late.parts,
    )
    note_reused_ids(conn, store.add_carrier_refs(conn, refs), now=now)
    # Its receipt may have come first and been parked: it applies now.
    apply_early_receipts(conn, {late.carrier: [late.carrier_id]}, now=now)
    return True


def record_late_refusal(conn: Connection, late: LateRefusal, *, now: datetime) -> bool:
    """Record the late refusal on the message's timeline, in the caller's transaction; False
    (and nothing written) when the message no longer exists."""
    if not _still_there(conn, late):
        return False
    detail = {
        "carrier": late.carrier,
        "part": late.part,
        "parts": late.parts,
        "command_status": late.command_status,
        "carrier_code": late.status_name,
        **late.raw,
        "reason": REFUSED_REASON,
    }
    message_store.add_event(
        conn, message_sid=late.message_sid, account_sid=late.account_sid, at=now, kind="refused_late", detail=detail
    )
    return True
