"""Short codes of an account (the 2010-04-01 ShortCode resource).

Operators provision short codes (`pigeon numbers add 12345 --account AC... --country US`);
customers list them, read them and set where their inbound messages go. A short code is
bound to its country: it neither sends to nor receives from numbers of other countries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.app.numbers import check_fallback, check_sms_settings, settings_from_params
from pigeon.domain.errors import ApiError
from pigeon.domain.sids import Prefix, is_sid
from pigeon.store import numbers as store

Row = dict[str, Any]

#: What a customer may change on a short code (Twilio's ShortCode update parameters).
UPDATE_PARAMS = ("FriendlyName", "SmsUrl", "SmsMethod", "SmsFallbackUrl", "SmsFallbackMethod")


def fetch(conn: Connection, account_sid: str, sid: str, path: str) -> Row:
    row = store.get_number(conn, sid, account_sid=account_sid) if is_sid(sid, Prefix.SHORT_CODE) else None
    if row is None or row["number_type"] != "short_code":
        raise ApiError(20404, f"The requested resource {path} was not found", status=404)
    return row


def update(conn: Connection, account_sid: str, sid: str, path: str, params: Mapping[str, str], now: datetime) -> Row:
    current = fetch(conn, account_sid, sid, path)
    values = settings_from_params({k: v for k, v in params.items() if k in UPDATE_PARAMS})
    check_fallback({**current, **values})
    check_sms_settings(current["sms_capable"], values)
    if values:
        store.update_number(conn, sid, now=now, **values)
    return fetch(conn, account_sid, sid, path)


def list_for_account(
    conn: Connection, account_sid: str, *, short_code: str | None, friendly_name: str | None, offset: int, limit: int
) -> list[Row]:
    like = None
    if short_code:
        like = "%" + short_code.replace("%", "").replace("_", "").replace("*", "_") + "%"
    return store.list_numbers(
        conn,
        account_sid=account_sid,
        phone_number_like=like,
        friendly_name=friendly_name,
        short_codes=True,
        offset=offset,
        limit=limit,
    )
