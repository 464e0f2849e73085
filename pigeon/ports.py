"""The narrow boundaries between the use cases and the outside world.

- `Carrier`: every way out to a mobile network (the built-in simulator, SMPP). It submits a
  message's parts and reports receipts and inbound messages to a `CarrierEvents` sink.
- `WebhookSender`: one HTTP request to a customer's URL (status callbacks, inbound webhooks).
- `Clock`: the current time, so tests can freeze it.
- `Reach`: which carriers this process can submit to now, when carriers' binds are leases
  shared between processes (DESIGN.md §8); a value the dispatcher asks for each round.

Carriers and webhook senders translate their own failures into `pigeon.domain.errors`
(`CarrierError`, `WebhookError`) at this boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class Reach:
    """Where this process stands with the carriers whose binds are leased (``binds``): it may
    submit to a leased carrier only while it holds one of its slots and that bind is up. A
    carrier that is not leased (the built-in network) is always within reach."""

    leased: frozenset[str] = frozenset()
    bound_here: frozenset[str] = frozenset()

    def here(self, carrier: str) -> bool:
        return carrier not in self.leased or carrier in self.bound_here


@dataclass(frozen=True)
class Continuation:
    """Send only the rest of a message this carrier already took in part, or may have.

    An earlier submit stopped at part ``first_part`` (refused, or never answered) after the
    carrier had accepted the parts before it. The carrier sends parts ``first_part`` ..
    ``parts`` with the same concatenation ``reference``, so that the handset joins them with
    the parts it already has (and drops a part it gets twice). ``first_part`` is 1 when the
    first part went unanswered. A carrier whose split of the message no longer has ``parts``
    parts (its configuration changed) sends the whole message instead, with the reference of
    that split (`pigeon.domain.segments.concat_reference`), and says so in `SubmitAck.first_part`.
    """

    reference: int | None
    parts: int
    first_part: int


@dataclass(frozen=True)
class OutboundMessage:
    """A message as a carrier needs it: the parts are already planned by the domain segmenter."""

    message_sid: str
    account_sid: str
    sender: str
    recipient: str
    body: str
    encoding: str  # "GSM-7" or "UCS-2"
    parts: tuple[str, ...]
    media_urls: tuple[str, ...] = ()
    validity_period: int | None = None
    attempt: int = 1
    continuation: Continuation | None = None


@dataclass(frozen=True)
class SubmitAck:
    """The carrier accepted the message: one carrier id per submitted part.

    The ids are those of parts ``first_part`` onwards: 1 unless the submit was a
    `Continuation`, whose earlier parts the carrier had already accepted.
    """

    carrier: str
    carrier_ids: tuple[str, ...]
    raw: Mapping[str, Any] = field(default_factory=dict)
    first_part: int = 1


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt as the carrier sent it, before it is matched to a message."""

    carrier: str
    carrier_id: str
    stat: str  # SMPP receipt state: DELIVRD, UNDELIV, EXPIRED, REJECTD, ...
    err: str | None = None
    done_date: str | None = None  # the carrier's "done date", YYMMDDhhmm
    raw: str = ""
    # The Twilio code the carrier's own table (receipt_errors) gives its err value, if it has
    # one: carriers disagree on what each err value means. None: Pigeon's default table decides.
    error_code: int | None = None
    # The carrier sends one receipt for a concatenated message, for one of its parts (the first,
    # or the last): a final state then settles the whole message, not only that part.
    whole_message: bool = False


@dataclass(frozen=True)
class InboundSms:
    """A mobile-originated message handed over by a carrier."""

    carrier: str
    sender: str
    recipient: str
    body: str
    media_urls: Sequence[str] = ()
    num_segments: int = 1
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundPart:
    """One part of a concatenated mobile-originated message, as the carrier received it.

    Its text octets stay encoded: a character may straddle two parts, so the message is
    decoded only once its parts are joined. Parts belong together when they share carrier,
    sender, recipient, reference width, reference and total.
    """

    carrier: str
    sender: str
    recipient: str
    reference_bits: int  # 8 or 16
    reference: int
    total: int
    sequence: int  # 1 .. total
    data: bytes
    data_coding: int
    #: Seconds after the first part came after which the message is handed over without
    #: the parts still missing (the carrier's ``reassembly_timeout``).
    timeout: float


@dataclass(frozen=True)
class LateAcceptance:
    """A carrier accepted a message's part after the submit had been given up as unanswered
    (its response timeout) and reported as an unknown outcome, so the message may have been
    sent again since: ``carrier_id`` is the carrier's id for that first copy of part ``part``
    of ``parts``, which its receipts will name."""

    carrier: str
    message_sid: str
    account_sid: str
    carrier_id: str
    part: int  # 1 .. parts
    parts: int
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LateRefusal:
    """A carrier refused a message's part after the submit had been given up as unanswered
    (`LateAcceptance`'s counterpart): that copy is not at the carrier, whatever the message
    became since. ``command_status`` is the carrier's refusal, ``status_name`` its name
    (SMPP 3.4 §5.1.3, or the hex value of a code outside it)."""

    carrier: str
    message_sid: str
    account_sid: str
    part: int  # 1 .. parts
    parts: int
    command_status: int
    status_name: str
    raw: Mapping[str, Any] = field(default_factory=dict)


class CarrierEvents(Protocol):
    """Where a carrier reports what the network sends back. Each call returns once the event is
    durably recorded, so the carrier may then acknowledge it to the network."""

    async def on_receipt(self, receipt: Receipt) -> None: ...

    async def on_inbound(self, message: InboundSms) -> None: ...

    async def on_inbound_part(self, part: InboundPart) -> bool:
        """Keep one part in the store; when it completes its message, record the message in
        the same transaction. True when this part completed a message."""
        ...

    async def on_late_acceptance(self, late: LateAcceptance) -> None:
        """Keep the carrier id of a copy the carrier took after its submit timed out, so that
        its receipts find the message; nothing if the message no longer exists."""
        ...

    async def on_late_refusal(self, late: LateRefusal) -> None:
        """Record that the carrier refused, after its submit timed out, a copy that may have
        been counted as at the carrier; nothing if the message no longer exists."""
        ...


class Carrier(Protocol):
    name: str
    #: Whether the carrier can deliver media (MMS). The dispatcher sends a message with media
    #: only to carriers that can, or as an SMS with the media's links when its Messaging
    #: Service converts MMS (`pigeon.domain.mms`).
    carries_media: bool

    async def start(self, events: CarrierEvents) -> None:
        """Connect (bind) and begin reporting receipts and inbound messages to `events`."""
        ...

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        """Submit every part (from ``message.continuation.first_part`` on, if given); raise
        `CarrierError` (retryable or permanent) on refusal, `CarrierOutcomeUnknown` when a part
        was sent and never answered, with ``progress`` saying which parts were accepted."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class WebhookRequest:
    url: str
    method: str  # GET or POST
    params: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    timeout: float = 15.0
    #: A raw body (Event Streams' JSON) sent instead of the form-encoded params, with this type.
    body: bytes | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_ms: float


class WebhookSender(Protocol):
    async def send(self, request: WebhookRequest) -> WebhookResponse:
        """Perform the request; raise `WebhookError` when no HTTP response came back."""
        ...


@dataclass(frozen=True)
class ScheduledReceipt:
    """A receipt the built-in network will send at `due_at` (see carriers/simulator.py)."""

    carrier_id: str
    stat: str
    err: str
    submit_date: str
    due_at: datetime


class ReceiptSpool(Protocol):
    """Where the built-in network keeps the receipts it still owes, durably."""

    async def schedule(self, receipts: Sequence[ScheduledReceipt]) -> None: ...
