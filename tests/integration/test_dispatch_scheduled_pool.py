"""A scheduled message sent through a Messaging Service without a From gets its sender from the
pool as it is at its SendAt, as on Twilio; when the pool has none for it then, it fails with the
code a send would get (21701, 21704, 21703). A scheduled message that named its From keeps it.
Both stores.

Before, the sender chosen at the create went out whatever became of the pool: from a number
taken out of the service, and for a service deleted since.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pigeon.api.schemas import message_json
from pigeon.app import diagnose
from pigeon.app import services as service_use
from pigeon.store import numbers as number_store
from pigeon.store import services as service_store
from pigeon.store.messages import MessageFilter, list_messages
from tests.integration.pipeline import CALLBACK, OTHER_SENDER, SENDER, TO, Pipeline, ScriptedCarrier

PATH = "/p"
LATER = timedelta(minutes=30)


class Scheduled:
    """A service (its status callback set) with the pipeline's two numbers in its pool."""

    def __init__(self, pipe: Pipeline, *, sticky: bool = False) -> None:
        self.pipe = pipe
        now = pipe.clock.now()
        params = {"FriendlyName": "pool", "StatusCallback": "https://hooks.example.com/service"}
        if not sticky:
            params["StickySender"] = "false"
        with pipe.db.write() as conn:
            self.service = str(service_use.create(conn, pipe.account_sid, params, now)["sid"])
        self.add(SENDER)
        self.add(OTHER_SENDER)

    def number_sid(self, number: str) -> str:
        with self.pipe.db.read() as conn:
            row = number_store.find_by_number(conn, number)
        assert row is not None
        return str(row["sid"])

    def add(self, number: str) -> None:
        with self.pipe.db.write() as conn:
            service_use.add_number(
                conn,
                self.pipe.account_sid,
                self.service,
                self.number_sid(number),
                short_code=False,
                path=PATH,
                now=self.pipe.clock.now(),
            )

    def remove(self, number: str) -> None:
        with self.pipe.db.write() as conn:
            service_use.remove_number(
                conn,
                self.pipe.account_sid,
                self.service,
                self.number_sid(number),
                short_code=False,
                path=PATH,
                now=self.pipe.clock.now(),
            )

    def delete(self) -> None:
        with self.pipe.db.write() as conn:
            service_use.delete(conn, self.pipe.account_sid, self.service, PATH, self.pipe.clock.now())

    def schedule(self, to: str = TO, *, from_: str | None = None) -> str:
        return self.pipe.send(to, from_=from_, service=self.service, send_at=self.pipe.clock.now() + LATER)

    def send_at_comes(self, carrier: ScriptedCarrier) -> int:
        self.pipe.clock.advance(LATER.total_seconds())
        return self.pipe.dispatch(route=[carrier])


def _other(number: str) -> str:
    return OTHER_SENDER if number == SENDER else SENDER


def test_a_number_taken_out_of_the_pool_before_the_send_at_does_not_send_it(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pool.schedule()
    chosen = pipe.message(sid)["from_"]
    pool.remove(chosen)
    carrier = ScriptedCarrier("c1")

    assert pool.send_at_comes(carrier) == 1
    assert [m.sender for m in carrier.submitted] == [_other(chosen)]
    msg = pipe.message(sid)
    assert (msg["status"], msg["from_"]) == ("sent", _other(chosen))
    [entry] = pipe.events(sid, "sender_chosen")
    assert entry["detail"] == {"sender": _other(chosen), "sender_was": chosen, "messaging_service_sid": pool.service}
    assert pipe.timeline(sid)[:3] == [("created", "scheduled"), ("sender_chosen", None), ("status", "queued")]
    assert pipe.events(sid, "status")[0]["detail"] == {"sender": _other(chosen)}


def test_a_pool_as_it_was_gives_the_same_sender_and_says_nothing(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pool.schedule()
    chosen = pipe.message(sid)["from_"]

    assert pool.send_at_comes(ScriptedCarrier("c1")) == 1
    assert pipe.message(sid)["from_"] == chosen and pipe.events(sid, "sender_chosen") == []


def test_a_from_named_in_the_request_is_kept_whatever_the_pool(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pool.schedule(from_=SENDER)
    assert pipe.message(sid)["sender_from_pool"] is False
    pool.remove(SENDER)  # still the account's number: the request asked for it
    carrier = ScriptedCarrier("c1")

    assert pool.send_at_comes(carrier) == 1
    assert [m.sender for m in carrier.submitted] == [SENDER]


def _assert_failed_at_send_at(pipe: Pipeline, sid: str, code: int, *, service_callback: bool) -> dict[str, Any]:
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"], msg["price"], msg["claimed_by"]) == ("failed", code, None, None)
    assert pipe.parts(sid) == []
    assert pipe.timeline(sid) == [("created", "scheduled"), ("no_pool_sender", "failed")]
    [entry] = pipe.events(sid, "no_pool_sender")
    assert entry["error_code"] == code and entry["detail"]["sender_was"] == msg["from_"]
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == code and "SendAt" in alert["alert_text"]
    [callback] = pipe.callbacks(sid)
    assert (callback["MessageStatus"], callback["ErrorCode"]) == ("failed", str(code))
    # No sender anywhere it is shown: the pool's pick at the create was never used.
    assert callback["From"] == "" and message_json(msg)["from"] is None
    with pipe.db.read() as conn:
        assert list_messages(conn, MessageFilter(pipe.account_sid, from_=msg["from_"]), limit=10) == []
        assert [m["sid"] for m in list_messages(conn, MessageFilter(pipe.account_sid, to=msg["to"]), limit=10)] == [sid]
    assert pipe.callback_urls(sid) == [CALLBACK if not service_callback else "https://hooks.example.com/service"]
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now())
    [finding] = [f for f in report.findings if f.cause == "no_pool_sender"]
    assert f"({code}:" in finding.summary and "carrier_failed" not in report.causes()
    return dict(entry)


def test_a_message_of_a_service_deleted_before_its_send_at_fails_with_21701(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pool.schedule()
    pool.delete()
    carrier = ScriptedCarrier("c1")

    assert pool.send_at_comes(carrier) == 0
    assert carrier.submitted == []
    entry = _assert_failed_at_send_at(pipe, sid, 21701, service_callback=False)  # its own StatusCallback
    assert "does not exist" in entry["detail"]["reason"]


def test_a_pool_emptied_before_the_send_at_fails_the_message_with_21704(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pipe.send(from_=None, callback=None, service=pool.service, send_at=pipe.clock.now() + LATER)
    pool.remove(SENDER)
    pool.remove(OTHER_SENDER)

    assert pool.send_at_comes(ScriptedCarrier("c1")) == 0
    _assert_failed_at_send_at(pipe, sid, 21704, service_callback=True)


def test_a_pool_left_with_nothing_that_reaches_the_recipient_fails_the_message_with_21703(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pool.schedule()  # to a US number
    with pipe.db.write() as conn:
        service_use.add_alpha_sender(conn, pipe.account_sid, pool.service, "Pigeon", pipe.clock.now())
    pool.remove(SENDER)
    pool.remove(OTHER_SENDER)  # an alphanumeric sender cannot text the US

    assert pool.send_at_comes(ScriptedCarrier("c1")) == 0
    _assert_failed_at_send_at(pipe, sid, 21703, service_callback=False)


def test_the_sticky_sender_is_the_one_the_recipient_heard_from_not_the_scheduled_message_s_own(
    pipe: Pipeline,
) -> None:
    """Sticky sender turned on after the message was scheduled: at its SendAt the recipient gets
    the number it last heard from, not the one the scheduled message itself was given."""
    pool = Scheduled(pipe, sticky=False)
    usual = pipe.message(pipe.send(from_=None, service=pool.service))["from_"]  # the pool's choice for TO
    pipe.clock.advance(1)
    heard_from = _other(usual)
    pipe.send(from_=heard_from, service=pool.service)  # the newest message TO heard
    pipe.clock.advance(1)
    sid = pool.schedule()
    assert pipe.message(sid)["from_"] == usual  # no sticky sender at the create
    with pipe.db.write() as conn:
        service_store.update_service(conn, pool.service, now=pipe.clock.now(), sticky_sender=True)
    carrier = ScriptedCarrier("c1")
    pipe.clock.advance(LATER.total_seconds())
    while pipe.dispatch(route=[carrier]):
        pipe.clock.advance(1)

    assert pipe.message(sid)["from_"] == heard_from
    assert [e["detail"]["sender"] for e in pipe.events(sid, "sender_chosen")] == [heard_from]


def test_a_message_not_scheduled_keeps_the_sender_chosen_at_its_create(pipe: Pipeline) -> None:
    pool = Scheduled(pipe)
    sid = pipe.send(from_=None, service=pool.service)
    chosen = pipe.message(sid)["from_"]
    pool.remove(chosen)
    carrier = ScriptedCarrier("c1")

    assert pipe.dispatch(route=[carrier]) == 1
    assert [m.sender for m in carrier.submitted] == [chosen]
