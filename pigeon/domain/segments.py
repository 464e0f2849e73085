"""GSM-7 / UCS-2 segmentation with Twilio's semantics (REFERENCE.md §h, DESIGN.md §6).

We segment ourselves instead of trusting a library so that ``num_segments`` (what
Twilio bills and reports) and the parts we hand to the carrier come from one place
and can never disagree.  The rules:

* A message is GSM-7 only if *every* character is in the 3GPP 23.038 default
  alphabet or its extension table; one other character makes the whole message
  UCS-2.
* A segment carries 140 octets.  A single segment holds 160 septets / 70 UTF-16
  units; once split, each part loses 6 octets to the concatenation UDH and holds
  153 septets / 67 units.
* A part never ends in the middle of an escape pair (extension characters cost
  ESC + code) or a surrogate pair, because a handset would render garbage; we
  also keep cheap-to-detect grapheme clusters (CRLF, combining marks, emoji ZWJ
  sequences, flags, skin tones) together, as Twilio's calculator does.

Pure module: no I/O.  The ``gsm0338`` package only supplies the byte codec.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import gsm0338  # noqa: F401  -- importing registers the "gsm03.38" codec used by encode_part

Encoding = Literal["GSM-7", "UCS-2"]

MAX_BODY_CHARS = 1600
"""Twilio rejects longer bodies with 21617; see :func:`character_count`."""

SEGMENT_BITS = 140 * 8
UDH_OCTETS_MULTIPART = 6  # 05 00 03 ref total seq
_UDH16_OCTETS = 7  # 06 08 04 refhi reflo total seq
GSM7_BITS_PER_SEPTET = 7
UCS2_BITS_PER_CODE_UNIT = 16
# Derived rather than typed in, so the numbers visibly follow from the 140-octet payload.
# (For GSM-7 the UDH is padded to a septet boundary: 48 bits + 1 fill bit = 7 septets.)
GSM7_SINGLE = SEGMENT_BITS // GSM7_BITS_PER_SEPTET  # 160
GSM7_MULTIPART = (SEGMENT_BITS - UDH_OCTETS_MULTIPART * 8) // GSM7_BITS_PER_SEPTET  # 153
UCS2_SINGLE = SEGMENT_BITS // UCS2_BITS_PER_CODE_UNIT  # 70
UCS2_MULTIPART = (SEGMENT_BITS - UDH_OCTETS_MULTIPART * 8) // UCS2_BITS_PER_CODE_UNIT  # 67

ESC = "\x1b"

# 3GPP TS 23.038 default alphabet (127 characters: position 0x1B is ESC, not a character).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (ESC + code).
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

# Twilio Smart Encoding, grouped by replacement to stay readable (source data:
# ../shared/twilio/gsm7-and-smart-encoding.json, TwilioDevEd/message-segment-calculator).
# Invisible and combining characters are written as escapes on purpose.
# fmt: off
_SMART_SOURCES: dict[str, str] = {
    '"': "«»“”ʺˮ‟„❝❞〝〞＂",
    "'": "‘’ʻˈʼʽʹ‛＇´ˊ`ˋ❛❜\u0313\u0314︐︑",
    "/": "÷⧸\u0337\u0338⁄∕／", "1/4": "¼", "1/2": "½", "3/4": "¾",
    "\\": "⧹⧵\u20e5﹨＼", "_": "\u0332＿‗", "|": "\u20d2\u20d3∣｜⎸⎹⏐⎜⎟",
    "-": "⎼⎽―﹣－‐⁃—–•", "@": "﹫＠", "$": "﹩＄", "!": "ǃ︕﹗！", "#": "﹟＃", "%": "﹪％",
    "&": "﹠＆", ",": "‚\u0326﹐﹑，､、", "(": "❨❪﹙（⟮⦅", ")": "❩❫﹚）⟯⦆",
    "*": "⁎∗⊛✢✣✤✥✱✲✳✺✻✼✽❃❉❊❋⧆﹡＊", "+": "˖﹢＋", ".": "。﹒．｡",
    "0": "０", "1": "１", "2": "２", "3": "３", "4": "４",
    "5": "５", "6": "６", "7": "７", "8": "８", "9": "９",
    ":": "ː˸⦂꞉︓：", ";": "⁏︔﹔；", "<": "﹤＜›", "=": "\u0347꞊﹦＝", ">": "﹥＞‹", "?": "︖﹖？",
    "A": "Ａᴀ", "B": "Ｂʙ", "C": "Ｃᴄ", "D": "Ｄᴅ", "E": "Ｅᴇ", "F": "Ｆꜰ", "G": "Ｇɢ", "H": "Ｈʜ",
    "I": "Ｉɪ", "J": "Ｊᴊ", "K": "Ｋᴋ", "L": "Ｌʟ", "M": "Ｍᴍ", "N": "Ｎɴ", "O": "Ｏᴏ", "P": "Ｐᴘ",
    "Q": "Ｑ", "R": "Ｒʀ", "S": "Ｓꜱ", "T": "Ｔᴛ", "U": "Ｕᴜ", "V": "Ｖᴠ", "W": "Ｗᴡ", "X": "Ｘ",
    "Y": "Ｙʏ", "Z": "Ｚᴢ",
    "^": "ˆ\u0302＾\u1dcd", "{": "❴﹛｛", "}": "❵﹜｝", "[": "［", "]": "］",
    "~": "˜˷\u0303\u0330\u0334∼～",
    # Twilio's map really turns these spaces into two spaces and TAB into seven.
    "  ": "\xa0\u2000\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
    "\x8d\x9f\x80\x90\x9b",
    "       ": "\t",
    " ": "\u2028\u2029\u2001",
    "": "\x10\x00\x03\x04\x17\x19\x11\x12\x13\x14\u2060\u200b\ufeff",
    "!!": "‼", "...": "…",
}
# fmt: on
SMART_ENCODING: dict[str, str] = {
    src: replacement for replacement, sources in _SMART_SOURCES.items() for src in sources
}


@dataclass(frozen=True)
class SegmentPlan:
    """How a body goes on the wire.

    ``body`` is the text actually sent (raw ESC removed, smart encoding applied),
    so ``"".join(parts) == body`` always holds.  An empty body (media-only message)
    is one empty part: Twilio reports ``num_segments == "1"`` for those too.
    """

    encoding: Encoding
    parts: tuple[str, ...]
    body: str

    @property
    def num_segments(self) -> int:
        return len(self.parts)


def apply_smart_encoding(text: str) -> str:
    """Replace Unicode look-alikes with GSM-7 text, code point by code point (as Twilio does).

    Applied unconditionally when enabled, even if other characters still force UCS-2.
    """
    return "".join(SMART_ENCODING.get(ch, ch) for ch in text)


def unit_count(text: str, encoding: Encoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) that ``text`` occupies."""
    if encoding == "GSM-7":
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def character_count(body: str) -> int:
    """Length checked against :data:`MAX_BODY_CHARS`, in UTF-16 code units.

    Twilio counts characters as UTF-16 does: a character outside the Basic
    Multilingual Plane (most emoji) counts two, so 801 emoji exceed the limit as
    they do on Twilio. For text without such characters this equals ``len``.
    """
    return len(body.encode("utf-16-le")) // 2


def plan_segments(
    body: str, *, smart_encoding: bool = False, sixteen_bit_reference: bool = False, ucs2: bool = False
) -> SegmentPlan:
    """Pick the encoding and cut ``body`` into parts.

    ``sixteen_bit_reference`` shrinks the multipart limits to 152 septets / 66
    units for carriers that need the 7-octet UDH of :func:`build_udh`; the default
    is the 6-octet UDH Twilio counts with. ``ucs2`` plans UCS-2 even for a GSM-7
    text (a carrier whose SMSC does not take GSM-7 as its default alphabet).
    """
    text = body.replace(ESC, "")  # ESC is a shift code, not a character a user can send
    if smart_encoding:
        text = apply_smart_encoding(text)
    gsm7 = not ucs2 and all(ch in _GSM7_ALL for ch in text)
    encoding: Encoding = "GSM-7" if gsm7 else "UCS-2"
    udh_bits = (_UDH16_OCTETS if sixteen_bit_reference else UDH_OCTETS_MULTIPART) * 8
    if encoding == "GSM-7":
        single, multi = GSM7_SINGLE, (SEGMENT_BITS - udh_bits) // GSM7_BITS_PER_SEPTET
    else:
        single, multi = UCS2_SINGLE, (SEGMENT_BITS - udh_bits) // UCS2_BITS_PER_CODE_UNIT
    if unit_count(text, encoding) <= single:
        return SegmentPlan(encoding=encoding, parts=(text,), body=text)
    parts = _pack(_clusters(text), lambda s: unit_count(s, encoding), multi)
    return SegmentPlan(encoding=encoding, parts=tuple(parts), body=text)


def _pack(clusters: list[str], cost: Callable[[str], int], capacity: int) -> list[str]:
    """Greedily fill parts up to ``capacity`` without splitting a cluster.

    Same result as Twilio's "the first segment gets the UDH and overflow moves
    forward", with two deliberate differences from its calculator: a UCS-2 first
    part holds the full 67 units (the calculator's ``addHeader`` leaves one free,
    an off-by-one), and CRLF stays GSM-7 (the calculator calls any two-unit
    grapheme non-GSM; REFERENCE §h counts CRLF as two characters).

    A cluster too big for any part (e.g. "zalgo" text) is split at code points,
    which still never separates an escape pair or a surrogate pair because those
    are single Python characters.
    """
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for cluster in clusters:
        pieces = list(cluster) if cost(cluster) > capacity else [cluster]
        for piece in pieces:
            size = cost(piece)
            if current and used + size > capacity:
                parts.append("".join(current))
                current, used = [], 0
            current.append(piece)
            used += size
    parts.append("".join(current))
    return parts


_ZWJ = "\u200d"


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_extender(ch: str) -> bool:
    """Characters that attach to the previous one (a cheap subset of UAX #29 Extend)."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or ch == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (text/emoji presentation)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    )


def _clusters(text: str) -> list[str]:
    """Approximate grapheme clusters: good enough to avoid visibly broken parts.

    Not full UAX #29 (no Hangul syllable rules, no Indic conjuncts); the stdlib has
    no segmenter and we only need to keep the common cases whole.
    """
    clusters: list[str] = []
    for ch in text:
        if clusters and _joins(clusters[-1], ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters


def _joins(prev: str, ch: str) -> bool:
    last = prev[-1]
    if last == "\r":
        return ch == "\n"
    if unicodedata.category(last) == "Cc":
        return False  # controls never take extenders (GB4/GB5)
    if last == _ZWJ:
        return True  # emoji ZWJ sequence: the next pictograph belongs to it
    if _is_regional_indicator(ch):
        return len(prev) == 1 and _is_regional_indicator(last)  # flags are RI pairs
    return _is_extender(ch)


def encode_part(part: str, encoding: Encoding) -> bytes:
    """Bytes for one part as SMPP carries them.

    GSM-7: unpacked septets, one byte each, ESC (0x1B) before an extension
    character (data_coding 0; the SMSC packs).  UCS-2: UTF-16-BE, the de-facto
    form of data_coding 8; astral characters go out as surrogate pairs and lone
    surrogates pass through rather than crash a send.
    """
    if encoding == "GSM-7":
        bad = sorted({ch for ch in part if ch not in _GSM7_ALL})
        if bad:
            raise ValueError(f"not in the GSM-7 alphabet: {bad!r}")
        return part.encode("gsm03.38")
    return part.encode("utf-16-be", "surrogatepass")


def build_udh(reference: int, total: int, sequence: int, *, sixteen_bit: bool = False) -> bytes:
    """Concatenation User Data Header (3GPP 23.040 IEI 0x00 / 0x08), including its length octet."""
    if not 1 <= total <= 255:
        raise ValueError(f"total must be 1..255, got {total}")
    if not 1 <= sequence <= total:
        raise ValueError(f"sequence must be 1..{total}, got {sequence}")
    if sixteen_bit:
        if not 0 <= reference <= 0xFFFF:
            raise ValueError(f"16-bit reference must be 0..65535, got {reference}")
        return bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, sequence))
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"8-bit reference must be 0..255, got {reference}")
    return bytes((0x05, 0x00, 0x03, reference, total, sequence))


def concat_reference(message_sid: str, parts: int, *, sixteen_bit: bool = False) -> int:
    """The concatenation reference of message ``message_sid`` split into ``parts`` parts.

    Every submission of one message must carry the same reference: a handset joins parts by
    sender and reference, so a copy sent again under a new one (after a dispatcher died
    between its submit and recording it, by another process; or after an unanswered submit)
    becomes a second message, or two incomplete ones, instead of parts it can join and drop.
    A counter in the process cannot do that across processes and crashes, and a reference
    kept in the store would cost a write before every submit; so the reference is derived
    from what every process knows alike: the first octets of SHA-256 (never Python's
    ``hash``, salted per process) of the SID and the part count. The count is in it so that
    a message a changed configuration splits into a different number of parts gets another
    reference: those parts do not fit the earlier ones (`pigeon.ports.Continuation`).

    The price: a counter gives the consecutive messages of one process distinct references,
    a hash gives two different messages 1 chance in 256 (8 bits) or in 65,536 (16 bits) of
    sharing one. That matters only for two long messages from one sender to one handset
    whose parts arrive interleaved (a handset that also compares the part count needs that
    to match too). The counter promised less than it seems: a message sent by another
    dispatcher process, or 256 messages after the last one to that handset, got a reference
    no less random. A carrier whose handsets often get such pairs can use 16-bit references.

    Changing this derivation changes the reference of messages in flight across an upgrade.
    """
    digest = hashlib.sha256(f"{message_sid}/{parts}".encode()).digest()
    reference = int.from_bytes(digest[:2], "big")
    return reference if sixteen_bit else reference & 0xFF


@dataclass(frozen=True)
class SubmitProgress:
    """How far a submission got before it stopped, as the carrier split the message.

    Parts are sent one after the other, so what the carrier accepted is always a run of
    parts: ``first_part`` .. ``first_part + len(accepted_ids) - 1`` (1-based), with the ids
    it gave them; ``stopped_at`` is the part that was refused or never answered. The
    concatenation ``reference`` (None for a one-part message) lets the rest be sent later as
    parts of the same message (`pigeon.ports.Continuation`).
    """

    parts: int
    reference: int | None
    first_part: int
    accepted_ids: tuple[str, ...]
    stopped_at: int
