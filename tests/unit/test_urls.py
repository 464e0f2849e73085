"""The origin of a receiver's URL: one key for every spelling of one server."""

from __future__ import annotations

import pytest

from pigeon.domain.urls import origin_of


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
