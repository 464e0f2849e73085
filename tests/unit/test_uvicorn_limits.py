"""What uvicorn, the HTTP server, can bound for a slow client: nothing for a request's
headers. The README ("Before going to production", Slow clients) says so and asks for a
reverse proxy with read timeouts in front. This fails when uvicorn gains such a timeout:
then use it in pigeon.serving.uvicorn_config and change the README."""

from __future__ import annotations

import inspect

import uvicorn

from pigeon import serving


def test_uvicorn_has_no_timeout_for_a_request_still_arriving() -> None:
    timeouts = {name for name in inspect.signature(uvicorn.Config).parameters if "timeout" in name}
    # keep_alive runs only between requests (a byte of a new request cancels it); the rest are
    # about websockets, worker processes and shutdown.
    assert timeouts == {
        "ws_ping_timeout",
        "timeout_keep_alive",
        "timeout_notify",
        "timeout_graceful_shutdown",
        "timeout_worker_healthcheck",
    }


def test_pigeon_bounds_what_uvicorn_offers() -> None:
    config = serving.uvicorn_config(object(), shutdown_grace=7)
    assert config.timeout_graceful_shutdown == 7
    assert config.limit_concurrency is None  # see the README: it would turn slow clients into 503s for all
