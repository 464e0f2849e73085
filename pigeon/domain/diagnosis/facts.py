"""The facts each flow is judged on, gathered from the store by `pigeon.app.diagnose`.

Rows are plain mappings with the store's column names (messages, message_events,
carrier_refs, alerts, request_log, opt_outs, unroutable_inbound); the rules never query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class MessageFacts:
    """One message: its record, its timeline, its submitted parts and the alerts about it."""

    message: Row
    events: Sequence[Row]
    now: datetime
    parts: Sequence[Row] = ()
    alerts: Sequence[Row] = ()
    #: Messages from the same sender that go out before this one (for a waiting message).
    queue_ahead: int = 0
    #: Receipts from the message's carrier since its submit that matched no message (for a
    #: sent message without a receipt). Counted only: they may belong to other accounts.
    unmatched_receipts: int = 0


@dataclass(frozen=True)
class RecipientFacts:
    """ "My message to this number wasn't delivered": what the store knows about `to`."""

    to: str
    since: datetime
    now: datetime
    messages: Sequence[MessageFacts] = ()
    #: Requests to send to `to` that the API refused (request_log, status >= 400), newest first.
    refused_requests: Sequence[Row] = ()
    #: Requests to send (POST Messages.json) the account made in the window, to any number.
    requests_in_window: int = 0
    #: Opt-outs of `to` on this account, each with the inbound message behind it.
    opt_outs: Sequence[Row] = ()
    #: The geo permissions that apply to the account now (pigeon.domain.geo): `to`'s country
    #: ("country", None when it has none), the countries it may send to ("allowed", None: any)
    #: and whose list that is ("set_by": the account's SID, its parent's, or None).
    geo: Mapping[str, Any] | None = None
    #: Erasures of `to` that covered the account (pigeon/store/erasure_log.py), newest first.
    erasures: Sequence[Row] = ()


@dataclass(frozen=True)
class WebhookHop:
    """A request of the doctor's test that the application answered with an HTTP redirect,
    followed to `location`."""

    url: str
    method: str
    status: int
    location: str
    elapsed_ms: float


@dataclass(frozen=True)
class WebhookExchange:
    """One request of the doctor's test to the application, and what came back; `redirects`
    are the requests before it that the application redirected (`url` is the last one's)."""

    url: str
    method: str
    status: int | None
    elapsed_ms: float
    error_code: int | None = None
    error: str | None = None
    twiml_valid: bool | None = None
    replies: int = 0
    response_excerpt: str | None = None
    redirects: Sequence[WebhookHop] = ()
    #: The Location of a redirect answer that was not followed (11215, 11216), as given.
    location: str | None = None


@dataclass(frozen=True)
class WebhookProbe:
    """The signed test request (and its fallback, as real traffic would get)."""

    exchanges: Sequence[WebhookExchange]

    @property
    def first(self) -> WebhookExchange | None:
        return self.exchanges[0] if self.exchanges else None


@dataclass(frozen=True)
class WebhookTarget:
    url: str | None
    method: str
    fallback_url: str | None
    source: str  # "number" or "service"


@dataclass(frozen=True)
class NumberFacts:
    """ "My number receives nothing"."""

    phone_number: str
    now: datetime
    since: datetime
    #: The number's record when it is on this account, else None.
    number: Row | None = None
    service: Row | None = None
    target: WebhookTarget | None = None
    probe: WebhookProbe | None = None
    #: Webhook alerts (11200, 11205, 12100, 12300, 14xxx) about inbound messages to the number.
    webhook_alerts: Sequence[Row] = ()
    #: webhook_failed timeline entries of inbound messages to the number: texts no URL took.
    webhook_failures: Sequence[Row] = ()
    #: webhook timeline entries with an error code: texts whose primary URL failed and whose
    #: fallback URL took them.
    fallback_answers: Sequence[Row] = ()
    #: Inbound messages stored with no application told (alert 11200 without a request).
    unannounced: Sequence[Row] = ()
    #: Inbound messages since `since` that no application was told of, for want of a webhook
    #: (their `no_webhook` timeline entry, or that alert): how many, when the first came, and
    #: the newest of them. The timeline outlasts the error log, and the webhook may be set since.
    untold_count: int = 0
    untold_first: datetime | None = None
    untold: Sequence[Row] = ()
    #: Texts to the number that no account took, since `unroutable_since`.
    unroutable: Sequence[Row] = ()
    inbound_received: int = 0

    @property
    def held_since(self) -> datetime | None:
        """When the account came to hold the number, if that is within the window: the texts
        that reached the number before are its former holder's, not this account's to see."""
        held = (self.number or {}).get("held_since") or (self.number or {}).get("date_created")
        return held if isinstance(held, datetime) and held > self.since else None

    @property
    def unroutable_since(self) -> datetime:
        """Where the texts that no account took are read from: the window, or the time the
        account came to hold the number if that is later."""
        return self.held_since or self.since


@dataclass(frozen=True)
class BlockedFacts:
    """A From/To pair (or a Messaging Service and a recipient) that gets 21610."""

    to: str
    now: datetime
    from_: str | None = None
    service_sid: str | None = None
    #: The Messaging Service the From number belongs to (its opt-outs cover the number too).
    sender_service_sid: str | None = None
    #: Matching opt-outs, each with inbound_body / inbound_at of the message behind it.
    opt_outs: Sequence[Row] = ()
    #: Sends to the pair refused with 21610 (request_log).
    refused_requests: Sequence[Row] = ()


@dataclass(frozen=True)
class DuplicateGroup:
    """Messages with the same sender, recipient and content within the window (one or more),
    and the API requests that created them."""

    messages: Sequence[MessageFacts]
    requests: Sequence[Row] = ()


@dataclass(frozen=True)
class DuplicateFacts:
    since: datetime
    now: datetime
    window_seconds: float
    to: str | None = None
    groups: Sequence[DuplicateGroup] = field(default_factory=tuple)
    #: Erasures of `to` that covered the account, newest first (none without `to`).
    erasures: Sequence[Row] = ()


@dataclass(frozen=True)
class MissingFacts:
    """A message SID the store has no message for, and what may say why."""

    sid: str
    account_sid: str
    now: datetime
    #: When the SID was made (pigeon.domain.sids.made_at); None when it does not say.
    made_at: datetime | None = None
    #: The account's DELETE requests that removed this SID, oldest first.
    deletions: Sequence[Row] = field(default_factory=list)
    #: PIGEON_MESSAGE_DAYS (0: messages are kept for ever).
    message_days: float = 0.0
    #: The erasure that removed it (pigeon/store/erasure_log.py), if one did.
    erasure: Row | None = None
