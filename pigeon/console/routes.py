"""The console's routes, mounted by pigeon.api.app at /console."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from pigeon.domain.pricing import PriceTable
from pigeon.ports import Clock, WebhookSender
from pigeon.store.engine import Database
from pigeon.webhooks.sender import HttpWebhookSender

from . import alerts, auth, doctor, logs, numbers, overview, requests, services, simulator
from .headers import SecurityHeaders
from .web import EXCEPTION_HANDLERS, HERE, Console


async def home(request: Request) -> Response:
    return RedirectResponse(request.scope.get("root_path", "") + "/overview", status_code=303)


ROUTES = [
    Route("/", home, methods=["GET"]),
    Route("/login", auth.login_page, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/switch", auth.switch_account, methods=["POST"]),
    Route("/overview", overview.overview_page, methods=["GET"]),
    Route("/logs", logs.logs_page, methods=["GET"]),
    Route("/logs.json", logs.logs_json, methods=["GET"]),
    Route("/logs/export", logs.export, methods=["GET"]),
    Route("/messages/{sid}", logs.message_page, methods=["GET"]),
    Route("/alerts", alerts.alerts_page, methods=["GET"]),
    Route("/alerts/{sid}", alerts.alert_page, methods=["GET"]),
    Route("/requests", requests.requests_page, methods=["GET"]),
    Route("/doctor", doctor.doctor_page, methods=["GET"]),
    Route("/doctor/message", doctor.message_flow, methods=["GET"]),
    Route("/doctor/number", doctor.number_flow, methods=["POST"]),
    Route("/doctor/blocked", doctor.blocked_flow, methods=["GET"]),
    Route("/doctor/duplicates", doctor.duplicates_flow, methods=["GET"]),
    Route("/numbers", numbers.numbers_page, methods=["GET"]),
    Route("/numbers/buy", numbers.buy_page, methods=["GET"]),
    Route("/numbers/buy", numbers.buy, methods=["POST"]),
    Route("/numbers/{sid}", numbers.number_page, methods=["GET"]),
    Route("/numbers/{sid}", numbers.save_number, methods=["POST"]),
    Route("/numbers/{sid}/test", numbers.test_webhook, methods=["POST"]),
    Route("/services", services.services_page, methods=["GET"]),
    Route("/services/{sid}", services.service_page, methods=["GET"]),
    Route("/optouts", services.optouts_page, methods=["GET"]),
    Route("/optouts/export", services.optouts_export, methods=["GET"]),
    Route("/simulator", simulator.simulator_page, methods=["GET"]),
    Route("/simulator", simulator.simulator_send, methods=["POST"]),
    Route("/simulator/conversation.json", simulator.conversation_json, methods=["GET"]),
    Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
]


def create_console(
    *,
    db: Database,
    clock: Clock,
    base_url: str,
    sender_factory: Callable[[], WebhookSender] | None = None,
    message_days: float = 0.0,
    denied_networks: Sequence[str] = (),
    prices: PriceTable | None = None,
) -> ASGIApp:
    """The console as an application of its own (its own error pages and security headers,
    pigeon.console.headers), on the API's store.
    `sender_factory` makes the WebhookSender of a webhook test (one per test, closed after; by
    default one that keeps out of `denied_networks`, PIGEON_WEBHOOK_DENIED_NETWORKS)."""
    if sender_factory is None:
        sender_factory = functools.partial(HttpWebhookSender, denied_networks=tuple(denied_networks))
    app = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)
    app.router.redirect_slashes = False  # as the API's (pigeon.api.app): no Location from Host
    app.state.console = Console(
        db=db,
        clock=clock,
        base_url=base_url,
        sender_factory=sender_factory,
        message_days=message_days,
        prices=prices,
    )
    return SecurityHeaders(app)
