"""Messages of an account suspended or closed after they were accepted fail with 30002 when a
dispatcher reaches them, instead of going to a carrier; other accounts' messages in the same
claim go out, and a reactivated account sends again. Both stores."""

from __future__ import annotations

import pytest

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.store import accounts as account_store
from pigeon.store.messages import insert_messages
from tests.integration.pipeline import Pipeline


def _set_status(pipe: Pipeline, account_sid: str, status: str) -> None:
    with pipe.db.write() as conn:
        account_store.update_account(conn, account_sid, now=pipe.clock.now(), status=status)


@pytest.mark.parametrize("status", ["suspended", "closed"])
def test_an_inactive_accounts_queued_messages_fail_with_30002(pipe: Pipeline, status: str) -> None:
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        other = account_use.create_account(conn, friendly_name="still active", now=now)
        number_use.provision(conn, account_sid=other["sid"], phone_number="+14155550196", now=now)
        theirs = prepare_message(
            conn, other["sid"], SendRequest(to="+14155557040", from_="+14155550196", body="hi"), now
        )
        insert_messages(conn, [theirs])
    ours = pipe.send()
    _set_status(pipe, pipe.account_sid, status)

    assert pipe.dispatch() == 1  # theirs only
    assert pipe.status(str(theirs.message["sid"])) == "sent"
    msg = pipe.message(ours)
    assert (msg["status"], msg["error_code"], msg["price"], msg["claimed_by"]) == ("failed", 30002, None, None)
    assert pipe.parts(ours) == []  # never submitted
    [entry] = pipe.events(ours, "account_inactive")
    assert (entry["status"], entry["error_code"], entry["detail"]) == ("failed", 30002, {"account_status": status})
    [alert] = pipe.alerts(ours)
    assert alert["error_code"] == 30002 and status in alert["alert_text"]
    [callback] = pipe.callbacks(ours)
    assert (callback["MessageStatus"], callback["ErrorCode"]) == ("failed", "30002")
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, ours, now=pipe.clock.now())
    assert "account_inactive" in report.causes() and "carrier_failed" not in report.causes()


def test_a_reactivated_account_sends_again(pipe: Pipeline) -> None:
    _set_status(pipe, pipe.account_sid, "suspended")
    first = pipe.send()
    assert pipe.dispatch() == 0
    assert pipe.status(first) == "failed"
    _set_status(pipe, pipe.account_sid, "active")
    second = pipe.send()
    assert pipe.dispatch() == 1
    assert pipe.status(second) == "sent"


def test_a_suspended_main_accounts_subaccount_is_held_with_it(pipe: Pipeline) -> None:
    """As on Twilio, suspending a main account suspends its subaccounts: their queued messages
    fail with 30002 too, the timeline names the main account, and once the main account is
    active again the subaccount (whose own status never changed) sends."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        sub = account_use.create_subaccount(conn, pipe.account_sid, friendly_name="its customer", now=now)
        number_use.provision(conn, account_sid=sub["sid"], phone_number="+14155550197", now=now)

    def send_as_sub() -> str:
        with pipe.db.write() as conn:
            new = prepare_message(
                conn, sub["sid"], SendRequest(to="+14155557041", from_="+14155550197", body="hi"), pipe.clock.now()
            )
            insert_messages(conn, [new])
        return str(new.message["sid"])

    held = send_as_sub()
    _set_status(pipe, pipe.account_sid, "suspended")
    assert pipe.dispatch() == 0
    msg = pipe.message(held)
    assert (msg["status"], msg["error_code"]) == ("failed", 30002)
    [entry] = pipe.events(held, "account_inactive")
    assert entry["detail"] == {"account_status": "suspended", "main_account_sid": pipe.account_sid}
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, sub["sid"], held, now=pipe.clock.now())
        assert account_store.get_account(conn, sub["sid"])["status"] == "active"  # type: ignore[index]
    [finding] = [f for f in report.findings if f.cause == "account_inactive"]
    assert f"its main account {pipe.account_sid} was suspended" in finding.summary

    _set_status(pipe, pipe.account_sid, "active")
    sent = send_as_sub()
    assert pipe.dispatch() == 1
    assert pipe.status(sent) == "sent"
