"""Messaging Services, their senders, short codes and available numbers in Twilio's JSON shapes.

v1 resources (Services and their PhoneNumbers, ShortCodes, AlphaSenders) carry absolute
URLs built on this server's base URL and ISO 8601 dates; the 2010-04-01 ones (ShortCode,
AvailablePhoneNumber) relative URIs and RFC 2822 dates.
"""

from __future__ import annotations

from typing import Any

from pigeon.api.schemas import API_VERSION, V, rfc2822
from pigeon.api.v1 import iso8601
from pigeon.domain.inventory import country_name, parse_coordinate

Row = dict[str, Any]

SERVICE_LINKS = {
    "phone_numbers": "PhoneNumbers",
    "short_codes": "ShortCodes",
    "alpha_senders": "AlphaSenders",
    "messages": "Messages",
    "us_app_to_person": "Compliance/Usa2p",
    "us_app_to_person_usecases": "Compliance/Usa2p/Usecases",
    "channel_senders": "ChannelSenders",
    "destination_alpha_senders": "DestinationAlphaSenders",
}


def service_url(base_url: str, sid: str) -> str:
    return f"{base_url}/v1/Services/{sid}"


def service_json(row: Row, base_url: str) -> Row:
    url = service_url(base_url, row["sid"])
    return {
        "account_sid": row["account_sid"],
        "area_code_geomatch": row["area_code_geomatch"],
        "date_created": iso8601(row["date_created"]),
        "date_updated": iso8601(row["date_updated"]),
        "fallback_method": row["fallback_method"],
        "fallback_to_long_code": row["fallback_to_long_code"],
        "fallback_url": row["fallback_url"],
        "friendly_name": row["friendly_name"],
        "inbound_method": row["inbound_method"],
        "inbound_request_url": row["inbound_request_url"],
        "links": {key: f"{url}/{suffix}" for key, suffix in SERVICE_LINKS.items()},
        "mms_converter": row["mms_converter"],
        "scan_message_content": row["scan_message_content"],
        "sid": row["sid"],
        "smart_encoding": row["smart_encoding"],
        "status_callback": row["status_callback"],
        "sticky_sender": row["sticky_sender"],
        "synchronous_validation": row["synchronous_validation"],
        "url": url,
        "us_app_to_person_registered": row["us_app_to_person_registered"],
        "use_inbound_webhook_on_number": row["use_inbound_webhook_on_number"],
        "usecase": row["usecase"],
        "validity_period": row["validity_period"],
    }


def _capabilities(row: Row, *, voice: bool) -> list[str]:
    flags = [("MMS", row["mms_capable"]), ("SMS", row["sms_capable"]), ("Voice", voice and row["voice_capable"])]
    return [name for name, on in flags if on]


def _sender(row: Row, base_url: str, collection: str) -> Row:
    service = row["messaging_service_sid"]
    return {
        "account_sid": row["account_sid"],
        "date_created": iso8601(row["date_created"]),
        "date_updated": iso8601(row["date_updated"]),
        "service_sid": service,
        "sid": row["sid"],
        "url": f"{service_url(base_url, service)}/{collection}/{row['sid']}",
    }


def service_number_json(row: Row, base_url: str) -> Row:
    return {
        **_sender(row, base_url, "PhoneNumbers"),
        "capabilities": _capabilities(row, voice=True),
        "country_code": row["iso_country"],
        "phone_number": row["phone_number"],
    }


def service_short_code_json(row: Row, base_url: str) -> Row:
    return {
        **_sender(row, base_url, "ShortCodes"),
        "capabilities": _capabilities(row, voice=False),
        "country_code": row["iso_country"],
        "short_code": row["phone_number"],
    }


def alpha_sender_json(row: Row, base_url: str) -> Row:
    return {**_sender(row, base_url, "AlphaSenders"), "alpha_sender": row["alpha_sender"], "capabilities": ["SMS"]}


# -- 2010-04-01 ---------------------------------------------------------------------------------


def short_code_json(row: Row) -> Row:
    account, sid = row["account_sid"], row["sid"]
    return {
        "account_sid": account,
        "api_version": API_VERSION,
        "date_created": rfc2822(row["date_created"]),
        "date_updated": rfc2822(row["date_updated"]),
        "friendly_name": row["friendly_name"],
        "short_code": row["phone_number"],
        "sid": sid,
        "sms_fallback_method": row["sms_fallback_method"],
        "sms_fallback_url": row["sms_fallback_url"],
        "sms_method": row["sms_method"],
        "sms_url": row["sms_url"],
        "uri": f"{V}/Accounts/{account}/SMS/ShortCodes/{sid}.json",
    }


def available_number_json(row: Row) -> Row:
    return {
        "address_requirements": row["address_requirements"],
        "beta": False,
        "capabilities": {
            "fax": row["fax_capable"],
            "mms": row["mms_capable"],
            "sms": row["sms_capable"],
            "voice": row["voice_capable"],
        },
        "friendly_name": row["friendly_name"],
        "iso_country": row["iso_country"],
        "lata": row["lata"],
        # Twilio's spec types these as numbers (its examples show strings).
        "latitude": parse_coordinate(row["latitude"] or "", 90),
        "locality": row["locality"],
        "longitude": parse_coordinate(row["longitude"] or "", 180),
        "phone_number": row["phone_number"],
        "postal_code": row["postal_code"],
        "rate_center": row["rate_center"],
        "region": row["region"],
    }


#: inventory number_type -> (subresource_uris key, list resource name)
AVAILABLE_RESOURCES = {
    "local": ("local", "Local"),
    "toll_free": ("toll_free", "TollFree"),
    "mobile": ("mobile", "Mobile"),
}


def country_json(account_sid: str, country: str, number_types: list[str]) -> Row:
    base = f"{V}/Accounts/{account_sid}/AvailablePhoneNumbers/{country}"
    return {
        "beta": False,
        "country": country_name(country),
        "country_code": country,
        "subresource_uris": {
            AVAILABLE_RESOURCES[t][0]: f"{base}/{AVAILABLE_RESOURCES[t][1]}.json"
            for t in number_types
            if t in AVAILABLE_RESOURCES
        },
        "uri": f"{base}.json",
    }
