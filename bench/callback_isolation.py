"""How much one receiver that hangs delays everyone else's status callbacks.

A receiver that accepts connections and never answers (a load balancer in front of nothing is
the common case) holds each request for the whole timeout (15 s). This script starts `pigeon
serve` (one process, pacing raised), a receiver that hangs and one that answers 204 at once;
it sends --slow messages whose StatusCallback is the hanging receiver, then --fast messages
to the answering one, and prints how long after their POSTs the fast messages' callbacks
(three each) arrived: the time for the first, the median and the last.

With isolation between receivers, the fast callbacks arrive within a second or two whatever
--slow is; without it they wait behind the slow receiver's attempts.

    .venv/bin/python bench/callback_isolation.py --backend sqlite --slow 300 --fast 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from base64 import b64encode
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Server, bench_env, free_port, provision, store, workdir, write_config


class Receivers:
    """Two local HTTP receivers on a loop of their own: `fast` answers 204 at once and
    records when each request arrived; `hang` reads the request and never answers."""

    def __init__(self) -> None:
        self.fast_port, self.hang_port = free_port(), free_port()
        self.arrivals: list[float] = []
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(asyncio.start_server(self._answer, "127.0.0.1", self.fast_port))
        self._loop.run_until_complete(asyncio.start_server(self._hang, "127.0.0.1", self.hang_port))
        ready.set()
        self._loop.run_forever()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.arrivals.append(time.time())
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _hang(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)


def send(base: str, account: str, token: str, sender: str, to: str, callback: str) -> None:
    data = urllib.parse.urlencode({"To": to, "From": sender, "Body": "isolation", "StatusCallback": callback})
    request = urllib.request.Request(
        f"{base}/2010-04-01/Accounts/{account}/Messages.json",
        data=data.encode(),
        headers={"Authorization": "Basic " + b64encode(f"{account}:{token}".encode()).decode()},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--slow", type=int, default=300, help="messages whose callbacks go to the hanging receiver")
    p.add_argument("--fast", type=int, default=20, help="messages whose callbacks go to the answering one")
    p.add_argument("--max-wait", type=float, default=120.0, help="longest wait for the fast callbacks, s")
    args = p.parse_args()
    receivers = Receivers()
    with workdir() as work, store(args.backend, work) as url:
        port = free_port()
        env = bench_env(url, port, write_config(work / "pigeon.toml", 1000.0))
        tenant = provision(env, 2)
        server = Server(env, work / "serve.log")
        try:
            base = f"http://127.0.0.1:{port}"
            slow_url = f"http://127.0.0.1:{receivers.hang_port}/cb"
            fast_url = f"http://127.0.0.1:{receivers.fast_port}/cb"
            for i in range(args.slow):
                send(base, tenant.account_sid, tenant.auth_token, tenant.senders[0], f"+1415556{i:04d}", slow_url)
            time.sleep(1.0)  # the slow receiver's callbacks are now due, or in flight
            started = time.time()
            for i in range(args.fast):
                send(base, tenant.account_sid, tenant.auth_token, tenant.senders[1], f"+1415557{i:04d}", fast_url)
            wanted = 3 * args.fast
            while len(receivers.arrivals) < wanted and time.time() - started < args.max_wait:
                time.sleep(0.1)
            waits = sorted(t - started for t in receivers.arrivals[:wanted])
        finally:
            server.stop()
    print(f"callback isolation  {args.backend}  {args.slow} messages to a receiver that hangs, then {args.fast}")
    if not waits:
        print(f"  no callback reached the answering receiver within {args.max_wait:g} s")
        return
    print(
        f"  callbacks to the answering receiver: {len(waits)}/{wanted}; after their POSTs: first "
        f"{waits[0]:.1f} s, median {statistics.median(waits):.1f} s, last {waits[-1]:.1f} s"
    )


if __name__ == "__main__":
    main()
