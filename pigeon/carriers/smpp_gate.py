"""The one place a bind's submit_sm wait their turn: window, pacing, throttle pause, order.

aiosmpplib limits no window and resends no ESME_RTHROTTLED (DESIGN.md §6), and the gateways
users complain about either hide a 1 message/s throttle or flood a throttling SMSC. The gate
grants a turn to send one submit_sm when all of these hold:

* fewer than ``window`` submit_sm are awaiting their submit_sm_resp;
* ``1/throughput`` seconds have passed since the previous turn (no pacing when 0);
* the bind is not paused after an ESME_RTHROTTLED / ESME_RMSGQFUL;
* no earlier ticket is waiting.

Tickets are handed out when a part first asks to be sent and kept across throttle retries,
so a throttled part goes out again *before* every part that queued behind it: the SMSC sees
parts in the order the dispatcher submitted them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SendGate"]


class SendGate:
    def __init__(self, *, window: int, throughput: float, clock: Callable[[], float] = time.monotonic) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = window
        self.throughput = throughput
        self._clock = clock
        self._interval = 1.0 / throughput if throughput > 0 else 0.0
        self._tickets = itertools.count(1)
        self._queue: list[int] = []
        self._cond = asyncio.Condition()
        self._in_flight = 0
        self._next_at = 0.0
        self._paused_until = 0.0
        self._sent_at: deque[float] = deque(maxlen=10_000)
        self._notifiers: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def paused_for(self) -> float:
        """Seconds left of the current throttle pause (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    def recent_rate(self, seconds: float = 10.0) -> float:
        """Turns granted per second over the last ``seconds``."""
        cutoff = self._clock() - seconds
        while self._sent_at and self._sent_at[0] < cutoff:
            self._sent_at.popleft()
        return len(self._sent_at) / seconds

    def ticket(self) -> int:
        return next(self._tickets)

    async def enter(self, ticket: int) -> None:
        """Wait for ``ticket``'s turn; on return the caller holds one window slot (``leave`` frees it)."""
        heapq.heappush(self._queue, ticket)
        try:
            async with self._cond:
                while True:
                    delay = self._delay_for(ticket)
                    if delay == 0.0:
                        heapq.heappop(self._queue)
                        self._grant()
                        self._cond.notify_all()  # the next ticket may be allowed too (window > 1)
                        return
                    try:
                        await asyncio.wait_for(self._cond.wait(), delay)
                    except TimeoutError:
                        pass
        except BaseException:
            if ticket in self._queue:  # cancelled while waiting: let the tickets behind it go
                self._queue.remove(ticket)
                heapq.heapify(self._queue)
                await self._notify()
            raise

    def _delay_for(self, ticket: int) -> float | None:
        """0.0 when ``ticket`` may go now, seconds to wait, or None to wait for a notification."""
        if self._queue[0] != ticket or self._in_flight >= self.window:
            return None
        ready_at = max(self._next_at, self._paused_until)
        return max(0.0, ready_at - self._clock())

    def _grant(self) -> None:
        now = self._clock()
        self._in_flight += 1
        self._next_at = max(now, self._next_at) + self._interval if self._interval else now
        self._sent_at.append(now)

    def leave(self) -> None:
        """A submit_sm got its answer (or will never get one): free its window slot."""
        self._in_flight -= 1
        self._schedule_notify()

    def pause(self, seconds: float) -> None:
        """Hold every turn on this bind for ``seconds`` (extends, never shortens, a pause)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._schedule_notify()

    def _schedule_notify(self) -> None:
        # Called from synchronous code: wake the waiters on the next loop iteration. The task
        # is referenced until done: the event loop keeps only weak references to tasks.
        task = asyncio.get_running_loop().create_task(self._notify())
        self._notifiers.add(task)
        task.add_done_callback(self._notifiers.discard)

    async def _notify(self) -> None:
        async with self._cond:
            self._cond.notify_all()
