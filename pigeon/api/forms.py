"""A request's form body (application/x-www-form-urlencoded) as (name, value) pairs.

Every name and value is read as UTF-8, each on its own, as the Twilio SDKs send them. One
that is not UTF-8 (`Tags=caf%E9` from a Latin-1 client) is refused with 20422 naming the
parameter: reading the whole body as Latin-1 instead, as Pigeon once did, turned every
other field's UTF-8 into mojibake (a Body "Olá" became "OlÃ¡") that was stored, sent and
billed with a 201. Guessing the characters of one field is no better: a wrong guess is sent
to a handset just the same, and the client learns nothing.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote_to_bytes

from pigeon.domain import storable
from pigeon.domain.errors import ApiError

#: How much of a parameter's name an error message repeats.
NAME_SHOWN = 64


def parse_form(raw: bytes) -> list[tuple[str, str]]:
    """The fields in order, blanks kept (Body="" means redact). Raises ApiError 20422 for a
    name or value that is not UTF-8, or that holds NUL (PostgreSQL cannot store it)."""
    try:
        # errors="strict": parse_qsl unquotes and decodes each name and value on its own, so
        # a valid form costs what it always did; only a refused one is looked at again.
        fields = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise not_utf8(raw) from None
    if (b"%00" in raw or b"\x00" in raw) and (name := storable.nul_parameter(fields)) is not None:
        raise ApiError(20422, f"Parameter {name!r} holds a NUL character (%00), which no parameter may hold.")
    return fields


def not_utf8(raw: bytes) -> ApiError:
    """The 20422 for a form that is not UTF-8, naming the first parameter at fault."""
    for field in raw.split(b"&"):
        name, _, value = field.partition(b"=")
        text = _utf8(name)
        if text is None:
            return ApiError(20422, "A parameter's name is not UTF-8 text; Pigeon reads every parameter as UTF-8.")
        if _utf8(value) is None:
            shown = text if len(text) <= NAME_SHOWN else text[:NAME_SHOWN] + "…"
            return ApiError(
                20422,
                f"Parameter {shown!r} is not UTF-8 text (Latin-1 'é' is %E9, UTF-8 'é' is %C3%A9); "
                "Pigeon reads every parameter as UTF-8 and changed nothing.",
            )
    return ApiError(20422, "The form is not UTF-8 text; Pigeon reads every parameter as UTF-8.")


def _utf8(part: bytes) -> str | None:
    try:
        return unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return None
