"""Everything the store holds about one phone number, found and removed (`pigeon erase`): the
answer to a person who asks that their data be deleted.

What goes: the messages to or from the number (with their timeline, media, carrier ids,
finished webhook deliveries and attempts, and alerts), the alerts that name it (in their
text, the request they record or the answer to it: about its text to a number that cannot
take SMS, about a message the application has since deleted), the request log's entries
that name it, and the inbound messages it sent that no account took (to numbers nobody
holds, or that could not take them; with an account, those to its numbers only). What
stays: its opt-outs, which hold the number and the keyword only and must outlive everything
else (a person who said STOP is never texted again), their link to the message that carried
the STOP cleared; the day-long Idempotency-Keys of erased messages, which hold no number, so
that a client retrying a send after the erasure gets 20409 rather than a second text; and the
record of the erasure itself, which holds the number and the messages' SIDs only as keyed
fingerprints (pigeon/store/erasure_log.py), so that the doctor says "erased" rather than
"never sent". Messages still on their way (queued, sending, scheduled, or with webhooks still
to deliver) stay until they are done: they are counted, and a second run takes them. So are
the parts of a long text the number is sending right now (inbound_parts): they wait for the
rest at most the carrier's reassembly timeout (two minutes by default), become a message
that a second run takes, and their digests are forgotten one timeout later
(`inbound_parts.forget_expired`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.store import erasure_log
from pigeon.store.engine import index_plans
from pigeon.store.redaction import answered_messages, replace_answers
from pigeon.store.retention import SETTLED, lock_settled, remove_messages
from pigeon.store.tables import (
    accounts,
    alerts,
    messages,
    opt_outs,
    phone_numbers,
    request_log,
    unroutable_inbound,
)

m = messages.c
r = request_log.c
u = unroutable_inbound.c


@dataclass(frozen=True)
class Found:
    """What the store holds about the number (in the accounts asked about)."""

    messages: int  # at rest: erased
    in_progress: int  # still on their way: kept for now
    requests: int
    unroutable: int
    alerts: int  # naming the number (those about its messages go with them, uncounted)
    opt_outs: int  # kept

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


def accounts_in_scope(conn: Connection, account: str | None) -> list[str]:
    """Every account, or `account` with its subaccounts (a parent acts on them, as in the API)."""
    q = sa.select(accounts.c.sid).order_by(accounts.c.sid)
    if account is not None:
        q = q.where(sa.or_(accounts.c.sid == account, accounts.c.owner_account_sid == account))
    return list(conn.execute(q).scalars())


def _messages_of(conn: Connection, account: str, number: str, *, at_rest: bool, limit: int | None) -> list[str]:
    """The account's messages to or from `number`, through its (account_sid, to|from_, …) indexes."""
    found: list[str] = []
    for column in (m.to, m.from_):
        q = sa.select(m.sid).where(m.account_sid == account, column == number, SETTLED if at_rest else ~SETTLED)
        with index_plans(conn):
            found += conn.execute(q.limit(limit) if limit else q).scalars()
    return list(dict.fromkeys(found))[:limit] if limit else list(dict.fromkeys(found))


def _requests(number: str, accounts_: Sequence[str] | None) -> sa.ColumnElement[bool]:
    named = sa.or_(r.to == number, r.from_ == number)
    if accounts_ is None:
        return named
    return sa.and_(named, sa.or_(r.account_sid.in_(accounts_), r.claimed_account_sid.in_(accounts_)))


def _unroutable(number: str, owners: Sequence[str] | None) -> sa.ColumnElement[bool]:
    """Its texts kept as unroutable: all of them, or (`owners`) those to the accounts' numbers
    (which could not take them: not SMS-capable, say). Those to numbers nobody holds belong to
    no account: only an erasure across every account takes them."""
    if owners is None:
        return sa.or_(u.from_ == number, u.to == number)
    held = sa.select(phone_numbers.c.phone_number).where(phone_numbers.c.account_sid.in_(owners))
    return sa.and_(u.from_ == number, u.to.in_(held))


#: Where an alert may name a number: its text, the request it records (its parameters, kept as
#: JSON, and its URL) and the answer to it.
_ALERT_TEXTS = (
    alerts.c.alert_text,
    sa.cast(alerts.c.request_variables, sa.Text),
    alerts.c.request_url,
    alerts.c.response_body,
)


def _spellings(number: str) -> list[str]:
    """`number` as an alert's texts may hold it, in lower case: as it is (the text, the JSON of
    the parameters) and percent-encoded (in a URL or a form-encoded answer, "%2B1415…")."""
    return sorted({number.lower(), quote(number, safe="").lower()})


def alerts_naming(
    conn: Connection, number: str, *, account: str | None = None, after: str = "", limit: int = 1000
) -> tuple[list[str], str | None]:
    """SIDs of the alerts naming `number` among the next `limit` in SID order after `after`
    that hold it in their texts, and the SID to go on after (None: none are left). Alerts
    about no message of the number's still name it: about its text to a number that cannot
    take SMS (21407, about the number), a webhook of a message the application has since
    deleted. The error log has no index that finds a number (nor a need for one: its
    retention keeps it short), so a caller reads it in steps, each in a read transaction.
    A number is matched where no digit follows it, nor precedes it: a short code's digits
    inside another number, or inside a SID, are not it."""
    spelled = _spellings(number)
    holds = [sa.func.lower(text).contains(s, autoescape=True) for text in _ALERT_TEXTS for s in spelled]
    q = sa.select(alerts.c.sid, *_ALERT_TEXTS).where(alerts.c.sid > after, sa.or_(*holds))
    if account is not None:
        q = q.where(alerts.c.account_sid.in_(accounts_in_scope(conn, account)))
    rows = conn.execute(q.order_by(alerts.c.sid).limit(limit)).all()
    alone = re.compile("(?<![0-9])(" + "|".join(re.escape(s) for s in spelled) + ")(?![0-9])")
    named = [row[0] for row in rows if any(text and alone.search(text.lower()) for text in row[1:])]
    return named, rows[-1][0] if len(rows) == limit else None


def _all_alerts_naming(conn: Connection, number: str, account: str | None) -> Iterator[str]:
    after: str | None = ""
    while after is not None:
        named, after = alerts_naming(conn, number, account=account, after=after)
        yield from named


def remove_alerts(conn: Connection, sids: Sequence[str]) -> int:
    return int(conn.execute(alerts.delete().where(alerts.c.sid.in_(sids))).rowcount) if sids else 0


def _count(conn: Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one())


def find(conn: Connection, number: str, *, account: str | None = None) -> Found:
    """Count what `erase` would remove, and what it would keep."""
    owners = accounts_in_scope(conn, account)
    at_rest = sum(len(_messages_of(conn, a, number, at_rest=True, limit=None)) for a in owners)
    busy = in_progress(conn, number, owners)
    opted = sa.and_(opt_outs.c.recipient == number, opt_outs.c.account_sid.in_(owners))
    return Found(
        messages=at_rest,
        in_progress=busy,
        requests=_count(conn, request_log, _requests(number, None if account is None else owners)),
        unroutable=_count(conn, unroutable_inbound, _unroutable(number, None if account is None else owners)),
        alerts=sum(1 for _ in _all_alerts_naming(conn, number, account)),
        opt_outs=_count(conn, opt_outs, opted),
    )


def in_progress(conn: Connection, number: str, owners: Sequence[str]) -> int:
    """How many messages to or from `number` in the accounts `owners` are still on their way
    (`erase_messages` leaves them for a later run)."""
    return sum(len(_messages_of(conn, a, number, at_rest=False, limit=None)) for a in owners)


def messages_at_rest(conn: Connection, number: str, owners: Sequence[str], *, limit: int = 200) -> list[str]:
    """SIDs of at most `limit` messages at rest to or from `number` in the accounts `owners`
    (`accounts_in_scope`), for `erase_messages`. Two probes of an index per account: a caller
    reads them in a read transaction, which holds no writer up."""
    sids: list[str] = []
    for owner in owners:
        sids += _messages_of(conn, owner, number, at_rest=True, limit=limit - len(sids))
        if len(sids) >= limit:
            break
    return sids


def erase_messages(conn: Connection, sids: Sequence[str], *, record: int | None = None) -> int:
    """Remove the messages `sids` (found by `messages_at_rest`) that are still at rest once
    locked (`lock_settled`), with what hangs off them and the alerts about them; returns how
    many went. One changed since it was found stays, for a later run. With `record` (an
    erasure's, `erasure_log.begin`), those that go are noted in it, in the same transaction."""
    sids = lock_settled(conn, sids)
    if not sids:
        return 0
    if record is not None:
        erasure_log.note_messages(conn, record, sids)
    conn.execute(alerts.delete().where(alerts.c.resource_sid.in_(sids)))
    # A reply's text is in the answer to the webhook of the message it answers, which stays
    # when that one is not the erased number's (a reply can go to another number).
    kept = [sid for sid in answered_messages(conn, sids) if sid not in set(sids)]
    replace_answers(conn, kept, "[removed when a message it held was erased]")
    conn.execute(opt_outs.update().where(opt_outs.c.inbound_message_sid.in_(sids)).values(inbound_message_sid=None))
    return remove_messages(conn, sids)


def requests_naming(
    conn: Connection, number: str, *, account: str | None = None, after: int = 0, limit: int = 1000
) -> list[int]:
    """Ids of the request log's entries naming `number`, in id order after `after`. The log
    has no index that finds a number on its own (`from_` has none), so a caller reads it in
    steps of `limit` ids, each in a read transaction that holds no writer up."""
    owners = None if account is None else accounts_in_scope(conn, account)
    q = sa.select(r.id).where(r.id > after, _requests(number, owners)).order_by(r.id).limit(limit)
    return list(conn.execute(q).scalars())


def remove_requests(conn: Connection, ids: Sequence[int]) -> int:
    return int(conn.execute(request_log.delete().where(r.id.in_(ids))).rowcount) if ids else 0


def erase_unroutable(conn: Connection, number: str, *, account: str | None = None) -> int:
    """Remove the inbound messages `number` sent that no account took: all of them, or with
    `account`, those sent to its numbers or its subaccounts' (`_unroutable`)."""
    owners = None if account is None else accounts_in_scope(conn, account)
    return int(conn.execute(unroutable_inbound.delete().where(_unroutable(number, owners))).rowcount)
