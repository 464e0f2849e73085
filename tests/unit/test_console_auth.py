"""The console's signed session cookie and CSRF tokens, its overview chart geometry, and the
links its pages make of stored URLs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from pigeon.console.auth import MAX_AGE, csrf_token, fingerprint, sign, unsign
from pigeon.console.charts import line_chart, nice_step
from pigeon.console.overview import bucket_keys, status_chart
from pigeon.console.web import HERE, link

SECRET = b"s" * 32
NOW = 1_800_000_000.0


def payload() -> dict[str, object]:
    return {"a": "AC" + "1" * 32, "c": "AC" + "1" * 32, "k": None, "f": "x", "n": "nonce", "t": int(NOW)}


def test_a_signed_cookie_round_trips() -> None:
    assert unsign(SECRET, sign(SECRET, payload()), now=NOW + 5) == payload()


def test_a_tampered_cookie_or_another_secret_is_refused() -> None:
    cookie = sign(SECRET, payload())
    body, _, mac = cookie.partition(".")
    forged = sign(b"other" * 8, {**payload(), "c": "AC" + "2" * 32})
    assert unsign(SECRET, forged, now=NOW) is None
    assert unsign(SECRET, forged.partition(".")[0] + "." + mac, now=NOW) is None
    assert unsign(SECRET, body, now=NOW) is None
    assert unsign(SECRET, "garbage", now=NOW) is None
    assert unsign(b"x" * 32, cookie, now=NOW) is None


def test_a_cookie_expires() -> None:
    cookie = sign(SECRET, payload())
    assert unsign(SECRET, cookie, now=NOW + MAX_AGE) is not None
    assert unsign(SECRET, cookie, now=NOW + MAX_AGE + 1) is None
    assert unsign(SECRET, cookie, now=NOW - 60) is None  # issued in the future: not ours


def test_csrf_tokens_and_fingerprints_are_bound_to_their_input() -> None:
    assert csrf_token(SECRET, "a") == csrf_token(SECRET, "a") != csrf_token(SECRET, "b")
    assert csrf_token(b"t" * 32, "a") != csrf_token(SECRET, "a")
    assert fingerprint(SECRET, "token-1") != fingerprint(SECRET, "token-2")
    assert "token" not in fingerprint(SECRET, "token-1")


def test_nice_steps_give_four_even_ticks() -> None:
    assert [nice_step(p) for p in (0, 2, 4, 5, 7, 9, 30, 81, 1000)] == [1, 1, 1, 2, 2, 5, 10, 50, 500]
    chart = line_chart(["a", "b", "c"], {"sent": [0, 3, 7]})
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    assert chart.series[0].total == 10 and chart.peak == 7


def test_the_status_chart_places_counts_in_their_hour() -> None:
    now = datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    keys = bucket_keys(now, "hour", 24)
    assert keys[0] == ("2026-01-14T13", "13:00") and keys[-1] == ("2026-01-15T12", "12:00")
    chart = status_chart(
        [("2026-01-15T12", "delivered", 3), ("2026-01-14T13", "failed", 1), ("1999-01-01T00", "sent", 9)], keys
    )
    totals = {s.name: s.total for s in chart.series}
    assert totals == {"sent": 0, "delivered": 3, "undelivered": 0, "failed": 1}
    assert bucket_keys(now, "day", 7)[-1] == ("2026-01-15", "01-15")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "//evil.example.com/x",
        "/\\evil.example.com/x",  # browsers read a backslash as a slash
        "/\t/evil.example.com/x",  # and drop tabs and newlines
        "relative/path",
        "ftp://files.example.com/x",
    ],
)
def test_a_url_other_than_http_or_https_shows_as_text_not_a_link(url: str) -> None:
    shown = link(url)
    assert "<a" not in shown and "href" not in shown
    assert shown == escape(url)


def test_an_http_or_https_url_becomes_a_link_its_text_escaped() -> None:
    assert link("https://example.com/a?b=1&c=2") == (
        '<a href="https://example.com/a?b=1&amp;c=2" rel="noreferrer">https://example.com/a?b=1&amp;c=2</a>'
    )
    assert link('HTTP://example.com/"><script>') == (
        '<a href="HTTP://example.com/&#34;&gt;&lt;script&gt;" rel="noreferrer">'
        "HTTP://example.com/&#34;&gt;&lt;script&gt;</a>"
    )
    assert link("/v1/Errors/11200") == '<a href="/v1/Errors/11200" rel="noreferrer">/v1/Errors/11200</a>'
    assert link(None) == link("") == ""


def test_no_template_holds_what_the_content_security_policy_refuses() -> None:
    """The console's CSP allows script and style from its own files only: an inline script, an
    event-handler attribute, a style attribute or a javascript: URL would silently stop working."""
    refused = re.compile(r"<script(?![^>]*\bsrc=)|<style|\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.IGNORECASE)
    found = [
        f"{path.name}: {m.group(0).strip()}"
        for path in sorted((HERE / "templates").glob("*.html"))
        for m in refused.finditer(path.read_text())
    ]
    assert found == []
