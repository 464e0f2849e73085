"""Recording a group's answers through a store outage (`DispatchRound._send`).

Once a group's submits are answered, what the carriers took (their ids, the parts they hold,
their refusals) exists only in the dispatcher's memory until the record commits
(`pigeon.app.dispatch_record`). Dropped because the store was out of reach at that moment,
the answers left the messages `sending` until their lease ran out, and then a dispatcher
claimed them and submitted them again, each with a `resend` entry: an outage of three seconds
sent 12 of 20 messages in flight twice. So `record_through_outage` keeps the answers and
tries the record again until the store answers:

* Only `StoreUnavailable` is tried again: the store could not be reached, the connection was
  lost before the commit, SQLite was locked by another program past its busy timeout or had
  no room (`pigeon.store.engine`). In each case nothing was written, and the record may run
  again as it is. Any other error (a bug, a constraint) is raised at once, as before: another
  try would fail the same way for ever. A connection lost during the COMMIT is not
  `StoreUnavailable` either: whether the record took effect is unknown, and recording the
  answers a second time would make them copies accepted late.
* Tries come 0.2 s apart, doubling to 5 s. One warning says the store is out of reach when
  the record first fails, one line says when it went through; the tries between say nothing.
* Meanwhile the messages' lease is renewed every third of it, as while the submits were out,
  so that no other dispatcher takes them. A renewal needs the store too, so an outage longer
  than the lease may lose it: another dispatcher may then claim the messages and send them
  again. The record, when it goes through, follows the rules for a carrier answering after
  the lease (`pigeon.app.dispatch_record`): a message the other dispatcher sent keeps its
  status, and this copy its carrier ids in an ``accepted_late`` entry; a refusal changes
  nothing. One it has claimed and not yet recorded is sent by this record (this copy reached
  the carrier first), and the other's answer becomes the late copy.
* Receipts that come for these messages before the record are parked, as any receipt that
  overtakes its submit's answer, and the record applies them.
* Stopping (SIGTERM): the record is tried for `DispatchSettings.record_grace` more, then given
  up with an error naming how many messages may be submitted again: the process must end,
  and those messages go out again once their lease runs out, each with a `resend` entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pigeon.domain.errors import StoreUnavailable

__all__ = ["record_through_outage"]

log = logging.getLogger(__name__)

#: The pause after the first failed try, doubled after each until `MOST_PAUSE` (seconds).
FIRST_PAUSE = 0.2
MOST_PAUSE = 5.0


async def record_through_outage(
    record: Callable[[], object],
    renew: Callable[[], int | None],
    *,
    messages: int,
    renew_every: float,
    grace: float,
    stopping: asyncio.Event | None = None,
) -> bool:
    """Run `record` (blocking: in a thread) until it goes through (module docstring): True
    once it has, False when given up `grace` seconds after `stopping` was set. `renew`
    (blocking) renews the messages' lease every `renew_every` seconds meanwhile and says how
    many are still held (None: it failed too)."""
    loop = asyncio.get_running_loop()
    started = renewed = loop.time()
    failures = 0
    deadline: float | None = None
    lost = False
    try:
        while True:
            try:
                await asyncio.to_thread(record)
            except StoreUnavailable as exc:
                failures += 1
                if failures == 1:
                    log.warning(
                        "recording the carriers' answers failed: %s; they are kept, and the record is "
                        "tried again until the store answers",
                        exc,
                        extra={"messages": messages},
                    )
            else:
                if failures:
                    log.info(
                        "the carriers' answers were recorded once the store answered again",
                        extra={"messages": messages, "tries": failures + 1, "seconds": round(loop.time() - started, 1)},
                    )
                return True
            now = loop.time()
            if stopping is not None and stopping.is_set():
                deadline = now + grace if deadline is None else deadline
                if now >= deadline:
                    log.error(
                        "stopping with the store still out of reach: the carriers' answers for %d messages "
                        "were not recorded, and those messages may be submitted again once their lease runs out",
                        messages,
                        extra={"messages": messages, "tries": failures},
                    )
                    return False
            if now - renewed >= renew_every:
                renewed = now
                held = await asyncio.to_thread(renew)
                if held is not None and held < messages and not lost:
                    lost = True
                    log.warning(
                        "the lease of messages whose answers wait for the store ran out: another dispatcher "
                        "may send them again; their record will keep this copy as accepted late",
                        extra={"messages": messages - held},
                    )
            pause = min(MOST_PAUSE, FIRST_PAUSE * 2.0 ** (failures - 1))
            if deadline is not None:
                pause = min(pause, max(deadline - now, 0.0))
            await asyncio.sleep(pause)
    except asyncio.CancelledError:
        if failures:
            log.error(
                "cancelled while the store was out of reach: the carriers' answers for %d messages may not "
                "be recorded, and those messages may be submitted again once their lease runs out",
                messages,
                extra={"messages": messages},
            )
        raise
