"""Usage Triggers through the real `twilio` SDK, against `pigeon serve` with its workers: a
trigger created with `client.usage.triggers` fires once its account has sent enough, and its
callback arrives signed so that the SDK's RequestValidator accepts it."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.request_validator import RequestValidator

from tests.acceptance.conftest import Server, _serving
from tests.acceptance.support import Tenant, fresh_number, new_tenant, raises_twilio, wait_for
from tests.acceptance.test_delivery_e2e import Callback, Receiver

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Workers that evaluate the triggers every few tenths of a second, not every 15 s."""
    yield from _serving(request, tmp_path_factory, {"PIGEON_USAGE_TRIGGER_SECONDS": "0.3"})


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return new_tenant(server)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def fired(receiver: Receiver, trigger_sid: str) -> list[Callback]:
    with receiver.lock:
        return [h for h in receiver.hits if h.params.get("UsageTriggerSid") == trigger_sid]


def send(tenant: Tenant, n: int) -> None:
    client = tenant.client()
    sids = [client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body=f"hello {i}").sid for i in range(n)]
    wait_for(
        "the messages sent", lambda: all(client.messages(s).fetch().status in ("sent", "delivered") for s in sids), 30
    )


def test_a_trigger_fires_once_when_reached_and_its_callback_is_signed(tenant: Tenant, receiver: Receiver) -> None:
    client = tenant.client()
    trigger = client.usage.triggers.create(
        callback_url=receiver.url,
        trigger_value="2",
        usage_category="sms-outbound",
        recurring="daily",
        trigger_by="count",
        friendly_name="two a day",
    )
    assert trigger.sid.startswith("UT") and trigger.account_sid == tenant.sid
    assert (trigger.current_value, trigger.trigger_value, trigger.date_fired) == ("0", "2", None)
    assert (trigger.recurring, trigger.trigger_by, trigger.callback_method) == ("daily", "count", "POST")
    assert trigger.uri == f"/2010-04-01/Accounts/{tenant.sid}/Usage/Triggers/{trigger.sid}.json"
    assert trigger.usage_record_uri == (
        f"/2010-04-01/Accounts/{tenant.sid}/Usage/Records/Today.json?Category=sms-outbound"
    )

    send(tenant, 1)
    assert client.usage.triggers(trigger.sid).fetch().current_value == "1"
    send(tenant, 2)
    wait_for("the trigger's callback", lambda: bool(fired(receiver, trigger.sid)), 20)

    [hit] = fired(receiver, trigger.sid)
    validator = RequestValidator(tenant.auth_token)
    assert validator.validate(receiver.url, hit.params, hit.headers["X-Twilio-Signature"])
    assert hit.headers["I-Twilio-Idempotency-Token"]
    assert hit.params["AccountSid"] == tenant.sid
    assert (hit.params["UsageCategory"], hit.params["TriggerBy"], hit.params["Recurring"]) == (
        "sms-outbound",
        "count",
        "daily",
    )
    assert hit.params["TriggerValue"] == "2" and int(hit.params["CurrentValue"]) >= 2
    assert hit.params["IdempotencyToken"].startswith(trigger.sid + "-")

    now = client.usage.triggers(trigger.sid).fetch()
    assert now.date_fired is not None and now.current_value == "3"
    send(tenant, 1)  # more usage on the same day: no second callback
    assert len(fired(receiver, trigger.sid)) == 1


def test_list_filters_update_and_delete(tenant: Tenant, receiver: Receiver) -> None:
    client = tenant.client()
    daily = client.usage.triggers.create(
        callback_url=receiver.url, trigger_value="100", usage_category="sms", recurring="daily"
    )
    spend = client.usage.triggers.create(
        callback_url=receiver.url, trigger_value="+12.5", usage_category="sms", trigger_by="price"
    )
    assert (spend.trigger_value, spend.recurring, spend.trigger_by) == ("12.5", None, "price")
    assert {t.sid for t in client.usage.triggers.list()} == {daily.sid, spend.sid}
    assert [t.sid for t in client.usage.triggers.list(trigger_by="price")] == [spend.sid]
    assert [t.sid for t in client.usage.triggers.list(recurring="daily")] == [daily.sid]
    assert client.usage.triggers.list(usage_category="mms") == []

    changed = client.usage.triggers(daily.sid).update(
        callback_url="https://example.com/usage", callback_method="GET", friendly_name="renamed"
    )
    assert (changed.callback_url, changed.callback_method, changed.friendly_name) == (
        "https://example.com/usage",
        "GET",
        "renamed",
    )
    assert client.usage.triggers(daily.sid).delete() is True
    raises_twilio(lambda: client.usage.triggers(daily.sid).fetch(), 20404, 404)

    # Another account neither sees nor changes it.
    stranger = new_tenant(tenant.server, numbers=0).client()
    raises_twilio(lambda: stranger.usage.triggers(spend.sid).fetch(), 20404, 404)
    raises_twilio(lambda: stranger.usage.triggers(spend.sid).delete(), 20404, 404)
    assert stranger.usage.triggers.list() == []


def test_bad_parameters_get_twilio_errors(tenant: Tenant) -> None:
    client = tenant.client()
    raises_twilio(
        lambda: client.usage.triggers.create(callback_url="not a url", trigger_value="1", usage_category="sms"),
        21502,
        400,
    )
    raises_twilio(
        lambda: client.usage.triggers.create(
            callback_url="https://example.com/u", trigger_value="1", usage_category="calls"
        ),
        20422,
        400,
    )
    raises_twilio(
        lambda: client.usage.triggers.create(
            callback_url="https://example.com/u", trigger_value="0", usage_category="sms"
        ),
        20422,
        400,
    )
    assert client.usage.triggers.list() == []


def test_the_callback_url_keeps_its_query(tenant: Tenant, receiver: Receiver) -> None:
    """The receiver's URL has a query string: it is called, and signed, as given."""
    client = tenant.client()
    trigger = client.usage.triggers.create(
        callback_url=receiver.url, trigger_value="1", usage_category="sms", trigger_by="usage"
    )
    send(tenant, 1)
    wait_for("the trigger's callback", lambda: bool(fired(receiver, trigger.sid)), 20)
    [hit] = fired(receiver, trigger.sid)
    assert dict(parse_qsl(urlsplit(hit.path).query)) == {"app": "e2e", "v": "1"}
