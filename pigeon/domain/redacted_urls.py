"""The URLs an application chose, as a redaction leaves them.

An application may carry the text it was sent into the URL it redirects to, by a TwiML
`<Redirect>` or an HTTP redirect's Location: ``/next?Body=hello+there``, ``/said/hello-there``.
Pigeon keeps those URLs (webhook attempts, timelines, alerts), and a redaction cannot tell
which part of one holds the text. So such a URL keeps its scheme and host, which an operator
needs to see which server was asked, and the rest (user, path, query, fragment) is replaced with
the redaction's note: ``https://app.example/[removed when message SM… was redacted]``. The
URLs the account configured (`keep`: a number's webhook and fallback URL) were set before any
text came and are left whole; so is a URL with nothing after its host.

Texts (an alert's, an attempt's error) are read for URLs: from a scheme's ``://`` to the next
blank, quote or bracket, and the value quoted after "<Redirect> URL " or "redirected to ", which
is the application's and may be no URL at all (a relative one, or one Pigeon refused).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["redacted_headers", "redacted_text", "redacted_url", "redacted_value"]

_URL = r"[A-Za-z][A-Za-z0-9+.-]*://(?:\[[^\]\s]*\]|[^\s'\"<>/?#\[\]])*(?:[/?#][^\s'\"<>\[\]]*)?"
#: A URL in a text (its last character no punctuation that ends a sentence), or a quoted value
#: after the words that the webhook's errors put before a URL that the application gave.
_IN_TEXT = re.compile(
    r"(?P<lead>(?:<Redirect> URL|redirected to) )(?P<quoted>'[^']*'|\"[^\"]*\")"
    rf"|(?P<url>{_URL}(?<![).,;:!?]))"
)
_WHOLE_URL = re.compile(_URL)
#: Response headers that name a URL: the redirect's, read relative to the request.
_URL_HEADERS = frozenset({"location", "content-location"})


def redacted_url(url: str, note: str, keep: Collection[str] = ()) -> str:
    """`url` with its scheme and host (and port) kept and the rest replaced with `note`; a
    URL in `keep`, or with nothing after its host, as it is. Not a URL with a host at all
    (a relative one): `note`."""
    if url in keep:
        return url
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return note
    if not parts.scheme or not parts.hostname:
        return note
    if parts.path in ("", "/") and not parts.query and not parts.fragment and "@" not in parts.netloc:
        return url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{'' if port is None else f':{port}'}/{note}"


def redacted_text(text: str, note: str, keep: Collection[str] = ()) -> str:
    """`text` with every URL in it `redacted_url`, and the quoted value of a URL an
    application gave replaced whole when it is no URL with a host."""

    def replace(found: re.Match[str]) -> str:
        if found["url"] is not None:
            return redacted_url(found["url"], note, keep)
        quote, value = found["quoted"][0], found["quoted"][1:-1]
        return f"{found['lead']}{quote}{redacted_url(value, note, keep)}{quote}"

    return _IN_TEXT.sub(replace, text)


def redacted_value(value: Any, note: str, keep: Collection[str] = ()) -> Any:
    """`redacted_text` on every string in a JSON value (a timeline entry's detail, an alert's
    request parameters), keys and nesting kept; a string that is a URL whole is one URL, even
    when it ends with a full stop."""
    if isinstance(value, str):
        if _WHOLE_URL.fullmatch(value):
            return redacted_url(value, note, keep)
        return redacted_text(value, note, keep)
    if isinstance(value, Mapping):
        return {k: redacted_value(v, note, keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted_value(v, note, keep) for v in value]
    return value


def redacted_headers(headers: Any, note: str, keep: Collection[str] = ()) -> Any:
    """An answer's headers (a JSON object) with the URLs they name redacted: a Location may be
    relative (``/said/hello-there``), which is no URL with a host, and goes whole."""
    if not isinstance(headers, Mapping):
        return headers
    return {
        name: redacted_url(value, note, keep)
        if isinstance(value, str) and name.lower() in _URL_HEADERS
        else redacted_value(value, note, keep)
        for name, value in headers.items()
    }
