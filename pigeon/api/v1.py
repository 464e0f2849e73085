"""What the v1 APIs (messaging.twilio.com/v1) do differently from 2010-04-01.

- No AccountSid in the URL: the account is the one the Basic credentials authenticate.
- Dates are ISO 8601 in UTC ("2015-07-30T20:12:31Z"), not RFC 2822.
- Lists page in a `meta` object whose URLs are absolute, and the SDKs follow
  `meta.next_page_url` verbatim: so they must name this server (ApiContext.base_url,
  PIGEON_PUBLIC_URL), never twilio.com.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from pigeon.api.concurrency import admit
from pigeon.api.context import basic_credentials, changes, ctx, in_thread
from pigeon.api.paging import PageRequest
from pigeon.app import accounts


def iso8601(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


async def acting_account(request: Request) -> str:
    """The account the credentials act as; it must be active to send or change anything with
    the v1 resources (reads are let through, `context.changes`)."""
    username, password = basic_credentials(request)
    c = ctx(request)

    def check() -> str:
        with c.db.read() as conn:
            acting = accounts.authenticate(conn, username, password)
            request.state.account_sid = acting
            admit(request, acting)
            accounts.authorize(conn, acting, acting, request.url.path, require_active=changes(request))
            return acting

    return await in_thread(check)


def page_url(base_url: str, path: str, size: int, page: int, filters: Sequence[tuple[str, str]] = ()) -> str:
    return f"{base_url}{path}?{urlencode([*filters, ('PageSize', size), ('Page', page)])}"


def envelope(
    key: str,
    rows_plus_one: Sequence[Mapping[str, Any]],
    *,
    base_url: str,
    path: str,
    req: PageRequest,
    filters: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A v1 list page; `rows_plus_one` holds up to page_size + 1 items (the extra one says
    that there is a next page). `filters` are repeated in every page URL: the SDKs follow
    next_page_url as it is, so a filter left out would be lost from page two on."""
    size, page = req.page_size, req.page
    items = list(rows_plus_one[:size])
    return {
        key: items,
        "meta": {
            "page": page,
            "page_size": size,
            "first_page_url": page_url(base_url, path, size, 0, filters),
            "previous_page_url": page_url(base_url, path, size, page - 1, filters) if page > 0 else None,
            "next_page_url": (page_url(base_url, path, size, page + 1, filters) if len(rows_plus_one) > size else None),
            "key": key,
            "url": page_url(base_url, path, size, page, filters),
        },
    }
