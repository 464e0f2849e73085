"""Mobile-originated text: how a message's octets become text, and how the parts of a
concatenated message are put back together.

A concatenated message is decoded only once its parts are joined, from their concatenated
octets, so that a UCS-2 surrogate pair or a GSM-7 escape that a network split across two
parts still decodes. The parts themselves are kept in the store until then
(`pigeon.app.reassembly`); this module holds the rules that need no store:

* which character set a ``data_coding`` announces, and the text of some octets in it;
* what a part that arrives means, given the copy of that part the store already holds
  (`arrival`): a new part, a duplicate, a resend of a part already handed over, or the
  first part of a new message that reuses the reference of one handed over before;
* the text and the ``raw`` record of a message from the parts that came (`assemble`), whole
  or, after the timeout, without the missing ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import gsm0338  # noqa: F401  -- registers the "gsm03.38" codec

__all__ = ["Arrival", "HeldPart", "Part", "Reassembled", "alphabet", "arrival", "assemble", "decode_text", "digest"]


def alphabet(data_coding: int) -> str:
    """The character set a data_coding announces: "gsm", "ascii", "latin-1", "ucs2" or "binary".

    0x00-0x0F are SMPP 3.4 §5.2.19 values; higher values are GSM 03.38 data coding schemes
    that SMSCs pass through (message class, flash SMS, message waiting groups).
    """
    smpp = {0x00: "gsm", 0x01: "ascii", 0x02: "binary", 0x03: "latin-1", 0x04: "binary", 0x08: "ucs2"}
    if data_coding < 0x10:
        return smpp.get(data_coding, "latin-1")
    group = data_coding >> 4
    if group <= 0x07:  # general data coding (bits 3-2: alphabet)
        return ("gsm", "binary", "ucs2", "latin-1")[(data_coding >> 2) & 0x03]
    if group == 0x0F:  # data coding / message class
        return "binary" if data_coding & 0x04 else "gsm"
    if group == 0x0E:  # message waiting, UCS-2
        return "ucs2"
    return "gsm"  # 0xC0-0xDF message waiting groups carry GSM-7 text


def decode_text(data: bytes, data_coding: int) -> str:
    """Text of a message body; undecodable bytes become U+FFFD rather than failing the message."""
    name = alphabet(data_coding)
    if name == "gsm":
        return data.decode("gsm03.38", "replace")  # unpacked septets, one octet each (SMPP convention)
    if name == "ucs2":
        return data.decode("utf-16-be", "replace")
    if name == "ascii":
        return data.decode("ascii", "replace")
    return data.decode("latin-1")  # Latin-1, and binary shown byte for byte


def digest(data: bytes) -> str:
    """What identifies a part's content once its octets are gone (see `arrival`)."""
    return hashlib.sha256(data).hexdigest()


# --- arrival of a part ----------------------------------------------------------------------


class Arrival(StrEnum):
    NEW = "new"  # keep it
    DUPLICATE = "duplicate"  # the same part number is already held: the first copy stays
    RESENT = "resent"  # a part of a message already handed over, sent again: drop it
    NEW_MESSAGE = "new_message"  # the sender reused the reference: forget the old message, keep it


@dataclass(frozen=True)
class HeldPart:
    """The store's copy of a part number, under the same message key."""

    handed_over: bool
    digest: str


def arrival(held: HeldPart | None, part_digest: str) -> Arrival:
    """What a part means, given what is held under its key and part number.

    An SMSC resends a deliver_sm whose deliver_sm_resp it did not get, so a part can come
    twice, also after its message was handed over: those copies add nothing. A handed-over
    part with other content under the same key is a new message whose sender's (8- or
    16-bit) reference came round again. A pending part with other content is kept as first
    received: the two copies cannot be told apart, and the first is the one acknowledged.
    """
    if held is None:
        return Arrival.NEW
    if not held.handed_over:
        return Arrival.DUPLICATE
    return Arrival.RESENT if held.digest == part_digest else Arrival.NEW_MESSAGE


# --- assembly -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    sequence: int
    data: bytes
    data_coding: int


@dataclass(frozen=True)
class Reassembled:
    text: str
    num_segments: int
    complete: bool
    raw: dict[str, Any]


def assemble(parts: Sequence[Part], *, reference: int, bits: int, total: int) -> Reassembled:
    """The message the parts make, in part-number order whatever order they came in.

    The lowest-numbered part's data_coding decodes the whole: the parts of one message share
    it. A message missing parts (handed over after the timeout) says so in ``raw``.
    """
    if not parts:
        raise ValueError("a message needs at least one part")
    ordered = sorted(parts, key=lambda p: p.sequence)
    received = [p.sequence for p in ordered]
    data_coding = ordered[0].data_coding
    raw: dict[str, Any] = {
        "data_coding": data_coding,
        "concatenation": {"reference": reference, "bits": bits, "total": total, "received": received},
    }
    missing = [seq for seq in range(1, total + 1) if seq not in received]
    if missing:
        raw["incomplete"] = True
        raw["missing_parts"] = missing
    text = decode_text(b"".join(p.data for p in ordered), data_coding)
    return Reassembled(text=text, num_segments=len(ordered), complete=not missing, raw=raw)
