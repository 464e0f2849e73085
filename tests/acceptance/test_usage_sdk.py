"""Usage Records through the real `twilio` SDK: what an account sent and received, and what it
cost, counted as the carrier takes each message and kept when the messages are gone."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.base.exceptions import TwilioException

from tests.acceptance.conftest import Server
from tests.acceptance.support import Tenant, fresh_number, new_tenant, wait_for

pytestmark = pytest.mark.acceptance


@pytest.fixture
def tenant(delivering_server: Server) -> Tenant:
    return new_tenant(delivering_server)


def send_and_settle(tenant: Tenant) -> list[str]:
    """Two SMS (one of two segments), an MMS and an SMS refused by the network; a text in."""
    client = tenant.client()
    sids = [
        client.messages.create(to=fresh_number(), from_=tenant.numbers[0], body="one").sid,
        client.messages.create(to=fresh_number(), from_=tenant.numbers[1], body="x" * 200).sid,
        client.messages.create(
            to=fresh_number(), from_=tenant.numbers[0], body="look", media_url=["https://example.com/a.png"]
        ).sid,
    ]
    r = httpx.post(
        tenant.server.base_url + "/simulator/inbound",
        data={"From": fresh_number(), "To": tenant.numbers[0], "Body": "hi there"},
        auth=(tenant.sid, tenant.auth_token),
        timeout=10,
    )
    assert r.status_code == 201, r.text

    def settled() -> bool:
        return all(client.messages(sid).fetch().status == "delivered" for sid in sids)

    wait_for("the messages delivered", settled, 30)
    return sids


def by_category(records: list) -> dict[str, tuple[str, str]]:  # type: ignore[type-arg]
    return {r.category: (r.count, r.usage) for r in records}


def test_records_count_messages_segments_and_price_by_category(tenant: Tenant) -> None:
    sids = send_and_settle(tenant)
    client = tenant.client()
    records = client.usage.records.list()
    assert by_category(records) == {
        "sms": ("3", "4"),  # two sent (1 + 2 segments), one received
        "sms-outbound": ("2", "3"),
        "sms-inbound": ("1", "1"),
        "mms": ("1", "1"),
        "mms-outbound": ("1", "1"),
        "mms-inbound": ("0", "0"),
        "totalprice": ("4", by_category(records)["totalprice"][1]),  # its usage is the price
    }
    prices = [Decimal(client.messages(sid).fetch().price) for sid in sids]
    assert Decimal(by_category(records)["totalprice"][1]) == -sum(prices)
    total = next(r for r in records if r.category == "totalprice")
    assert (total.usage_unit, Decimal(str(total.price))) == ("usd", -sum(prices))
    price = {r.category: Decimal(str(r.price)) for r in records}
    assert price["sms-outbound"] == -(prices[0] + prices[1]) and price["mms-outbound"] == -prices[2]
    assert price["sms-inbound"] == 0
    record = next(r for r in records if r.category == "sms-outbound")
    today = datetime.now(UTC).date()
    assert (record.account_sid, record.start_date, record.end_date) == (tenant.sid, today, today)
    assert (record.count_unit, record.usage_unit, record.price_unit) == ("messages", "segments", "usd")
    assert record.api_version == "2010-04-01" and record.description == "SMS messages sent"
    assert record.uri.startswith(f"/2010-04-01/Accounts/{tenant.sid}/Usage/Records.json?Category=sms-outbound")
    assert record.subresource_uris["daily"] == (
        f"/2010-04-01/Accounts/{tenant.sid}/Usage/Records/Daily.json?Category=sms-outbound"
    )

    # Deleting the messages does not take back what they cost.
    for sid in sids:
        client.messages(sid).delete()
    assert by_category(client.usage.records.list()) == by_category(records)


def test_periods_and_filters(tenant: Tenant) -> None:
    send_and_settle(tenant)
    client = tenant.client()
    today = datetime.now(UTC).date()
    (only,) = client.usage.records.today.list(category="sms-outbound")
    assert (only.start_date, only.end_date, only.count) == (today, today, "2")
    assert [r.count for r in client.usage.records.yesterday.list(category="sms-outbound")] == ["0"]
    daily = client.usage.records.daily.list(category="sms", start_date=today - timedelta(days=2), end_date=today)
    assert [(r.start_date, r.count) for r in daily] == [
        (today - timedelta(days=2), "0"),
        (today - timedelta(days=1), "0"),
        (today, "3"),
    ]
    (month,) = client.usage.records.this_month.list(category="mms")
    assert (month.start_date, month.end_date, month.count) == (today.replace(day=1), today, "1")
    monthly = client.usage.records.monthly.list(category="sms", start_date=date(today.year, 1, 1), end_date=today)
    assert len(monthly) == today.month and monthly[-1].count == "3"
    # Paging follows next_page_uri.
    assert len(client.usage.records.daily.list(start_date=today - timedelta(days=9), page_size=7)) == 70  # 10 days x 7


def test_a_parent_sees_its_subaccounts_usage_unless_told_not_to(tenant: Tenant) -> None:
    send_and_settle(tenant)
    parent = tenant.server.client()
    main = tenant.server.account_sid
    included = by_category(parent.usage.records.today.list(category="sms-outbound"))
    own = by_category(parent.usage.records.today.list(category="sms-outbound", include_subaccounts=False))
    assert int(included["sms-outbound"][0]) >= int(own["sms-outbound"][0]) + 2
    # The parent reads the subaccount's own usage too; the subaccount cannot read its parent's.
    as_parent = tenant.server.client(account_sid=tenant.sid)
    assert by_category(as_parent.usage.records.today.list(category="sms-outbound")) == {"sms-outbound": ("2", "3")}
    other = new_tenant(tenant.server)
    with pytest.raises(TwilioException) as refused:  # a page's error, as the SDK reports it
        other.server.client(other.sid, other.auth_token, account_sid=tenant.sid).usage.records.list()
    answer = refused.value.args[1]
    assert (answer.status_code, json.loads(answer.text)["code"]) == (403, 20003)
    with pytest.raises(TwilioException):
        tenant.client().api.accounts(main).usage.records.list()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"Category": "calls"}, "Category 'calls' is not one Pigeon reports"),
        ({"StartDate": "2026-13-01"}, "StartDate must be a date as YYYY-MM-DD"),
        ({"StartDate": "2026-12-05", "EndDate": "2026-12-01"}, "EndDate 2026-12-01 is before StartDate 2026-12-05"),
        ({"IncludeSubaccounts": "maybe"}, "IncludeSubaccounts must be true or false"),
    ],
)
def test_bad_queries_get_a_twilio_error(tenant: Tenant, params: dict[str, str], message: str) -> None:
    r = httpx.get(tenant.base() + "/Usage/Records/Daily.json", params=params, auth=(tenant.sid, tenant.auth_token))
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == 20422 and message in body["message"]


def test_the_operator_reads_every_accounts_usage(tenant: Tenant) -> None:
    send_and_settle(tenant)
    report = json.loads(tenant.server.cli("usage", "--account", tenant.sid, "--json").stdout)
    today = datetime.now(UTC).date()
    assert (report["first_day"], report["last_day"]) == (today.replace(day=1).isoformat(), today.isoformat())
    got = {r["category"]: (r["messages"], r["segments"]) for r in report["usage"]}
    assert got == {"sms-outbound": (2, 3), "mms-outbound": (1, 1), "sms-inbound": (1, 1)}
    table = tenant.server.cli("usage", "--since", "-1days").stdout
    assert tenant.sid in table and "  sms-outbound" in table
    refused = tenant.server.cli("usage", "--since", "last week", check=False)
    assert refused.returncode == 2 and "--since must be a date" in refused.stderr


def test_received_messages_cost_what_the_files_inbound_prices_say(tmp_path: Path, server_factory: Any) -> None:
    config = tmp_path / "prices.toml"
    config.write_text('[prices.inbound.US]\nlong_code = "0.0079"\n')
    tenant = new_tenant(server_factory("sqlite", env={"PIGEON_CONFIG": str(config)}))
    r = httpx.post(
        tenant.server.base_url + "/simulator/inbound",
        data={"From": fresh_number(), "To": tenant.numbers[0], "Body": "hello"},
        auth=(tenant.sid, tenant.auth_token),
        timeout=10,
    )
    assert r.status_code == 201, r.text
    message = tenant.client().messages(r.json()["message_sid"]).fetch()
    assert (message.direction, message.price, message.price_unit) == ("inbound", "-0.00790", "USD")
    (record,) = tenant.client().usage.records.today.list(category="sms-inbound")
    assert (record.count, record.usage, Decimal(str(record.price))) == ("1", "1", Decimal("0.0079"))


@pytest.mark.parametrize("period", ["Records", "Daily", "Monthly", "Yearly", "AllTime"])
def test_a_range_ending_on_the_calendars_last_day_answers(tenant: Tenant, period: str) -> None:
    # Monthly stepped past 9999-12-31 and answered 500 (an OverflowError).
    path = "/Usage/Records.json" if period == "Records" else f"/Usage/Records/{period}.json"
    r = httpx.get(
        tenant.base() + path,
        params={"StartDate": "9999-12-01", "EndDate": "9999-12-31", "Category": "sms"},
        auth=(tenant.sid, tenant.auth_token),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    records = r.json()["usage_records"]
    assert (records[0]["start_date"], records[-1]["end_date"]) == ("9999-12-01", "9999-12-31")
    assert {u["count"] for u in records} == {"0"}
