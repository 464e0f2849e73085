"""The dispatcher's queries: claiming due messages, queue depth, carrier ids (sender slots: `store.pacing`).

Claims are leases (claimed_by, claimed_until) taken in one write transaction: on PostgreSQL
with ``FOR UPDATE SKIP LOCKED`` so that many dispatchers split the work; on SQLite the write
transaction itself (BEGIN IMMEDIATE) makes each claim exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.numbers import is_number_sender
from pigeon.domain.status import Direction, MessageStatus
from pigeon.store.accounts import parent, with_parent
from pigeon.store.engine import found_in_order, probe_each, unindexed
from pigeon.store.prepared import Prepared, insert_many
from pigeon.store.tables import (
    accounts,
    carrier_refs,
    media,
    message_events,
    messages,
    messaging_services,
    phone_numbers,
    unmatched_receipts,
)

Row = dict[str, Any]
m = messages.c

#: What a dispatcher claims once it is due: a scheduled message is due at its SendAt (its
#: next_attempt_at), and is queued when claimed, as an accepted one is.
READY = (str(MessageStatus.QUEUED), str(MessageStatus.ACCEPTED), str(MessageStatus.SCHEDULED))
#: What stands in a sender's queue (the 21611 limit): not what is scheduled for later.
WAITING = (str(MessageStatus.QUEUED), str(MessageStatus.ACCEPTED), str(MessageStatus.SENDING))


# The batch INSERTs, built once: a statement built per call is walked for SQLAlchemy's
# cache key every time, which cost more than the executemany it runs.
_INSERT_UNMATCHED_RECEIPTS = unmatched_receipts.insert()

# -- named queries ----------------------------------------------------------------------------

_QUEUED_SEGMENTS = Prepared(
    sa.select(sa.func.coalesce(sa.func.sum(m.num_segments), 0).label("segments")).where(
        m.from_ == sa.bindparam("b_sender"), m.status.in_(WAITING)
    )
)
# An alphanumeric sender's queue is one account's (`domain.pacing.queue_key`): read off the
# same (from_, status) index, the account only checked (`unindexed`, as `store.sender_queue`
# does: as an equality it would let SQLite take the account's whole history from another index).
_QUEUED_SEGMENTS_OF_ACCOUNT = Prepared(
    sa.select(sa.func.coalesce(sa.func.sum(m.num_segments), 0).label("segments")).where(
        m.from_ == sa.bindparam("b_sender"),
        m.status.in_(WAITING),
        unindexed(m.account_sid) == sa.bindparam("b_account_sid"),
    )
)

_RELEASE_PACED = (
    messages.update()
    .where(m.sid == sa.bindparam("b_sid"))
    .values(
        claimed_by=None,
        claimed_until=None,
        next_attempt_at=sa.bindparam("b_next"),
        paced_at=sa.bindparam("b_paced"),
    )
)

# Only a claim of this dispatcher's can be left for another.
_OFFER = (
    messages.update()
    .where(m.sid == sa.bindparam("b_sid"), m.claimed_by == sa.bindparam("b_me"))
    .values(
        claimed_by=sa.bindparam("b_claimer"),
        claimed_until=sa.bindparam("b_until"),
        offered_to=sa.bindparam("b_to"),
        next_attempt_at=sa.bindparam("b_slot"),
        paced_at=sa.bindparam("b_slot"),
    )
)

#: One receipt state for many parts of one carrier (a batch of receipts is mostly one state).
_SET_PARTS_RECEIPT = Prepared(
    carrier_refs.update()
    .where(
        carrier_refs.c.carrier == sa.bindparam("b_carrier"),
        carrier_refs.c.carrier_message_id.in_(sa.bindparam("b_ids", expanding=True)),
    )
    .values(receipt_stat=sa.bindparam("b_stat"), receipt_at=sa.bindparam("b_at"))
)

_CARRIER_REFS = Prepared(
    sa.select(carrier_refs).where(
        carrier_refs.c.carrier == sa.bindparam("b_carrier"),
        carrier_refs.c.carrier_message_id.in_(sa.bindparam("b_ids", expanding=True)),
    )
)

# The accounts of a claim that restrict what goes out: not active (themselves or their main
# account), or with geo permissions (their own list, or their parent's). Most accounts have
# neither, so most claims read nothing.
_RESTRICTED_ACCOUNTS = Prepared(
    sa.select(
        accounts.c.sid,
        accounts.c.status,
        accounts.c.owner_account_sid,
        accounts.c.allowed_countries,
        parent.c.status.label("parent_status"),
        parent.c.allowed_countries.label("parent_allowed_countries"),
    )
    .select_from(with_parent)
    .where(
        accounts.c.sid.in_(sa.bindparam("b_sids", expanding=True)),
        sa.or_(
            accounts.c.status != "active",
            parent.c.status != "active",
            accounts.c.allowed_countries.is_not(None),
            parent.c.allowed_countries.is_not(None),
        ),
    )
)


def _due_branches() -> list[sa.ColumnElement[bool]]:
    """What makes a message due to a dispatcher (`b_now`, `b_me`), one condition per status."""
    now, me = sa.bindparam("b_now", type_=m.next_attempt_at.type), sa.bindparam("b_me", type_=m.claimed_by.type)
    # A message left for this dispatcher by one that could not reach its carrier (`offer`) is
    # its to claim; others wait until the offer runs out (claimed_until).
    offered = m.offered_to == me
    branches = [
        sa.and_(
            m.status == status,
            m.next_attempt_at <= now,
            sa.or_(m.claimed_until.is_(None), m.claimed_until < now, offered),
        )
        for status in READY
    ]
    # A resend whose paced slot lay beyond the look-ahead was released without a lease: it is
    # due again at its slot.
    branches.append(
        sa.and_(
            m.status == str(MessageStatus.SENDING),
            sa.or_(
                m.claimed_until < now,
                sa.and_(sa.or_(m.claimed_until.is_(None), offered), m.next_attempt_at <= now),
            ),
        )
    )
    return branches


def _picks(*, lock: bool) -> tuple[sa.Select[Any], ...]:
    # Each ORDER BY is the (status, next_attempt_at) index's own order, so even on stale
    # statistics PostgreSQL reads the index and stops at `b_limit` (checked with statistics
    # from 400 delivered messages and 10,000 queued since); unlike the outbox's claim it needs
    # no `index_plans`.
    picks = []
    for due in _due_branches():
        pick = sa.select(m.sid, m.claimed_by, m.next_attempt_at, m.date_created).where(due)
        pick = pick.order_by(m.next_attempt_at).limit(sa.bindparam("b_limit", type_=sa.Integer))
        picks.append(pick.with_for_update(skip_locked=True) if lock else pick)
    return tuple(picks)


# The claim's statements, built once (a claim runs many times a second under load, and
# building them cost more than running them): the picks per status, with row locks that
# other dispatchers skip on PostgreSQL, and the lease taken on what they picked.
_PICKS = tuple(Prepared(pick) for pick in _picks(lock=False))
_PICKS_LOCKED = tuple(Prepared(pick) for pick in _picks(lock=True))
# Whether a claim would find anything, as one read: under load most dispatchers' rounds come
# just after another has taken what was due, and a claim that finds nothing still takes the
# store's only writer (SQLite) for its three reads. Each status asks for its first due message
# in the index's order, as the picks do (`found_in_order`).
_ANY_DUE = sa.select(
    sa.or_(*(found_in_order(sa.select(m.sid).where(due).order_by(m.next_attempt_at)) for due in _due_branches()))
)
_LEASE = Prepared(
    messages.update()
    .where(m.sid.in_(sa.bindparam("b_sids", expanding=True)))
    .values(claimed_by=sa.bindparam("b_me"), claimed_until=sa.bindparam("b_until"), offered_to=None)
    .returning(*messages.c)
)


def any_due(conn: Connection, *, now: datetime, worker_id: str) -> bool:
    """Whether `claim_due` would find anything now (it may still find nothing: another
    dispatcher can claim in between)."""
    return bool(conn.execute(_ANY_DUE, {"b_now": now, "b_me": worker_id}).scalar())


#: SET LOCAL: for the rest of the claim's transaction.
_IDLE_AT_MOST = "SELECT set_config('idle_in_transaction_session_timeout', %(ms)s, true)"


def end_if_stopped(conn: Connection, lease: timedelta) -> None:
    """PostgreSQL: have the server end this session if this transaction of a dispatcher's (a
    claim, a record) sits idle for a third of the lease. Such a transaction never waits for
    anything but the database between its statements, so idle it has a stopped dispatcher
    behind it (a process stopped, a VM paused, cut off from the server). Its locks then go at
    once, not after the 5 minutes every session has (`store.engine`), and a claim cannot resume
    to commit leases already run out, which another dispatcher would take for a dead one's and
    send again while it sends them too."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_IDLE_AT_MOST, {"ms": str(max(1000, round(lease.total_seconds() * 1000 / 3)))})


def claim_due(conn: Connection, *, now: datetime, limit: int, lease: timedelta, worker_id: str) -> list[Row]:
    """Claim up to `limit` messages that are due: ready ones whose time has come, and
    messages left in `sending` by a dispatcher whose lease ran out (to be resent).

    One query per status, each read in order off the (status, next_attempt_at) index and
    stopping at `limit` rows, then merged: a single query over all three statuses (an OR of
    them) cannot be read in order, so it fetched and sorted every due message to keep the
    first hundred, a cost that grew with the backlog (3.7 ms with 10,000 queued on PostgreSQL,
    in the writer lock on SQLite) just when the dispatcher most needs to keep up."""
    # On PostgreSQL each query locks what it returns, so up to three batches are locked while
    # one is claimed; the rest are let go at commit, and other dispatchers skip them meanwhile.
    picks = _PICKS_LOCKED if conn.dialect.name == "postgresql" else _PICKS
    end_if_stopped(conn, lease)
    params = {"b_now": now, "b_me": worker_id, "b_limit": limit}
    candidates: list[Row] = []  # rows of (sid, claimed_by, next_attempt_at, date_created)
    for pick in picks:
        candidates += pick.all(conn, params)
    candidates.sort(key=lambda r: (r["next_attempt_at"], r["date_created"]))
    # Read the previous holders first: RETURNING would already show this dispatcher.
    previous = {r["sid"]: r["claimed_by"] for r in candidates[:limit]}
    if not previous:
        return []
    leased = _LEASE.all(conn, {"b_sids": list(previous), "b_me": worker_id, "b_until": now + lease})
    rows = [{**r, "previous_claimer": previous.get(r["sid"])} for r in leased]
    rows.sort(key=lambda r: (r["next_attempt_at"], r["date_created"]))
    return rows


def restricted_accounts(conn: Connection, account_sids: Iterable[str]) -> dict[str, Row]:
    """Those of these accounts that are not active (suspended, closed; themselves or their main
    account) or have geo permissions, by SID: sid, status, owner_account_sid,
    allowed_countries, parent_status and parent_allowed_countries (a subaccount's parent's;
    None for a top-level account)."""
    wanted = sorted(set(account_sids))
    if not wanted:
        return {}
    return {r["sid"]: r for r in _RESTRICTED_ACCOUNTS.all(conn, {"b_sids": wanted})}


# Who holds each of a claim's numbers. On PostgreSQL each row found is locked (FOR KEY SHARE,
# the lock a foreign key check takes) until the claim commits, so that no release or move of
# the number (both lock its row FOR UPDATE, or delete it) commits in between; a row that such a
# change holds already is skipped, not waited for: the change may be waiting for a message
# this claim has locked. SQLite, with one writer at a time, reads what is committed.
_HOLDERS_LOCKED = Prepared(
    sa.select(phone_numbers.c.phone_number, phone_numbers.c.account_sid, phone_numbers.c.messaging_service_sid)
    .where(phone_numbers.c.phone_number.in_(sa.bindparam("b_numbers", expanding=True)))
    .with_for_update(read=True, key_share=True, skip_locked=True)
)
_HELD = Prepared(
    sa.select(phone_numbers.c.phone_number).where(
        phone_numbers.c.phone_number.in_(sa.bindparam("b_numbers", expanding=True))
    )
)


class Holders(NamedTuple):
    accounts: dict[str, str]  # number -> the account holding it, for the numbers held
    busy: frozenset[str]  # numbers whose row a transaction in progress is changing (PostgreSQL)
    services: dict[str, str | None]  # number -> the Messaging Service it is in now, for the numbers held


def holders_of(conn: Connection, numbers: Iterable[str]) -> Holders:
    """Which account holds each of these numbers (phone numbers or short codes), for the
    claim's check that a message's From is still its account's, and which Messaging Service
    each is in (whose opt-outs block it, `app.dispatch_optouts`). On PostgreSQL the rows found
    stay locked against a release or move until the transaction ends, and a number whose row
    such a change holds is `busy`: who holds it is known once that change ends. One read, and
    a second only when a number is missing or busy (rare)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return Holders({}, frozenset(), {})
    rows = _HOLDERS_LOCKED.all(conn, {"b_numbers": wanted})
    found = {r["phone_number"]: r["account_sid"] for r in rows}
    services = {r["phone_number"]: r["messaging_service_sid"] for r in rows}
    missing = [n for n in wanted if n not in found]
    if not missing or conn.dialect.name != "postgresql":
        return Holders(found, frozenset(), services)
    # Skipped (locked by a change in progress), or not there at all: a plain read tells them apart.
    busy = frozenset(r["phone_number"] for r in _HELD.all(conn, {"b_numbers": missing}))
    return Holders(found, busy, services)


_PUT_BACK = (
    messages.update()
    .where(m.sid == sa.bindparam("b_sid"), m.claimed_by == sa.bindparam("b_me"))
    .values(claimed_by=sa.bindparam("b_claimer"), claimed_until=sa.bindparam("b_at"), offered_to=None)
)


def put_back(conn: Connection, claimed: Sequence[tuple[str, str | None]], *, worker_id: str, at: datetime) -> None:
    """Undo this dispatcher's claim of messages, each (sid, its claimer before the claim): due
    again at the next claim after `at`, as they were (a message left `sending` by a dispatcher
    that died keeps that dispatcher's name, which its resend's timeline entry gives)."""
    if claimed:
        conn.execute(
            _PUT_BACK,
            [{"b_sid": sid, "b_claimer": claimer, "b_at": at, "b_me": worker_id} for sid, claimer in claimed],
        )


def offer(
    conn: Connection,
    offers: Sequence[tuple[str, str, datetime, str | None]],
    *,
    worker_id: str,
    until: datetime,
) -> None:
    """Leave messages `worker_id` claimed for other dispatchers, each (sid, that dispatcher, its
    slot, the claimer to keep): due at its reserved slot, claimable by that dispatcher alone
    until `until`, by any after. A message left in `sending` by a dispatcher that died keeps
    that dispatcher's name, which the resend's timeline entry gives."""
    if offers:
        conn.execute(
            _OFFER,
            [
                {"b_sid": sid, "b_to": to, "b_slot": slot, "b_claimer": claimer, "b_until": until, "b_me": worker_id}
                for sid, to, slot, claimer in offers
            ],
        )


def release_paced(conn: Connection, slots: Sequence[tuple[str, datetime]]) -> None:
    """`release` for many messages, each until its reserved slot (one executemany)."""
    if slots:
        conn.execute(
            _RELEASE_PACED,
            [{"b_sid": sid, "b_next": slot, "b_paced": slot} for sid, slot in slots],
        )


_RENEW = Prepared(
    messages.update()
    .where(
        m.sid.in_(sa.bindparam("b_sids", expanding=True)),
        m.claimed_by == sa.bindparam("b_me"),
        m.status == str(MessageStatus.SENDING),
    )
    .values(claimed_until=sa.bindparam("b_until"))
)


def renew_leases(conn: Connection, sids: Sequence[str], *, worker_id: str, until: datetime) -> int:
    """Extend this dispatcher's lease on messages it is submitting (those it still holds);
    how many it still held."""
    if not sids:
        return 0
    return _RENEW.run(conn, {"b_sids": sorted(sids), "b_me": worker_id, "b_until": until})


# A scheduled message's sender, chosen again from its service's pool at its SendAt.
_SET_POOL_SENDER = (
    messages.update()
    .where(
        m.sid == sa.bindparam("b_sid"),
        # Two equalities, not an IN list: an executemany takes no expanding parameter.
        sa.or_(
            unindexed(m.status) == str(MessageStatus.ACCEPTED),
            unindexed(m.status) == str(MessageStatus.SCHEDULED),
        ),
    )
    .values(from_=sa.bindparam("b_sender"), content_hash=sa.bindparam("b_hash"), date_updated=sa.bindparam("b_at"))
)


def set_pool_senders(conn: Connection, senders: Sequence[tuple[str, str, str]], *, at: datetime) -> None:
    """Give messages whose pool chose their sender (those still accepted or scheduled) another
    sender, each (sid, sender, the content hash with that sender): one executemany."""
    if senders:
        conn.execute(
            _SET_POOL_SENDER,
            [{"b_sid": sid, "b_sender": sender, "b_hash": digest, "b_at": at} for sid, sender, digest in senders],
        )


def release(conn: Connection, sid: str, *, next_attempt_at: datetime, paced_at: datetime | None) -> None:
    """Give a claimed message back to the queue until `next_attempt_at`."""
    conn.execute(
        messages.update()
        .where(m.sid == sid)
        .values(claimed_by=None, claimed_until=None, next_attempt_at=next_attempt_at, paced_at=paced_at)
    )


def queued_segments(conn: Connection, sender: str, *, account_sid: str) -> int:
    """Segments waiting in the queue of `sender` as `account_sid` sends from it (for the 21611
    queue limit): a number's whole queue, or the account's own of an alphanumeric sender ID
    (`domain.pacing.queue_key`). It adds up the queue's waiting messages, so it costs in
    proportion to the sender's queue."""
    if is_number_sender(sender):
        row = _QUEUED_SEGMENTS.first(conn, {"b_sender": sender})
    else:
        row = _QUEUED_SEGMENTS_OF_ACCOUNT.first(conn, {"b_sender": sender, "b_account_sid": account_sid})
    assert row is not None  # an aggregate always has its row
    return int(row["segments"])


def carrier_ref_rows(
    *,
    carrier: str,
    ids: Sequence[str],
    message_sid: str,
    account_sid: str,
    at: datetime,
    first_part: int = 1,
    parts: int | None = None,
) -> list[Row]:
    """The carrier_refs rows of one submitted message: one per part. A message the carrier
    took in pieces (some parts, then the rest) is recorded per piece: its ids are those of
    parts ``first_part`` onwards of ``parts``."""
    return [
        {
            "carrier": carrier,
            "carrier_message_id": cid,
            "message_sid": message_sid,
            "account_sid": account_sid,
            "part_index": first_part - 1 + i,
            "part_count": parts if parts is not None else len(ids),
            "submitted_at": at,
            # A reused id starts again with no receipt (add_carrier_refs).
            "receipt_stat": None,
            "receipt_at": None,
        }
        for i, cid in enumerate(ids)
    ]


_WAITING_HOLDERS = Prepared(
    sa.select(
        carrier_refs.c.carrier,
        carrier_refs.c.carrier_message_id,
        carrier_refs.c.message_sid,
        carrier_refs.c.account_sid,
        carrier_refs.c.part_index,
    ).where(
        carrier_refs.c.carrier == sa.bindparam("b_carrier"),
        carrier_refs.c.carrier_message_id.in_(sa.bindparam("b_ids", expanding=True)),
        carrier_refs.c.receipt_at.is_(None),
    )
)


def add_carrier_refs(conn: Connection, rows: Sequence[Row]) -> list[Row]:
    """Record many messages' carrier ids (rows from `carrier_ref_rows`) with one INSERT.

    An id the carrier gave before now names the newer part: SMSCs reuse ids (a counter that
    wraps, or starts again when the SMSC restarts), and a receipt for that id is most likely
    the newer part's. Before this, the second use of an id failed the INSERT, so the sent
    message could not be recorded: its lease ran out and it was sent again, and again. An
    empty id names nothing a receipt could match, and is not kept.

    Returns the ids taken from another message that still waited for its receipt: that
    message's carrier_refs row with ``taken_by`` and ``taken_by_account``, the message that
    has the id now, so that both timelines can say why a receipt went where it did. One read
    per carrier, by key."""
    latest: dict[tuple[str, str], Row] = {}
    displaced = []
    for r in rows:
        key = (r["carrier"], r["carrier_message_id"])
        if not key[1]:
            continue
        earlier = latest.get(key)
        if earlier is not None and earlier["message_sid"] != r["message_sid"]:
            displaced.append(earlier)  # the same id twice in one batch
        latest[key] = r
    by_carrier: dict[str, list[str]] = {}
    for carrier, cid in latest:
        by_carrier.setdefault(carrier, []).append(cid)
    for carrier, ids in by_carrier.items():
        displaced += _WAITING_HOLDERS.all(conn, {"b_carrier": carrier, "b_ids": ids})
    insert_many(conn, carrier_refs, list(latest.values()), replace_on=("carrier", "carrier_message_id"))
    taken = []
    for held in displaced:
        holder = latest[(held["carrier"], held["carrier_message_id"])]
        if held["message_sid"] != holder["message_sid"]:
            taken.append(
                {
                    **{
                        k: held[k]
                        for k in ("carrier", "carrier_message_id", "message_sid", "account_sid", "part_index")
                    },
                    "taken_by": holder["message_sid"],
                    "taken_by_account": holder["account_sid"],
                }
            )
    return taken


def record_carrier_ids(
    conn: Connection, *, carrier: str, ids: Sequence[str], message_sid: str, account_sid: str, at: datetime
) -> list[Row]:
    return add_carrier_refs(
        conn, carrier_ref_rows(carrier=carrier, ids=ids, message_sid=message_sid, account_sid=account_sid, at=at)
    )


#: The Messaging Service whose MmsConverter a message follows: its own; for a TwiML reply (sent
#: from a number, never through a service), the service of the number it is sent from, as a
#: service's rules cover the replies of its numbers (`pigeon.app.inbound_replies`).
_RULES_SERVICE = sa.func.coalesce(
    m.messaging_service_sid,
    sa.case((m.direction == str(Direction.OUTBOUND_REPLY), phone_numbers.c.messaging_service_sid), else_=None),
)

_MEDIA_TO_SEND = Prepared(
    sa.select(media.c.message_sid, media.c.url, messaging_services.c.mms_converter, phone_numbers.c.mms_capable)
    .select_from(
        media.join(messages, m.sid == media.c.message_sid)
        .outerjoin(
            phone_numbers,
            sa.and_(phone_numbers.c.phone_number == m.from_, phone_numbers.c.account_sid == m.account_sid),
        )
        .outerjoin(messaging_services, messaging_services.c.sid == _RULES_SERVICE)
    )
    .where(media.c.message_sid.in_(sa.bindparam("b_sids", expanding=True)))
    .order_by(media.c.message_sid, media.c.position)
)


class MediaToSend(NamedTuple):
    urls: list[str]  # in order
    converts: bool  # its Messaging Service (a reply's: its number's) converts MMS to SMS (False without one)
    sender_mms: bool  # its sender is a number of the account's that can send MMS


def media_to_send(conn: Connection, sids: Sequence[str]) -> dict[str, MediaToSend]:
    """What the dispatcher needs to know of each of these messages that has media. Read only
    for claimed messages with media, which are rare."""
    found: dict[str, MediaToSend] = {}
    if sids:
        for row in _MEDIA_TO_SEND.all(conn, {"b_sids": sorted(set(sids))}):
            sid = row["message_sid"]
            if sid not in found:
                found[sid] = MediaToSend([], bool(row["mms_converter"]), bool(row["mms_capable"]))
            found[sid].urls.append(row["url"])
    return found


def retry_notes_of(conn: Connection, sids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The detail of each message's newest `retry` timeline entry, for those that have one:
    its ``hold`` (what a carrier may already have of it, `app.dispatch_jobs.Hold`) and its
    ``hand_over`` (the carrier its attempt goes on at). Read only for messages whose
    ``carrier`` column is set while they wait, which is rare."""
    if not sids:
        return {}
    e = message_events.c
    q = (
        sa.select(e.message_sid, e.detail)
        .where(e.message_sid.in_(sorted(set(sids))), e.kind == "retry")
        .order_by(e.message_sid, e.id)
    )
    latest: dict[str, dict[str, Any]] = {}
    for sid, detail in conn.execute(q):
        latest[sid] = detail or {}
    return latest


def find_carrier_ref(conn: Connection, carrier: str, carrier_id: str) -> Row | None:
    q = sa.select(carrier_refs).where(
        carrier_refs.c.carrier == carrier, carrier_refs.c.carrier_message_id == carrier_id
    )
    row = conn.execute(q).mappings().first()
    return dict(row) if row else None


#: PostgreSQL: the parts of one carrier's ids (`b_ids`, an array), each found by its whole
#: primary key. As `carrier = … AND carrier_message_id IN (…)`, PostgreSQL without statistics
#: took the carrier alone as the index condition and read every part of that carrier for each
#: batch of receipts: 6 ms with 15,000 parts, 120 ms with 40,000, a cost that grew with the
#: store until receipts fell behind.
_REFS_BY_PROBE = probe_each(
    sa.select(carrier_refs).where(carrier_refs.c.carrier == sa.bindparam("b_carrier")),
    carrier_refs.c.carrier_message_id,
    param="b_ids",
)
#: PostgreSQL: one part's receipt, by its whole primary key (run for many parts at once).
_SET_PART_RECEIPT = (
    carrier_refs.update()
    .where(
        carrier_refs.c.carrier == sa.bindparam("b_carrier"),
        carrier_refs.c.carrier_message_id == sa.bindparam("b_id"),
    )
    .values(receipt_stat=sa.bindparam("b_stat"), receipt_at=sa.bindparam("b_at"))
)


def find_carrier_refs(conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Row]:
    """`find_carrier_ref` for many (carrier, carrier id): one query per carrier."""
    by_carrier: dict[str, set[str]] = {}
    for carrier, carrier_id in keys:
        by_carrier.setdefault(carrier, set()).add(carrier_id)
    found: dict[tuple[str, str], Row] = {}
    for carrier, ids in by_carrier.items():
        params = {"b_carrier": carrier, "b_ids": sorted(ids)}
        if conn.dialect.name == "postgresql":
            rows: Iterable[Row] = [dict(r) for r in conn.execute(_REFS_BY_PROBE, params).mappings()]
        else:
            rows = _CARRIER_REFS.all(conn, params)
        for r in rows:
            found[(r["carrier"], r["carrier_message_id"])] = r
    return found


def set_part_receipts(conn: Connection, receipts: Sequence[tuple[str, str, str]], *, at: datetime) -> None:
    """`set_part_receipt` for many (carrier, carrier id, stat), applied in order: a part named
    twice ends with its last state. One UPDATE per carrier and state, not one per receipt
    (on PostgreSQL each was a statement for the server to run)."""
    last: dict[tuple[str, str], str] = {}
    for carrier, carrier_id, stat in receipts:
        last.pop((carrier, carrier_id), None)  # re-inserted: the dict keeps the order of last states
        last[(carrier, carrier_id)] = stat
    if conn.dialect.name == "postgresql":  # by whole key: see `_REFS_BY_PROBE`
        if last:
            conn.execute(
                _SET_PART_RECEIPT, [{"b_carrier": c, "b_id": i, "b_stat": s, "b_at": at} for (c, i), s in last.items()]
            )
        return
    groups: dict[tuple[str, str], list[str]] = {}
    for (carrier, carrier_id), stat in last.items():
        groups.setdefault((carrier, stat), []).append(carrier_id)
    for (carrier, stat), ids in groups.items():
        _SET_PARTS_RECEIPT.run(conn, {"b_carrier": carrier, "b_ids": ids, "b_stat": stat, "b_at": at})


def parts_of(conn: Connection, message_sid: str) -> list[Row]:
    q = sa.select(carrier_refs).where(carrier_refs.c.message_sid == message_sid).order_by(carrier_refs.c.part_index)
    return [dict(r) for r in conn.execute(q).mappings()]


def set_part_receipt(conn: Connection, carrier: str, carrier_id: str, *, stat: str, at: datetime) -> None:
    set_part_receipts(conn, [(carrier, carrier_id, stat)], at=at)


def park_unmatched(conn: Connection, row: Row) -> None:
    conn.execute(unmatched_receipts.insert().values(**row))


def park_many_unmatched(conn: Connection, rows: Sequence[Row]) -> None:
    """`park_unmatched` for many receipts, in order (one executemany)."""
    if rows:
        conn.execute(_INSERT_UNMATCHED_RECEIPTS, list(rows))


def take_unmatched(conn: Connection, carrier: str, ids: Sequence[str]) -> list[Row]:
    """Receipts that arrived for these ids before we recorded them; removed as they are taken."""
    q = (
        sa.select(unmatched_receipts)
        .where(unmatched_receipts.c.carrier == carrier, unmatched_receipts.c.carrier_message_id.in_(list(ids)))
        .order_by(unmatched_receipts.c.id)
    )
    rows = [dict(r) for r in conn.execute(q).mappings()]
    if rows:
        conn.execute(unmatched_receipts.delete().where(unmatched_receipts.c.id.in_([r["id"] for r in rows])))
    return rows


def take_rematchable(conn: Connection, *, limit: int) -> list[Row]:
    """Parked receipts whose carrier id has since been recorded, oldest first; removed as they
    are taken. On PostgreSQL a receipt can be parked while the transaction recording its id is
    still open, each unable to see the other's row: neither would ever match it again."""
    u, r = unmatched_receipts.c, carrier_refs.c
    recorded = sa.exists().where(r.carrier == u.carrier, r.carrier_message_id == u.carrier_message_id)
    q = sa.select(unmatched_receipts).where(recorded).order_by(u.id).limit(limit)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    rows = [dict(row) for row in conn.execute(q).mappings()]
    if rows:
        conn.execute(unmatched_receipts.delete().where(u.id.in_([row["id"] for row in rows])))
    return rows
