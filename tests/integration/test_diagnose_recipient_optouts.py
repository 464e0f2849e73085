"""The doctor's recipient flow (`Doctor/Messages.json?To=`, `pigeon doctor message --to`) puts
its 21610 refusals down to the opt-outs of the senders they were for: each refused request's
From and the Messaging Service that number is in. Another sender's opt-out refused none of
them; once the refused senders' opt-outs are gone, it says the recipient opted back in. Both
stores.

Before, any opt-out of the recipient was named, also one of a sender the application never
used, after the recipient had opted back in to the one it did use.
"""

from __future__ import annotations

from pigeon.store import optouts as optout_store
from tests.integration.pipeline import OTHER_SENDER, SENDER, Pipeline
from tests.integration.test_diagnose import HANDSET, post, recipient, rows, text_in

UNRELATED = "+14155550122"  # a number the recipient once said STOP to, not one the sends used


def _opted_out_of_unrelated(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        optout_store.record_opt_out(
            conn,
            account_sid=pipe.account_sid,
            sender=UNRELATED,
            recipient=HANDSET,
            scope="number",
            keyword="QUIT",
            inbound_message_sid=None,
            now=pipe.clock.now(),
        )


def test_an_opt_out_of_another_sender_is_not_blamed_after_the_recipient_opted_back_in(pipe: Pipeline) -> None:
    _opted_out_of_unrelated(pipe)
    text_in(pipe, "STOP")
    pipe.clock.advance(1)
    assert post(pipe, HANDSET) is None  # 21610, from SENDER
    pipe.clock.advance(1)
    text_in(pipe, "START")
    pipe.clock.advance(1)
    assert post(pipe, HANDSET) is not None

    report = recipient(pipe, HANDSET)
    assert "opted_out" not in report.causes()
    [back] = [f for f in report.findings if f.cause == "opted_back_in"]
    assert SENDER in back.summary and UNRELATED not in back.summary


def test_a_refused_senders_own_and_service_opt_outs_are_named_and_no_other(pipe: Pipeline) -> None:
    _opted_out_of_unrelated(pipe)
    service = pipe.add_service(SENDER, OTHER_SENDER)
    text_in(pipe, "STOP", to=OTHER_SENDER)  # service-wide: SENDER's sends are refused too
    pipe.clock.advance(1)
    assert post(pipe, HANDSET) is None

    [blocked] = [f for f in recipient(pipe, HANDSET).findings if f.cause == "opted_out"]
    assert [(o["sender"], o["scope"]) for o in rows(blocked, "opt_out")] == [(service, "service")]


def test_a_refusal_through_a_service_without_a_from_still_finds_the_opt_out(pipe: Pipeline) -> None:
    """The request log keeps no service SID: such a refusal is not narrowed."""
    service = pipe.add_service(SENDER, OTHER_SENDER)
    text_in(pipe, "STOP")
    pipe.clock.advance(1)
    assert post(pipe, HANDSET, from_=None, service=service) is None

    [blocked] = [f for f in recipient(pipe, HANDSET).findings if f.cause == "opted_out"]
    assert [o["sender"] for o in rows(blocked, "opt_out")] == [service]
