"""The status callback's form body is exactly what `urllib.parse.urlencode` makes of its
parameters (`pigeon.webhooks.sender.form_body` only skips escaping text that needs none)."""

from __future__ import annotations

import ipaddress
import random
from urllib.parse import parse_qsl, urlencode

import pytest

from pigeon.webhooks.pool import denied_address
from pigeon.webhooks.sender import form_body

TRICKY = [
    "",
    "plain",
    "SM0123456789abcdef0123456789abcdef",
    "2010-04-01",
    "a_b.c~d-e",
    "+14155550100",
    "héllo & goodbye",
    "a=b",
    "100%",
    "space here",
    "line\nbreak",
    "emoji 🐦",
    "https://example.com/cb?x=1&y=2#frag",
    "~tilde",
    "*star*",
    "slash/",
]


@pytest.mark.parametrize("value", TRICKY)
def test_each_value_as_urlencode_makes_it(value: str) -> None:
    params = [("Name", value), (value or "empty", "x")]
    assert form_body(params) == urlencode(params).encode("ascii")
    assert parse_qsl(form_body(params).decode(), keep_blank_values=True) == params


def test_random_text_as_urlencode_makes_it() -> None:
    rng = random.Random(20261205)
    alphabet = [chr(c) for c in range(32, 127)] + ["é", "ß", "中", "🐦", "\t", "\n"]
    for _ in range(2000):
        params = [
            (
                "".join(rng.choices(alphabet, k=rng.randrange(0, 6))),
                "".join(rng.choices(alphabet, k=rng.randrange(0, 12))),
            )
            for _ in range(rng.randrange(0, 5))
        ]
        assert form_body(params) == urlencode(params).encode("ascii"), params


def test_denied_networks_cover_addresses_however_they_are_written() -> None:
    denied = [ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10")]
    assert denied_address("169.254.169.254", denied)
    assert denied_address("::ffff:169.254.169.254", denied)  # IPv4 written as IPv6
    assert denied_address("fe80::1%eth0", denied)  # with a zone
    assert not denied_address("10.0.0.5", denied)
    assert not denied_address("2001:db8::1", denied)
    assert not denied_address("169.254.0.1", [])
