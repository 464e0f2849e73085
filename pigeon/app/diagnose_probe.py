"""The doctor's signed test request to a number's webhook.

It is the request a real text would cause: the same parameters, signed with the account's
auth token (X-Twilio-Signature), sent by the same `converse` that inbound texts go through,
falling back to the fallback URL as real traffic would. It is marked as a test so that the
application can tell: Body "Pigeon doctor test" and an extra parameter PigeonDoctorTest=true.
Its TwiML is parsed and judged but never acted on: no reply is sent, nothing is recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pigeon.app.inbound import WebhookTarget, webhook_params
from pigeon.app.inbound_exchange import Exchange
from pigeon.app.inbound_webhook import converse
from pigeon.domain import storable
from pigeon.domain.diagnosis import WebhookExchange, WebhookHop, WebhookProbe
from pigeon.domain.sids import Prefix, new_sid
from pigeon.domain.urls import url_for_log
from pigeon.ports import WebhookSender
from pigeon.store.messages import NewMessage

TEST_BODY = "Pigeon doctor test"
TEST_FLAG = "PigeonDoctorTest"
#: The handset the test pretends to come from (Twilio's magic test number, never a real phone).
TEST_FROM = "+15005550006"
EXCERPT = 300


@dataclass(frozen=True)
class ProbePlan:
    delivery: dict[str, Any]
    auth_token: str


def test_params(number: Mapping[str, Any], message_sid: str) -> list[tuple[str, str]]:
    """The incoming-message parameters of a test text to `number`, made by the function that
    makes real texts' (`pigeon.app.inbound.webhook_params`), marked as a test."""
    message = {
        "sid": message_sid,
        "account_sid": number["account_sid"],
        "messaging_service_sid": number.get("messaging_service_sid"),
        "from_": TEST_FROM,
        "to": number["phone_number"],
        "body": TEST_BODY,
        "num_media": 0,
        "num_segments": 1,
    }
    # No media, so no media URL to build: the base URL is never used.
    return [*webhook_params(NewMessage(message=message), base_url="", opt_out_type=None), (TEST_FLAG, "true")]


def plan_probe(number: Mapping[str, Any], target: WebhookTarget, *, auth_token: str) -> ProbePlan:
    assert target.url
    delivery = {
        "id": None,
        "account_sid": number["account_sid"],
        "message_sid": None,
        "url": target.url,
        "method": target.method,
        "params": test_params(number, new_sid(Prefix.SMS)),
        "fallback_url": target.fallback_url,
        "fallback_method": target.fallback_method,
        "idempotency_token": f"doctor-{uuid.uuid4()}",
    }
    return ProbePlan(delivery=delivery, auth_token=auth_token)


def _exchange(ex: Exchange) -> WebhookExchange:
    resp = ex.response
    answered = resp is not None and 200 <= resp.status < 300
    *hops, last = ex.requests()
    return WebhookExchange(
        url=ex.url,
        method=ex.method,
        status=resp.status if resp else None,
        elapsed_ms=ex.elapsed_ms,
        error_code=ex.error.error_code if ex.error else None,
        error=ex.error.detail if ex.error else None,
        twiml_valid=(ex.twiml is not None) if answered else None,
        replies=len(ex.twiml.messages) if ex.twiml else 0,
        response_excerpt=storable.excerpt(resp.body, EXCERPT) if resp else None,
        location=url_for_log(last.location) if last.location else None,
        redirects=tuple(
            WebhookHop(url_for_log(h.url), h.method, h.response.status, url_for_log(h.location), h.elapsed_ms)
            for h in hops
            if h.response is not None and h.location is not None
        ),
    )


async def probe_webhook(sender: WebhookSender, plan: ProbePlan, *, timeout: float = 15.0) -> WebhookProbe:
    convo = await converse(sender, plan.auth_token, plan.delivery, timeout=timeout)
    return WebhookProbe(tuple(_exchange(ex) for ex in convo.exchanges))
