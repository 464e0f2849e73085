"""The HTTP application: Twilio's REST paths, /healthz, and the error handlers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pigeon.api import accounts, messages, numbers, optouts, simulator
from pigeon.api.context import ApiContext, in_thread
from pigeon.api.errors import EXCEPTION_HANDLERS


async def healthz(request: Request) -> Response:
    c: ApiContext = request.app.state.ctx
    ok = await in_thread(c.db.ping)
    return JSONResponse({"status": "ok" if ok else "store unreachable"}, status_code=200 if ok else 503)


def create_app(
    context: ApiContext,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[Any]] | None = None,
) -> Starlette:
    @contextlib.asynccontextmanager
    async def default_lifespan(app: Starlette) -> AsyncIterator[None]:
        context.writer.start()
        try:
            yield
        finally:
            context.writer.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            *accounts.routes,
            *messages.routes,
            *numbers.routes,
            *optouts.routes,
            *simulator.routes,
            *extra_routes,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan or default_lifespan,
    )
    app.state.ctx = context
    return app
