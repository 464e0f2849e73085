"""Our records in Twilio's JSON shapes (2010-04-01 API): names, types and date formats."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

from pigeon.domain.error_catalogue import explain
from pigeon.domain.media import content_type_of
from pigeon.domain.status import POOL_CHOOSING, pool_sender_unused

API_VERSION = "2010-04-01"
V = f"/{API_VERSION}"

Row = dict[str, Any]


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UTC = timedelta(0)


def rfc2822(value: datetime | None) -> str | None:
    """Twilio's date format: 'Thu, 24 Aug 2023 05:01:45 +0000'. The store's times are UTC, and
    for those this is `email.utils.format_datetime`'s text built directly, at a third of its
    cost (a message's JSON has three dates); any other zone goes to it."""
    if value is None:
        return None
    if value.utcoffset() != _UTC:
        return format_datetime(value)
    return (
        f"{_DAYS[value.weekday()]}, {value.day:02d} {_MONTHS[value.month - 1]} {value.year:04d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d} +0000"
    )


def message_uri(account_sid: str, sid: str) -> str:
    return f"{V}/Accounts/{account_sid}/Messages/{sid}.json"


def error_message_for(code: int | None) -> str | None:
    if code is None:
        return None
    info = explain(code)
    return info.name if info else None


def pool_choosing(row: Row) -> bool:
    """Whether `row` is a message whose pool is still choosing its sender, which Twilio shows
    with ``from`` null and ``num_segments`` "0" (REFERENCE §a). The row keeps the sender the
    pool chose at the create, for the queue and opt-out checks; a scheduled message may go
    from another (`pigeon.app.scheduled_senders`). A message that named its From keeps it."""
    return row["status"] in POOL_CHOOSING and bool(row.get("sender_from_pool")) and bool(row["messaging_service_sid"])


def message_json(row: Row) -> Row:
    account, sid = row["account_sid"], row["sid"]
    base = f"{V}/Accounts/{account}/Messages/{sid}"
    choosing = pool_choosing(row)
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "body": row["body"],
        "date_created": rfc2822(row["date_created"]),
        "date_sent": rfc2822(row["date_sent"]),
        "date_updated": rfc2822(row["date_updated"]),
        "direction": row["direction"],
        "error_code": row["error_code"],
        "error_message": row["error_message"] or error_message_for(row["error_code"]),
        # Also once canceled, or failed for want of a sender, before the pool chose one.
        "from": None if pool_sender_unused(row) else row["from_"],
        "messaging_service_sid": row["messaging_service_sid"],
        "num_media": str(row["num_media"]),
        "num_segments": "0" if choosing else str(row["num_segments"]),
        "price": row["price"],
        "price_unit": row["price_unit"],
        "sid": sid,
        "status": row["status"],
        "subresource_uris": {"media": f"{base}/Media.json", "feedback": f"{base}/Feedback.json"},
        "to": row["to"],
        "uri": f"{base}.json",
    }


def media_json(row: Row) -> Row:
    uri = f"{V}/Accounts/{row['account_sid']}/Messages/{row['message_sid']}/Media/{row['sid']}.json"
    return {
        "account_sid": row["account_sid"],
        # Sent media stored before one guess served both directions have none: guessed now.
        "content_type": row["content_type"] or content_type_of(row["url"]),
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row["date_updated"]),
        "parent_sid": row["message_sid"],
        "sid": row["sid"],
        "uri": uri,
    }


def feedback_json(row: Row) -> Row:
    return {
        "account_sid": row["account_sid"],
        "message_sid": row["message_sid"],
        "outcome": row["outcome"],
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row["date_updated"]),
        "uri": f"{V}/Accounts/{row['account_sid']}/Messages/{row['message_sid']}/Feedback.json",
    }


def event_json(row: Row) -> Row:
    return {
        "message_sid": row["message_sid"],
        "account_sid": row["account_sid"],
        "date": rfc2822(row["at"]),
        "timestamp": row["at"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "kind": row["kind"],
        "status": row["status"],
        "error_code": row["error_code"],
        "detail": row["detail"] or {},
    }


def account_json(row: Row) -> Row:
    sid = row["sid"]
    base = f"{V}/Accounts/{sid}"
    return {
        "auth_token": row["auth_token"],
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row["date_updated"]),
        "friendly_name": row["friendly_name"],
        "owner_account_sid": row["owner_account_sid"],
        "sid": sid,
        "status": row["status"],
        "subresource_uris": {
            "messages": f"{base}/Messages.json",
            "incoming_phone_numbers": f"{base}/IncomingPhoneNumbers.json",
            "available_phone_numbers": f"{base}/AvailablePhoneNumbers.json",
            "keys": f"{base}/Keys.json",
            "short_codes": f"{base}/SMS/ShortCodes.json",
        },
        "type": row["type"],
        "uri": f"{base}.json",
    }


def number_json(row: Row) -> Row:
    account, sid = row["account_sid"], row["sid"]
    return {
        "account_sid": account,
        "address_requirements": row["address_requirements"],
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "bundle_sid": None,
        "capabilities": {
            "fax": row["fax_capable"],
            "mms": row["mms_capable"],
            "sms": row["sms_capable"],
            "voice": row["voice_capable"],
        },
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row["date_updated"]),
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": row["friendly_name"],
        "identity_sid": None,
        "origin": row["origin"],
        "phone_number": row["phone_number"],
        "sid": sid,
        "sms_application_sid": None,
        "sms_fallback_method": row["sms_fallback_method"],
        "sms_fallback_url": row["sms_fallback_url"],
        "sms_method": row["sms_method"],
        "sms_url": row["sms_url"],
        "status": "in-use",
        "status_callback": row["status_callback"],
        "status_callback_method": row["status_callback_method"],
        # No subresource_uris: Twilio's spec lists none for this resource, and we serve no
        # AssignedAddOns to point at.
        "trunk_sid": None,
        # The spec's examples show "local"; we give the kind the number was provisioned as.
        "type": row["number_type"],
        "uri": f"{V}/Accounts/{account}/IncomingPhoneNumbers/{sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": row["voice_method"],
        "voice_receive_mode": "voice",
        "voice_url": row["voice_url"],
    }
