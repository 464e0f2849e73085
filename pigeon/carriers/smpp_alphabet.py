"""A carrier's default alphabet: what SMPP data_coding 0 means to its SMSC (pure: no I/O).

data_coding 0 is "the SMSC's default alphabet" (SMPP 3.4 §5.2.19): GSM-7 on most SMSCs,
Latin-1 (ISO-8859-1) or plain ASCII on some, notably some US aggregators. The carrier option
``default_alphabet`` says which:

* ``gsm7`` (the default): data_coding 0 is read and written as GSM-7 unpacked septets.
* ``latin1``: a deliver_sm with data_coding 0 is read as Latin-1. A GSM-7 message whose every
  character is in Latin-1 goes with data_coding 3 (Latin-1, explicit), one octet a character;
  any other text as UCS-2 (data_coding 8): sent with data_coding 0, GSM-7 septets would be
  read as Latin-1 by such an SMSC ("@" is septet 0, a NUL in Latin-1).
* ``ascii``: a deliver_sm with data_coding 0 is read as ASCII, and an octet above 0x7F (which
  such an SMSC should not send) is kept, read as Latin-1, rather than lost. A GSM-7 message
  that is pure ASCII goes with data_coding 1 (IA5/ASCII); any other text as UCS-2.

A text sent one octet a character is split by octets: 140 for a message of one part, 134
for each part of a concatenated one (134 + a 6-octet UDH, or 133 + 7 with 16-bit
references). That is not the GSM-7 count the message's ``num_segments`` and price were
planned with: 141 to 160 plain characters are one GSM-7 segment but two octet parts, and
100 "{" are two GSM-7 segments (an escape and a septet each) but one octet part. The carrier
then receives another number of parts than ``num_segments`` says; `SubmitAck` carries one id per
part actually sent, and the receipts of every part are counted against that number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_ALPHABETS",
    "DefaultAlphabet",
    "OctetAlphabet",
    "inbound_data_coding",
    "octet_alphabet",
    "octet_parts",
]

DefaultAlphabet = Literal["gsm7", "latin1", "ascii"]
DEFAULT_ALPHABETS: tuple[DefaultAlphabet, ...] = ("gsm7", "latin1", "ascii")

_OCTETS = 140
_LATIN1 = 0x03  # SMPP 3.4 §5.2.19
_IA5 = 0x01


@dataclass(frozen=True)
class OctetAlphabet:
    """An explicit alphabet of one octet a character, used instead of data_coding 0."""

    name: str  # as the timeline shows it: "Latin-1" or "ASCII"
    data_coding: int
    codec: str


LATIN1 = OctetAlphabet("Latin-1", _LATIN1, "latin-1")
ASCII = OctetAlphabet("ASCII", _IA5, "ascii")


def inbound_data_coding(data_coding: int, default: DefaultAlphabet) -> int:
    """The data_coding to decode a deliver_sm's octets with: data_coding 0 made explicit for a
    carrier whose default alphabet is not GSM-7. ASCII is read as Latin-1, its superset, so
    that an octet above 0x7F is kept."""
    if data_coding == 0 and default != "gsm7":
        return _LATIN1
    return data_coding


def octet_alphabet(text: str, default: DefaultAlphabet) -> OctetAlphabet | None:
    """The explicit alphabet a GSM-7 ``text`` goes in to this SMSC; None: GSM-7 as planned
    (a gsm7 carrier). A text the alphabet cannot carry goes as UCS-2: see the module doc."""
    if default == "latin1" and all(ord(ch) < 0x100 for ch in text):
        return LATIN1
    if default == "ascii" and text.isascii():
        return ASCII
    return None


def octet_parts(text: str, *, sixteen_bit: bool) -> tuple[str, ...]:
    """``text`` cut into parts of one octet a character: 140 alone, else 134 (133 with a
    16-bit reference) each. A CR LF pair is kept in one part."""
    if len(text) <= _OCTETS:
        return (text,)
    capacity = _OCTETS - (7 if sixteen_bit else 6)
    parts = []
    start = 0
    while start < len(text):
        end = min(start + capacity, len(text))
        if end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
            end -= 1
        parts.append(text[start:end])
        start = end
    return tuple(parts)
