"""The origin of a receiver's URL: one key for every spelling of one server; a URL as a log
line may show it, and texts and JSON values that may hold one."""

from __future__ import annotations

import pytest

from pigeon.domain.urls import (
    ascii_url,
    is_valid_http_url,
    mask_credentials,
    mask_credentials_in,
    origin_of,
    resolve,
    url_for_log,
    without_credentials,
)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Hooks.Example.com/status?tenant=7", "https://hooks.example.com:443"),
        ("https://hooks.example.com:443/other", "https://hooks.example.com:443"),
        ("HTTP://hooks.example.com/a", "http://hooks.example.com:80"),
        ("http://user:secret@hooks.example.com:8080/a", "http://hooks.example.com:8080"),
        ("http://127.0.0.1:9102/cb", "http://127.0.0.1:9102"),
        ("http://[::1]:8080/x", "http://::1:8080"),
    ],
)
def test_one_origin_per_server(url: str, origin: str) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize("url", ["not a url", "http://h:99999/", "/relative/path", ""])
def test_a_url_without_a_server_is_its_own_origin(url: str) -> None:
    assert origin_of(url) == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:s3cret@hooks.example.com/path?q=1", "http://user:***@hooks.example.com/path?q=1"),
        ("https://user:s3cret@hooks.example.com:8443", "https://user:***@hooks.example.com:8443"),
        ("https://user:p%40ss@hooks.example.com/a@b", "https://user:***@hooks.example.com/a@b"),
        ("https://user:p@ss@hooks.example.com/", "https://user:***@hooks.example.com/"),
        ("https://t0ken@hooks.example.com/", "https://***@hooks.example.com/"),  # a user alone may be a token
        ("HTTP://user:s3cret@[::1]:8080/x", "HTTP://user:***@[::1]:8080/x"),
        ("http://user:s3cret@h:99999/", "http://user:***@h:99999/"),  # a port that does not parse
        ("https://hooks.example.com/status?to=a@b.example", "https://hooks.example.com/status?to=a@b.example"),
        ("https://hooks.example.com/", "https://hooks.example.com/"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_a_url_for_a_log_line_keeps_no_password(url: str, shown: str) -> None:
    assert url_for_log(url) == shown


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Status callback to https://cb:s3cret@hooks.example.com/x failed after 1 attempt: HTTP 404",
            "Status callback to https://cb:***@hooks.example.com/x failed after 1 attempt: HTTP 404",
        ),
        (
            "https://a:p@ss@h.example/x then http://t0ken@h.example",
            "https://a:***@h.example/x then http://***@h.example",
        ),
        (
            "The incoming-message webhook POST https://u:p@h.example failed",
            "The incoming-message webhook POST https://u:***@h.example failed",
        ),
        ("https://h.example/status?to=a@b.example", "https://h.example/status?to=a@b.example"),
        ("write to ops@example.com or see https://h.example/", "write to ops@example.com or see https://h.example/"),
        ("no url here", "no url here"),
    ],
)
def test_a_text_keeps_no_password_of_the_urls_in_it(text: str, shown: str) -> None:
    assert mask_credentials(text) == shown


def test_a_json_value_keeps_no_password_in_any_string() -> None:
    value = {
        "url": "https://u:pw@h.example/a",
        "requests": [{"url": "https://u:pw@h.example/b", "status": 500}, ("ErrorUrl", "https://u:pw@h.example/c")],
        "attempts": 2,
        "alert_sid": None,
    }
    assert mask_credentials_in(value) == {
        "url": "https://u:***@h.example/a",
        "requests": [{"url": "https://u:***@h.example/b", "status": 500}, ["ErrorUrl", "https://u:***@h.example/c"]],
        "attempts": 2,
        "alert_sid": None,
    }


@pytest.mark.parametrize(
    ("reference", "resolved"),
    [
        ("/sms/next?step=2", "https://app.example.com/sms/next?step=2"),
        ("next", "https://app.example.com/hooks/next"),
        (" https://other.example.com/x ", "https://other.example.com/x"),
        ("//cdn.example.com/a.png", "https://cdn.example.com/a.png"),
    ],
)
def test_a_reference_is_read_against_its_document(reference: str, resolved: str) -> None:
    assert resolve("https://app.example.com/hooks/sms", reference) == resolved


@pytest.mark.parametrize(
    "reference",
    ["http://[::1", "http://a.example:99999/", "ftp://files.example.com/x", "http://bad_host.example/", "http://"],
)
def test_a_reference_that_is_no_usable_url_resolves_to_none(reference: str) -> None:
    """urljoin raises ValueError on the first one: it must not escape."""
    assert resolve("https://app.example.com/sms", reference) is None


@pytest.mark.parametrize(
    ("url", "told"),
    [
        ("https://bot:s3cret-pass@app.example.com/sms", "https://app.example.com/sms"),
        ("https://t0ken@app.example.com/sms?x=1", "https://app.example.com/sms?x=1"),
        ("https://u:p@ss@app.example.com:8443/a@b", "https://app.example.com:8443/a@b"),
        ("https://app.example.com/sms#ct=2000&rc=3", "https://app.example.com/sms"),
        ("https://u:pw@app.example.com/sms?x=1#rt=500", "https://app.example.com/sms?x=1"),
        ("https://app.example.com/sms", "https://app.example.com/sms"),
        ("not a url", "not a url"),
    ],
)
def test_a_url_told_to_another_receiver_has_no_credentials_nor_fragment(url: str, told: str) -> None:
    assert without_credentials(url) == told


@pytest.mark.parametrize(
    ("url", "valid"),
    [("http://hooks.example.com:0/cb", False), ("http://[::1]:8080/cb", True), ("https://h_1.example.com/", False)],
)
def test_an_http_url_has_a_port_and_a_host_pigeon_can_reach(url: str, valid: bool) -> None:
    assert is_valid_http_url(url) is valid


@pytest.mark.parametrize(
    ("url", "encoded"),
    [
        ("https://example.com/photos/☃.jpg", "https://example.com/photos/%E2%98%83.jpg"),
        (
            "https://example.com/фото.jpg?q=été#à",
            "https://example.com/%D1%84%D0%BE%D1%82%D0%BE.jpg?q=%C3%A9t%C3%A9#%C3%A0",
        ),
        # escapes and reserved characters stay as given; a "%" that starts no escape does not
        ("https://example.com/a%20b/%e2%98%83?x=%2F&y=[1]&z=a+b;c=d!*'()$,@~", None),
        ("https://example.com/100%.jpg?p=%zz", "https://example.com/100%25.jpg?p=%25zz"),
        # what a URL may not hold at all: quotes, angle brackets, blanks, controls, braces
        ('https://e.com/a.jpg"><script>', "https://e.com/a.jpg%22%3E%3Cscript%3E"),
        ("https://e.com/a b\r\n{|}^`\\", "https://e.com/a%20b%0D%0A%7B%7C%7D%5E%60%5C"),
        ("https://e.com/\udc80", "https://e.com/%ED%B2%80"),  # a lone surrogate: never an error
    ],
)
def test_ascii_url_encodes_only_what_a_url_may_not_hold(url: str, encoded: str | None) -> None:
    expected = url if encoded is None else encoded
    assert ascii_url(url) == expected
    assert ascii_url(expected) == expected  # encoding twice changes nothing
    assert expected.isascii()


def test_a_path_that_is_not_ascii_is_valid_and_a_host_is_not() -> None:
    assert is_valid_http_url("https://example.com/photos/☃.jpg")
    assert not is_valid_http_url("https://bücher.de/a.jpg")
    assert not is_valid_http_url(ascii_url("https://bücher.de/a.jpg"))  # an escaped host neither
