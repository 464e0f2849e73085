"""The doctor asked about a number as people write it: "(415) 555-2671", "07700 900123".

It reads the spelling in the sender's country, or in the countries of the account's numbers,
says which E.164 number it searched, and searches the spelling as given too (a carrier may
report an inbound text's addresses nationally). On both stores, through the app layer and the
doctor's HTTP API."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx

from pigeon import bootstrap
from pigeon.app import numbers as number_use
from pigeon.app.inbound import receive
from pigeon.config import load_settings
from pigeon.ports import InboundSms
from tests.integration.pipeline import SENDER, TO, Pipeline
from tests.integration.test_diagnose import blocked, duplicates, number, only, post, recipient, rows, text_in

UK_NUMBER = "+447700900555"
UK_HANDSET = "+447700900123"


def add_uk_number(pipe: Pipeline) -> None:
    with pipe.db.write() as conn:
        number_use.provision(conn, account_sid=pipe.account_sid, phone_number=UK_NUMBER, now=pipe.clock.now())


def test_a_formatted_national_number_finds_the_messages_to_its_e164_number(pipe: Pipeline) -> None:
    sid = pipe.send(to=TO)  # +14155552671, from the account's US number: waiting in the queue
    for asked in ("(415) 555-2671", "415-555-2671", "4155552671"):
        report = recipient(pipe, asked)
        assert report.subject["messages"] == [sid], asked
        assert report.subject["to"] == TO
        assert (report.subject["to_as_given"], report.subject["read_in"]) == (asked, "US")
        assert "number_not_e164" not in report.causes()
    # Asked in E.164, the subject says nothing more.
    assert "read_in" not in recipient(pipe, TO).subject


def test_a_uk_national_spelling_is_read_in_the_country_of_the_accounts_uk_number(pipe: Pipeline) -> None:
    add_uk_number(pipe)
    sid = pipe.send(to=UK_HANDSET, from_=UK_NUMBER)
    report = recipient(pipe, "07700900123")
    assert report.subject["messages"] == [sid]
    assert (report.subject["to"], report.subject["read_in"]) == (UK_HANDSET, "GB")


def test_a_spelling_that_reads_in_none_of_the_accounts_countries_is_not_guessed(pipe: Pipeline) -> None:
    report = recipient(pipe, "07700900123")  # the account has US numbers only
    assert report.subject["to"] == "07700900123" and "read_in" not in report.subject
    only(report, "number_not_e164")


def test_blocked_reads_the_recipient_in_the_senders_country_and_finds_a_stop_the_carrier_spelled_nationally(
    pipe: Pipeline,
) -> None:
    add_uk_number(pipe)
    # The carrier reports the handset as "07700900123": the opt-out is kept under that spelling.
    sms = InboundSms(carrier="simulator", sender="07700900123", recipient=UK_NUMBER, body="STOP", raw={})
    with pipe.db.write() as conn:
        receive(conn, sms, now=pipe.clock.now(), base_url="http://pigeon.test")
    report = blocked(pipe, "07700900123", from_=UK_NUMBER)
    assert (report.subject["to"], report.subject["read_in"]) == (UK_HANDSET, "GB")
    assert report.causes()[0] == "opted_out", report.causes()
    assert report.checks[0]["ok"] is False


def test_the_number_flow_and_duplicates_read_a_national_spelling(pipe: Pipeline) -> None:
    report = number(pipe, "(415) 555-0100")
    assert "number_not_on_account" not in report.causes()
    assert (report.subject["phone_number"], report.subject["read_in"]) == (SENDER, "US")
    for _ in range(2):
        assert post(pipe, TO, "same text") is not None
    report = duplicates(pipe, "(415) 555-2671")
    assert report.subject["to"] == TO
    assert report.causes() == ["app_sent_multiple_requests"], report.causes()


def test_unroutable_texts_the_carrier_addressed_nationally_are_found(pipe: Pipeline) -> None:
    """A carrier gives the recipient as "4155550100": no number is stored so, the text is kept
    as unroutable under that spelling, and asking about the number as written finds it."""
    assert text_in(pipe, "hello", to="4155550100") is None
    [f] = [f for f in number(pipe, "4155550100").findings if f.cause == "unroutable_inbound"]
    assert [r["to"] for r in rows(f, "unroutable_inbound")] == ["4155550100"]


def _api(pipe: Pipeline, database_url: str, path: str, params: dict[str, str]) -> Any:
    app = bootstrap.build_api(load_settings(environ={}, database_url=database_url), pipe.db)

    async def get() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            auth = (pipe.account_sid, pipe.auth_token)
            async with httpx.AsyncClient(transport=transport, base_url="http://t", auth=auth) as client:
                return await client.get(f"/2010-04-01/Accounts/{pipe.account_sid}/Doctor{path}", params=params)

    response = asyncio.run(get())
    assert response.status_code == 200, response.text
    return response.json()


def test_the_doctor_api_reads_a_national_spelling(pipe: Pipeline, database_url: str) -> None:
    sid = pipe.send(to=TO)
    answer = _api(pipe, database_url, "/Messages.json", {"To": "(415) 555-2671"})
    assert answer["subject"]["messages"] == [sid]
    assert (answer["subject"]["to"], answer["subject"]["to_as_given"], answer["subject"]["read_in"]) == (
        TO,
        "(415) 555-2671",
        "US",
    )
    answer = _api(pipe, database_url, "/Numbers/" + quote("(415) 555-0100") + ".json", {"TestRequest": "false"})
    assert answer["subject"]["phone_number"] == SENDER
    assert "number_not_on_account" not in [f["cause"] for f in answer["findings"]]
    answer = _api(pipe, database_url, "/Blocked.json", {"To": "4155552671", "From": SENDER})
    assert answer["subject"]["to"] == TO
    assert answer["checks"][0]["ok"] is True
