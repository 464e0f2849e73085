"""The HTTP application: Twilio's REST paths, /healthz, and the error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pigeon.api import (
    accounts,
    auth_tokens,
    available_numbers,
    debugger,
    doctor,
    keys,
    lookups,
    messages,
    numbers,
    optouts,
    services,
    short_codes,
    simulator,
    usage,
    usage_triggers,
)
from pigeon.api import alerts as alert_log
from pigeon.api import events as event_streams
from pigeon.api.body_limit import BodyLimitMiddleware
from pigeon.api.concurrency import ConcurrencyMiddleware
from pigeon.api.context import ApiContext, in_thread
from pigeon.api.errors import EXCEPTION_HANDLERS
from pigeon.api.request_log import RequestLogMiddleware
from pigeon.api.request_metrics import RequestMetrics, RequestMetricsMiddleware
from pigeon.api.text_guard import TextGuardMiddleware
from pigeon.console.routes import create_console
from pigeon.store.request_log import RequestLogWriter


async def healthz(request: Request) -> Response:
    c: ApiContext = request.app.state.ctx
    ok = await in_thread(c.db.ping)
    return JSONResponse({"status": "ok" if ok else "store unreachable"}, status_code=200 if ok else 503)


async def console_root(request: Request) -> Response:
    """/console, the console's address in the README, is its mount's /console/ (a path, not
    a URL made from the Host header)."""
    return RedirectResponse(request.scope.get("root_path", "") + "/console/", status_code=303)


def create_app(
    context: ApiContext,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    request_log: RequestLogWriter | None = None,
    request_log_days: float = 30,
    proxy_hops: int = 0,
    metrics: RequestMetrics | None = None,
) -> Starlette:
    """`request_log_days`: how long the request log keeps a request (0 keeps it forever);
    `proxy_hops`: the reverse proxies in front that append to X-Forwarded-For (0: none, the
    header is ignored). `request_log` replaces the default writer (tests). `metrics`: where the
    requests are counted and timed (GET /metrics), if anywhere."""
    log_writer = request_log or RequestLogWriter(
        context.db.engine, retention=timedelta(days=request_log_days) if request_log_days > 0 else None
    )

    @contextlib.asynccontextmanager
    async def default_lifespan(app: Starlette) -> AsyncIterator[None]:
        context.writer.start()
        try:
            yield
        finally:
            context.writer.stop()

    inner_lifespan = lifespan or default_lifespan

    @contextlib.asynccontextmanager
    async def with_request_log(app: Starlette) -> AsyncIterator[None]:
        log_writer.start()
        try:
            async with inner_lifespan(app):
                yield
        finally:
            log_writer.stop()

    app = Starlette(
        routes=[
            # Starlette tries the routes in order, a regular expression each, until one
            # matches: sends, most of the traffic, match at the first try. No other route
            # matches their path, so the order changes nothing else.
            messages.create_route,
            Route("/healthz", healthz, methods=["GET"]),
            Route("/console", console_root, methods=["GET"]),
            *accounts.routes,
            *keys.routes,
            *debugger.routes,  # before messages: Messages/Export.json is not a message SID
            *alert_log.routes,
            *messages.routes,
            *numbers.routes,
            *optouts.routes,
            *simulator.routes,
            *services.routes,
            *available_numbers.routes,
            *short_codes.routes,
            *doctor.routes,
            *event_streams.routes,
            *usage.routes,
            *usage_triggers.routes,
            *auth_tokens.routes,
            *lookups.routes,
            Mount(
                "/console",
                app=create_console(
                    db=context.db,
                    clock=context.clock,
                    base_url=context.base_url,
                    message_days=context.message_days,
                    denied_networks=context.webhook_denied_networks,
                    prices=context.prices,
                ),
            ),
            *extra_routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            *([Middleware(RequestMetricsMiddleware, metrics=metrics)] if metrics is not None else []),
            Middleware(RequestLogMiddleware, writer=log_writer, clock=context.clock, proxy_hops=proxy_hops),
            Middleware(TextGuardMiddleware),
            Middleware(BodyLimitMiddleware),
            Middleware(ConcurrencyMiddleware, gate=context.concurrency),
        ],
        lifespan=with_request_log,
    )
    # No 307 from a trailing slash (Starlette's default): its Location came from the client's
    # Host header, always http://, before any authentication, so a client that follows it
    # sends its credentials where the Host said. Messages.json/ is a 404 like any unknown path.
    app.router.redirect_slashes = False
    app.state.ctx = context
    app.state.concurrency = context.concurrency
    app.state.request_log = log_writer
    return app
