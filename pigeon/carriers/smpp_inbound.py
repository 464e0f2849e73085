"""What a deliver_sm means: a delivery receipt, or (part of) a mobile-originated message.

Receipts: a deliver_sm is a receipt when its esm_class says so (SMSC delivery receipt or
intermediate notification), when it carries receipt TLVs, or when its text reads like the
SMPP 3.4 Appendix B format (some SMSCs send receipts with esm_class 0). The carrier id comes
from the receipted_message_id TLV (in the submit_sm_resp's format, §5.3.2.12), else from the
text's ``id:`` field; both pass through `smpp_ids.canonical_id` so they equal the ids in
`SubmitAck.carrier_ids`.

Inbound: parts are decoded only once reassembled, from the concatenated bytes, so a UCS-2
surrogate pair or a GSM-7 escape that another network split across parts still decodes.
Parts are keyed by sender, recipient, reference width, reference and total, from the UDH
(IEI 0x00 8-bit, IEI 0x08 16-bit) or the SAR TLVs. Each part is acknowledged when buffered
— an SMSC with a window of one would otherwise never send the next part — and the last one
only after `CarrierEvents.on_inbound` returned. A message whose parts stop coming is handed
over incomplete after ``timeout`` (flagged in ``raw``) rather than lost.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gsm0338  # noqa: F401  -- registers the "gsm03.38" codec

from pigeon.carriers.smpp_ids import IdFormat, IdSource, canonical_id
from pigeon.carriers.smpp_pdu import (
    TLV_MESSAGE_STATE,
    TLV_NETWORK_ERROR_CODE,
    TLV_RECEIPTED_MESSAGE_ID,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    DeliverSm,
)
from pigeon.domain.receipts import looks_like_receipt, parse_receipt_text
from pigeon.ports import Receipt

__all__ = ["Assembled", "Concat", "Reassembler", "decode_text", "is_receipt", "receipt_from", "split_user_data"]

#: message_state TLV (SMPP 3.4 §5.2.28) → the receipt text's stat spelling.
MESSAGE_STATES = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}


# --- text -----------------------------------------------------------------------------------


def _alphabet(data_coding: int) -> str:
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
    alphabet = _alphabet(data_coding)
    if alphabet == "gsm":
        return data.decode("gsm03.38", "replace")  # unpacked septets, one octet each (SMPP convention)
    if alphabet == "ucs2":
        return data.decode("utf-16-be", "replace")
    if alphabet == "ascii":
        return data.decode("ascii", "replace")
    return data.decode("latin-1")  # Latin-1, and binary shown byte for byte


# --- concatenation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Concat:
    reference: int
    total: int
    sequence: int
    bits: int  # 8 or 16; SAR references are 16-bit


def split_user_data(user_data: bytes, udhi: bool) -> tuple[Concat | None, bytes, bytes]:
    """(concatenation info, the UDH as sent, the text octets) of a message body.

    Unknown information elements (ports, special SMS indications) are skipped; a UDH whose
    length runs past the data is treated as absent, so a garbled header costs the
    concatenation, not the message.
    """
    if not udhi or not user_data:
        return None, b"", user_data
    udh_len = user_data[0]
    if udh_len + 1 > len(user_data):
        return None, b"", user_data
    udh, rest = user_data[: udh_len + 1], user_data[udh_len + 1 :]
    concat: Concat | None = None
    pos = 1
    while pos + 2 <= len(udh):
        iei, length = udh[pos], udh[pos + 1]
        value = udh[pos + 2 : pos + 2 + length]
        if iei == 0x00 and length == 3:
            concat = Concat(value[0], value[1], value[2], 8)
        elif iei == 0x08 and length == 4:
            concat = Concat((value[0] << 8) | value[1], value[2], value[3], 16)
        pos += 2 + length
    if concat is not None and not 1 <= concat.sequence <= concat.total:
        concat = None
    return concat, udh, rest


def concat_from_sar(tlvs: dict[int, bytes]) -> Concat | None:
    ref, total, seq = tlvs.get(TLV_SAR_MSG_REF_NUM), tlvs.get(TLV_SAR_TOTAL_SEGMENTS), tlvs.get(TLV_SAR_SEGMENT_SEQNUM)
    if not (ref and total and seq):
        return None
    concat = Concat(int.from_bytes(ref, "big"), total[0], seq[0], 16)
    return concat if 1 <= concat.sequence <= concat.total else None


@dataclass(frozen=True)
class Assembled:
    """A whole (or, after the timeout, partial) inbound message, ready for on_inbound."""

    key: tuple[Any, ...] | None
    source: str
    destination: str
    source_ton: int
    destination_ton: int
    text: str
    num_segments: int
    raw: dict[str, Any]


@dataclass
class _Pending:
    first_seen: float
    data_coding: int
    source_ton: int
    destination_ton: int
    parts: dict[int, bytes] = field(default_factory=dict)
    handing_over: bool = False  # on_inbound is running for it: no second hand-over meanwhile


class Reassembler:
    """In-memory buffer of incomplete multipart messages (one per carrier).

    ``add`` returns the message once complete but keeps it buffered until ``done(key)``;
    if recording it fails, ``release(key)`` makes it available again: the SMSC resends the
    unacknowledged last part and the message completes again. Parts of a message completed recently are recognised (same key, part
    number and bytes) and dropped, so an SMSC resending a part whose acknowledgement got
    lost does not produce a second, partial message.
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._pending: dict[tuple[Any, ...], _Pending] = {}
        self._recent: dict[tuple[Any, ...], tuple[float, frozenset[tuple[int, bytes]]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, deliver: DeliverSm) -> Assembled | None:
        """Add one non-receipt deliver_sm; the message when all its parts are in, else None."""
        concat, udh, body = split_user_data(deliver.user_data, deliver.udhi)
        concat = concat or concat_from_sar(deliver.tlvs)
        raw: dict[str, Any] = {"data_coding": deliver.data_coding, "esm_class": deliver.esm_class}
        if concat is None or concat.total == 1:
            if udh:
                raw["udh"] = udh.hex()
            text = decode_text(body, deliver.data_coding)
            return Assembled(
                None, deliver.source, deliver.destination, deliver.source_ton, deliver.destination_ton, text, 1, raw
            )
        key = (deliver.source, deliver.destination, concat.bits, concat.reference, concat.total)
        digest = hashlib.sha256(body).digest()
        recent = self._recent.get(key)
        if recent is not None and (concat.sequence, digest) in recent[1]:
            return None  # a resent part of a message already handed over
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(self._clock(), deliver.data_coding, deliver.source_ton, deliver.destination_ton)
            self._pending[key] = pending
        pending.parts[concat.sequence] = body
        if len(pending.parts) < concat.total or pending.handing_over:
            return None
        pending.handing_over = True
        return self._assemble(key, pending, complete=True)

    def release(self, key: tuple[Any, ...] | None) -> None:
        """Recording the message under ``key`` failed: keep its parts for another hand-over."""
        pending = self._pending.get(key) if key is not None else None
        if pending is not None:
            pending.handing_over = False

    def done(self, key: tuple[Any, ...] | None) -> None:
        """The message under ``key`` was recorded: forget its parts, remember their digests."""
        if key is None:
            return
        pending = self._pending.pop(key, None)
        if pending is not None:
            now = self._clock()
            digests = frozenset((seq, hashlib.sha256(body).digest()) for seq, body in pending.parts.items())
            self._recent[key] = (now, digests)
        self._forget_recent()

    def expired(self) -> list[Assembled]:
        """Messages still missing parts after ``timeout``, as they are (still buffered until done)."""
        cutoff = self._clock() - self.timeout
        due = [(key, p) for key, p in self._pending.items() if p.first_seen <= cutoff and not p.handing_over]
        for _, pending in due:
            pending.handing_over = True
        return [self._assemble(key, pending, complete=False) for key, pending in due]

    def _assemble(self, key: tuple[Any, ...], pending: _Pending, *, complete: bool) -> Assembled:
        source, destination, bits, reference, total = key
        data = b"".join(pending.parts[seq] for seq in sorted(pending.parts))
        raw: dict[str, Any] = {
            "data_coding": pending.data_coding,
            "concatenation": {"reference": reference, "bits": bits, "total": total, "received": sorted(pending.parts)},
        }
        if not complete:
            raw["incomplete"] = True
            raw["missing_parts"] = [seq for seq in range(1, total + 1) if seq not in pending.parts]
        text = decode_text(data, pending.data_coding)
        return Assembled(
            key, source, destination, pending.source_ton, pending.destination_ton, text, len(pending.parts), raw
        )

    def _forget_recent(self) -> None:
        cutoff = self._clock() - self.timeout
        for key in [k for k, (at, _) in self._recent.items() if at <= cutoff]:
            del self._recent[key]


# --- receipts -------------------------------------------------------------------------------


def _receipt_text(deliver: DeliverSm) -> str:
    data = deliver.user_data
    if _alphabet(deliver.data_coding) == "ucs2":
        return data.decode("utf-16-be", "replace")
    # Receipt texts are ASCII written by SMSC software; Latin-1 reads them byte for byte
    # (GSM-7 would turn "_" and "@" into other characters).
    return data.decode("latin-1")


def is_receipt(deliver: DeliverSm) -> bool:
    if deliver.is_receipt_class or TLV_RECEIPTED_MESSAGE_ID in deliver.tlvs:
        return True
    if deliver.udhi:
        return False  # a concatenated message is never a receipt
    return looks_like_receipt(_receipt_text(deliver))


def receipt_from(deliver: DeliverSm, *, carrier: str, id_format: IdFormat) -> Receipt | None:
    """The Receipt in a receipt deliver_sm, or None when it names no message id at all."""
    text = _receipt_text(deliver)
    parsed = parse_receipt_text(text)
    tlv_id = deliver.tlvs.get(TLV_RECEIPTED_MESSAGE_ID, b"").split(b"\x00")[0].decode("latin-1").strip()
    state_tlv = deliver.tlvs.get(TLV_MESSAGE_STATE)
    error_tlv = deliver.tlvs.get(TLV_NETWORK_ERROR_CODE)
    if tlv_id:
        carrier_id = canonical_id(tlv_id, IdSource.RECEIPT_TLV, id_format)
    elif parsed.carrier_id:
        carrier_id = canonical_id(parsed.carrier_id, IdSource.RECEIPT_TEXT, id_format)
    else:
        return None
    # The TLV is structured, the text is free-form: the TLV wins when both are present.
    stat = (MESSAGE_STATES.get(state_tlv[0]) if state_tlv else None) or parsed.stat or "UNKNOWN"
    err = parsed.err
    if err is None and error_tlv and len(error_tlv) == 3:
        err = f"{int.from_bytes(error_tlv[1:], 'big'):03d}"
    extras = []
    if tlv_id:
        extras.append(f"receipted_message_id={tlv_id}")
    if state_tlv:
        extras.append(f"message_state={state_tlv[0]}")
    if error_tlv:
        extras.append(f"network_error_code={error_tlv.hex()}")
    raw = text + (f" [{' '.join(extras)}]" if extras else "")
    return Receipt(
        carrier=carrier, carrier_id=carrier_id, stat=stat, err=err, done_date=parsed.done_date, raw=raw.strip()
    )
