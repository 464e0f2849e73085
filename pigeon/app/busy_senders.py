"""Senders whose pacing row another transaction holds: their messages wait, the others go.

A claim reserves each sender's next slot with the sender's pacing row held (`store.pacing`).
A row held by another transaction for longer than any claim takes
(`DispatchSettings.pacing_wait`) is most likely held by a dispatcher stuck inside its claim
(cut off from the server, stopped, paused) until the server ends its session. Before, every
claim that met that sender's messages waited behind it, holding what it had claimed, and
sending stopped for every sender. Now the claim does not wait; the sender is *busy*:

* the claimed messages of a busy sender that need a slot go back to the queue as they were,
  due again in `RETRY`: not sent unpaced (no slot could be reserved for them), and not sent
  twice (nothing of them changed, and the stuck claim's own messages stay locked, which every
  claim skips). A message whose slot an earlier claim reserved (``paced_at``) needs no row,
  and goes at its slot;
* for `NO_WAIT` after, this dispatcher does not wait for that sender's row again: it takes
  it only if it is free. Otherwise each round that met the sender's messages would wait
  again, and with a backlog from that sender at the head of the queue every round would.

The messages put back are the ones due first, so the rounds that come before `RETRY` is over
claim the other senders' messages behind them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.store import dispatch as store

__all__ = ["NO_WAIT", "RETRY", "BusySenders", "hold_back"]

log = logging.getLogger(__name__)

Row = dict[str, Any]

#: How long the messages of a busy sender wait before a claim may take them again.
RETRY = timedelta(seconds=5)
#: How long a dispatcher does not wait for the pacing row of a sender it found busy.
NO_WAIT = timedelta(seconds=60)


class BusySenders:
    """The senders (pacing keys) one dispatcher found busy, each until when it does not wait
    for their rows. Its claims take turns (`DispatchRound.run_once`): one at a time uses it."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def at(self, now: datetime) -> frozenset[str]:
        """Those not to wait for now."""
        self._until = {s: until for s, until in self._until.items() if until > now}
        return frozenset(self._until)

    def found(self, senders: Collection[str], *, now: datetime, waited: timedelta) -> None:
        """`senders` stayed busy while a claim `waited` for their rows."""
        if not senders:
            return
        log.warning(
            "senders' pacing rows stayed held by another transaction: their messages wait, the other senders' go "
            "(a worker stopped inside its claim holds them until the database ends its session)",
            extra={"senders": sorted(senders), "waited_seconds": waited.total_seconds()},
        )
        for sender in senders:
            self._until[sender] = now + NO_WAIT


def hold_back(
    conn: Connection,
    rows: Sequence[Row],
    keys: Mapping[str, str],
    busy: Collection[str],
    *,
    now: datetime,
    worker_id: str,
) -> list[Row]:
    """Put back, due in `RETRY`, the claimed `rows` whose sender (`keys`: message SID -> pacing
    key, for the messages that are paced) is `busy` and that need a slot; returns the others."""
    if not busy:
        return list(rows)
    back = [r for r in rows if keys.get(r["sid"]) in busy and r["paced_at"] is None]
    if back:
        store.put_back(conn, [(r["sid"], r.get("previous_claimer")) for r in back], worker_id=worker_id, at=now + RETRY)
        log.info(
            "claimed messages put back: another transaction holds their sender's pacing row",
            extra={"messages": len(back), "senders": len({keys[r["sid"]] for r in back})},
        )
    left = {r["sid"] for r in back}
    return [r for r in rows if r["sid"] not in left]
