"""Messages with media at dispatch: the media reach a carrier that carries them from a sender
that can send MMS; without either, a Messaging Service that converts MMS sends the media's
links as text, and anything else is refused with 30011 before any submit. On both stores."""

from __future__ import annotations

from datetime import timedelta

from pigeon.app import diagnose
from pigeon.app.dispatch import DispatchSettings
from pigeon.domain.segments import plan_segments
from pigeon.store.tables import phone_numbers
from tests.integration.pipeline import SENDER, TO, Pipeline, ScriptedCarrier

MEDIA = ("https://cdn.example.com/cat.jpg", "https://cdn.example.com/menu.pdf?v=2")


def test_the_media_reach_the_carrier(pipe: Pipeline) -> None:
    mms = ScriptedCarrier("mms")
    sid = pipe.send(body="look", media=MEDIA)
    assert pipe.dispatch(route=[mms]) == 1
    assert pipe.status(sid) == "sent"
    (submitted,) = mms.submitted
    assert submitted.media_urls == MEDIA  # before, the claim never read them: an SMS went out
    assert submitted.body == "look"


def test_a_message_without_media_is_sent_as_it_was(pipe: Pipeline) -> None:
    text_only = ScriptedCarrier("text", carries_media=False)
    sid = pipe.send(body="plain")
    assert pipe.dispatch(route=[text_only]) == 1
    assert pipe.status(sid) == "sent"
    assert text_only.submitted[0].media_urls == ()


def test_media_skip_the_carriers_that_carry_only_text(pipe: Pipeline) -> None:
    text_only, mms = ScriptedCarrier("text", carries_media=False), ScriptedCarrier("mms")
    sid = pipe.send(body="look", media=MEDIA)
    pipe.dispatch(route=[text_only, mms])
    assert pipe.message(sid)["carrier"] == "mms"
    assert text_only.submitted == []
    assert mms.submitted[0].media_urls == MEDIA


def test_media_no_routed_carrier_can_carry_are_refused_without_a_submit(pipe: Pipeline) -> None:
    text_only = ScriptedCarrier("text", carries_media=False)
    sid = pipe.send(body="look", media=MEDIA)  # from a number, not a Messaging Service
    pipe.dispatch(route=[text_only])
    row = pipe.message(sid)
    assert (row["status"], row["error_code"], row["price"]) == ("failed", 30011, None)
    assert text_only.submitted == []
    (failed,) = [e for e in pipe.events(sid) if e["status"] == "failed"]
    (refusal,) = failed["detail"]["refused_by"]
    assert refusal["carrier"] == "text"
    assert refusal["carrier_code"] == "media:unsupported"


def test_a_converting_service_sends_the_media_as_links(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)  # mms_converter on, as on Twilio
    text_only = ScriptedCarrier("text", carries_media=False)
    body = "Your order is ready. " * 7  # 147 characters: one segment alone, two with the links
    sid = pipe.send(from_=None, service=service, body=body, media=MEDIA)
    pipe.dispatch(route=[text_only])
    row = pipe.message(sid)
    assert row["status"] == "sent"
    (submitted,) = text_only.submitted
    text = f"{body}\n{MEDIA[0]}\n{MEDIA[1]}"
    assert (submitted.body, submitted.media_urls) == (text, ())
    assert submitted.parts == plan_segments(text).parts
    assert len(submitted.parts) == 2
    (sent,) = [e for e in pipe.events(sid) if e["status"] == "sent"]
    assert (sent["detail"]["media_as_links"], sent["detail"]["segments_sent"]) == (2, 2)
    assert row["price"] == DispatchSettings().prices.price(TO, SENDER, 2)  # what went out
    assert row["num_segments"] == 2  # was 1, the body's, until it went as this text


def test_media_sent_as_links_pace_the_sender_by_the_segments_that_went(pipe: Pipeline) -> None:
    """The claim paced the message as one MMS; the text with the links took three segments,
    so its sender (a long code: a segment a second) is busy for three seconds."""
    service = pipe.add_service(SENDER)
    text_only = ScriptedCarrier("text", carries_media=False)
    sid = pipe.send(from_=None, service=service, body="Your order is ready. " * 7 + "x" * 150, media=MEDIA)
    assert pipe.message(sid)["num_segments"] == 1  # an MMS is not segmented
    start = pipe.clock.now()
    pipe.dispatch(route=[text_only])
    assert pipe.message(sid)["num_segments"] == 3
    assert pipe.next_free(SENDER) == start + timedelta(seconds=3)
    plain = pipe.send(body="next")  # the same sender's next message waits its turn
    pipe.clock.advance(2)
    assert pipe.dispatch(route=[text_only]) == 0 and pipe.status(plain) == "queued"
    pipe.clock.advance(1)
    assert pipe.dispatch(route=[text_only]) == 1 and pipe.status(plain) == "sent"


def test_a_service_that_does_not_convert_has_its_media_refused(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER, mms_converter=False)
    text_only = ScriptedCarrier("text", carries_media=False)
    sid = pipe.send(from_=None, service=service, body="look", media=MEDIA)
    pipe.dispatch(route=[text_only])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30011)
    assert text_only.submitted == []


def test_a_converting_service_with_a_carrier_for_media_sends_mms(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    mms = ScriptedCarrier("mms")
    sid = pipe.send(from_=None, service=service, body="look", media=MEDIA)
    pipe.dispatch(route=[mms])
    assert mms.submitted[0].media_urls == MEDIA
    (sent,) = [e for e in pipe.events(sid) if e["status"] == "sent"]
    assert "media_as_links" not in sent["detail"]


def test_an_mms_with_a_long_text_is_one_message_charged_once(pipe: Pipeline) -> None:
    mms = ScriptedCarrier("mms")
    sid = pipe.send(body="x" * 500, media=MEDIA)  # four segments, were it an SMS
    assert pipe.message(sid)["num_segments"] == 1
    pipe.dispatch(route=[mms])
    row = pipe.message(sid)
    assert (row["status"], row["num_segments"]) == ("sent", 1)
    assert row["price"] == DispatchSettings().prices.price(TO, SENDER, 1, mms=True)
    assert row["price"] == "-0.02000"  # the built-in MMS price, not a segment of SMS (-0.00790)


def test_a_converting_service_whose_sender_cannot_send_mms_sends_links(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    with pipe.db.write() as conn:
        conn.execute(phone_numbers.update().where(phone_numbers.c.phone_number == SENDER).values(mms_capable=False))
    mms = ScriptedCarrier("mms")
    sid = pipe.send(from_=None, service=service, body="", media=MEDIA[:1])  # the pool has no MMS sender
    pipe.dispatch(route=[mms])
    assert pipe.status(sid) == "sent"
    (submitted,) = mms.submitted
    assert (submitted.body, submitted.media_urls) == (MEDIA[0], ())
    (sent,) = [e for e in pipe.events(sid) if e["status"] == "sent"]
    assert sent["detail"]["media_as_links_because"] == ["sender"]  # the route carries media


def _no_mms_from(pipe: Pipeline, number: str) -> None:
    with pipe.db.write() as conn:
        conn.execute(phone_numbers.update().where(phone_numbers.c.phone_number == number).values(mms_capable=False))


def test_a_service_that_does_not_convert_refuses_media_from_a_sender_that_cannot_send_mms(pipe: Pipeline) -> None:
    """Before, the converter off, the sender was not looked at: the MMS went to a carrier that
    carries media, from a number that cannot send MMS (from that number itself, the send is
    refused with 21621)."""
    service = pipe.add_service(SENDER, mms_converter=False)
    _no_mms_from(pipe, SENDER)  # the pool has no MMS sender: it gives this one
    mms, text_only = ScriptedCarrier("mms"), ScriptedCarrier("text", carries_media=False)
    sid = pipe.send(from_=None, service=service, body="look", media=MEDIA)
    pipe.dispatch(route=[mms, text_only])
    row = pipe.message(sid)
    assert (row["from_"], row["status"], row["error_code"], row["price"]) == (SENDER, "failed", 30011, None)
    assert mms.submitted == [] and text_only.submitted == []
    (failed,) = [e for e in pipe.events(sid) if e["status"] == "failed"]
    assert [(r["carrier"], r["carrier_code"]) for r in failed["detail"]["refused_by"]] == [
        ("mms", "media:sender"),
        ("text", "media:sender"),
    ]
    said = [r["error"] for r in failed["detail"]["refused_by"]]
    assert said[0] == (
        f"its sender {SENDER} cannot send MMS (it is not an MMS-capable number), and its Messaging "
        "Service does not convert MMS to SMS (MmsConverter is off)"
    )
    assert "nor can text carry media" in said[1]
    assert failed["detail"]["media_refused_because"] == ["sender"]
    with pipe.db.read() as conn:
        report = diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now())
    [finding] = [f for f in report.findings if f.cause == "media_refused"]
    assert f"its sender {SENDER} cannot send MMS" in finding.summary
    assert "carrier_failed" not in report.causes()  # no carrier refused it: Pigeon did
    assert any("MMS-capable number" in a for a in finding.advice)


def test_media_from_a_number_that_lost_mms_since_the_send_are_refused(pipe: Pipeline) -> None:
    mms = ScriptedCarrier("mms")
    sid = pipe.send(body="look", media=MEDIA)  # MMS-capable when accepted
    _no_mms_from(pipe, SENDER)
    pipe.dispatch(route=[mms])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30011)
    assert mms.submitted == []


def test_links_sent_for_want_of_a_media_route_say_so(pipe: Pipeline) -> None:
    service = pipe.add_service(SENDER)
    sid = pipe.send(from_=None, service=service, body="look", media=MEDIA)
    pipe.dispatch(route=[ScriptedCarrier("text", carries_media=False)])
    (sent,) = [e for e in pipe.events(sid) if e["status"] == "sent"]
    assert sent["detail"]["media_as_links_because"] == ["route"]
