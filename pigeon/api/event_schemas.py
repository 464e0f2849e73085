"""Event Streams resources in Twilio's v1 JSON shapes: absolute URLs on this server's base URL,
ISO 8601 dates, and list pages whose ``meta`` URLs keep the list's filters (the SDKs follow
``meta.next_page_url`` verbatim)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

from pigeon.api.paging import PageRequest
from pigeon.api.v1 import iso8601
from pigeon.domain.events import CATALOGUE_DATE, SCHEMAS_URL, EventType

Row = dict[str, Any]


def sink_json(row: Row, base: str) -> Row:
    url = f"{base}/v1/Sinks/{row['sid']}"
    return {
        "date_created": iso8601(row["date_created"]),
        "date_updated": iso8601(row["date_updated"]),
        "description": row["description"],
        "sid": row["sid"],
        "sink_configuration": row["sink_configuration"],
        "sink_type": row["sink_type"],
        "status": row["status"],
        "url": url,
        "links": {"sink_test": f"{url}/Test", "sink_validate": f"{url}/Validate"},
    }


def subscription_json(row: Row, base: str) -> Row:
    url = f"{base}/v1/Subscriptions/{row['sid']}"
    return {
        "account_sid": row["account_sid"],
        "sid": row["sid"],
        "date_created": iso8601(row["date_created"]),
        "date_updated": iso8601(row["date_updated"]),
        "description": row["description"],
        "sink_sid": row["sink_sid"],
        "receive_events_from_subaccounts": False,
        "url": url,
        "links": {"subscribed_events": f"{url}/SubscribedEvents"},
    }


def subscribed_event_json(entry: Row, account_sid: str, subscription_sid: str, base: str) -> Row:
    return {
        "account_sid": account_sid,
        "type": entry["type"],
        "schema_version": entry["schema_version"],
        "subscription_sid": subscription_sid,
        "url": f"{base}/v1/Subscriptions/{subscription_sid}/SubscribedEvents/{quote(entry['type'])}",
    }


def event_type_json(t: EventType, base: str) -> Row:
    return {
        "date_created": iso8601(CATALOGUE_DATE),
        "date_updated": iso8601(CATALOGUE_DATE),
        "type": t.type,
        "schema_id": t.schema_id,
        "public": True,
        "status": "available",
        "documentation_url": None,
        "description": t.description,
        "url": f"{base}/v1/Types/{t.type}",
        "links": {"schema": f"{base}/v1/Schemas/{t.schema_id}/Versions"},
    }


def schema_json(t: EventType, base: str) -> Row:
    url = f"{base}/v1/Schemas/{t.schema_id}"
    return {
        "id": t.schema_id,
        "url": url,
        "links": {"versions": f"{url}/Versions"},
        "latest_version_date_created": iso8601(CATALOGUE_DATE),
        "latest_version": t.latest_version,
    }


def schema_version_json(t: EventType, version: int, base: str) -> Row:
    return {
        "id": t.schema_id,
        "schema_version": version,
        "date_created": iso8601(CATALOGUE_DATE),
        "url": f"{base}/v1/Schemas/{t.schema_id}/Versions/{version}",
        "raw": f"{SCHEMAS_URL}/{t.schema_id}/{version}",
    }


def page(
    key: str,
    rows_plus_one: Sequence[Row],
    *,
    base: str,
    path: str,
    req: PageRequest,
    filters: Sequence[tuple[str, str]] = (),
) -> Row:
    """A v1 list page whose URLs keep `filters`; `rows_plus_one` holds up to page_size + 1
    items (the extra one says there is a next page)."""
    size, number = req.page_size, req.page

    def url(n: int) -> str:
        return f"{base}{path}?{urlencode([*filters, ('PageSize', size), ('Page', n)])}"

    return {
        key: list(rows_plus_one[:size]),
        "meta": {
            "page": number,
            "page_size": size,
            "first_page_url": url(0),
            "previous_page_url": url(number - 1) if number > 0 else None,
            "next_page_url": url(number + 1) if len(rows_plus_one) > size else None,
            "key": key,
            "url": url(number),
        },
    }
