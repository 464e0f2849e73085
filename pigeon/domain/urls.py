"""Rules for URLs that customers give us (callbacks, webhooks, media), and how a log line shows one.

A webhook URL may carry credentials (``https://user:password@host/path``, Twilio's documented
way to protect a callback). Only the outbox row that sends it keeps them: everything else that
names the URL (log lines, alerts, timelines, webhook attempts, exports, pages) shows it through
`url_for_log`, or a text or JSON value that may hold one through `mask_credentials` /
`mask_credentials_in`; another receiver is told it through `without_credentials`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

MAX_URL_LENGTH = 4000
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


#: No URL may hold a blank or a control character (NUL among them, which no store can keep).
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def is_valid_http_url(url: str, *, max_length: int = MAX_URL_LENGTH) -> bool:
    """An absolute http(s) URL with a host name we can resolve. Underscores are refused in
    host names, as Twilio refuses them (they are not valid in DNS host names); so is a host
    that is not ASCII. A path or query that is not ASCII is accepted: `ascii_url` writes it as
    a URL may hold it."""
    if not url or len(url) > max_length or _BLANK_OR_CONTROL.search(url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    if port == 0:
        return False
    host = parts.hostname
    if host.startswith("[") or ":" in host:  # IPv6 literal
        return True
    return all(_HOST_LABEL.match(label) for label in host.rstrip(".").split("."))


#: What `ascii_url` escapes: a character that is neither one of RFC 3986's unreserved or
#: reserved characters nor "%", and a "%" that does not start an escape (%XX).
_NOT_IN_A_URL = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")


def ascii_url(url: str) -> str:
    """`url` with every character a URL may not hold percent-encoded as UTF-8
    (``https://example.com/photos/☃.jpg`` → ``https://example.com/photos/%E2%98%83.jpg``);
    escapes already there (%XX) and the reserved characters (``/?#&=`` …) stay as they are,
    so a URL that was already ASCII comes back unchanged, and encoding twice changes nothing.
    Media URLs are stored so, as an HTTP client would request them: one is given back in a
    ``Location`` header, which holds ASCII only. Never raises (a lone surrogate is encoded
    as its bytes)."""
    return _NOT_IN_A_URL.sub(lambda found: quote(found[0], safe="", errors="surrogatepass"), url)


def resolve(base: str, reference: str) -> str | None:
    """`reference` (a URL in a TwiML document: "/sms/next", "next", or absolute) read against
    the URL of the document that holds it, as a browser reads a link; None when the result is
    no URL Pigeon can request (a bracket left open, a port out of range, not http(s)). urljoin
    itself raises ValueError on some of these: a caller must get an answer, never the error."""
    try:
        url = urljoin(base, reference.strip())
    except ValueError:
        return None
    return url if is_valid_http_url(url) else None


_DEFAULT_PORTS = {"http": 80, "https": 443}


@lru_cache(maxsize=4096)  # asked for every delivery claimed; the URLs of a store repeat
def origin_of(url: str) -> str:
    """The receiver a URL reaches, as ``scheme://host:port`` in lower case with the default
    port made explicit, so that every spelling of one server gives one key. A URL that does
    not parse, or names no host, is its own origin."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    return f"{scheme}://{parts.hostname.lower()}:{port or _DEFAULT_PORTS.get(scheme, 0)}"


#: The scheme and the userinfo of a URL: everything up to the last "@" before the path.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def url_for_log(url: str) -> str:
    """`url` as a log line may show it: a password in it replaced by ``***``
    (``http://user:***@host/path``), and a user name alone too (``https://***@host/``), as it may
    be a token. A webhook URL may carry credentials; the logs (and whoever reads them) must not.
    Works on URLs that do not parse as well: one that did not is the likeliest to be logged."""
    found = _USERINFO.match(url)
    if found is None:
        return url
    return _masked(found) + url[found.end() :]


def without_credentials(url: str) -> str:
    """`url` as it may be told to another receiver (the fallback URL's ``ErrorUrl``): without
    its userinfo, which are the credentials of this one, and without its ``#...`` fragment,
    which is our connection settings for it and never goes on the wire. Not `url_for_log`'s
    ``***``: the receiver is told the URL that failed, not shown a masked one."""
    found = _USERINFO.match(url)
    bare = url if found is None else found[1] + url[found.end() :]
    return bare.split("#", 1)[0]


def _masked(found: re.Match[str]) -> str:
    user, colon, _ = found[2].partition(":")
    return f"{found[1]}{user + ':***' if colon else '***'}@"


#: The scheme and the userinfo of a URL anywhere in a text: a URL ends at a blank.
_USERINFO_IN_TEXT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\s]*)@")


def mask_credentials(text: str) -> str:
    """`text` (an alert's text, a URL) with the userinfo of every URL in it masked as
    `url_for_log` masks it; the rest as it was."""
    return _USERINFO_IN_TEXT.sub(_masked, text) if "@" in text else text


def mask_credentials_in(value: Any) -> Any:
    """`mask_credentials` on every string in a JSON value (an alert's request variables, a
    timeline entry's detail), keys and nesting kept; tuples come back as lists, as JSON has them."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, Mapping):
        return {k: mask_credentials_in(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_credentials_in(v) for v in value]
    return value
