"""A dispatch job and its attempt: what a claimed message carries through a round (`Job`,
`Hold`, `Outcome`, `DispatchSettings`), which carriers it is tried at (`plan_route`) and the
submit itself (`submit`), with what the carriers' errors say about what they kept (`hold_after`).
The round is `pigeon.app.dispatch`; refused attempts are recorded by
`pigeon.app.dispatch_refusals`, by the rules below.

What an attempt may leave at a carrier, and what the next attempt does about it:

* *Refused, nothing accepted* (a refusal, no bind): nothing is on the network. The next
  carrier of the route is tried at once, unless the refusal is about the recipient or the
  content (`CarrierError.stops_route`); when every carrier refused, the refusals together
  decide (`pigeon.domain.refusals`): retried later from the first carrier, with backoff
  (`RetryPolicy`), waiting for a bind without counting the attempt, or failed.
* *Some parts accepted, a later part refused* (multipart): the accepted parts' carrier ids
  are stored at once, so their receipts find the message, and listed in the attempt's
  `retry` (or `failed`) timeline entry. The message is then *held* by that carrier: it is
  not failed over (another carrier would send those parts again, and with another reference
  if it splits the message otherwise), and its retry asks the carrier for the missing parts
  only, with the same concatenation reference (`ports.Continuation`). A permanent refusal fails
  the message, the accepted parts' ids kept; their receipts are recorded on its timeline.
* *No answer* (`CarrierOutcomeUnknown`: response timeout, connection lost after writing):
  the carrier may have the message. It is held by that carrier too and retried there, once
  the bind works again, from the unanswered part on, with the same reference (many handsets
  drop a part of a concatenated message they already have, whereas a new reference would
  make it a second message). That retry is a `resend` entry whose reason says it may duplicate the
  unanswered part. Only a carrier configured with ``failover_on_unknown_outcome`` lets the
  message move on to the next carrier at once; that second submission is a `resend` entry
  too.

A hold lives in the store, not in a dispatcher: the message's ``carrier`` column names the
holding carrier while the message waits, and its newest `retry` entry has the detail
(``hold``: parts, reference, accepted ids, the unanswered part). It ends when the message is
sent or fails. If the holding carrier is no longer routed for the destination (its
configuration changed), the message goes to the route whole, and a `resend` entry says which
parts may arrive twice. A held message that runs out of retries fails like any other.
The doctor counts submits from these entries (`pigeon.domain.diagnosis.submits`): a `retry`
marked ``outcome_unknown`` is not a refusal, and every `resend` is a possible duplicate.

Media. A message with media (MMS) goes only to the carriers of its route that carry media
(`Carrier.carries_media`; SMPP carries text only), which the claim reads for messages that
have media, and only from a sender that can send MMS. When none of the route's carriers
carries media, or its sender cannot send MMS (a pool's choice, or a number that lost the
capability since), a message whose Messaging Service has `mms_converter` on (Twilio's
default) goes as an SMS whose text is its body and the media's URLs (`pigeon.domain.mms`); its
`num_segments` and price become those of that text, and the `sent` entry says so and why
(``media_as_links``, ``segments_sent``, ``media_as_links_because``). Any other such message
fails with 30011 without a submit, each carrier of the route listed as refusing it, with
``media:sender`` (the sender cannot send MMS) or ``media:unsupported`` (the carrier carries
text only) as its code, and the `failed` entry says why (``media_refused_because``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pigeon.app.placement import HandOver
from pigeon.domain import mms
from pigeon.domain.errors import CarrierError, CarrierOutcomeUnknown, CarrierPermanentError
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.pricing import PriceTable
from pigeon.domain.retry import CARRIER_SUBMITS, RetryPolicy
from pigeon.domain.segments import SubmitProgress, plan_segments
from pigeon.domain.status import MessageStatus
from pigeon.ports import Carrier, Continuation, OutboundMessage, SubmitAck

log = logging.getLogger(__name__)

S = MessageStatus
Row = dict[str, Any]


@dataclass(frozen=True)
class Hold:
    """What a carrier may already have of a message after an attempt (module docstring)."""

    carrier: str
    parts: int  # as the carrier split the message
    reference: int | None  # the concatenation reference of those parts
    next_part: int  # the first part not known to be accepted (1-based)
    accepted_ids: tuple[str, ...]  # carrier ids of parts 1 .. next_part - 1
    unknown_part: int | None  # a part sent and never answered: the carrier may have it
    exclusive: bool  # only this carrier may take the message

    def continuation(self) -> Continuation:
        return Continuation(reference=self.reference, parts=self.parts, first_part=self.next_part)

    def describe(self) -> str:
        """What the carrier has, in words, for timeline reasons and alerts."""
        said = []
        if self.accepted_ids:
            last = self.next_part - 1
            said.append(f"{self.carrier} accepted {_parts(1, last, self.parts)}")
        if self.unknown_part is not None:
            said.append(
                f"{self.carrier} never answered the submit of {_parts(self.unknown_part, self.unknown_part, self.parts)}"
                " and may have accepted it"
            )
        return "; ".join(said)

    def detail(self) -> dict[str, Any]:
        return {
            "carrier": self.carrier,
            "parts": self.parts,
            "reference": self.reference,
            "next_part": self.next_part,
            "accepted_ids": list(self.accepted_ids),
            "unknown_part": self.unknown_part,
            "exclusive": self.exclusive,
        }

    @classmethod
    def from_detail(cls, d: Row) -> Hold:
        return cls(
            carrier=str(d["carrier"]),
            parts=int(d["parts"]),
            reference=d.get("reference"),
            next_part=int(d["next_part"]),
            accepted_ids=tuple(d.get("accepted_ids") or ()),
            unknown_part=d.get("unknown_part"),
            exclusive=bool(d.get("exclusive", True)),
        )


def _parts(first: int, last: int, total: int) -> str:
    if total == 1:
        return "the message"
    return f"part {first} of {total}" if first == last else f"parts {first}-{last} of {total}"


@dataclass
class Job:
    message: Row
    slot: datetime
    resend_reason: str | None = None
    hold: Hold | None = None
    continue_at: str | None = None  # an attempt handed over: it goes on at this carrier
    route: list[Carrier] | None = None  # the carriers to try, when placed at the claim
    hand_over: HandOver | None = None  # where the attempt goes on if those all refuse
    media: tuple[str, ...] = ()  # the message's media URLs, in order (read at the claim)
    converts_media: bool = False  # its Messaging Service converts MMS to SMS (`domain.mms`)
    sender_mms: bool = True  # its sender can send MMS (read with the media)


@dataclass
class Outcome:
    job: Job
    ack: SubmitAck | None = None
    error: CarrierError | None = None
    tried: list[tuple[str, CarrierError]] = field(default_factory=list)
    #: The media URLs sent as links in the text (MMS converted to SMS), and the segments
    #: that text took; 0 and None when the message went as it was created.
    media_as_links: int = 0
    segments: int | None = None
    #: Why the media could not go as MMS (`domain.mms.obstacles`): sent as links, or refused.
    media_obstacles: tuple[str, ...] = ()


@dataclass(frozen=True)
class DispatchSettings:
    batch: int = 200
    lease: timedelta = timedelta(seconds=30)
    lookahead: timedelta = timedelta(seconds=1)
    offer: timedelta = timedelta(seconds=5)  # how long a message left for another process is its alone
    #: How long a claim waits for a sender's pacing row that another transaction holds: every
    #: claim holds its rows for milliseconds, so one held longer is most likely held by a
    #: dispatcher stuck inside its claim (`pigeon.app.busy_senders`).
    pacing_wait: timedelta = timedelta(seconds=2)
    #: How long a round keeps its process's turn to claim while its first group is submitted
    #: and recorded (`DispatchRound.run_once`): long enough to cover a carrier's usual answer,
    #: short enough that a slow carrier does not hold up the process's other rounds.
    turn: timedelta = timedelta(milliseconds=250)
    #: How long a dispatcher asked to stop keeps trying to record the carriers' answers while the
    #: store is out of reach (`pigeon.app.dispatch_outage`): within the 30 s that `pigeon serve`
    #: gives its worker processes before it kills them, with room for a try that waits on a connect.
    record_grace: timedelta = timedelta(seconds=15)
    pacing: PacingPolicy = field(default_factory=PacingPolicy)
    prices: PriceTable = field(default_factory=PriceTable)
    retry: RetryPolicy = CARRIER_SUBMITS


def reclaimed(job: Job) -> bool:
    """Taken over from a dispatcher that marked it sending and stopped."""
    return bool(job.message["status"] == S.SENDING)


def plan_route(job: Job, route: Sequence[Carrier]) -> list[Carrier]:
    """The carriers to try for this job, given what a carrier may already hold of it.

    An exclusive hold keeps the message on its carrier while that carrier is routed; a hold
    on an unanswered part makes this attempt a possible duplicate (``resend_reason``). An
    attempt handed over (``continue_at``) starts at that carrier. Call before `mark_sending`,
    which records the reason."""
    carriers = list(route)
    names = [c.name for c in carriers]
    if job.continue_at in names:
        carriers = carriers[names.index(job.continue_at) :]
    hold = job.hold
    if hold is None:
        return carriers
    holder = [c for c in route if c.name == hold.carrier]
    if holder and hold.exclusive:
        carriers = holder
    if hold.unknown_part is not None:
        if any(c.name == hold.carrier for c in carriers):
            where = f"sent to {hold.carrier} again"
        elif holder and carriers:
            where = f"the attempt goes on at {carriers[0].name}"  # handed over, failover_on_unknown_outcome
        else:
            where = f"{hold.carrier} is no longer routed for {job.message['to']}"
        reason = f"{hold.describe()}: {where}"
        job.resend_reason = f"{job.resend_reason}; {reason}" if job.resend_reason else reason
    return carriers


def outbound(row: Row, media: Sequence[str] = ()) -> OutboundMessage:
    plan = plan_segments(row["body"])
    return OutboundMessage(
        message_sid=row["sid"],
        account_sid=row["account_sid"],
        sender=row["from_"] or "",
        recipient=row["to"],
        body=row["body"],
        encoding=plan.encoding,
        parts=plan.parts,
        media_urls=tuple(media),
        validity_period=row["validity_period"],
        attempt=row["attempts"],
    )


async def submit(job: Job, route: Sequence[Carrier]) -> Outcome:
    """Submit through the route's carriers in order (the route `plan_route` gave for the job).

    A refusal that left nothing at the carrier fails over to the next one, unless it is about
    the recipient or the content (`CarrierError.stops_route`). An error after
    which the carrier holds part of the message (parts accepted) stops here, and so does one
    whose outcome is unknown unless that carrier allows failing over (``may_fail_over``).

    A message with media goes only to the route's carriers that carry media, from a sender
    that can send MMS. When its sender cannot, or no carrier of the route carries media, it goes
    as an SMS with the media's links if its Messaging Service converts MMS, and is refused
    (30011) without a submit if not: before, a sender that could not send MMS was looked at only
    when the service converted, and without the converter the MMS went out from it."""
    outcome = Outcome(job=job)
    message = outbound(job.message, job.media)
    hold = job.hold
    if message.media_urls and route:
        carriers = [c for c in route if c.carries_media]
        why = outcome.media_obstacles = mms.obstacles(sender_mms=job.sender_mms, route_carries_media=bool(carriers))
        if not why:
            route = carriers
        elif job.converts_media:
            message = _as_sms(message)
            outcome.media_as_links, outcome.segments = len(job.media), len(message.parts)
        else:
            return _media_refused(outcome, route, job.message, why)
    for carrier in route:
        attempt = message
        if hold is not None and carrier.name == hold.carrier:
            attempt = dataclasses.replace(message, continuation=hold.continuation())
        try:
            outcome.ack = await carrier.submit(attempt)
            outcome.error = None
            return outcome
        except CarrierError as exc:
            outcome.tried.append((carrier.name, exc))
            outcome.error = exc
            if exc.stops_route or exc.accepted_carrier_ids:
                return outcome
            if isinstance(exc, CarrierOutcomeUnknown) and not exc.may_fail_over:
                return outcome
        except Exception as exc:  # a connector bug must not lose the message
            log.exception("carrier submit crashed", extra={"carrier": carrier.name, "sid": job.message["sid"]})
            err = CarrierError(f"{type(exc).__name__}: {exc}", carrier_code="INTERNAL", error_code=30008)
            err.retryable = True
            outcome.tried.append((carrier.name, err))
            outcome.error = err
    if outcome.error is None:
        err = CarrierError("no carrier is routed for this destination", carrier_code="NO_ROUTE", error_code=30008)
        outcome.error = err
    return outcome


def _as_sms(message: OutboundMessage) -> OutboundMessage:
    text = mms.media_as_links(message.body, message.media_urls)
    plan = plan_segments(text)
    return dataclasses.replace(message, body=text, encoding=plan.encoding, parts=plan.parts, media_urls=())


def _media_refused(outcome: Outcome, route: Sequence[Carrier], row: Row, why: Sequence[str]) -> Outcome:
    """Refuse a message whose media cannot go as MMS (`why`) and that nothing converts, as each
    carrier of the route would have: ``media:sender`` when its sender cannot send MMS (no
    carrier would help), else ``media:unsupported``."""
    unconverted = (
        "its Messaging Service does not convert MMS to SMS (MmsConverter is off)"
        if row.get("messaging_service_sid")
        else "it was not sent through a Messaging Service that converts MMS to SMS"
    )
    for carrier in route:
        if mms.SENDER in why:
            code, said = "media:sender", f"its sender {row['from_']} cannot send MMS (it is not an MMS-capable number)"
            if not carrier.carries_media:
                said += f", nor can {carrier.name} carry media"
        else:
            code, said = "media:unsupported", f"{carrier.name} cannot carry media (MMS)"
        err = CarrierPermanentError(f"{said}, and {unconverted}", carrier_code=code, error_code=30011)
        outcome.tried.append((carrier.name, err))
        outcome.error = err
    return outcome


def carrier_detail(tried: Sequence[tuple[str, CarrierError]]) -> list[dict[str, Any]]:
    rows = []
    for name, e in tried:
        row = {"carrier": name, "carrier_code": e.carrier_code, "error": e.message, "retryable": e.retryable}
        if isinstance(e, CarrierOutcomeUnknown):
            row["outcome_unknown"] = True
        rows.append(row)
    return rows


def unanswered_carriers(tried: Sequence[tuple[str, CarrierError]]) -> list[str]:
    return [name for name, e in tried if isinstance(e, CarrierOutcomeUnknown)]


def hold_after(job: Job, tried: Sequence[tuple[str, CarrierError]]) -> Hold | None:
    """What a carrier may hold of the message after this attempt: the latest carrier that
    accepted parts or never answered, else what the job was held by before."""
    prior = job.hold
    for name, exc in reversed(tried):
        progress = exc.progress
        unknown = isinstance(exc, CarrierOutcomeUnknown)
        if not (unknown or exc.accepted_carrier_ids):
            continue
        if progress is None:  # a carrier that does not report parts: the whole message
            progress = SubmitProgress(parts=1, reference=None, first_part=1, accepted_ids=(), stopped_at=1)
        continued = (
            prior is not None
            and prior.carrier == name
            and (progress.first_part, progress.parts, progress.reference)
            == (prior.next_part, prior.parts, prior.reference)
        )
        accepted = (prior.accepted_ids if continued and prior is not None else ()) + progress.accepted_ids
        next_part = progress.first_part + len(progress.accepted_ids)
        exclusive = bool(accepted)
        unknown_part = None
        if unknown:
            assert isinstance(exc, CarrierOutcomeUnknown)
            unknown_part = progress.stopped_at
            exclusive = exclusive or not exc.may_fail_over
        elif continued and prior is not None and prior.unknown_part is not None and prior.unknown_part >= next_part:
            unknown_part = prior.unknown_part  # still not resent successfully: the next resend may duplicate it
            exclusive = exclusive or prior.exclusive
        return Hold(name, progress.parts, progress.reference, next_part, accepted, unknown_part, exclusive)
    return prior
