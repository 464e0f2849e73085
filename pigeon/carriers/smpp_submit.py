"""An OutboundMessage → the submit_sm parts a carrier receives (pure: no I/O).

The domain planner (`pigeon.domain.segments`) already cut the body into parts that fit a
6-octet UDH; we never let aiosmpplib split anything (its splitter counts characters, not
septets, and its SAR path crashes — DESIGN.md §6). Here each part is encoded, checked against
what the SMSC accepts, and given its concatenation UDH:

* GSM-7: data_coding 0, unpacked septets (one octet each, ESC before extension characters);
  160 septets alone, 153 with an 8-bit reference UDH, 152 with a 16-bit one;
* UCS-2: data_coding 8, UTF-16-BE; 70 / 67 / 66 code units;
* esm_class UDHI (0x40) and UDH ``05 00 03 ref total seq`` (or ``06 08 04 refhi reflo total
  seq`` for carriers configured with ``sixteen_bit_reference``) on every part of a
  multipart message; or, for carriers configured with ``long_messages = "sar"``, the same
  parts with the reference, total and sequence in SAR TLVs instead, and with
  ``long_messages = "payload"``, every part's encoded text joined in one submit_sm's
  message_payload (the SMSC cuts it; the segments were counted the same way).

The reference is derived from the message's SID and part count (`concat_reference`, which
says why and what it costs), not counted: every copy of one message carries the same.

For a carrier whose SMSC's default alphabet is Latin-1 or ASCII (``default_alphabet``), a
GSM-7 message goes instead in that alphabet, named explicitly (data_coding 3 or 1), or as
UCS-2, split by octets (`smpp_alphabet`); the carrier may then get another number of parts
than the message's ``num_segments``.

When a part does not fit (a carrier with 16-bit references, or parts planned elsewhere),
the joined text is planned again for this carrier rather than sent truncated or rejected;
the carrier then gets more parts than the message's ``num_segments``, and `SubmitAck` holds
one id per part actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pigeon.carriers.config import SmppCarrierConfig, TonNpi
from pigeon.carriers.smpp_alphabet import octet_alphabet, octet_parts
from pigeon.carriers.smpp_pdu import SubmitPart
from pigeon.domain.errors import CarrierPermanentError
from pigeon.domain.numbers import is_short_code
from pigeon.domain.segments import (
    GSM7_SINGLE,
    UCS2_SINGLE,
    Encoding,
    build_udh,
    concat_reference,
    encode_part,
    plan_segments,
)
from pigeon.ports import OutboundMessage

__all__ = ["PreparedMessage", "prepare"]

_OCTETS = 140


@dataclass(frozen=True)
class PreparedMessage:
    parts: tuple[SubmitPart, ...]
    encoding: str  # "GSM-7", "UCS-2", or an octet alphabet's name ("Latin-1", "ASCII")
    reference: int | None  # concatenation reference, None for a single part
    data_coding: int = 0


def source_ton_npi(sender: str, config: SmppCarrierConfig) -> tuple[str, TonNpi]:
    """The source address as SMPP carries it, and its TON/NPI by the kind of sender."""
    rules = config.source_ton_npi
    if sender.startswith("+") and sender[1:].isdigit():
        return sender[1:], rules.international
    if is_short_code(sender):
        return sender, rules.short_code
    return sender, rules.alphanumeric


def prepare(message: OutboundMessage, config: SmppCarrierConfig, reference: int | None = None) -> PreparedMessage:
    """Encode and head every part.

    A message of several parts gets the concatenation reference `concat_reference` derives
    from its SID and part count, the same in every process and for every copy, so that a
    handset can join the parts of a copy sent again with those it has; or ``reference``, the
    one an earlier submit used (a `Continuation`), cut to this carrier's width.

    Raises `CarrierPermanentError` for what SMPP cannot carry at all.
    """
    if message.media_urls:
        raise CarrierPermanentError(
            f"{config.name} is an SMPP carrier and cannot carry media", carrier_code="smpp:media", error_code=30011
        )
    if not "".join(message.parts):
        raise CarrierPermanentError(
            f"{config.name}: SMPP cannot carry an empty message", carrier_code="smpp:empty", error_code=30008
        )
    mode = config.long_messages
    sixteen_bit = config.sixteen_bit_reference and mode == "udh"
    encoding, data_coding, texts, payloads = _encoded(message, config, sixteen_bit)
    source, source_rule = source_ton_npi(message.sender, config)
    head = SubmitPart(
        source=source,
        source_ton=source_rule.ton,
        source_npi=source_rule.npi,
        destination=message.recipient[1:] if message.recipient.startswith("+") else message.recipient,
        destination_ton=config.destination_ton_npi.ton,
        destination_npi=config.destination_ton_npi.npi,
        text="",
        payload=b"",
        udhi=False,
        data_coding=data_coding,
        registered_delivery=config.registered_delivery,
        validity_period=message.validity_period,
        service_type=config.service_type,
    )
    total = len(payloads)
    if total == 1 or mode == "payload":
        # One submit_sm: a single segment as it is, or every segment's text in message_payload.
        whole = replace(head, text="".join(texts), payload=b"".join(payloads), in_message_payload=total > 1)
        return PreparedMessage((whole,), encoding, None, data_coding)
    wide = sixteen_bit or mode == "sar"  # SAR's reference is 16 bits wide, as a 7-octet UDH's is
    if reference is None:
        reference = concat_reference(message.message_sid, total, sixteen_bit=wide)
    reference &= 0xFFFF if wide else 0xFF
    parts = []
    for seq, (text, payload) in enumerate(zip(texts, payloads, strict=True), start=1):
        if mode == "sar":
            parts.append(replace(head, text=text, payload=payload, sar=(reference, total, seq)))
        else:
            udh = build_udh(reference, total, seq, sixteen_bit=config.sixteen_bit_reference)
            parts.append(replace(head, text=text, payload=udh + payload, udhi=True))
    return PreparedMessage(tuple(parts), encoding, reference, data_coding)


def _encoded(
    message: OutboundMessage, config: SmppCarrierConfig, sixteen_bit: bool
) -> tuple[str, int, tuple[str, ...], list[bytes]]:
    """The encoding's name, its data_coding, the parts' texts and their encoded octets."""
    if message.encoding != "UCS-2" and config.default_alphabet != "gsm7":
        text = "".join(message.parts)
        octets = octet_alphabet(text, config.default_alphabet)
        if octets is not None:
            texts = octet_parts(text, sixteen_bit=sixteen_bit)
            return octets.name, octets.data_coding, texts, [t.encode(octets.codec) for t in texts]
        # Not in the SMSC's alphabet, and data_coding 0 would be misread: UCS-2 then.
        plan = plan_segments(text, sixteen_bit_reference=sixteen_bit, ucs2=True)
        return "UCS-2", 8, plan.parts, [encode_part(t, "UCS-2") for t in plan.parts]
    encoding, texts, payloads = _fit(message, sixteen_bit)
    return encoding, 8 if encoding == "UCS-2" else 0, texts, payloads


def _fit(message: OutboundMessage, sixteen_bit: bool) -> tuple[Encoding, tuple[str, ...], list[bytes]]:
    encoding: Encoding = "UCS-2" if message.encoding == "UCS-2" else "GSM-7"
    texts = tuple(message.parts)
    payloads = _encode_all(texts, encoding)
    if payloads is None or not _fits(payloads, encoding, sixteen_bit):
        plan = plan_segments("".join(texts), sixteen_bit_reference=sixteen_bit)
        encoding, texts = plan.encoding, plan.parts
        payloads = _encode_all(texts, encoding)
        assert payloads is not None and _fits(payloads, encoding, sixteen_bit), "the planner's parts always fit"
    return encoding, texts, payloads


def _encode_all(texts: tuple[str, ...], encoding: Encoding) -> list[bytes] | None:
    try:
        return [encode_part(text, encoding) for text in texts]
    except ValueError:  # a character outside GSM-7: the plan was made for another encoding
        return None


def _fits(payloads: list[bytes], encoding: Encoding, sixteen_bit: bool) -> bool:
    if len(payloads) == 1:
        limit = GSM7_SINGLE if encoding == "GSM-7" else UCS2_SINGLE * 2
    else:
        udh_octets = 7 if sixteen_bit else 6
        # GSM-7 septets after a UDH padded to a septet boundary; UCS-2 in whole code units.
        limit = (_OCTETS - udh_octets) * 8 // 7 if encoding == "GSM-7" else (_OCTETS - udh_octets) // 2 * 2
    return all(len(p) <= limit for p in payloads) and len(payloads) <= 255
