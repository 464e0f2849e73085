"""One canonical form for SMSC message ids, so receipts always find their message.

The top complaint against other gateways (DESIGN.md §7) is receipts that never match: the
SMSC answers submit_sm with ``message_id = "00A1F3"`` and later sends a receipt saying
``id:41459`` (hex vs decimal), or ``id:a1f3`` (case, leading zeros). Pigeon therefore never
stores or compares an id as the SMSC spelled it: every id goes through `canonical_id` on
the way in — the ids in `SubmitAck.carrier_ids` and the id in each `Receipt` — so the
dispatcher's carrier-id → message map matches receipts with plain string equality. The raw
spellings stay in `SubmitAck.raw` and `Receipt.raw` for the timeline.

Where an id comes from matters, because carriers differ in which source uses which base:

* ``SUBMIT``: the submit_sm_resp ``message_id``;
* ``RECEIPT_TLV``: the receipt's ``receipted_message_id`` TLV. SMPP 3.4 §5.3.2.12 says it
  is the id the submit_sm_resp returned, so it is read in the submit format;
* ``RECEIPT_TEXT``: the ``id:`` field of the receipt text, the field carriers spell
  differently.

The per-carrier setting ``receipt_id_format`` says how the two formats relate:

=================  ===================  =====================  ==========================
setting            submit_sm_resp id    receipt text id        canonical form
=================  ===================  =====================  ==========================
``as_is``          any text             same text              trimmed, lower case, no
                                                               leading zeros ("0" stays)
``exact``          any text             byte-identical         trimmed only (for SMSCs
                                                               whose ids are case-sensitive)
``hex_to_decimal`` hexadecimal          decimal                decimal integer, no zeros
``decimal_to_hex`` decimal              hexadecimal            decimal integer, no zeros
=================  ===================  =====================  ==========================

An id that does not parse in the base its setting announces falls back to the ``as_is``
form rather than raising: the receipt still reaches the store (unmatched, raw kept), where
the doctor can show the mismatch — dropping it would hide the problem.
"""

from __future__ import annotations

import string
from enum import StrEnum
from typing import Literal

from pigeon.domain import storable

__all__ = ["ID_FORMATS", "IdFormat", "IdSource", "canonical_id"]

IdFormat = Literal["as_is", "exact", "hex_to_decimal", "decimal_to_hex"]
ID_FORMATS: tuple[IdFormat, ...] = ("as_is", "exact", "hex_to_decimal", "decimal_to_hex")

_HEX = frozenset(string.hexdigits)


class IdSource(StrEnum):
    SUBMIT = "submit"
    RECEIPT_TLV = "receipt_tlv"
    RECEIPT_TEXT = "receipt_text"


def canonical_id(raw: str, source: IdSource, id_format: IdFormat = "as_is") -> str:
    """The canonical form of ``raw`` (see the module docstring for the table), without NUL and
    cut to the length the store keeps (pigeon.domain.storable), the same for a submit's id as
    for a receipt's, so that an over-long id still matches."""
    return storable.fitted(_canonical(raw, source, id_format), storable.CARRIER_ID_LENGTH)


def _canonical(raw: str, source: IdSource, id_format: IdFormat) -> str:
    text = raw.strip().strip("\x00").strip()
    if id_format == "exact":
        return text
    base = _base_of(source, id_format)
    if base is not None:
        number = _parse_int(text, base)
        if number is not None:
            return str(number)
    return _as_is(text)


def _base_of(source: IdSource, id_format: IdFormat) -> int | None:
    """The base the id from ``source`` is written in, or None for text ids."""
    if id_format == "hex_to_decimal":
        return 10 if source is IdSource.RECEIPT_TEXT else 16
    if id_format == "decimal_to_hex":
        return 16 if source is IdSource.RECEIPT_TEXT else 10
    return None


def _parse_int(text: str, base: int) -> int | None:
    # int() alone would accept "0x1F", "1_000", " +5": none is an SMSC id in the announced base.
    digits = text[2:] if base == 16 and text[:2].lower() == "0x" else text
    allowed = _HEX if base == 16 else frozenset(string.digits)
    if not digits or any(ch not in allowed for ch in digits):
        return None
    return int(digits, base)


def _as_is(text: str) -> str:
    lowered = text.lower()
    stripped = lowered.lstrip("0")
    if stripped:
        return stripped
    return "0" if lowered else ""
