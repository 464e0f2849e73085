"""Requests of one account in progress at once (20429): the counter and its middleware, on a
small ASGI app whose handler waits until the test lets it finish."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.concurrency import AccountConcurrency, ConcurrencyMiddleware, admit
from pigeon.api.errors import EXCEPTION_HANDLERS
from pigeon.domain.errors import ApiError

A = "AC" + "a" * 32
B = "AC" + "b" * 32


def _app(gate: AccountConcurrency, release: asyncio.Event) -> Starlette:
    async def held(request: Request) -> Response:
        account = request.path_params["account"]
        admit(request, account)
        admit(request, account)  # a second check of the same request's credentials: one slot
        if request.query_params.get("fail"):
            raise RuntimeError("the handler broke")
        await release.wait()
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/{account}", held)],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(ConcurrencyMiddleware, gate=gate)],
    )
    app.state.concurrency = gate
    return app


async def _until(condition: object, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


def test_an_account_past_its_limit_is_refused_with_20429_and_others_are_not() -> None:
    async def run() -> None:
        gate, release = AccountConcurrency(2), asyncio.Event()
        transport = httpx.ASGITransport(app=_app(gate, release), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = [asyncio.create_task(client.get(f"/{A}")) for _ in range(2)]
            await _until(lambda: gate.in_progress(A) == 2)

            refused = await client.get(f"/{A}")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "1"
            body = refused.json()
            assert body["code"] == 20429 and body["status"] == 429
            assert body["more_info"].endswith("/20429")
            assert A in body["message"]
            assert gate.in_progress(A) == 2  # the refused request took no slot

            other = asyncio.create_task(client.get(f"/{B}"))  # another account is not held up
            await _until(lambda: gate.in_progress(B) == 1)

            release.set()
            assert [r.status_code for r in await asyncio.gather(*first, other)] == [200, 200, 200]
            assert gate.in_progress(A) == 0 and gate.in_progress(B) == 0

            release.clear()
            again = [asyncio.create_task(client.get(f"/{A}")) for _ in range(2)]
            await _until(lambda: gate.in_progress(A) == 2)
            release.set()
            assert [r.status_code for r in await asyncio.gather(*again)] == [200, 200]

    asyncio.run(run())


def test_a_request_that_fails_gives_its_slot_back() -> None:
    async def run() -> None:
        gate, release = AccountConcurrency(1), asyncio.Event()
        transport = httpx.ASGITransport(app=_app(gate, release), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get(f"/{A}?fail=1")).status_code == 500
            assert gate.in_progress(A) == 0
            release.set()
            assert (await client.get(f"/{A}")).status_code == 200

    asyncio.run(run())


def test_no_limit_counts_nothing() -> None:
    async def run() -> None:
        gate, release = AccountConcurrency(0), asyncio.Event()
        transport = httpx.ASGITransport(app=_app(gate, release))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            held = [asyncio.create_task(client.get(f"/{A}")) for _ in range(50)]
            await asyncio.sleep(0.05)
            assert gate.in_progress(A) == 0
            release.set()
            assert {r.status_code for r in await asyncio.gather(*held)} == {200}

    asyncio.run(run())


class _Request:
    """What `admit` reads of a request: its ASGI scope."""

    def __init__(self) -> None:
        self.scope: dict[str, object] = {}


def test_a_request_holding_a_slot_is_not_counted_again_at_the_limit() -> None:
    gate = AccountConcurrency(1)
    holder = _Request()
    gate.admit(holder, A)  # type: ignore[arg-type]
    gate.admit(holder, A)  # type: ignore[arg-type]
    assert gate.in_progress(A) == 1
    with pytest.raises(ApiError) as refused:
        gate.admit(_Request(), A)  # type: ignore[arg-type]
    assert refused.value.code == 20429 and refused.value.status == 429
    gate.release(holder.scope)
    gate.release(holder.scope)  # a second release of the same request gives back nothing more
    assert gate.in_progress(A) == 0
    gate.admit(_Request(), A)  # type: ignore[arg-type]
    assert gate.in_progress(A) == 1
