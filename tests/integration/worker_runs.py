"""Running a webhook worker for a test: until its sender has had so many requests, and how many
had gone out while its records waited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker


async def _run(
    worker: WebhookWorker,
    sender: RecordingWebhookSender,
    *,
    total: int,
    timeout: float,
    stop_within: float,
    meanwhile: Callable[[], Awaitable[None]] | None = None,
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    if meanwhile is not None:
        await meanwhile()
    deadline = time.monotonic() + timeout
    while len(sender.requests) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, stop_within)


def run_until_sent(
    worker: WebhookWorker,
    sender: RecordingWebhookSender,
    *,
    total: int,
    timeout: float = 10.0,
    stop_within: float = 10.0,
) -> None:
    """Run `worker` until `sender` has `total` requests (or `timeout`), then stop it, which it
    must do within `stop_within` seconds."""
    asyncio.run(_run(worker, sender, total=total, timeout=timeout, stop_within=stop_within))


def sent_while_recording(
    worker: WebhookWorker,
    sender: RecordingWebhookSender,
    *,
    recorded: Callable[[], bool],
    total: int,
    after: float = 0.3,
    timeout: float = 20.0,
) -> int:
    """`run_until_sent`, and how many requests had gone out `after` seconds in, when no outcome
    may have been `recorded` yet."""
    sent: list[int] = []

    async def sample() -> None:
        await asyncio.sleep(after)
        sent.append(len(sender.requests))
        assert not recorded(), "an outcome was recorded before the sample: make the records slower"

    asyncio.run(_run(worker, sender, total=total, timeout=timeout, stop_within=timeout, meanwhile=sample))
    return sent[0]
