"""Twilio's paging for 2010-04-01 list resources.

A page is named by Page (an index) and, for pages after the first, a PageToken: "PA" + the
last record of the previous page (read forward) or "PB" + the first record of the next page
(read backward). Tokens make paging stable while new messages arrive; Page alone is an
offset, kept for clients that build URLs by hand.

A token carries the record's place in the list's order, not only its SID
(`PA<sid>_<epoch microseconds>[_<tie-break>]`, opaque to clients): the next page is sought
from that place, so the record named may be gone. A token of the SID alone made the record
necessary, and `for m in client.messages.stream(): m.delete()` deleted it before the next
page was asked for: the page fell back to Page × PageSize as an offset into what was left,
and skipped half. Tokens of the SID alone, handed out before, still work as they did
(`Cursor.at` None: the caller looks the record up).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pigeon.api.query import whole_number
from pigeon.domain.errors import ApiError
from pigeon.store.tables import LARGEST_INTEGER

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: The furthest record a Page may start at: a larger offset made SQLite raise (a 500) rather
#: than answer an empty page.
MAX_OFFSET = LARGEST_INTEGER

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cursor:
    """Where a PageToken says the page is: next to the record `sid`, after it (PA) or before
    it (PB) in the list's order."""

    backward: bool
    sid: str
    #: The record's time in the list's order; None for a token of the SID alone.
    at: datetime | None = None
    #: The order's second key when it is not the SID (the request log's row id).
    tie: int | None = None


def page_token(*, backward: bool, sid: str, at: datetime, tie: int | None = None) -> str:
    """The PageToken of a page next to the record `sid` whose place in the order is (`at`,
    `tie` or the SID)."""
    place = f"{sid}_{(at - _EPOCH) // _MICROSECOND}" + (f"_{tie}" if tie is not None else "")
    return ("PB" if backward else "PA") + place


def _cursor(token: str) -> Cursor | None:
    """The cursor of a well-formed token (None: not one this server issues)."""
    if not token.startswith(("PA", "PB")) or len(token) <= 2:
        return None
    backward = token.startswith("PB")
    sid, *place = token[2:].split("_")
    if not sid or len(place) > 2 or not all(p.isdigit() and len(p) <= 19 for p in place):
        return None
    if not place:
        return Cursor(backward, sid)
    try:
        at = _EPOCH + int(place[0]) * _MICROSECOND
    except OverflowError:  # past year 9999: no record's
        return None
    return Cursor(backward, sid, at, int(place[1]) if len(place) == 2 else None)


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_size: int
    token: str | None

    @property
    def offset(self) -> int:
        return self.page * self.page_size

    @property
    def cursor(self) -> Cursor | None:
        return _cursor(self.token) if self.token else None


def parse_page(params: Mapping[str, str]) -> PageRequest:
    size = whole_number(params, "PageSize", low=None, high=None)
    size = DEFAULT_PAGE_SIZE if size is None else size
    if size > MAX_PAGE_SIZE:
        raise ApiError(20007, f"PageSize {size} is too large: at most {MAX_PAGE_SIZE} records a page.")
    if size < 1:
        raise ApiError(20422, "PageSize must be at least 1.")
    page = whole_number(params, "Page", low=None, high=None) or 0
    if page < 0:
        raise ApiError(20422, "Page must not be negative.")
    if page * size > MAX_OFFSET:
        raise ApiError(20422, f"Page {page} is too large: with PageSize {size} it starts past any record.")
    token = params.get("PageToken") or None
    if token is not None and _cursor(token) is None:
        raise ApiError(20422, f"PageToken {token!r} is not a token this server issued.")
    return PageRequest(page=page, page_size=size, token=token)


def page_uri(path: str, filters: Sequence[tuple[str, str]], size: int, page: int, token: str | None = None) -> str:
    query: list[tuple[str, str]] = [*filters, ("PageSize", str(size)), ("Page", str(page))]
    if token:
        query.append(("PageToken", token))
    return f"{path}?{urlencode(query)}"


def envelope(
    key: str,
    items: Sequence[Mapping[str, Any]],
    *,
    path: str,
    filters: Sequence[tuple[str, str]],
    req: PageRequest,
    next_token: str | None,
    previous_token: str | None,
) -> dict[str, Any]:
    size, page = req.page_size, req.page
    start = page * size
    return {
        key: list(items),
        "end": start + len(items) - 1 if items else 0,
        "first_page_uri": page_uri(path, filters, size, 0),
        "next_page_uri": page_uri(path, filters, size, page + 1, next_token) if next_token is not None else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": (
            page_uri(path, filters, size, page - 1, previous_token or None)
            if page > 0 and previous_token is not None
            else None
        ),
        "start": start,
        "uri": page_uri(path, filters, size, page, req.token),
    }


def offset_envelope(
    key: str,
    rows_plus_one: Sequence[Mapping[str, Any]],
    *,
    path: str,
    filters: Sequence[tuple[str, str]],
    req: PageRequest,
) -> dict[str, Any]:
    """Envelope for resources paged by offset: `rows_plus_one` holds up to page_size + 1 rows."""
    items = list(rows_plus_one[: req.page_size])
    has_next = len(rows_plus_one) > req.page_size
    return envelope(
        key,
        items,
        path=path,
        filters=filters,
        req=req,
        next_token="" if has_next else None,
        previous_token="" if req.page > 0 else None,
    )
