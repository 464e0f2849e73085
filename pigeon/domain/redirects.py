"""HTTP redirects in an answer to the incoming-message webhook or a status callback: which are followed, where to.

Twilio follows a webhook's 301, 302, 303 and 307 answers (REFERENCE.md §e names 301/302/307;
Twilio's page for its error 11216 adds 303), and so does Pigeon, with 308 too: the permanent
307 (RFC 9110 §15.4.9), which web frameworks answer with for a moved route or a trailing slash.

- 303 See Other: a GET of the Location, without the message's parameters: the application took
  the request and points to its answer elsewhere.
- 307, 308: the same method, the same parameters.
- 301, 302: the same method and parameters too. RFC 9110 lets a client turn a POST into a GET
  there, as browsers do; a webhook that did would reach the new URL without the message (a
  POST's parameters are its body), most often at a route that takes only POST, as http→https
  and trailing-slash redirects, the usual 301s and 302s, lead to one. Twilio documents no
  change of method.

A GET's parameters are in its URL, so the Location, which replaces that URL, is requested as
given. The Location is read against the URL that answered with it. Not followed, with Twilio's
11216 (HTTP invalid redirect): another 3xx, a redirect without a Location, or to one that is no
http(s) URL. Each request is signed for its own URL by the caller, so that a receiver checking
X-Twilio-Signature against the URL it was reached at accepts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pigeon.domain.urls import resolve, url_for_log

__all__ = [
    "FOLLOWED",
    "INVALID_REDIRECT",
    "MAX_HTTP_REDIRECTS",
    "TOO_MANY_REDIRECTS",
    "Hop",
    "InvalidRedirect",
    "is_redirect",
    "location_of",
    "next_hop",
]

FOLLOWED = frozenset({301, 302, 303, 307, 308})
#: Redirects followed for one request; one more is Twilio's 11215 (HTTP too many redirects).
#: An http→https hop, a host and a trailing slash take three.
MAX_HTTP_REDIRECTS = 5
TOO_MANY_REDIRECTS = 11215
INVALID_REDIRECT = 11216


class InvalidRedirect(Exception):
    """A 3xx answer that cannot be followed (11216)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Hop:
    """The request a redirect asks for: `url` by `method`; a GET carries no parameters (the
    URL is the Location as given), a POST the same ones as the request it follows."""

    url: str
    method: str


def is_redirect(status: int) -> bool:
    return 300 <= status < 400


def location_of(headers: Mapping[str, str]) -> str | None:
    """The Location header of an answer, as given (None without one)."""
    for name, value in headers.items():
        if name.lower() == "location":
            return value
    return None


def next_hop(status: int, headers: Mapping[str, str], url: str, method: str) -> Hop:
    """Where a 3xx answer to `method url` sends the request; InvalidRedirect when nowhere."""
    if status not in FOLLOWED:
        raise InvalidRedirect(f"the application answered HTTP {status}, which is no redirect Pigeon follows")
    location = location_of(headers)
    if not location or not location.strip():
        raise InvalidRedirect(f"the application answered HTTP {status} without a Location")
    target = resolve(url, location)
    if target is None:
        shown = url_for_log(location.strip())  # the detail is kept in alerts: no password in it
        raise InvalidRedirect(f"the application redirected to {shown!r}, which is no http(s) URL")
    return Hop(target, "GET" if status == 303 else method.upper())
