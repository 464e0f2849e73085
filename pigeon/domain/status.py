"""Message status lifecycle and the allowed transitions between statuses.

Outbound: accepted/scheduled -> queued -> sending -> sent -> delivered | undelivered,
with failed reachable from every non-final outbound status and canceled from scheduled
(and from accepted/queued, before anything reached a carrier). Inbound: receiving -> received.
The store enforces these with guarded updates (``WHERE status IN allowed_from(to)``), so a
late or duplicated event can never move a message backwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class MessageStatus(StrEnum):
    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    CANCELED = "canceled"
    RECEIVING = "receiving"
    RECEIVED = "received"
    READ = "read"
    PARTIALLY_DELIVERED = "partially_delivered"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND_API = "outbound-api"
    OUTBOUND_CALL = "outbound-call"
    OUTBOUND_REPLY = "outbound-reply"


S = MessageStatus

#: status -> the statuses a message may move to from it.
TRANSITIONS: Mapping[MessageStatus, frozenset[MessageStatus]] = {
    S.ACCEPTED: frozenset({S.QUEUED, S.FAILED, S.CANCELED}),
    S.SCHEDULED: frozenset({S.QUEUED, S.CANCELED, S.FAILED}),
    S.QUEUED: frozenset({S.SENDING, S.FAILED, S.CANCELED}),
    # sending -> queued: a retryable carrier error puts the message back in the queue.
    S.SENDING: frozenset({S.SENT, S.FAILED, S.QUEUED, S.DELIVERED, S.UNDELIVERED}),
    # A receipt may report failure after the carrier accepted the submit.
    S.SENT: frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED}),
    S.DELIVERED: frozenset({S.READ}),
    S.UNDELIVERED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
    S.RECEIVING: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset(),
    S.READ: frozenset(),
    S.PARTIALLY_DELIVERED: frozenset({S.DELIVERED, S.UNDELIVERED}),
}

FINAL: frozenset[MessageStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt) | {S.DELIVERED}

#: statuses in which a message has not yet reached a carrier and may be deleted only with care.
IN_FLIGHT: frozenset[MessageStatus] = frozenset({S.ACCEPTED, S.QUEUED, S.SENDING})

#: statuses in which a Messaging Service's pool has yet to choose the sender of a message sent
#: without a From (accepted: next; scheduled: at its SendAt). Twilio shows such a message with
#: no `from` and "0" segments; the sender kept meanwhile is the one chosen at its create.
POOL_CHOOSING: frozenset[MessageStatus] = frozenset({S.ACCEPTED, S.SCHEDULED})

#: statuses in which nothing more will be done with a message unless someone asks: the
#: retention may remove it (a `sent` message whose receipt never came is one of them).
AT_REST: frozenset[MessageStatus] = frozenset(MessageStatus) - IN_FLIGHT - {S.SCHEDULED, S.RECEIVING}


def allowed_from(target: MessageStatus) -> frozenset[MessageStatus]:
    """The statuses from which a message may move to `target`."""
    return frozenset(src for src, nxt in TRANSITIONS.items() if target in nxt)


def can_transition(current: MessageStatus, target: MessageStatus) -> bool:
    return target in TRANSITIONS[current]
