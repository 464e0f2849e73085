"""Geo permissions changed while messages wait: a dispatcher fails the queued messages to a
country the account (or its parent, for a subaccount without a list) no longer allows, with
21408, instead of sending them; the rest of the claim goes out. Both stores."""

from __future__ import annotations

from pigeon.app import accounts as account_use
from pigeon.app import diagnose
from pigeon.app import numbers as number_use
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain import geo
from pigeon.store.messages import insert_messages
from tests.integration.pipeline import Pipeline

UK, FREEPHONE = "+447700900123", "+80012345678"


def _allow(pipe: Pipeline, account_sid: str, countries: str | None) -> None:
    with pipe.db.write() as conn:
        account_use.set_allowed_countries(conn, account_sid, countries, now=pipe.clock.now())


def test_queued_messages_to_a_country_taken_off_the_list_fail_with_21408(pipe: Pipeline) -> None:
    home, abroad, nowhere = pipe.send(), pipe.send(UK), pipe.send(FREEPHONE)  # accepted: no list yet
    _allow(pipe, pipe.account_sid, "US")

    assert pipe.dispatch() == 1
    assert pipe.status(home) == "sent"
    for sid, country in ((abroad, "GB"), (nowhere, None)):
        msg = pipe.message(sid)
        assert (msg["status"], msg["error_code"], msg["price"], msg["claimed_by"]) == ("failed", 21408, None, None)
        assert pipe.parts(sid) == []  # never submitted
        [entry] = pipe.events(sid, "geo_not_permitted")
        assert (entry["status"], entry["error_code"]) == ("failed", 21408)
        assert entry["detail"] == {"country": country, "allowed_countries": ["US"]}
        [alert] = pipe.alerts(sid)
        assert alert["error_code"] == 21408 and "may send to US only" in alert["alert_text"]
        [callback] = pipe.callbacks(sid)
        assert (callback["MessageStatus"], callback["ErrorCode"]) == ("failed", "21408")
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, abroad, now=pipe.clock.now())
    assert "geo_not_permitted" in report.causes() and "carrier_failed" not in report.causes()


def test_a_subaccount_follows_its_parents_list_unless_it_has_its_own(pipe: Pipeline) -> None:
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        subs = [
            account_use.create_subaccount(conn, pipe.account_sid, friendly_name=name, now=now)["sid"]
            for name in ("follows", "own")
        ]
        sent = []
        for i, sub in enumerate(subs):
            number = f"+1415555018{i}"
            number_use.provision(conn, account_sid=sub, phone_number=number, now=now)
            new = prepare_message(conn, sub, SendRequest(to=UK, from_=number, body="hi"), now)
            insert_messages(conn, [new])
            sent.append(str(new.message["sid"]))
    _allow(pipe, subs[1], geo.ANY)
    _allow(pipe, pipe.account_sid, "US,CA")

    assert pipe.dispatch() == 1
    follows, own = (pipe.message(sid) for sid in sent)
    assert (follows["status"], follows["error_code"]) == ("failed", 21408)
    assert own["status"] == "sent"  # its own list: any country

    _allow(pipe, pipe.account_sid, "GB")  # the parent allows it now: a new message goes out
    with pipe.db.write() as conn:
        new = prepare_message(conn, subs[0], SendRequest(to=UK, from_="+14155550180", body="again"), pipe.clock.now())
        insert_messages(conn, [new])
    assert pipe.dispatch() == 1
    assert pipe.status(str(new.message["sid"])) == "sent"
