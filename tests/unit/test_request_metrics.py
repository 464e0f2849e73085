"""The API's request figures, on a small app: counted by route template (never the raw path),
method and status; a path no route matches is `unmatched`; an unhandled error is a 500."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.request_metrics import RequestMetrics, RequestMetricsMiddleware


def _app(registry: CollectorRegistry) -> Starlette:
    async def message(request: Request) -> Response:
        if request.path_params["sid"] == "SMbroken":
            raise RuntimeError("a bug")
        return JSONResponse({"sid": request.path_params["sid"]}, status_code=201 if request.method == "POST" else 200)

    return Starlette(
        routes=[Route("/Messages/{sid}.json", message, methods=["GET", "POST"])],
        middleware=[Middleware(RequestMetricsMiddleware, metrics=RequestMetrics(registry))],
    )


def test_requests_are_counted_by_route_template_method_and_status() -> None:
    registry = CollectorRegistry()

    async def run() -> None:
        transport = httpx.ASGITransport(app=_app(registry), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for sid in ("SM1", "SM2", "SM3"):
                await client.get(f"/Messages/{sid}.json")
            await client.post("/Messages/SM4.json")
            await client.get("/Messages/SMbroken.json")
            await client.get("/made/up/path/SM5")
            await client.delete("/Messages/SM6.json")

    asyncio.run(run())
    route = "/Messages/{sid}.json"

    def count(route: str, method: str, status: str) -> float | None:
        labels = {"route": route, "method": method, "status": status}
        return registry.get_sample_value("pigeon_api_requests_total", labels)

    assert count(route, "GET", "200") == 3
    assert count(route, "POST", "201") == 1
    assert count(route, "GET", "500") == 1
    assert count(route, "DELETE", "405") == 1
    assert count("unmatched", "GET", "404") == 1
    assert registry.get_sample_value("pigeon_api_request_duration_seconds_count", {"route": route}) == 6
    names = {s.labels.get("route") for m in registry.collect() for s in m.samples}
    assert not any(name and "SM" in name for name in names)  # no SID ever becomes a label


def test_a_scrape_relayed_over_the_private_unix_socket_is_not_counted_again() -> None:
    """`pigeon serve --api-processes N`: the other processes relay GET /metrics to the first
    over a Unix socket; the process the client reached counts it, the first must not."""
    registry = CollectorRegistry()
    app = _app(registry)

    async def call(server: tuple[str, int | None]) -> None:
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/Messages/SM1.json",
            "raw_path": b"/Messages/SM1.json",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"pigeon")],
            "server": server,
            "client": None,
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: object) -> None:
            pass

        await app(scope, receive, send)

    asyncio.run(call(("127.0.0.1", 8080)))
    asyncio.run(call(("/tmp/pigeon-api-x/metrics.sock", None)))
    labels = {"route": "/Messages/{sid}.json", "method": "GET", "status": "200"}
    assert registry.get_sample_value("pigeon_api_requests_total", labels) == 1
