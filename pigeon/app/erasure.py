"""Erasing what Pigeon holds about one phone number (pigeon/store/erasure.py), in short
transactions: a person's history can be long, and the traffic goes on meanwhile."""

from __future__ import annotations

import re
from typing import Any

from pigeon.domain import numbers
from pigeon.ports import Clock
from pigeon.store import erasure, erasure_log
from pigeon.store.engine import Database

#: A number as a carrier sent it, kept so: digits only, as many as an SMPP address holds. An
#: SMSC's national numbers (07700900123) are stored as they came (carriers/smpp.py `_address`).
_AS_RECEIVED = re.compile(r"[0-9]{3,20}")


def number_of(raw: str) -> str:
    """The number as the store keeps it: E.164 (written any way `numbers.to_e164` reads it),
    a short code, or digits as a carrier sent them (a national number, perhaps starting with
    0), matched as written. `ValueError` for anything else: erasing under a misread number
    would erase nothing and say so quietly."""
    text = raw.strip()
    if text.startswith("+"):
        e164 = numbers.to_e164(text)
        if e164 is not None:
            return e164
    elif _AS_RECEIVED.fullmatch(text):
        return text
    raise ValueError(
        f"{raw!r} is not a phone number in E.164 form (+14155552671), a short code, or digits as a"
        " carrier sent them (07700900123)"
    )


def as_written(number: str) -> bool:
    """Whether `number_of` gave `number` as it was written, neither E.164 nor a short code."""
    return not number.startswith("+") and not numbers.is_short_code(number)


def survey(db: Database, number: str, *, account: str | None = None) -> erasure.Found:
    with db.read() as conn:
        return erasure.find(conn, number, account=account)


def records(db: Database, *, account: str | None = None) -> list[dict[str, Any]]:
    """The erasures on record, newest first (`erasure_log.listing`): with `account`, those
    that covered it."""
    with db.read() as conn:
        return erasure_log.listing(conn, account_sid=account)


def erase(
    db: Database,
    number: str,
    *,
    clock: Clock,
    account: str | None = None,
    by: str | None = None,
    chunk: int = 200,
    log_step: int = 1000,
) -> dict[str, Any]:
    """Remove it all (what `survey` counts as erased), `chunk` messages or `log_step` request
    log entries or alerts per transaction; returns how much went of each. The alerts go
    first: those about its messages that name it are then counted among them.

    The erasure is on record (pigeon/store/erasure_log.py) before anything goes, and each
    removal is noted in the transaction that makes it; `by` says who ran it. One cut short
    stays on record, unfinished (the doctor says so), and running it again finishes it."""
    with db.write() as conn:
        record = erasure_log.begin(conn, number, account=account, at=clock.now(), by=by)
    alerts = _erase_alerts(db, number, account=account, step=log_step, record=record)
    removed = _erase_messages(db, number, account=account, chunk=chunk, record=record)
    requests = _erase_requests(db, number, account=account, step=log_step, record=record)
    with db.write() as conn:
        unroutable = erasure.erase_unroutable(conn, number, account=account)
        erasure_log.add(conn, record, unroutable=unroutable)
        kept = erasure.in_progress(conn, number, erasure.accounts_in_scope(conn, account))
        erasure_log.finish(conn, record, at=clock.now(), kept_in_progress=kept)
    return {"messages": removed, "requests": requests, "unroutable": unroutable, "alerts": alerts}


def _erase_alerts(db: Database, number: str, *, account: str | None, step: int, record: int) -> int:
    removed, after = 0, ""
    while True:  # found in reads, removed by SID: the writer is held only for the removal
        with db.read() as conn:
            named, last = erasure.alerts_naming(conn, number, account=account, after=after, limit=step)
        if named:
            with db.write() as conn:
                n = erasure.remove_alerts(conn, named)
                erasure_log.add(conn, record, alerts=n)
            removed += n
        if last is None:
            return removed
        after = last


def _erase_messages(db: Database, number: str, *, account: str | None, chunk: int, record: int) -> int:
    removed = 0
    with db.read() as conn:
        owners = erasure.accounts_in_scope(conn, account)
    while True:  # found in reads; locked, checked again and removed by SID in short writes
        with db.read() as conn:
            sids = erasure.messages_at_rest(conn, number, owners, limit=chunk)
        if not sids:
            return removed
        with db.write() as conn:
            n = erasure.erase_messages(conn, sids, record=record)
        removed += n
        # Fewer found than asked for: that was the last of them. None removed: those left are
        # changing under us (a later run takes them), and would be found again and again.
        if len(sids) < chunk or n == 0:
            return removed


def _erase_requests(db: Database, number: str, *, account: str | None, step: int, record: int) -> int:
    removed, last = 0, 0
    while True:  # found in reads, removed by id: the writer is held only for the removal
        with db.read() as conn:
            ids = erasure.requests_naming(conn, number, account=account, after=last, limit=step)
        if not ids:
            return removed
        with db.write() as conn:
            n = erasure.remove_requests(conn, ids)
            erasure_log.add(conn, record, requests=n)
        removed += n
        last = ids[-1]
