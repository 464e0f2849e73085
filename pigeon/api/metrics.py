"""GET /metrics: Prometheus text exposition of this process's registry (carrier metrics,
and whatever else the composition root registers there)."""

from __future__ import annotations

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def metrics_route(registry: CollectorRegistry) -> Route:
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


def relayed_metrics_route(uds_path: str) -> Route:
    """GET /metrics answered by another Pigeon process over its Unix socket: the API processes
    after the first relay the first's figures, where the carriers are (pigeon/serving.py)."""
    transport = httpx.AsyncHTTPTransport(uds=uds_path)

    async def metrics(request: Request) -> Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://pigeon", timeout=10.0) as client:
            try:
                answer = await client.get("/metrics")
            except httpx.HTTPError:
                return Response("the process that holds the metrics is not answering\n", status_code=503)
        return Response(answer.content, status_code=answer.status_code, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])
