"""Drive the Node SMSC (smsc.js, on the npm `smpp` package) from asyncio tests.

`ensure_node_modules` installs the pinned package once (``npm ci`` under a file lock, so
pytest-xdist workers do not race); `NodeSmsc.running()` starts one SMSC process per test and
talks to it over its JSON-lines control channel. Waits are on events, always bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund"]


def ensure_node_modules() -> None:
    """Install smsc.js's dependencies from package-lock.json unless they are there already."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("the SMPP interoperability tests need Node.js and npm on PATH")
    with open(Path(tempfile.gettempdir()) / "pigeon-smsc-npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (HERE / "node_modules" / "smpp" / "package.json").exists():
            return
        result = subprocess.run(NPM_CI, cwd=HERE, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"`{' '.join(NPM_CI)}` in {HERE} failed:\n{result.stdout}\n{result.stderr}")


class NodeSmsc:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.port = 0
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, *, tls: tuple[str, ...] = (), **options: Any) -> AsyncIterator[NodeSmsc]:
        """`tls`: (key, certificate[, client CA]) PEM files, for SMPP over TLS."""
        process = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "smsc.js"),
            "0",
            *(("--tls", *tls) if tls else ()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=HERE,
        )
        smsc = cls(process)
        try:
            listening = await smsc.wait_event(lambda e: e.get("event") == "listening", timeout=10)
            smsc.port = int(listening["port"])
            if options:
                await smsc.configure(**options)
            yield smsc
        finally:
            await smsc.close()

    async def close(self) -> None:
        if self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            message = json.loads(line)
            if "reply" in message:
                future = self._replies.pop(message["reply"], None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            async with self._changed:
                self.events.append(message)
                self._changed.notify_all()

    async def command(self, cmd: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        self.process.stdin.write((json.dumps({"id": ident, "cmd": cmd, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        reply = await asyncio.wait_for(future, 10)
        if "error" in reply:
            raise RuntimeError(f"SMSC refused {cmd}: {reply['error']}")
        return reply

    async def configure(self, **options: Any) -> dict[str, Any]:
        return await self.command("configure", **options)

    async def state(self) -> dict[str, Any]:
        return await self.command("state")

    async def wait_event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            async with self._changed:
                while True:
                    for event in self.events:
                        if predicate(event):
                            return event
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_count(self, predicate: Callable[[dict[str, Any]], bool], count: int, timeout: float = 10.0) -> None:
        async def reached() -> None:
            async with self._changed:
                while sum(1 for e in self.events if predicate(e)) < count:
                    await self._changed.wait()

        await asyncio.wait_for(reached(), timeout)

    def accepted(self) -> list[dict[str, Any]]:
        """submit_sm records the SMSC accepted (answered ESME_ROK), in arrival order."""
        return [e["record"] for e in self.events if e.get("event") == "submit" and e["record"]["status"] == 0]
