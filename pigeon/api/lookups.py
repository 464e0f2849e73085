"""Lookup v2 (lookups.twilio.com/v2, the SDK's `client.lookups.v2.phone_numbers(n).fetch()`):
the free formatting and validation request (pigeon.domain.lookup).

`Fields` may ask for `validation` (the same answer); the paid data packages (line type, caller
name, SIM swap, SMS pumping risk …) need carrier data that Pigeon does not have, and a request
for one is refused (20422) rather than answered with nulls an application could take for a
clean bill. Any account's credentials may look up a number. Nothing is stored: the request log
keeps the lookup with the number taken out of its path (pigeon.api.request_log).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pigeon.api.context import ctx
from pigeon.api.v1 import acting_account
from pigeon.domain.errors import ApiError
from pigeon.domain.lookup import DATA_PACKAGES, look_up

JSON = "application/json; charset=utf-8"
PATH = "/v2/PhoneNumbers/{phone_number:path}"


async def fetch(request: Request) -> Response:
    await acting_account(request)
    raw = request.path_params["phone_number"]
    params = request.query_params
    fields = [f.strip() for f in (params.get("Fields") or "").split(",") if f.strip()]
    wanted = [f for f in fields if f != "validation"]
    unknown = [f for f in wanted if f not in DATA_PACKAGES]
    if unknown:
        raise ApiError(20422, f"Fields {', '.join(unknown)}: not a Lookup field.")
    if wanted:
        raise ApiError(
            20422,
            f"Fields {', '.join(wanted)}: Pigeon has no carrier data, so it looks up formats and"
            " validity only (leave Fields out, or ask for validation).",
        )
    country = params.get("CountryCode") or "US"
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise ApiError(20422, f"CountryCode must be a two-letter country code such as US or GB, not {country!r}.")
    found = look_up(raw, country=country)
    body = {
        "calling_country_code": found.calling_country_code,
        "country_code": found.country_code,
        "phone_number": found.phone_number,
        "national_format": found.national_format,
        "valid": found.valid,
        "validation_errors": list(found.validation_errors) or None,
        **dict.fromkeys(DATA_PACKAGES),
        "url": f"{ctx(request).base_url}/v2/PhoneNumbers/{quote(found.phone_number, safe='')}",
    }
    return JSONResponse(body, media_type=JSON)


routes = [Route(PATH, fetch, methods=["GET"])]
