"""Every table Pigeon keeps, as SQLAlchemy Core metadata (the migrations build the same schema).

Tables are keyed by account where they hold account data, so that they can later be
distributed by account (DESIGN.md §8). Times are stored in UTC.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from pigeon.domain import storable

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]

    # On SQLite a datetime is text, and SQLAlchemy's DATETIME formats it field by field through
    # a dict, behind this decorator's own conversion: two Python calls per value, and every
    # row the workers write or claim carries three or four of them, inside the writer lock.
    # These do the same in one call each, with the C isoformat/fromisoformat, and store the
    # very same text ("2026-12-05 13:55:00.123456"), so databases written before read alike.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_datetime


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC datetimes")
    return _utc_text(value)


def _sqlite_datetime(value: str | None) -> datetime | None:
    return None if value is None else _utc_datetime(value)


# A batch writes the same instant into many rows (every timeline entry of a claim is `now`)
# and reads it back from many (RETURNING date_updated): converting each distinct value once
# saves a call per row inside the writer lock. Equal instants in any zone are one key, with
# one UTC text.


@functools.lru_cache(maxsize=4096)
def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=4096)
def _utc_datetime(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _sid(name: str = "sid", *args: Any, **kw: Any) -> sa.Column[str]:
    return sa.Column(name, sa.String(34), *args, **kw)


def _place_columns() -> list[sa.Column[Any]]:
    """Where a number is (its locality, region, postal code, rate center, LATA, coordinates):
    the inventory's, and a bought number's, which keeps them so that a release restocks it as
    it was. One definition, so the two cannot drift apart; new Column objects each call, as a
    Column belongs to one table."""
    return [
        sa.Column("locality", sa.String(64), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("postal_code", sa.String(16), nullable=True),
        sa.Column("rate_center", sa.String(64), nullable=True),
        sa.Column("lata", sa.String(8), nullable=True),
        sa.Column("latitude", sa.String(16), nullable=True),
        sa.Column("longitude", sa.String(16), nullable=True),
    ]


BigID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: The largest integer either store binds or keeps (a signed 64-bit integer, SQLite's INTEGER
#: and PostgreSQL's BIGINT alike): filters and offsets past it are refused before a query.
LARGEST_INTEGER = 2**63 - 1
#: The largest value an Integer column holds (status codes, error codes): PostgreSQL's INTEGER
#: is 32 bits, SQLite's 64. A filter on such a column is bound by it on both stores, or on
#: PostgreSQL a larger one fails the query ("integer out of range").
LARGEST_COLUMN_INTEGER = 2**31 - 1

accounts = sa.Table(
    "accounts",
    metadata,
    _sid(primary_key=True),
    _sid("owner_account_sid", nullable=False, index=True),
    sa.Column("friendly_name", sa.String(64), nullable=False),
    sa.Column("auth_token", sa.String(64), nullable=False),
    # A second auth token that authenticates as well as the first, until it is promoted to be
    # the only one (Accounts v1 AuthTokens): credentials change without a moment when the
    # application's requests fail. Webhooks are signed with auth_token alone.
    sa.Column("secondary_auth_token", sa.String(64), nullable=True),
    sa.Column("secondary_auth_token_created", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    # Who suspended it while it is suspended: "operator" (`pigeon accounts status --suspend`),
    # whose suspension a parent's credentials may not lift (21478), or "parent" (the API);
    # NULL otherwise, and for accounts suspended before this was kept.
    sa.Column("suspended_by", sa.String(16), nullable=True),
    sa.Column("type", sa.String(8), nullable=False, server_default="Full"),
    # Whether this account's long codes accept messages from short codes (same country only).
    sa.Column("allow_short_code_inbound", sa.Boolean, nullable=False, server_default=sa.false()),
    # Geo permissions: the countries it may send to, "US,CA" or "*"; NULL follows the parent
    # (pigeon/domain/geo.py).
    sa.Column("allowed_countries", sa.Text, nullable=True),
    # How many times a console session of the account signed out. A session cookie carries
    # the count it was signed in under: once the count moves on, it is over (pigeon.console.auth).
    sa.Column("console_sign_outs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    sa.Column("friendly_name", sa.String(64), nullable=False, server_default=""),
    # SHA-256 of the secret: the secret is 32 random bytes, so a slow hash adds nothing.
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=True),  # NULL: never changed since made
    # Signing out of a console session made with the key ends that key's sessions only.
    sa.Column("console_sign_outs", sa.Integer, nullable=False, server_default="0"),
)

phone_numbers = sa.Table(
    "phone_numbers",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False),
    sa.Column("phone_number", sa.String(32), nullable=False, unique=True),
    sa.Column("friendly_name", sa.String(64), nullable=False),
    sa.Column("number_type", sa.String(16), nullable=False, server_default="local"),
    sa.Column("iso_country", sa.String(2), nullable=True),
    sa.Column("sms_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("mms_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("voice_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("fax_capable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sms_url", sa.Text, nullable=True),
    sa.Column("sms_method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("sms_fallback_url", sa.Text, nullable=True),
    sa.Column("sms_fallback_method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("status_callback", sa.Text, nullable=True),
    sa.Column("status_callback_method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("voice_url", sa.Text, nullable=True),
    sa.Column("voice_method", sa.String(8), nullable=False, server_default="POST"),
    _sid("messaging_service_sid", nullable=True, index=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    # Since when its account holds it: bought (a new row), or moved from another account of
    # the family. What reached the number before is the former holder's, not this account's.
    sa.Column("held_since", UTCDateTime, nullable=True),
    # What the inventory knew of a bought number, kept with it: a release restocks it as it
    # was, and a search near it or in its region finds its neighbours (pigeon.app.inventory).
    *_place_columns(),
    sa.Column("address_requirements", sa.String(8), nullable=False, server_default="none"),
    # twilio: bought from the inventory; hosted: put on the account by an operator.
    sa.Column("origin", sa.String(8), nullable=False, server_default="hosted"),
    sa.Index(None, "account_sid", "phone_number"),
)

messaging_services = sa.Table(
    "messaging_services",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    sa.Column("friendly_name", sa.String(64), nullable=False),
    sa.Column("inbound_request_url", sa.Text, nullable=True),
    sa.Column("inbound_method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("fallback_url", sa.Text, nullable=True),
    sa.Column("fallback_method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("status_callback", sa.Text, nullable=True),
    sa.Column("sticky_sender", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("mms_converter", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("smart_encoding", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("scan_message_content", sa.String(8), nullable=False, server_default="inherit"),
    sa.Column("fallback_to_long_code", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("area_code_geomatch", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("synchronous_validation", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("validity_period", sa.Integer, nullable=False, server_default="36000"),
    sa.Column("usecase", sa.String(16), nullable=False, server_default="undeclared"),
    sa.Column("us_app_to_person_registered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("use_inbound_webhook_on_number", sa.Boolean, nullable=False, server_default=sa.false()),
    # Replies to STOP / START / HELP keywords for the service's senders (null: Pigeon's default text).
    sa.Column("opt_out_reply", sa.Text, nullable=True),
    sa.Column("opt_in_reply", sa.Text, nullable=True),
    sa.Column("help_reply", sa.Text, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

messages = sa.Table(
    "messages",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False),
    _sid("messaging_service_sid", nullable=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("from_", sa.String(storable.ADDRESS_LENGTH), nullable=True),
    sa.Column("to", sa.String(storable.ADDRESS_LENGTH), nullable=False),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("encoding", sa.String(8), nullable=False, server_default="GSM-7"),
    sa.Column("num_segments", sa.Integer, nullable=False, server_default="1"),
    sa.Column("num_media", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("price", sa.String(16), nullable=True),
    sa.Column("price_unit", sa.String(3), nullable=False, server_default="USD"),
    sa.Column("status_callback", sa.Text, nullable=True),
    sa.Column("validity_period", sa.Integer, nullable=True),
    sa.Column("send_at", UTCDateTime, nullable=True),
    sa.Column("smart_encoded", sa.Boolean, nullable=False, server_default=sa.false()),
    # The automatic reply to a STOP/START/HELP keyword: free, and not counted in usage.
    sa.Column("keyword_reply", sa.Boolean, nullable=False, server_default=sa.false()),
    # Sent through a Messaging Service without a From: the pool chose `from_`, and chooses
    # again when a scheduled message is queued at its SendAt (app/scheduled_senders.py).
    sa.Column("sender_from_pool", sa.Boolean, nullable=False, server_default=sa.false()),
    # An HMAC (the install's content key) of sender + recipient + body, for duplicate
    # detection (pigeon.app.send_request.content_hash); cleared by redaction.
    sa.Column("content_hash", sa.String(64), nullable=True),
    # Work state for the dispatcher: due time, claim lease and attempt count.
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String(storable.PROCESS_NAME_LENGTH), nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    # A dispatcher that cannot reach the message's carrier leaves it for the process holding
    # that carrier's bind (app/dispatch.py): only that dispatcher claims it until claimed_until.
    sa.Column("offered_to", sa.String(storable.PROCESS_NAME_LENGTH), nullable=True),
    # The sender slot reserved for this message by pacing; it is sent then without a new reservation.
    sa.Column("paced_at", UTCDateTime, nullable=True),
    # A failure decided when the message was accepted, that the dispatcher applies when it
    # claims it (30001: a Messaging Service accepts a message for a full queue, then fails it).
    sa.Column("fail_code", sa.Integer, nullable=True),
    # The carrier that took the message (the simulator, or an SMPP carrier's name).
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), nullable=True),
    # A carrier took a copy after its submit was given up on (an `accepted_late` entry): the
    # message may be at a carrier more than once, so its receipts count per copy (app/receipts.py).
    sa.Column("late_copy", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Column("date_sent", UTCDateTime, nullable=True),
    # Newest-first listing per account, with and without number filters.
    sa.Index(None, "account_sid", "date_created", "sid"),
    sa.Index(None, "account_sid", "to", "date_created"),
    sa.Index(None, "account_sid", "from_", "date_created"),
    sa.Index(None, "account_sid", "date_sent"),
    # The dispatcher's claim: due queued messages in order.
    sa.Index(None, "status", "next_attempt_at"),
    # A sender's queue depth (21611) and pacing.
    sa.Index(None, "from_", "status"),
)

message_events = sa.Table(
    "message_events",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    _sid("message_sid", nullable=False),
    _sid("account_sid", nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    # created, status, submit, receipt, resend, redacted, canceled, callback, ...
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("status", sa.String(20), nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
    sa.Index(None, "message_sid", "id"),
)

media = sa.Table(
    "media",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", nullable=False),
    _sid("message_sid", nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("content_type", sa.String(128), nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    _sid("account_sid", nullable=False),
    # The sender side of the pair: a phone number / short code, or an MG sid for service scope.
    sa.Column("sender", sa.String(64), nullable=False),
    sa.Column("recipient", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("keyword", sa.String(32), nullable=False),
    _sid("inbound_message_sid", nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.UniqueConstraint("account_sid", "sender", "recipient"),
)

# -- delivery pipeline ------------------------------------------------------------------------

carrier_refs = sa.Table(
    "carrier_refs",
    metadata,
    # The carrier's id for one submitted part -> our message. Receipts can arrive days later,
    # so the map lives in the store, not in a connector's memory.
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), primary_key=True),
    sa.Column("carrier_message_id", sa.String(storable.CARRIER_ID_LENGTH), primary_key=True),
    _sid("message_sid", nullable=False, index=True),
    _sid("account_sid", nullable=False),
    sa.Column("part_index", sa.Integer, nullable=False, server_default="0"),
    sa.Column("part_count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("receipt_stat", sa.String(storable.RECEIPT_FIELD_LENGTH), nullable=True),
    sa.Column("receipt_at", UTCDateTime, nullable=True),
)

sender_pacing = sa.Table(
    "sender_pacing",
    metadata,
    # A sender's next allowed send time: shared by every dispatcher process (DESIGN.md §8).
    sa.Column("sender", sa.String(64), primary_key=True),
    sa.Column("next_send_at", UTCDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    # Sent as I-Twilio-Idempotency-Token: the same on every retry of one delivery.
    sa.Column("idempotency_token", sa.String(64), nullable=False, unique=True),
    _sid("account_sid", nullable=False),
    _sid("message_sid", nullable=True, index=True),
    # status_callback | inbound | event
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("method", sa.String(8), nullable=False, server_default="POST"),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("fallback_url", sa.Text, nullable=True),
    sa.Column("fallback_method", sa.String(8), nullable=True),
    # Deliveries of one message go out in this order: a later one waits for earlier ones.
    sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
    # pending | waiting (behind an unfinished delivery of the same message and URL) |
    # delivered | failed
    sa.Column("status", sa.String(12), nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.Index(None, "status", "next_attempt_at"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", BigID, nullable=False, index=True),
    _sid("account_sid", nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=True),
    sa.Column("response_excerpt", sa.Text, nullable=True),
    #: The Location a redirect answer (3xx) sent the request on to, masked as `url` is.
    sa.Column("location", sa.Text, nullable=True),
)

alerts = sa.Table(
    "alerts",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", nullable=False),
    sa.Column("error_code", sa.Integer, nullable=False),
    sa.Column("log_level", sa.String(8), nullable=False, server_default="error"),
    _sid("resource_sid", nullable=True, index=True),
    sa.Column("alert_text", sa.Text, nullable=False),
    sa.Column("request_method", sa.String(8), nullable=True),
    sa.Column("request_url", sa.Text, nullable=True),
    sa.Column("request_variables", sa.JSON, nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("response_headers", sa.JSON, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Index(None, "account_sid", "date_created"),
)

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    # The usage ledger (pigeon.domain.usage): messages and segments by account, UTC day and
    # category, and what they cost in millionths of the price unit. Written where a message is
    # priced or received, so it outlives the messages. `shard` spreads one account's counts
    # over a few rows: on PostgreSQL, dispatchers that record the same account's messages at
    # once would otherwise queue for one row's lock.
    _sid("account_sid", nullable=False),
    sa.Column("day", sa.String(10), nullable=False),  # YYYY-MM-DD, UTC
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("shard", sa.SmallInteger, nullable=False),
    sa.Column("messages", sa.BigInteger, nullable=False),
    sa.Column("segments", sa.BigInteger, nullable=False),
    sa.Column("price_micros", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("account_sid", "day", "category", "shard"),
)

usage_triggers = sa.Table(
    "usage_triggers",
    metadata,
    # Thresholds on an account's usage (pigeon.domain.usage_triggers). `fired_period` is the
    # period key of the last firing: a trigger fires once per key, whichever process sees it.
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    sa.Column("friendly_name", sa.String(64), nullable=True),
    sa.Column("usage_category", sa.String(16), nullable=False),
    sa.Column("trigger_by", sa.String(8), nullable=False),
    sa.Column("trigger_value", sa.String(32), nullable=False),  # a decimal, as text: exact on both stores
    sa.Column("recurring", sa.String(8), nullable=True),
    sa.Column("callback_url", sa.Text, nullable=False),
    sa.Column("callback_method", sa.String(8), nullable=False),
    sa.Column("fired_period", sa.String(10), nullable=True),
    sa.Column("date_fired", UTCDateTime, nullable=True),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

unmatched_receipts = sa.Table(
    "unmatched_receipts",
    metadata,
    # Receipts whose carrier id matched no submitted part yet: a receipt can overtake the
    # submit response, or belong to traffic we never sent. Re-matched when the id is recorded.
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), nullable=False),
    # Sized as pigeon.domain.storable cuts what carriers send.
    sa.Column("carrier_message_id", sa.String(storable.CARRIER_ID_LENGTH), nullable=False),
    sa.Column("stat", sa.String(storable.RECEIPT_FIELD_LENGTH), nullable=True),
    sa.Column("err", sa.String(storable.RECEIPT_FIELD_LENGTH), nullable=True),
    # The code the carrier's receipt_errors gives err (pigeon.ports.Receipt.error_code).
    sa.Column("error_code", sa.Integer, nullable=True),
    sa.Column("done_date", sa.String(storable.RECEIPT_FIELD_LENGTH), nullable=True),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # From a carrier that reports on whole messages (pigeon.ports.Receipt.whole_message).
    sa.Column("whole_message", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "carrier", "carrier_message_id"),
)

simulated_receipts = sa.Table(
    "simulated_receipts",
    metadata,
    # The built-in network's pending receipts. Kept in the store so that, like a real network,
    # it still reports deliveries after our processes restart.
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("carrier_message_id", sa.String(80), nullable=False),
    sa.Column("stat", sa.String(16), nullable=False),
    sa.Column("err", sa.String(16), nullable=False),
    sa.Column("submit_date", sa.String(16), nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False, index=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
)

# -- two-way messaging ------------------------------------------------------------------------

alpha_senders = sa.Table(
    "alpha_senders",
    metadata,
    _sid(primary_key=True),
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False),
    _sid("messaging_service_sid", nullable=False, index=True),
    sa.Column("alpha_sender", sa.String(11), nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
    sa.UniqueConstraint("messaging_service_sid", "alpha_sender"),
)

available_numbers = sa.Table(
    "available_numbers",
    metadata,
    # The inventory operators load (pigeon inventory import); buying a number takes it out.
    sa.Column("phone_number", sa.String(32), primary_key=True),
    sa.Column("iso_country", sa.String(2), nullable=False),
    # local | toll_free | mobile
    sa.Column("number_type", sa.String(16), nullable=False, server_default="local"),
    sa.Column("friendly_name", sa.String(64), nullable=False),
    *_place_columns(),
    sa.Column("sms_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("mms_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("voice_capable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("fax_capable", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("address_requirements", sa.String(8), nullable=False, server_default="none"),
    sa.Column("date_added", UTCDateTime, nullable=False),
    sa.Index(None, "iso_country", "number_type"),
)

unroutable_inbound = sa.Table(
    "unroutable_inbound",
    metadata,
    # Inbound messages for numbers no account holds (or that cannot take SMS): kept, never sent on.
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("from_", sa.String(storable.ADDRESS_LENGTH), nullable=False),
    sa.Column("to", sa.String(storable.ADDRESS_LENGTH), nullable=False, index=True),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

inbound_parts = sa.Table(
    "inbound_parts",
    metadata,
    # Parts of concatenated inbound messages (pigeon.app.reassembly). A part is committed here
    # before the carrier acknowledges it, since the SMSC never sends an acknowledged part
    # again. While its message waits for parts, handed_over_at is null and due_at is when the
    # message goes on without them; once handed over, the octets are dropped and the row stays
    # until due_at so that a resent copy is recognised (digest) instead of starting a message.
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), nullable=False),
    sa.Column("sender", sa.String(storable.ADDRESS_LENGTH), nullable=False),
    sa.Column("recipient", sa.String(storable.ADDRESS_LENGTH), nullable=False),
    sa.Column("reference_bits", sa.SmallInteger, nullable=False),
    sa.Column("reference", sa.Integer, nullable=False),
    sa.Column("total", sa.SmallInteger, nullable=False),
    sa.Column("sequence", sa.SmallInteger, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("data_coding", sa.SmallInteger, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("due_at", UTCDateTime, nullable=False, index=True),
    sa.Column("handed_over_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint(
        "carrier",
        "sender",
        "recipient",
        "reference_bits",
        "reference",
        "total",
        "sequence",
        name="uq_inbound_parts_part",
    ),
)

# -- the debugger -----------------------------------------------------------------------------

request_log = sa.Table(
    "request_log",
    metadata,
    # Every API request, without bodies or credentials: what the doctor reads to tell "your
    # application never called us" from "we refused it" from "it called us twice".
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    _sid("sid", nullable=False, unique=True),  # RQ…, also sent as the Twilio-Request-Id header
    _sid("account_sid", nullable=True),  # the account acted as; null when authentication failed
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_code", sa.Integer, nullable=True),
    _sid("resource_sid", nullable=True),  # the SID the request created or addressed
    sa.Column("source_ip", sa.String(64), nullable=True),
    sa.Column("user_agent", sa.Text, nullable=True),
    sa.Column("idempotency_key", sa.String(255), nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # For sends: the numbers and a hash of sender + recipient + body (never the body itself).
    sa.Column("to", sa.String(64), nullable=True),
    sa.Column("from_", sa.String(64), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    # The account the URL names, when the request's credentials could not be checked (the
    # database was out of reach), were refused, or were not needed (a public media content
    # URL): not proof the account's owner sent it, but what `pigeon doctor` needs to find a
    # send that was refused before anyone was known.
    _sid("claimed_account_sid", nullable=True),
    sa.Index(None, "account_sid", "at"),
    sa.Index(None, "account_sid", "to", "at"),
    sa.Index(None, "content_hash"),
    sa.Index(None, "at"),
    sa.Index(
        None,
        "claimed_account_sid",
        "to",
        "at",
        postgresql_where=sa.text("claimed_account_sid IS NOT NULL"),
        sqlite_where=sa.text("claimed_account_sid IS NOT NULL"),
    ),
    # What a DELETE removed: the doctor's answer to "where did my message go?". Partial, so
    # that the other requests cost it nothing.
    sa.Index(
        None,
        "resource_sid",
        postgresql_where=sa.text("method = 'DELETE'"),
        sqlite_where=sa.text("method = 'DELETE'"),
    ),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    # Idempotency-Key on POST Messages: the same key and parameters within 24 h return the
    # original message; the same key with other parameters is refused.
    _sid("account_sid", primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    _sid("message_sid", nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False, index=True),
)

erasures = sa.Table(
    "erasures",
    metadata,
    # One row per `pigeon erase NUMBER --yes`, kept for ever (the evidence that a person's
    # request was carried out) and holding nothing of theirs: the number only as a keyed
    # fingerprint (pigeon/store/erasure_log.py), so that the doctor can tell "erased" from
    # "never asked" for a number or a message it is asked about.
    sa.Column("id", BigID, primary_key=True, autoincrement=True),
    sa.Column("number_fingerprint", sa.String(64), nullable=False, index=True),
    _sid("account_sid", nullable=True),  # the account it covered, with its subaccounts; null: every one
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),  # null: it stopped part way (or still runs)
    sa.Column("erased_by", sa.String(255), nullable=True),  # the command and who ran it, as known
    sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alerts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unroutable", sa.Integer, nullable=False, server_default="0"),
    sa.Column("kept_in_progress", sa.Integer, nullable=False, server_default="0"),
)

erased_messages = sa.Table(
    "erased_messages",
    metadata,
    # The messages an erasure removed, each as a keyed fingerprint of its SID (a SID begins
    # with the millisecond it was made: kept plain, these would keep when the person texted).
    sa.Column("sid_fingerprint", sa.String(64), primary_key=True),
    sa.Column("erasure_id", BigID, sa.ForeignKey("erasures.id"), nullable=False),
    _sid("account_sid", nullable=False),  # whose message it was: the doctor answers that account only
    sa.Index(None, "erasure_id", "account_sid"),
)

event_sinks = sa.Table(
    "event_sinks",
    metadata,
    _sid(primary_key=True),  # DG…
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("sink_type", sa.String(16), nullable=False),
    sa.Column("sink_configuration", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

event_subscriptions = sa.Table(
    "event_subscriptions",
    metadata,
    _sid(primary_key=True),  # DF…
    _sid("account_sid", sa.ForeignKey("accounts.sid"), nullable=False, index=True),
    _sid("sink_sid", nullable=False, index=True),
    sa.Column("description", sa.String(255), nullable=False),
    # [{"type": "com.twilio.messaging.message.delivered", "schema_version": 1}, ...]
    sa.Column("types", sa.JSON, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
    sa.Column("date_updated", UTCDateTime, nullable=False),
)

carrier_status = sa.Table(
    "carrier_status",
    metadata,
    # Each worker process's view of its carrier binds, refreshed every few seconds, so that
    # `pigeon carriers` and the console show live state from any host.
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), primary_key=True),
    sa.Column("holder", sa.String(128), primary_key=True),
    sa.Column("status", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

carrier_binds = sa.Table(
    "carrier_binds",
    metadata,
    # The binds a carrier account allows, as leases (DESIGN.md §8): one row per slot, and the
    # process holding a slot may keep one bind (or transmitter+receiver pair) to the carrier
    # until expires_at. A slot whose lease ran out is free for any process to take over.
    sa.Column("carrier", sa.String(storable.CARRIER_NAME_LENGTH), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("holder", sa.String(storable.PROCESS_NAME_LENGTH), nullable=True),
    sa.Column("acquired_at", UTCDateTime, nullable=True),
    sa.Column("renewed_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    # The holder's bind as of renewed_at: "binding" (taken, first bind under way), "bound" or
    # "unbound" (it keeps trying); NULL when free. Traffic is left to a binding or bound holder.
    sa.Column("state", sa.String(8), nullable=True),
)

# -- the web console --------------------------------------------------------------------------

settings = sa.Table(
    "settings",
    metadata,
    # Server-wide values that every process must share, e.g. the console's cookie-signing
    # secret: kept in the store so sessions survive restarts and work across API processes.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("date_created", UTCDateTime, nullable=False),
)
