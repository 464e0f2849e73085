"""pigeon.cli_import.TwilioSource against a scripted server (httpx.MockTransport): pages are
followed on the source alone, and a source that misbehaves is refused with a reason."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from pigeon.cli_import import SourceError, TwilioSource

API, MESSAGING, SID = "https://api.example.com", "https://msg.example.com", "AC" + "a" * 32


def source(answer: Callable[[httpx.Request], httpx.Response]) -> TwilioSource:
    client = httpx.Client(transport=httpx.MockTransport(answer), auth=(SID, "t"))
    return TwilioSource(client, api_url=API, messaging_url=MESSAGING, account_sid=SID)


def test_pages_are_followed_on_both_apis() -> None:
    numbers = f"/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json"

    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        if url.startswith(API + numbers):
            second = "Page=1" in url
            body = {
                "incoming_phone_numbers": [{"phone_number": "+1415555010" + ("1" if second else "0")}],
                "next_page_uri": None if second else numbers + "?Page=1&PageSize=1000",
            }
            return httpx.Response(200, json=body)
        if url.startswith(MESSAGING + "/v1/Services?"):
            second = "Page=1" in url
            following = None if second else MESSAGING + "/v1/Services?Page=1"
            return httpx.Response(
                200, json={"services": [{"sid": "MG1" if not second else "MG2"}], "meta": {"next_page_url": following}}
            )
        if "/v1/Services/" in url:
            return httpx.Response(200, json={"phone_numbers": [], "short_codes": [], "alpha_senders": [], "meta": {}})
        return httpx.Response(200, json={"short_codes": [], "next_page_uri": None})

    snap = source(answer).snapshot()
    assert [n.number for n in snap.numbers] == ["+14155550100", "+14155550101"]
    assert len(snap.services) == 2


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (httpx.Response(401, json={"code": 20003}), "refused the account SID and auth token"),
        (httpx.Response(500, text="boom"), "HTTP 500 boom"),
        (httpx.Response(200, text="<html>"), "not a JSON object"),
        (
            httpx.Response(200, json={"services": [], "meta": {"next_page_url": "https://evil.example/v1/Services"}}),
            "elsewhere",
        ),
        (
            httpx.Response(
                200, json={"services": [], "meta": {"next_page_url": MESSAGING + "/v1/Services?PageSize=1000"}}
            ),
            "twice",
        ),
    ],
)
def test_a_misbehaving_source_is_refused_with_the_reason(answer: httpx.Response, says: str) -> None:
    reader = source(lambda request: answer)
    with pytest.raises(SourceError, match=says):
        list(reader._pages_v1("Services", "services"))


@pytest.mark.parametrize(
    "numbers",
    [
        [{"friendly_name": "no number"}],  # phone_number missing
        {"phone_number": "+14155550100"},  # an object where the list belongs
        ["+14155550100"],  # a string where a record belongs
    ],
)
def test_records_not_shaped_as_twilios_are_a_reason_not_a_traceback(numbers: object) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "IncomingPhoneNumbers" in str(request.url):
            return httpx.Response(200, json={"incoming_phone_numbers": numbers, "next_page_uri": None})
        return httpx.Response(200, json={"short_codes": [], "services": [], "next_page_uri": None, "meta": {}})

    with pytest.raises(SourceError, match="not shaped as Twilio's"):
        source(answer).snapshot()


def test_a_number_without_capabilities_is_taken_as_sms_only() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "IncomingPhoneNumbers" in str(request.url):
            body = {"incoming_phone_numbers": [{"phone_number": "+14155550100", "capabilities": None}]}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json={"short_codes": [], "services": [], "meta": {}})

    [number] = source(answer).snapshot().numbers
    assert (number.sms, number.mms, number.voice) == (True, False, False)
