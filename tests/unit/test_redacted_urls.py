"""The URLs an application chose, as a redaction leaves them: scheme and host, then the note."""

from __future__ import annotations

import pytest

from pigeon.domain.redacted_urls import redacted_headers, redacted_text, redacted_url, redacted_value

NOTE = "[removed when message SM1 was redacted]"
HOOK = "https://app.example/sms"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://app.example/next?Body=hello+there", f"https://app.example/{NOTE}"),
        ("https://app.example/said/hello-there", f"https://app.example/{NOTE}"),
        ("http://APP.example:8080/x#hello", f"http://app.example:8080/{NOTE}"),
        ("https://user:***@app.example/", f"https://app.example/{NOTE}"),  # a user name may be a token
        ("https://[::1]:8443/hello", f"https://[::1]:8443/{NOTE}"),
        ("https://app.example/", "https://app.example/"),  # nothing after the host to hide
        ("https://app.example", "https://app.example"),
        (HOOK, HOOK),  # configured: kept whole
        ("/said/hello-there", NOTE),  # a relative URL holds no host to keep
        ("next?Body=hello", NOTE),
        ("https://app.example:99999/hello", NOTE),  # no port a URL can have: nothing of it kept
    ],
)
def test_a_url_keeps_its_scheme_and_host(url: str, shown: str) -> None:
    assert redacted_url(url, NOTE, {HOOK}) == shown


def test_a_redacted_url_redacted_again_takes_the_new_note() -> None:
    once = redacted_url("https://app.example/hello", NOTE, ())
    assert redacted_url(once, "[erased]", ()) == "https://app.example/[erased]"


def test_urls_in_a_text() -> None:
    text = (
        "The incoming-message webhook POST https://app.example/said/hello-there failed: "
        "the application redirected to 'ftp://files.example/hello', which is no http(s) URL "
        "(see https://app.example/x?hello.), after https://app.example/sms"
    )
    assert redacted_text(text, NOTE, {HOOK}) == (
        f"The incoming-message webhook POST https://app.example/{NOTE} failed: "
        f"the application redirected to 'ftp://files.example/{NOTE}', which is no http(s) URL "
        f"(see https://app.example/{NOTE}.), after https://app.example/sms"
    )


def test_the_quoted_url_an_application_gave_goes_whole_when_it_has_no_host() -> None:
    text = 'the <Redirect> URL "next?Body=it\'s me" is not a valid http(s) URL'
    assert redacted_text(text, NOTE) == f'the <Redirect> URL "{NOTE}" is not a valid http(s) URL'


def test_a_redacted_text_is_left_as_it_is() -> None:
    text = redacted_text("asked https://app.example/hello then", NOTE)
    assert redacted_text(text, "[erased]") == text == f"asked https://app.example/{NOTE} then"


def test_a_json_value() -> None:
    params = [("From", "+14155550100"), ("ErrorUrl", "https://app.example/said/hello."), ("ErrorCode", "11216")]
    detail = {"requests": [{"url": "https://app.example/next?Body=hello", "status": 302}], "n": 1}
    assert redacted_value(params, NOTE) == [
        ["From", "+14155550100"],
        ["ErrorUrl", f"https://app.example/{NOTE}"],  # a whole URL, its full stop included
        ["ErrorCode", "11216"],
    ]
    assert redacted_value(detail, NOTE) == {"requests": [{"url": f"https://app.example/{NOTE}", "status": 302}], "n": 1}
    assert redacted_value(None, NOTE) is None


def test_headers() -> None:
    headers = {"Location": "/said/hello-there", "content-location": "https://app.example/a/hello", "X-N": 2}
    assert redacted_headers(headers, NOTE) == {
        "Location": NOTE,
        "content-location": f"https://app.example/{NOTE}",
        "X-N": 2,
    }
    assert redacted_headers({"Refresh": "0; url=https://app.example/hello"}, NOTE) == {
        "Refresh": f"0; url=https://app.example/{NOTE}"
    }
    assert redacted_headers(None, NOTE) is None
