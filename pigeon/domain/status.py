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
from typing import Any


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

#: The codes a scheduled message fails with when, at its SendAt, its Messaging Service has no
#: sender for it: the service is gone (21701), its pool is empty (21704), or nothing in it
#: reaches the recipient (21703) (`pigeon.app.scheduled_senders`).
NO_POOL_SENDER: frozenset[int] = frozenset({21701, 21703, 21704})

#: Statuses in which a pool-chosen message has no sender whatever its error code: the pool is
#: still choosing, or the message was canceled before anything reached a carrier.
SENDERLESS: frozenset[MessageStatus] = POOL_CHOOSING | {S.CANCELED}


def pool_sender_unused(message: Mapping[str, Any]) -> bool:
    """Whether `message` (a row) is one its Messaging Service's pool was to choose the sender
    of (sent through the service without a From) and the choice was never used: the pool is
    still choosing, or the message ended before it did, canceled while scheduled or failed at
    its SendAt for want of a sender. Twilio shows such a message with ``from`` null (the
    canceled one of its OpenAPI description too), and so do the message's JSON, the list's
    From filter, its status callback and its events here. The row keeps the sender chosen at
    the create, for the queue and opt-out checks and the doctor. (`store.messages` says the
    same in SQL, from these sets.)"""
    if not (message.get("sender_from_pool") and message.get("messaging_service_sid")):
        return False
    status = message["status"]
    return status in SENDERLESS or (status == S.FAILED and message.get("error_code") in NO_POOL_SENDER)


#: statuses in which nothing more will be done with a message unless someone asks: the
#: retention may remove it (a `sent` message whose receipt never came is one of them).
AT_REST: frozenset[MessageStatus] = frozenset(MessageStatus) - IN_FLIGHT - {S.SCHEDULED, S.RECEIVING}


def allowed_from(target: MessageStatus) -> frozenset[MessageStatus]:
    """The statuses from which a message may move to `target`."""
    return frozenset(src for src, nxt in TRANSITIONS.items() if target in nxt)


def can_transition(current: MessageStatus, target: MessageStatus) -> bool:
    return target in TRANSITIONS[current]
