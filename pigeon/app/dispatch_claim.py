"""Claiming: due messages taken in one transaction, checked, paced and marked `sending`.

`claim` takes up to a batch of due messages (`store.dispatch.claim_due`: queued, accepted by a
Messaging Service, scheduled and now due, or left `sending` by a dispatcher whose lease ran
out) and, in the same transaction:

* fails the ones that must not go out any more: accepted for a sender whose queue was full
  (30001), of an account suspended or closed since (30002), to a country the account's geo
  permissions no longer allow (21408), past their validity period (30036), from a number
  that left their account after they were accepted (21606, `pigeon.app.sender_exit`), and to
  a recipient who opted out since (21610, `pigeon.app.dispatch_optouts`);
* chooses again, from its Messaging Service's pool as it is now, the sender of a scheduled
  message whose pool chose it at its create, or fails it when the pool has none for it now
  (21701, 21704, 21703; `pigeon.app.scheduled_senders`), before the checks above that
  concern the sender;
* moves the accepted and scheduled ones to queued;
* reserves each sender's next slot (`domain.pacing`: a number's, or one account's
  alphanumeric sender ID's, `queue_key`) and hands back the jobs due within the
  look-ahead, with what a held message's hold and a message's media need; later ones go back
  to the queue with their slot reserved. A sender whose pacing row another transaction has
  held for long (a dispatcher stuck inside its claim) is not waited for: its messages that
  need a slot go back to the queue for a few seconds (`pigeon.app.busy_senders`).

`mark_sending` then moves a group of jobs to `sending` just before its submit (one guarded
UPDATE per attempt number); only a message's first attempt has a `sending` status callback. If the dispatcher dies after that, its lease runs out and another
dispatcher resends the message; the timeline records the resend and why (a `resend` entry).
A message that dispatchers keep marking `sending` and never record fails with 30008 once the
retry policy's attempts are spent, rather than being sent again every lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app import accounts, dispatch_optouts, scheduled_senders, sender_exit
from pigeon.app.busy_senders import BusySenders, hold_back
from pigeon.app.callbacks import enqueue_status_callbacks
from pigeon.app.dispatch_jobs import DispatchSettings, Hold, Job, reclaimed
from pigeon.app.dispatch_refusals import fail
from pigeon.domain import geo, numbers
from pigeon.domain.pacing import queue_key, reserve
from pigeon.domain.status import MessageStatus
from pigeon.store import dispatch as store
from pigeon.store import message_batch, pacing
from pigeon.store import messages as message_store

__all__ = ["claim", "mark_sending"]

S = MessageStatus
Row = dict[str, Any]


#: A message sent without ValidityPeriod (and not through a Messaging Service, which has its
#: own) waits at most this long, Twilio's default: a queue that outlives it (a carrier down for
#: a day) fails the message with 30036 rather than texting the recipient a day late.
DEFAULT_VALIDITY_PERIOD = 36_000


def validity_of(row: Row) -> int:
    return int(row["validity_period"] or DEFAULT_VALIDITY_PERIOD)


def _waiting_for(row: Row, now: datetime) -> timedelta:
    """How long the message has waited to go out: since it was created, or, when scheduled,
    since its SendAt (it could not go out before)."""
    since: datetime = row.get("send_at") or row["date_created"]
    return now - since


def waited(row: Row, now: datetime) -> int:
    """`_waiting_for` in whole seconds, as the timeline reports it."""
    return int(_waiting_for(row, now).total_seconds())


def expired(row: Row, now: datetime) -> bool:
    """Whether the message has waited longer than its validity period."""
    return _waiting_for(row, now) > timedelta(seconds=validity_of(row))


def claim(
    conn: Connection, *, now: datetime, worker_id: str, settings: DispatchSettings, busy: BusySenders | None = None
) -> list[Job]:
    """One claim round; returns the jobs to submit within the look-ahead, in slot order.
    `busy`: the senders this dispatcher found busy before (`pigeon.app.busy_senders`)."""
    rows = store.claim_due(conn, now=now, limit=settings.batch, lease=settings.lease, worker_id=worker_id)
    if not rows:
        return []
    durations: dict[tuple[str, int], timedelta] = {}  # a sender's kind costs a number parse: once a round
    jobs: list[Job] = []
    horizon = now + settings.lookahead
    live = scheduled_senders.choose_at_send_at(conn, _fail_unsendable(conn, rows, now=now), now=now)
    checked = sender_exit.check_claimed(conn, live, now=now, worker_id=worker_id)
    live = dispatch_optouts.check_claimed(conn, checked.live, number_services=checked.services, now=now)
    # Each sender's queue and pace: a number's, or one account's alphanumeric sender ID's.
    # A keyword reply takes no slot (`_goes_at_once`), so it needs no pacing row.
    keys = {r["sid"]: queue_key(r["account_sid"], r["from_"] or "") for r in live if not _goes_at_once(r)}
    busy = busy if busy is not None else BusySenders()
    slots = pacing.lock_slots(conn, keys.values(), wait=settings.pacing_wait, no_wait=busy.at(now))
    busy.found(slots.waited, now=now, waited=settings.pacing_wait)
    live = hold_back(conn, live, keys, slots.busy, now=now, worker_id=worker_id)
    known = slots.free
    free = dict(known)
    queued = _queue_waiting(conn, [r for r in live if r["status"] in _NOT_YET_QUEUED], now=now)
    releases = []
    for row in live:
        if row["status"] in _NOT_YET_QUEUED:
            if row["sid"] not in queued:
                continue  # changed since the claim
            row = queued[row["sid"]]
        resend = None
        if row["status"] == S.SENDING:
            claimer = row.get("previous_claimer") or row["claimed_by"]
            if row["attempts"] >= settings.retry.max_attempts:
                _give_up_resending(conn, row, claimer, now=now)
                continue
            resend = (
                f"the dispatcher {claimer} marked it sending and stopped before recording the carrier's "
                "answer; the earlier submit may or may not have reached the carrier"
            )
        if _goes_at_once(row):
            slot = now
        elif row["paced_at"] is not None:
            slot = row["paced_at"]
        else:
            sender, queue = row["from_"] or "", keys[row["sid"]]
            key = (sender, row["num_segments"])
            if key not in durations:
                durations[key] = settings.pacing.duration(sender, row["num_segments"])
            slot, free[queue] = reserve(free.get(queue), now, durations[key])
        if slot > horizon:
            releases.append((row["sid"], slot))
            continue
        jobs.append(Job(message=row, slot=slot, resend_reason=resend))
    _read_holds_and_media(conn, jobs)
    store.release_paced(conn, releases)
    changed = {k: v for k, v in free.items() if known.get(k) != v}
    pacing.set_next_free(conn, changed, known=set(known))
    jobs.sort(key=lambda j: j.slot)
    return jobs


def _goes_at_once(row: Row) -> bool:
    """Whether the message goes out as soon as it is claimed, outside its sender's pace: the
    automatic reply to STOP/START/HELP (``keyword_reply``). Twilio answers a keyword at once,
    apart from the customer's traffic (REFERENCE §f); paced with it, a STOP's confirmation
    waited behind the sender's whole queue, up to ten hours on a long code.

    It neither waits for the sender's next slot nor moves it on, so the queue keeps the slots
    it reserved. That is safe for the carriers' per-sender limits because of what a reply
    is: one short message per person who texted the number, so its volume follows the
    number's inbound traffic, never the customer's sending, and the sender goes past its pace
    by at most one message per keyword it received (a carrier that throttles it anyway answers
    ESME_RTHROTTLED, retried as any throttle is). It is due at its creation
    (``next_attempt_at``) as any message and claimed in the claim's own index order: nothing
    of the claim's query changes, and it reads no pacing row."""
    return bool(row.get("keyword_reply"))


def _read_holds_and_media(conn: Connection, jobs: Sequence[Job]) -> None:
    """What the few jobs that need it take along: a held message's hold and hand-over (its
    ``carrier`` column is set while it waits), a message's media and what may convert them."""
    held = [j for j in jobs if j.message.get("carrier")]
    if held:
        notes = store.retry_notes_of(conn, [j.message["sid"] for j in held])
        for job in held:
            note = notes.get(job.message["sid"]) or {}
            job.hold = Hold.from_detail(note["hold"]) if note.get("hold") else None
            job.continue_at = (note.get("hand_over") or {}).get("carrier")
    with_media = [j for j in jobs if j.message["num_media"]]
    if with_media:
        found = store.media_to_send(conn, [j.message["sid"] for j in with_media])
        for job in with_media:
            plan = found.get(job.message["sid"])
            if plan is not None:
                job.media, job.converts_media, job.sender_mms = tuple(plan.urls), plan.converts, plan.sender_mms


def _give_up_resending(conn: Connection, row: Row, claimer: str | None, *, now: datetime) -> None:
    """Fail (30008) a message that dispatchers keep marking sending and never record, rather
    than send it again: after as many attempts as the carrier retry policy allows, something
    about the message stops every dispatcher that takes it (a store write it always fails,
    say), and each resend may have reached the handset. Before, such a message was sent again
    every lease, for ever."""
    attempts = row["attempts"]
    fail(
        conn,
        row,
        now=now,
        code=30008,
        kind="resend_limit",
        detail={"attempts": attempts, "last_dispatcher": claimer},
        text=f"Message {row['sid']} was not sent again: dispatchers marked it sending {attempts} times and "
        f"stopped each time before recording the carrier's answer (the last: {claimer}). The earlier "
        "submits may have reached the handset; the workers' log says what stopped them.",
    )


def _fail_unsendable(conn: Connection, rows: Sequence[Row], *, now: datetime) -> list[Row]:
    """Fail the claimed messages that must not go out any more: those of an account suspended or
    closed since they were accepted (30002; the API refuses its new sends with 20005), those to
    a country that the account's geo permissions no longer allow (21408, as the API refuses new
    ones: an operator who stops SMS pumping stops what is queued too), and those past their
    validity period (30036); and those a Messaging Service accepted for a sender whose queue was
    full (30001, decided at the create: `fail_code`). Returns the others."""
    restricted = store.restricted_accounts(conn, (r["account_sid"] for r in rows))
    live = []
    for row in rows:
        account = restricted.get(row["account_sid"])
        if row.get("fail_code") == 30001:
            fail(
                conn,
                row,
                now=now,
                code=30001,
                kind="queue_overflow",
                detail={"sender": row["from_"]},
                text=f"Message {row['sid']} was not sent: the queue of {row['from_']} already held ten hours of "
                "its traffic when the message was accepted.",
                fail_code=None,
            )
        elif account is not None and (status := accounts.standing(account)) != "active":
            own = account["status"] == status
            fail(
                conn,
                row,
                now=now,
                code=30002,
                kind="account_inactive",
                detail={
                    "account_status": status,
                    **({} if own else {"main_account_sid": account["owner_account_sid"]}),
                },
                text=f"Message {row['sid']} was not sent: its account {row['account_sid']} is {status}."
                if own
                else f"Message {row['sid']} was not sent: the main account {account['owner_account_sid']} "
                f"of its account {row['account_sid']} is {status}.",
            )
        elif account is not None and (refused := _geo_refusal(account, row["to"])) is not None:
            country, allowed, problem = refused
            fail(
                conn,
                row,
                now=now,
                code=21408,
                kind="geo_not_permitted",
                detail={"country": country, "allowed_countries": sorted(allowed)},
                text=f"Message {row['sid']} was not sent: {problem}",
            )
        elif expired(row, now):
            age, validity = waited(row, now), validity_of(row)
            fail(
                conn,
                row,
                now=now,
                code=30036,
                kind="expired",
                detail={"validity_period": validity, "waited_seconds": age},
                text=f"Message {row['sid']} waited {age} s in the queue, longer than its validity period of "
                f"{validity} s, and was not sent.",
            )
        else:
            live.append(row)
    return live


def _geo_refusal(account: Row, to: str) -> tuple[str | None, frozenset[str], str] | None:
    """(the country of `to`, the countries allowed, why) when `account`'s geo permissions, as
    they are now, leave `to` out; else None."""
    allowed = geo.effective(account["allowed_countries"], account["parent_allowed_countries"])
    if allowed is None:
        return None
    country = numbers.region_of(to)
    problem = geo.refusal(to, country, allowed)
    return None if problem is None else (country, allowed, problem)


#: Claimed before they are queued: accepted by a Messaging Service, or scheduled and now due.
_NOT_YET_QUEUED = frozenset({S.ACCEPTED, S.SCHEDULED})


def _queue_waiting(conn: Connection, rows: Sequence[Row], *, now: datetime) -> dict[str, Row]:
    """Move messages a Messaging Service accepted, and scheduled messages whose time has come,
    to queued (one guarded UPDATE: a scheduled message canceled since the claim stays canceled),
    with their timeline entries and callbacks; returns the moved rows by SID."""
    moved = message_batch.transition_many(conn, [r["sid"] for r in rows], S.QUEUED, at=now)
    order = [moved[r["sid"]] for r in rows if r["sid"] in moved]
    message_batch.add_events(
        conn,
        [
            message_batch.event(
                message_sid=r["sid"],
                account_sid=r["account_sid"],
                at=now,
                kind="status",
                status=str(S.QUEUED),
                detail={"sender": r["from_"]},
            )
            for r in order
        ],
    )
    enqueue_status_callbacks(conn, [(r, None) for r in order], now=now)
    return moved


def mark_sending(conn: Connection, jobs: Sequence[Job], *, now: datetime) -> list[Job]:
    """Record that these jobs are about to be submitted: one guarded UPDATE (queued -> sending)
    per attempt number, their timeline entries and callbacks. Returns the jobs still ours.

    A job with a ``resend_reason`` may put the message on the network a second time: its
    entry is a `resend` with that reason instead of a `status` one (a job reclaimed from a
    dead dispatcher is already `sending` and only gets the entry)."""
    by_attempt: dict[int, list[str]] = {}
    for job in jobs:
        if not reclaimed(job):
            by_attempt.setdefault(job.message["attempts"] + 1, []).append(job.message["sid"])
    moved: dict[str, Row] = {}
    for attempt, sids in by_attempt.items():
        # Its pacing slot is used now: a dispatcher that reclaims it reserves a new one.
        moved |= message_batch.transition_many(
            conn, sids, S.SENDING, at=now, from_statuses=[S.QUEUED], attempts=attempt, paced_at=None
        )
    ready = []
    entries = []
    for job in jobs:
        row = job.message
        attempt = row["attempts"] + 1
        detail: dict[str, Any] = {"attempt": attempt}
        if job.hold is not None:
            detail |= {"carrier": job.hold.carrier, "from_part": job.hold.next_part, "parts": job.hold.parts}
        if job.resend_reason is not None:
            detail["reason"] = job.resend_reason
        if not reclaimed(job):
            if row["sid"] not in moved:
                continue  # canceled or changed since the claim
            job.message = moved[row["sid"]]
            entries.append(
                message_batch.event(
                    message_sid=row["sid"],
                    account_sid=row["account_sid"],
                    at=now,
                    kind="status" if job.resend_reason is None else "resend",
                    status=str(S.SENDING),
                    detail=detail,
                )
            )
            ready.append(job)
            continue
        message_store.add_event(
            conn,
            message_sid=row["sid"],
            account_sid=row["account_sid"],
            at=now,
            kind="resend",
            status=str(S.SENDING),
            detail=detail,
        )
        message_store.update_fields(conn, row["sid"], attempts=attempt, date_updated=now, paced_at=None)
        row["attempts"] = attempt
        ready.append(job)
    message_batch.add_events(conn, entries)
    # One `sending` callback per message, on its first move to sending: a retry after a
    # refusal, a hand-over to another process or a resend after a crash moves it again (or
    # takes it over as it is), and a receiver told `sending` once more with a new idempotency
    # token could not tell it from news. The moved row's attempt number says which is first.
    first = [(j.message, None) for j in ready if j.message["sid"] in moved and j.message["attempts"] == 1]
    enqueue_status_callbacks(conn, first, now=now)
    return ready
