"""Prometheus figures of the HTTP requests an API process answers: how many, by route, method
and status, and how long they took. What an operator alerts on: a rising share of 5xx (the
store in trouble), 429s (a client held back), and the latency of sends.

Routes are the application's own path templates (``/2010-04-01/Accounts/{account_sid}/
Messages.json``), never the raw path: SIDs in paths would make a series per message, and a
client asking for made-up paths could make as many series as it liked. A request no route
matched counts as ``unmatched``. Each request is counted once, by the process that took it
from its client: a scrape another API process relays to the first is not counted again there.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Upper bounds of the latency buckets, in seconds: a send takes a few milliseconds (its group
#: commit); an export or a doctor's search may take seconds.
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "pigeon_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "pigeon_api_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=BUCKETS,
            registry=registry,
        )

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        found = scope.get("route")
        path = getattr(found, "path", None)
        route = f"{scope.get('root_path', '')}{path}" if path is not None else "unmatched"
        self.requests.labels(route, scope["method"], str(status)).inc()
        self.duration.labels(route).observe(seconds)


class RequestMetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI, as the request log's middleware)."""

    def __init__(self, app: ASGIApp, *, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _relayed(scope):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what Starlette answers for an exception that escapes every handler

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)


def _relayed(scope: Scope) -> bool:
    """A request that reached this process over a Unix socket: the only one the API is served
    on is the first process's private socket, over which the other API processes of
    `pigeon serve --api-processes N` relay the scrapes they take (pigeon/serving.py). Such a
    scrape is counted by the process that took it, and was counted twice."""
    server = scope.get("server")  # uvicorn: (the socket's path, None) for a Unix socket
    return server is not None and server[1] is None and str(server[0]).startswith("/")
