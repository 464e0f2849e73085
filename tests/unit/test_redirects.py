"""Which HTTP redirects an incoming-message webhook follows, to where, and by which method."""

from __future__ import annotations

import pytest

from pigeon.domain.redirects import FOLLOWED, Hop, InvalidRedirect, is_redirect, next_hop

URL = "https://app.example.com/sms/in?tenant=7"


@pytest.mark.parametrize(
    ("status", "method", "hop"),
    [
        (301, "POST", Hop("https://app.example.com/v2/sms", "POST")),  # the message's POST, not a browser's GET
        (302, "POST", Hop("https://app.example.com/v2/sms", "POST")),
        (303, "POST", Hop("https://app.example.com/v2/sms", "GET")),  # see other: fetch the answer
        (307, "POST", Hop("https://app.example.com/v2/sms", "POST")),
        (308, "post", Hop("https://app.example.com/v2/sms", "POST")),
        (302, "GET", Hop("https://app.example.com/v2/sms", "GET")),
    ],
)
def test_a_followed_redirect_keeps_the_method_except_see_other(status: int, method: str, hop: Hop) -> None:
    assert next_hop(status, {"content-type": "text/html", "location": "/v2/sms"}, URL, method) == hop


@pytest.mark.parametrize(
    ("location", "target"),
    [
        ("/v2/sms", "https://app.example.com/v2/sms"),
        ("next", "https://app.example.com/sms/next"),
        ("?tenant=8", "https://app.example.com/sms/in?tenant=8"),
        ("//other.example.net/hook", "https://other.example.net/hook"),
        ("  https://other.example.net/hook  ", "https://other.example.net/hook"),
        ("http://app.example.com/sms", "http://app.example.com/sms"),
    ],
)
def test_the_location_is_read_against_the_url_that_answered(location: str, target: str) -> None:
    # Header names come lower-cased from the sender; any case is read.
    assert next_hop(302, {"Location": location}, URL, "POST").url == target


@pytest.mark.parametrize(
    ("status", "headers", "why"),
    [
        (300, {"location": "/a"}, "no redirect Pigeon follows"),
        (304, {}, "no redirect Pigeon follows"),
        (302, {}, "without a Location"),
        (302, {"location": "  "}, "without a Location"),
        (302, {"location": "ftp://files.example.com/twiml"}, "no http(s) URL"),
        (301, {"location": "javascript:alert(1)"}, "no http(s) URL"),
        (307, {"location": "http://[::1"}, "no http(s) URL"),
    ],
)
def test_a_redirect_that_cannot_be_followed_says_why(status: int, headers: dict[str, str], why: str) -> None:
    with pytest.raises(InvalidRedirect) as err:
        next_hop(status, headers, URL, "POST")
    assert why in err.value.detail


def test_redirects_are_the_3xx_answers() -> None:
    assert [s for s in (200, 299, 300, 301, 308, 399, 400) if is_redirect(s)] == [300, 301, 308, 399]
    assert sorted(FOLLOWED) == [301, 302, 303, 307, 308]


def test_a_refused_location_is_told_without_its_password() -> None:
    with pytest.raises(InvalidRedirect) as err:
        next_hop(302, {"location": "ftp://user:s3cret@files.example.com/twiml"}, URL, "POST")
    assert "s3cret" not in err.value.detail and "ftp://user:***@files.example.com/twiml" in err.value.detail
