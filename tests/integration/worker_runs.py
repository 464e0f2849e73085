"""Running a webhook worker for a test: how many requests went out while its records waited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pigeon.testing import RecordingWebhookSender
from pigeon.workers.webhooks import WebhookWorker


def sent_while_recording(
    worker: WebhookWorker,
    sender: RecordingWebhookSender,
    *,
    recorded: Callable[[], bool],
    total: int,
    after: float = 0.3,
    timeout: float = 20.0,
) -> int:
    """Run `worker` until `sender` has `total` requests (or `timeout`), then stop it; how many
    requests had gone out `after` seconds in, when no outcome may have been `recorded` yet."""
    sent: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(after)
        sent.append(len(sender.requests))
        assert not recorded(), "an outcome was recorded before the sample: make the records slower"
        deadline = time.monotonic() + timeout
        while len(sender.requests) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout)

    asyncio.run(main())
    return sent[0]
