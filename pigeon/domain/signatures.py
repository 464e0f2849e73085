"""X-Twilio-Signature: how Pigeon signs its webhooks, byte for byte as Twilio does.

Customers check our requests with the `twilio` SDK's ``RequestValidator``, so the signing
string here is the one twilio-python builds (REFERENCE.md §e):

    url  +  for each name in sorted(set(names)):  for each value in sorted(set(values)): name + value

then HMAC-SHA1 keyed with the account's auth token, base64. Names and values sort by code
point; a repeated name contributes each of its distinct values once, in sorted order.

The URL is the one the receiver sees (`wire_url`): the configured string without the
``#...`` fragment, which Twilio reserves for connection overrides and never sends, with its
scheme and host in lower case and ``/`` for an empty path, as the request line and the Host
header carry them (so a receiver that validates against its own request URL agrees, and
the validator, which lower-cases the scheme itself, agrees for the configured URL). We never
add or strip a port when signing; the validator tries both. For GET the parameters travel in the
query string, so they are part of the URL and the signed parameter list is empty;
`request_url` builds that URL for the sender and the signer alike.

JSON bodies (Event Streams): the URL gets ``bodySHA256=<hex sha256 of the body>`` in its
query and the URL alone is signed; the validator checks both the hash and the signature.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from pigeon.domain.urls import ascii_url

__all__ = [
    "HMAC_SHA1",
    "HMAC_SHA256",
    "Params",
    "body_sha256",
    "compute_signature",
    "equal_secrets",
    "json_request_url",
    "request_url",
    "signing_string",
    "strip_fragment",
    "validate_json_signature",
    "validate_signature",
    "wire_url",
]

HMAC_SHA1 = "HMAC_SHA1"
HMAC_SHA256 = "HMAC_SHA256"
_DIGESTS = {HMAC_SHA1: hashlib.sha1, HMAC_SHA256: hashlib.sha256}

#: Form parameters: ordered pairs (repeats allowed), or a mapping of a name to one value or
#: to several (a multi-dict, as Flask and Django hand it to the validator).
Params = Sequence[tuple[str, str]] | Mapping[str, str | Sequence[str]]


def _grouped(params: Params) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    if isinstance(params, Mapping):
        for name, value in params.items():
            values = [value] if isinstance(value, str) else list(value)
            grouped.setdefault(name, set()).update(values)
    else:
        for name, value in params:
            grouped.setdefault(name, set()).add(value)
    return grouped


def signing_string(url: str, params: Params) -> str:
    """The text that is HMAC'd: the URL followed by every distinct name+value, sorted."""
    if isinstance(params, Mapping):
        grouped = _grouped(params)
        return url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    # Ordered pairs (what Pigeon signs its own callbacks with): the distinct pairs sorted by
    # name, then value, is the same order, at a third of the cost of grouping them first.
    return url + "".join(name + value for name, value in sorted(set(params)))


def compute_signature(url: str, params: Params, auth_token: str, *, algorithm: str = HMAC_SHA1) -> str:
    """The X-Twilio-Signature value for a request to `url` carrying form `params`."""
    try:
        digest = _DIGESTS[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unsupported webhook signature algorithm {algorithm!r}") from None
    mac = hmac.new(auth_token.encode("utf-8"), signing_string(url, params).encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def _with_and_without_port(url: str) -> tuple[str, str]:
    # Mirrors RequestValidator.add_port / remove_port: the receiver may see the URL with the
    # default port spelled out (behind a proxy) or without it, so either must match.
    parts = urlsplit(url)
    if parts.port:
        return url, urlunsplit(parts._replace(netloc=parts.netloc.split(":")[0]))
    default = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{default}")), url


def equal_secrets(given: str, expected: str) -> bool:
    """Compare a secret someone sent with the one kept, in constant time. As text, `hmac`'s
    comparison refuses any character beyond ASCII with a TypeError, and a password or a
    token anyone may send can hold one: compared as UTF-8 (a lone surrogate too), such a
    value is simply not equal."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def validate_signature(
    url: str, params: Params, signature: str, auth_token: str, *, algorithm: str = HMAC_SHA1
) -> bool:
    """True when `signature` signs `url` + `params` with `auth_token`, with or without the port."""
    return any(
        equal_secrets(signature, compute_signature(candidate, params, auth_token, algorithm=algorithm))
        for candidate in _with_and_without_port(url)
    )


def body_sha256(body: str | bytes) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(raw).hexdigest()


def json_request_url(url: str, body: str | bytes) -> str:
    """`url` with ``bodySHA256`` appended to its query: the URL a JSON webhook is sent to and signed over."""
    return _append_query(wire_url(url), [("bodySHA256", body_sha256(body))])


def validate_json_signature(
    url: str, body: str | bytes, signature: str, auth_token: str, *, algorithm: str = HMAC_SHA1
) -> bool:
    """Check a JSON webhook: the body must match the URL's ``bodySHA256`` and the URL its signature."""
    hashes = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not hashes or not equal_secrets(hashes[0], body_sha256(body)):
        return False
    return validate_signature(url, (), signature, auth_token, algorithm=algorithm)


@functools.lru_cache(maxsize=512)
def wire_url(url: str) -> str:
    """`url` as the request carries it: no fragment, scheme and host in lower case (a host
    outside ASCII in its IDNA form), ``/`` for an empty path; user, password, port, path and
    query as given, what of them is not ASCII percent-encoded as UTF-8 (`ascii_url`). A URL that does not parse is left as given: the sender refuses it.
    Cached: every status callback of an application goes to the same few URLs."""
    try:
        parts = urlsplit(strip_fragment(url))
    except ValueError:  # a broken [IPv6] literal
        return strip_fragment(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else (hostport, "", "")
    if not colon or not port.isdigit():  # no port (an IPv6 literal's colons are not one)
        host, colon, port = hostport, "", ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:  # left as given: the sender refuses such a URL anyway
            pass
    path, query = parts.path or "/", parts.query
    if not (userinfo.isascii() and path.isascii() and query.isascii()):
        # Stored before the setters kept URLs percent-encoded (`ascii_url`): a request line
        # holds ASCII only, and the signature must cover the URL the receiver sees.
        userinfo, path, query = ascii_url(userinfo), ascii_url(path), ascii_url(query)
    netloc = f"{userinfo}{at}{host.lower()}{colon}{port}"
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def strip_fragment(url: str) -> str:
    """The URL as it goes on the wire: a ``#...`` fragment is never sent, so it is never signed."""
    return url.split("#", 1)[0]


def _append_query(url: str, params: Sequence[tuple[str, str]]) -> str:
    if not params:
        return url
    separator = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        separator = ""
    return url + separator + urlencode(list(params))


def request_url(url: str, method: str, params: Sequence[tuple[str, str]]) -> str:
    """The URL a webhook request goes to: for GET the parameters join its query string."""
    url = wire_url(url)
    return _append_query(url, params) if method.upper() == "GET" else url
