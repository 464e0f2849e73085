"""Running a webhook worker for a test: until its sender has had so many requests, and how many
had gone out while its records waited."""

from __future__ import annotations

import asyncio
import threading
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
    hold: threading.Event,
    recorded: Callable[[], bool],
    total: int,
    expect: int,
    settle: float = 0.3,
    timeout: float = 20.0,
) -> int:
    """`run_until_sent` with the outcomes' records held back until `hold` is set (the test's
    slow writer waits for it): how many requests had gone out once `expect` had (or `timeout`
    passed) and `settle` seconds more showed whether any more would. Waiting for the count, not
    for a fixed time, keeps the test's answer the same on a machine busy with other work."""
    sent: list[int] = []

    async def sample() -> None:
        deadline = time.monotonic() + timeout
        while len(sender.requests) < expect and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(settle)
        sent.append(len(sender.requests))
        assert not recorded(), "an outcome was recorded while the records were held"
        hold.set()

    asyncio.run(_run(worker, sender, total=total, timeout=timeout, stop_within=timeout, meanwhile=sample))
    return sent[0]
