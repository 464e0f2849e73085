"""The record of each erasure (`pigeon erase NUMBER --yes`, pigeon/store/erasure.py): when it
ran, who ran it, which accounts it covered, how much went, and which messages, without the
number or the messages themselves (tables `erasures`, `erased_messages`).

The number and the SIDs are kept as keyed fingerprints (pigeon.domain.erasure). A SID alone
is a random identifier, but it begins with the millisecond its message was made: kept plain
beside the number's fingerprint, the SIDs would keep when the person texted and was texted,
which is the history the erasure removed. Their fingerprints answer whoever asks with a SID
in hand (the doctor), and tell nobody else anything.

`listing` is the operator's view of the records (`pigeon erase --list`): their times,
scope, who ran them and their counts, never a fingerprint.

The record is kept for ever: it is the evidence that the request was carried out, and the
retention (pigeon/store/retention.py) leaves it alone. Erasures are rare, and so is the
record's growth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pigeon.domain.erasure import Kind, erasure_key, fingerprint
from pigeon.store.settings import content_key
from pigeon.store.tables import accounts, erased_messages, erasures, messages

e = erasures.c
x = erased_messages.c


def _fingerprint(conn: Connection, kind: Kind, value: str) -> str:
    return fingerprint(erasure_key(content_key(conn)), kind, value)


def _scope(account: str | None) -> sa.ColumnElement[bool]:
    return e.account_sid.is_(None) if account is None else e.account_sid == account


def begin(conn: Connection, number: str, *, account: str | None, at: datetime, by: str | None) -> int:
    """Record an erasure of `number` (as the store keeps it) starting `at`, before anything
    goes, so that one cut short is on record too; returns its id. An erasure of the same
    number and accounts that never finished is taken up again rather than recorded twice:
    running it again is how it is finished."""
    number_fingerprint = _fingerprint(conn, "number", number)
    unfinished = sa.select(e.id).where(
        e.number_fingerprint == number_fingerprint, _scope(account), e.finished_at.is_(None)
    )
    found = conn.execute(unfinished.order_by(e.id.desc()).limit(1)).scalar_one_or_none()
    if found is not None:
        return int(found)
    values = {
        "number_fingerprint": number_fingerprint,
        "account_sid": account,
        "started_at": at,
        "erased_by": by[:255] if by else None,
    }
    return int(conn.execute(erasures.insert().values(values).returning(e.id)).scalar_one())


def add(conn: Connection, erasure: int, **counts: int) -> None:
    """Count what the erasure removed (messages, requests, alerts, unroutable: the columns of
    `erasures`), in the transaction that removes it: the counts of one cut short are right as
    far as it got."""
    if any(counts.values()):
        conn.execute(erasures.update().where(e.id == erasure).values({name: e[name] + n for name, n in counts.items()}))


def note_messages(conn: Connection, erasure: int, sids: Sequence[str]) -> None:
    """Record that the erasure removes the messages `sids`, in the transaction that removes
    them and before they go (their accounts are read from them)."""
    if not sids:
        return
    key = erasure_key(content_key(conn))
    owned = conn.execute(sa.select(messages.c.sid, messages.c.account_sid).where(messages.c.sid.in_(sids))).all()
    rows = [
        {"sid_fingerprint": fingerprint(key, "sid", sid), "erasure_id": erasure, "account_sid": a} for sid, a in owned
    ]
    if rows:
        conn.execute(erased_messages.insert(), rows)
        add(conn, erasure, messages=len(rows))


def finish(conn: Connection, erasure: int, *, at: datetime, kept_in_progress: int) -> None:
    """The erasure is done, at `at`, leaving `kept_in_progress` messages that were still on
    their way for a later run."""
    conn.execute(erasures.update().where(e.id == erasure).values(finished_at=at, kept_in_progress=kept_in_progress))


def _row(conn: Connection, erasure: sa.Row[Any], account_sid: str) -> dict[str, Any]:
    """An erasure as the doctor shows it to `account_sid`: its own messages that went, never
    the counts of the other accounts it covered."""
    mine = sa.select(sa.func.count()).where(x.erasure_id == erasure.id, x.account_sid == account_sid)
    return {
        "erasure_id": erasure.id,
        "started_at": erasure.started_at,
        "finished_at": erasure.finished_at,
        "erased_by": erasure.erased_by,
        "scope": erasure.account_sid,
        "messages": int(conn.execute(mine).scalar_one()),
    }


def _covering(account_sid: str) -> sa.ColumnElement[bool]:
    """Erasures that covered `account_sid`: of every account, of it, or of its parent (which
    takes its subaccounts, `pigeon.store.erasure.accounts_in_scope`)."""
    parent = sa.select(accounts.c.owner_account_sid).where(accounts.c.sid == account_sid).scalar_subquery()
    return sa.or_(e.account_sid.is_(None), e.account_sid == account_sid, e.account_sid == parent)


def of_number(conn: Connection, *, account_sid: str, number: str, limit: int = 5) -> list[dict[str, Any]]:
    """The newest erasures of `number` (as the store keeps it) that covered `account_sid`,
    newest first."""
    q = (
        sa.select(erasures)
        .where(e.number_fingerprint == _fingerprint(conn, "number", number), _covering(account_sid))
        .order_by(e.started_at.desc(), e.id.desc())
        .limit(limit)
    )
    return [_row(conn, r, account_sid) for r in conn.execute(q)]


def of_message(conn: Connection, *, account_sid: str, sid: str) -> dict[str, Any] | None:
    """The erasure that removed the message `sid` of `account_sid`, if one did."""
    q = (
        sa.select(erasures)
        .join(erased_messages, x.erasure_id == e.id)
        .where(x.sid_fingerprint == _fingerprint(conn, "sid", sid), x.account_sid == account_sid)
    )
    found = conn.execute(q).first()
    return _row(conn, found, account_sid) if found is not None else None


#: What `listing` shows of an erasure: never its fingerprints, which an operator has no use for
#: and which, with the key in the store, let whoever holds a number in mind test it.
_LISTED = (
    e.id,
    e.started_at,
    e.finished_at,
    e.account_sid,
    e.erased_by,
    e.messages,
    e.requests,
    e.alerts,
    e.unroutable,
    e.kept_in_progress,
)


def listing(conn: Connection, *, account_sid: str | None = None) -> list[dict[str, Any]]:
    """Every erasure on record, newest first; with `account_sid`, those that covered it (run
    for it, for its parent or for every account), each with `account_messages`: how many of
    the messages it removed were that account's."""
    q = sa.select(*_LISTED).order_by(e.id.desc())
    if account_sid is None:
        return [dict(r) for r in conn.execute(q).mappings()]
    mine = (
        sa.select(sa.func.count())
        .where(x.erasure_id == e.id, x.account_sid == account_sid)
        .correlate(erasures)
        .scalar_subquery()
    )
    q = q.add_columns(mine.label("account_messages")).where(_covering(account_sid))
    return [dict(r) for r in conn.execute(q).mappings()]
