"""A STOP whose sender the carrier wrote nationally (SMPP TON 0: "4155552671" to a US number,
"07700900123" to a UK one) opts out the number that sends to it are written as: in E.164, read
in the country of the number it texted. The create check and the dispatcher's (exact matches on
`To`) refuse those sends with 21610, START under any spelling lifts it, and the inbound record
and its webhook keep the sender as it came. Both stores.

Before, the opt-out was kept under the carrier's spelling, which no send in E.164 matched.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from pigeon.app import numbers as number_use
from pigeon.app.inbound import Intake, receive
from pigeon.app.send import SendRequest, prepare_message
from pigeon.domain.errors import ApiError
from pigeon.ports import InboundSms
from pigeon.store.optouts import list_opt_outs
from pigeon.store.tables import messages, phone_numbers, webhook_deliveries
from tests.integration.pipeline import SENDER, TO, Pipeline, ScriptedCarrier

NATIONAL_TO = "4155552671"  # TO, as a US carrier writes it under TON 0
UK_NUMBER, UK_HANDSET, UK_NATIONAL = "+447700900999", "+447700900123", "07700900123"


def _text(pipe: Pipeline, body: str, sender: str, to: str = SENDER) -> Intake:
    pipe.clock.advance(1)
    with pipe.db.write() as conn:
        return receive(
            conn,
            InboundSms(carrier="smpp", sender=sender, recipient=to, body=body),
            now=pipe.clock.now(),
            base_url="https://pigeon.example.com",
        )


def _create_code(pipe: Pipeline, to: str, from_: str | None = SENDER, service: str | None = None) -> int | None:
    """The error a create gets, None when it is taken."""
    req = SendRequest(to=to, from_=from_, messaging_service_sid=service, body="hi")
    with pipe.db.read() as conn:
        try:
            prepare_message(conn, pipe.account_sid, req, pipe.clock.now())
        except ApiError as exc:
            return exc.code
    return None


def _opt_outs(pipe: Pipeline) -> list[tuple[str, str, str]]:
    with pipe.db.read() as conn:
        return [(o["sender"], o["recipient"], o["scope"]) for o in list_opt_outs(conn, account_sid=pipe.account_sid)]


def _inbound(pipe: Pipeline, sid: str) -> dict[str, Any]:
    with pipe.db.read() as conn:
        return dict(conn.execute(sa.select(messages).where(messages.c.sid == sid)).mappings().one())


def _webhook_from(pipe: Pipeline, sid: str) -> str:
    with pipe.db.read() as conn:
        params = conn.execute(
            sa.select(webhook_deliveries.c.params).where(webhook_deliveries.c.message_sid == sid)
        ).scalar_one()
    return str(dict((name, value) for name, value in params)["From"])


def test_a_stop_written_nationally_blocks_sends_in_e164_at_create_and_at_the_claim(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        conn.execute(
            phone_numbers.update()
            .where(phone_numbers.c.phone_number == SENDER)
            .values(sms_url="https://app.example/in")
        )
    waiting = pipe.send()  # accepted before the STOP, still queued
    stop = _text(pipe, "STOP", NATIONAL_TO)

    assert _opt_outs(pipe) == [(SENDER, TO, "number")]
    assert _create_code(pipe, TO) == 21610
    carrier = ScriptedCarrier("c1")
    assert pipe.dispatch(route=[carrier]) == 1  # the confirmation, to a number it reaches
    assert [m.recipient for m in carrier.submitted] == [TO]
    assert (pipe.status(waiting), pipe.message(waiting)["error_code"]) == ("failed", 21610)
    # The record and the webhook show the sender as the carrier wrote it.
    assert stop.message_sid is not None
    assert _inbound(pipe, stop.message_sid)["from_"] == NATIONAL_TO
    assert _webhook_from(pipe, stop.message_sid) == NATIONAL_TO

    _text(pipe, "START", "14155552671")  # another spelling of the same handset
    assert _opt_outs(pipe) == []
    assert _create_code(pipe, TO) is None


def test_a_stop_to_a_uk_number_of_a_service_is_read_in_the_uk_and_covers_the_service(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        number_use.provision(conn, account_sid=pipe.account_sid, phone_number=UK_NUMBER, now=pipe.clock.now())
    service = pipe.add_service(UK_NUMBER)
    intake = _text(pipe, "STOP", UK_NATIONAL, to=UK_NUMBER)

    assert intake.reply_sids  # the confirmation is sent, to +447700900123
    assert pipe.message(intake.reply_sids[0])["to"] == UK_HANDSET
    assert _opt_outs(pipe) == [(service, UK_HANDSET, "service")]
    assert _create_code(pipe, UK_HANDSET, from_=UK_NUMBER) == 21610
    assert _create_code(pipe, UK_HANDSET, from_=None, service=service) == 21610
    _text(pipe, "UNSTOP", UK_NATIONAL, to=UK_NUMBER)
    assert _opt_outs(pipe) == []


def test_a_sender_that_makes_no_number_in_the_receiving_country_is_kept_as_written(pipe: Pipeline) -> None:
    """No country is guessed: a UK national spelling texted to a US number is no US number."""
    _text(pipe, "STOP", UK_NATIONAL)
    assert _opt_outs(pipe) == [(SENDER, UK_NATIONAL, "number")]
