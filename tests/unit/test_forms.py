"""pigeon.api.forms: each name and value is read as UTF-8 on its own; one that is not is
refused naming its parameter, never re-read (with every other field) as Latin-1."""

from __future__ import annotations

import pytest

from pigeon.api.forms import parse_form
from pigeon.domain.errors import ApiError


def test_fields_are_utf8_in_order_with_blanks_kept() -> None:
    raw = b"Body=Ol%C3%A1+%F0%9F%91%8D&To=%2B1&Body=&Flag"
    assert parse_form(raw) == [("Body", "Olá 👍"), ("To", "+1"), ("Body", ""), ("Flag", "")]


def test_raw_utf8_bytes_are_read_as_utf8() -> None:
    assert parse_form("Body=café".encode()) == [("Body", "café")]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"Body=Ol%C3%A1&Tags=caf%E9", "'Tags'"),
        (b"Body=caf\xe9", "'Body'"),
        (b"Body=%ED%A0%80", "'Body'"),  # a lone surrogate is no UTF-8
        (b"Body=%C3", "'Body'"),  # a sequence cut short
        (b"caf%E9=1", "name"),
        (b"T" * 100 + b"=%FF", "'" + "T" * 64 + "…'"),
    ],
)
def test_a_field_that_is_not_utf8_is_refused_by_name(raw: bytes, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_form(raw)
    assert caught.value.code == 20422 and words in caught.value.message and "UTF-8" in caught.value.message


def test_nul_is_refused() -> None:
    with pytest.raises(ApiError, match="NUL"):
        parse_form(b"Body=a%00b")
