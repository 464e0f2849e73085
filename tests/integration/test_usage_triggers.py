"""Usage Triggers on each store: a trigger fires once per period when its account's usage (with
its subaccounts') reaches the threshold, queues one signed callback through the outbox, and
two processes evaluating at once fire it once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pigeon.app import usage_triggers as use
from pigeon.app.callback_delivery import Outcome, deliver_one
from pigeon.domain.errors import ApiError
from pigeon.domain.retry import STATUS_CALLBACKS
from pigeon.store import usage as usage_store
from pigeon.store.accounts import create_account
from pigeon.store.alerts import list_alerts
from pigeon.store.engine import Database
from pigeon.store.tables import accounts, webhook_deliveries
from pigeon.store.webhooks import claim_due
from pigeon.testing import FrozenClock, RecordingWebhookSender

HOOK = "https://hooks.example.com/usage?x=1"


@pytest.fixture
def account(db: Database, clock: FrozenClock) -> str:
    with db.write() as conn:
        return str(create_account(conn, friendly_name="tenant", now=clock.now())["sid"])


def add(db: Database, account_sid: str, day: str, *, messages: int, segments: int, micros: int = 0) -> None:
    with db.write() as conn:
        usage_store.add_usage(conn, {(account_sid, day, "sms-outbound"): (messages, segments, micros)})


def create(db: Database, clock: FrozenClock, account_sid: str, **params: str) -> dict[str, Any]:
    given = {"CallbackUrl": HOOK, "UsageCategory": "sms", "TriggerValue": "10"} | params
    with db.write() as conn:
        return use.create(conn, account_sid, given, clock.now())


def evaluate(db: Database, clock: FrozenClock) -> list[str]:
    with db.read() as conn:
        due = use.reached(conn, today=clock.now().date())
    with db.write() as conn:
        return use.fire(conn, due, now=clock.now())


def callbacks(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        q = sa.select(webhook_deliveries).where(webhook_deliveries.c.kind == use.USAGE_TRIGGER)
        return [dict(r) for r in conn.execute(q.order_by(webhook_deliveries.c.id)).mappings()]


def test_a_daily_trigger_fires_once_a_day_when_reached(db: Database, clock: FrozenClock, account: str) -> None:
    today = clock.now().date().isoformat()
    trigger = create(db, clock, account, Recurring="daily", TriggerBy="usage", FriendlyName="daily cap")
    add(db, account, today, messages=4, segments=9)
    assert evaluate(db, clock) == []
    add(db, account, today, messages=1, segments=1)
    assert evaluate(db, clock) == [trigger["sid"]]
    add(db, account, today, messages=5, segments=5)
    assert evaluate(db, clock) == []  # once a day

    [delivery] = callbacks(db)
    params = dict(delivery["params"])
    assert (delivery["url"], delivery["method"], delivery["account_sid"]) == (HOOK, "POST", account)
    assert delivery["message_sid"] is None
    assert params == {
        "AccountSid": account,
        "UsageTriggerSid": trigger["sid"],
        "DateFired": "Thu, 15 Jan 2026 12:00:00 +0000",
        "Recurring": "daily",
        "UsageCategory": "sms",
        "TriggerBy": "usage",
        "TriggerValue": "10",
        "CurrentValue": "10",
        "UsageRecordUri": f"/2010-04-01/Accounts/{account}/Usage/Records/Today.json?Category=sms",
        "IdempotencyToken": f"{trigger['sid']}-2026-01-15",
    }
    with db.read() as conn:
        row = use.fetch(conn, account, trigger["sid"], "/t")
    assert (row["fired_period"], row["date_fired"]) == ("2026-01-15", clock.now())

    clock.advance(86400)  # a new day starts from nothing
    assert evaluate(db, clock) == []
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    assert evaluate(db, clock) == [trigger["sid"]]
    assert [dict(d["params"])["IdempotencyToken"] for d in callbacks(db)] == [
        f"{trigger['sid']}-2026-01-15",
        f"{trigger['sid']}-2026-01-16",
    ]


def test_a_trigger_without_recurring_fires_once_ever_on_all_time_usage(
    db: Database, clock: FrozenClock, account: str
) -> None:
    add(db, account, "2025-06-01", messages=8, segments=8)
    trigger = create(db, clock, account, TriggerBy="count", TriggerValue="+2")  # two more than the 8 so far
    assert trigger["trigger_value"] == "10" and trigger["recurring"] is None
    add(db, account, clock.now().date().isoformat(), messages=1, segments=3)
    assert evaluate(db, clock) == []
    add(db, account, clock.now().date().isoformat(), messages=1, segments=1)
    assert evaluate(db, clock) == [trigger["sid"]]
    clock.advance(400 * 86400)
    add(db, account, clock.now().date().isoformat(), messages=50, segments=50)
    assert evaluate(db, clock) == []
    assert dict(callbacks(db)[0]["params"])["UsageRecordUri"].endswith("/Usage/Records/AllTime.json?Category=sms")


def test_monthly_and_price_triggers(db: Database, clock: FrozenClock, account: str) -> None:
    trigger = create(db, clock, account, Recurring="monthly", TriggerBy="price", TriggerValue="0.05")
    add(db, account, "2025-12-31", messages=100, segments=100, micros=5_000_000)  # last month: not counted
    add(db, account, "2026-01-02", messages=5, segments=5, micros=39_500)
    assert evaluate(db, clock) == []
    add(db, account, "2026-01-15", messages=2, segments=2, micros=15_800)
    assert evaluate(db, clock) == [trigger["sid"]]
    assert dict(callbacks(db)[0]["params"])["CurrentValue"] == "0.0553"
    clock.advance(20 * 86400)  # February: the month starts again
    add(db, account, "2026-02-04", messages=7, segments=7, micros=55_300)
    assert evaluate(db, clock) == [trigger["sid"]]


def test_subaccounts_count_for_their_parent_and_nobody_else_does(db: Database, clock: FrozenClock) -> None:
    with db.write() as conn:
        parent = str(create_account(conn, friendly_name="parent", now=clock.now())["sid"])
        child = str(create_account(conn, friendly_name="child", now=clock.now(), owner_sid=parent)["sid"])
        stranger = str(create_account(conn, friendly_name="stranger", now=clock.now())["sid"])
    on_parent = create(db, clock, parent, Recurring="daily")
    on_child = create(db, clock, child, Recurring="daily", TriggerValue="20")
    today = clock.now().date().isoformat()
    add(db, stranger, today, messages=50, segments=50)
    add(db, child, today, messages=12, segments=12)
    assert evaluate(db, clock) == [on_parent["sid"]]
    add(db, child, today, messages=8, segments=8)
    assert evaluate(db, clock) == [on_child["sid"]]


def test_two_processes_evaluating_at_once_fire_a_trigger_once(db: Database, clock: FrozenClock, account: str) -> None:
    trigger = create(db, clock, account, Recurring="daily")
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    with db.read() as conn:
        seen_by_one = use.reached(conn, today=clock.now().date())
        seen_by_other = use.reached(conn, today=clock.now().date())
    with db.write() as conn:
        assert use.fire(conn, seen_by_one, now=clock.now()) == [trigger["sid"]]
    with db.write() as conn:
        assert use.fire(conn, seen_by_other, now=clock.now()) == []
    assert len(callbacks(db)) == 1


def test_a_process_late_across_midnight_does_not_fire_a_day_again(
    db: Database, clock: FrozenClock, account: str
) -> None:
    """One process found the trigger due just before midnight and is slow to fire it; another
    fires the new day first. The slow one's stale day must not fire, nor undo the new day's
    mark (which let the new day fire a second time)."""
    trigger = create(db, clock, account, Recurring="daily")
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    with db.read() as conn:
        stale = use.reached(conn, today=clock.now().date())
    clock.advance(86400)
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    assert evaluate(db, clock) == [trigger["sid"]]  # the new day, fired by the other process
    with db.write() as conn:
        assert use.fire(conn, stale, now=clock.now()) == []
    assert evaluate(db, clock) == []
    assert len(callbacks(db)) == 1


def test_a_closed_accounts_triggers_stay_quiet(db: Database, clock: FrozenClock, account: str) -> None:
    create(db, clock, account, Recurring="daily")
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    with db.write() as conn:
        conn.execute(accounts.update().where(accounts.c.sid == account).values(status="closed"))
    assert evaluate(db, clock) == []


def test_a_suspended_main_accounts_subaccounts_stay_quiet(db: Database, clock: FrozenClock, account: str) -> None:
    with db.write() as conn:
        child = str(create_account(conn, friendly_name="child", now=clock.now(), owner_sid=account)["sid"])
    trigger = create(db, clock, child, Recurring="daily")
    add(db, child, clock.now().date().isoformat(), messages=10, segments=10)
    with db.write() as conn:
        conn.execute(accounts.update().where(accounts.c.sid == account).values(status="suspended"))
    assert evaluate(db, clock) == []
    with db.write() as conn:
        conn.execute(accounts.update().where(accounts.c.sid == account).values(status="active"))
    assert evaluate(db, clock) == [trigger["sid"]]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"CallbackUrl": ""}, 20001),
        ({"TriggerValue": ""}, 20001),
        ({"UsageCategory": ""}, 20001),
        ({"CallbackUrl": "ftp://example.com/x"}, 21502),
        ({"UsageCategory": "calls"}, 20422),
        ({"TriggerBy": "minutes"}, 20422),
        ({"Recurring": "hourly"}, 20422),
        ({"TriggerValue": "-5"}, 20422),
        ({"TriggerValue": "0"}, 20422),
        ({"TriggerValue": "ten"}, 20422),
        ({"TriggerValue": "1.5"}, 20422),  # segments are whole
        ({"CallbackMethod": "PUT"}, 20422),
        ({"UsageCategory": "totalprice", "TriggerBy": "count", "TriggerValue": "2.5"}, 20422),  # messages are whole
        ({"FriendlyName": "x" * 65}, 20422),
    ],
)
def test_bad_parameters_are_refused_and_change_nothing(
    db: Database, clock: FrozenClock, account: str, params: dict[str, str], code: int
) -> None:
    with pytest.raises(ApiError) as caught:
        create(db, clock, account, **params)
    assert caught.value.code == code
    with db.read() as conn:
        assert use.list_for_account(conn, account, {}, offset=0, limit=10) == []


def test_update_changes_the_callback_only_and_delete_removes(db: Database, clock: FrozenClock, account: str) -> None:
    trigger = create(db, clock, account, Recurring="yearly")
    clock.advance(60)
    with db.write() as conn:
        changed = use.update(
            conn,
            account,
            trigger["sid"],
            "/t",
            {"CallbackUrl": "https://other.example.com/u", "CallbackMethod": "get", "TriggerValue": "99"},
            clock.now(),
        )
    assert (changed["callback_url"], changed["callback_method"], changed["trigger_value"]) == (
        "https://other.example.com/u",
        "GET",
        "10",
    )
    assert changed["date_updated"] == changed["date_created"] + timedelta(seconds=60)
    with db.write() as conn:
        use.delete(conn, account, trigger["sid"], "/t")
    with db.read() as conn, pytest.raises(ApiError) as caught:
        use.fetch(conn, account, trigger["sid"], "/t")
    assert caught.value.code == 20404


def test_a_callback_that_fails_for_good_is_an_alert_about_the_trigger(
    db: Database, clock: FrozenClock, account: str
) -> None:
    trigger = create(db, clock, account, Recurring="daily")
    add(db, account, clock.now().date().isoformat(), messages=10, segments=10)
    assert evaluate(db, clock) == [trigger["sid"]]
    sender = RecordingWebhookSender([404])  # not retried: the URL is wrong
    with db.write() as conn:
        [row] = claim_due(conn, now=clock.now(), limit=10, lease_seconds=30)
    outcome = asyncio.run(deliver_one(db, sender, clock, row, policy=STATUS_CALLBACKS))
    assert outcome is Outcome.FAILED
    assert sender.params()["UsageTriggerSid"] == trigger["sid"]
    with db.read() as conn:
        [alert] = list_alerts(conn, account_sid=account)
    assert (alert["error_code"], alert["resource_sid"]) == (11200, trigger["sid"])
    assert alert["alert_text"].startswith(f"Usage trigger callback to {HOOK} failed after 1 attempt")


def test_a_totalprice_trigger_watches_spend_in_all_categories(db: Database, clock: FrozenClock, account: str) -> None:
    # TriggerBy is usage by default, and totalprice's usage is its price: a threshold in money.
    trigger = create(db, clock, account, UsageCategory="totalprice", TriggerValue="0.02", Recurring="monthly")
    today = clock.now().date().isoformat()
    add(db, account, today, messages=1, segments=1, micros=7_900)
    with db.write() as conn:
        usage_store.add_usage(conn, {(account, today, "mms-inbound"): (1, 1, 10_000)})
    assert evaluate(db, clock) == []
    add(db, account, today, messages=1, segments=1, micros=7_900)
    assert evaluate(db, clock) == [trigger["sid"]]
    assert dict(callbacks(db)[0]["params"])["CurrentValue"] == "0.0258"
