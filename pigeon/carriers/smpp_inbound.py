"""What a deliver_sm means: a delivery receipt, or (part of) a mobile-originated message.
A data_sm is read as the same `DeliverSm` (`smpp_pdu.parse_data_sm`) and means the same: its
text, when it has one, is the message_payload TLV (`DeliverSm.user_data`).

Receipts: a deliver_sm is a receipt when its esm_class says so (SMSC delivery receipt or
intermediate notification), when it carries receipt TLVs, or when its text reads like the
SMPP 3.4 Appendix B format (some SMSCs send receipts with esm_class 0). The carrier id comes
from the receipted_message_id TLV (in the submit_sm_resp's format, §5.3.2.12), else from the
text's ``id:`` field; both pass through `smpp_ids.canonical_id` so they equal the ids in
`SubmitAck.carrier_ids`.

Inbound: `read_mo` turns a deliver_sm into a whole `InboundSms`, or into an `InboundPart`
when it is one part of a concatenated message — from the UDH (IEI 0x00 8-bit, IEI 0x08
16-bit reference) or the SAR TLVs. Parts are not held here: the carrier hands each to
`CarrierEvents.on_inbound_part`, which commits it to the store before the carrier sends the
part's deliver_sm_resp, since an SMSC never sends an acknowledged part again. The store puts
the message together when its last part comes, on whichever bind and in whichever process,
decoding it from the parts' joined octets so that a UCS-2 surrogate pair or a GSM-7 escape
that another network split across parts still decodes; a message whose parts stop coming is
handed over incomplete after the carrier's ``reassembly_timeout`` (flagged in ``raw``)
rather than lost (`pigeon.app.reassembly`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pigeon.carriers.smpp_alphabet import DefaultAlphabet, inbound_data_coding
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
from pigeon.domain.reassembly import alphabet, decode_text
from pigeon.domain.receipts import carrier_error_code, looks_like_receipt, outcome_of, parse_receipt_text
from pigeon.ports import InboundPart, InboundSms, Receipt

__all__ = ["Concat", "decode_text", "is_receipt", "read_mo", "receipt_from", "split_user_data"]

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
    length runs past the data is treated as absent, and one with an element running past the
    UDH's own end as garbled (no concatenation, text after the UDH's length), so a garbled
    header costs the concatenation, not the message.
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
        if pos + 2 + length > len(udh):
            # Its length disagrees with the UDH's: nothing in the header can be trusted, not
            # even a concatenation element read before this one.
            return None, udh, rest
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
    # SMPP's reference is two octets: a longer one is garbled (and four of 0xFF would not fit
    # the store's column), so, as with a garbled UDH, the concatenation is lost, not the text.
    if not (ref and total and seq) or len(ref) > 2:
        return None
    concat = Concat(int.from_bytes(ref, "big"), total[0], seq[0], 16)
    return concat if 1 <= concat.sequence <= concat.total else None


def read_mo(
    deliver: DeliverSm,
    *,
    carrier: str,
    sender: str,
    recipient: str,
    reassembly_timeout: float,
    default_alphabet: DefaultAlphabet = "gsm7",
) -> InboundSms | InboundPart:
    """A non-receipt deliver_sm as a whole message, or as one part of a concatenated one.

    ``sender`` and ``recipient`` are the deliver_sm's addresses as Pigeon writes numbers; a
    part's text octets stay encoded until its message is joined (see the module doc).
    data_coding 0 is read in the carrier's ``default_alphabet``: a part keeps the explicit
    data_coding it means (`smpp_alphabet.inbound_data_coding`), since the store joins parts
    without knowing the carrier's configuration.
    """
    concat, udh, body = split_user_data(deliver.user_data, deliver.udhi)
    concat = concat or concat_from_sar(deliver.tlvs)
    data_coding = inbound_data_coding(deliver.data_coding, default_alphabet)
    if concat is None or concat.total == 1:
        raw: dict[str, Any] = {"data_coding": deliver.data_coding, "esm_class": deliver.esm_class}
        if data_coding != deliver.data_coding:
            raw["read_as"] = default_alphabet
        if udh:
            raw["udh"] = udh.hex()
        text = decode_text(body, data_coding)
        return InboundSms(carrier=carrier, sender=sender, recipient=recipient, body=text, num_segments=1, raw=raw)
    return InboundPart(
        carrier=carrier,
        sender=sender,
        recipient=recipient,
        reference_bits=concat.bits,
        reference=concat.reference,
        total=concat.total,
        sequence=concat.sequence,
        data=body,
        data_coding=data_coding,
        timeout=reassembly_timeout,
    )


# --- receipts -------------------------------------------------------------------------------


def _receipt_text(deliver: DeliverSm) -> str:
    data = deliver.user_data
    if alphabet(deliver.data_coding) == "ucs2":
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


def _state(said: str | None, *, intermediate: bool) -> str:
    """The state a receipt records, from the state it says (None: it says none).

    An intermediate notification (SMPP 3.4 §5.2.12) reports on a delivery still under way,
    never its end: without a state it is ENROUTE, not UNKNOWN (which is final, undelivered).
    One that does say a final state (UNDELIV for an attempt that failed and will be retried,
    or a DELIVRD some SMSC copied in) is also read as ENROUTE: a part's first final answer
    stands, so taking it would shut out the real receipt that follows, while leaving it out
    only keeps the message as it was until that receipt comes. What it said stays in ``raw``.
    """
    if not intermediate:
        return said or "UNKNOWN"
    return said if said is not None and not outcome_of(said).final else "ENROUTE"


def receipt_from(
    deliver: DeliverSm, *, carrier: str, id_format: IdFormat, error_codes: Mapping[str, int] | None = None
) -> Receipt | None:
    """The Receipt in a receipt deliver_sm, or None when it names no message id at all.
    `error_codes`: the carrier's receipt_errors (`pigeon.domain.receipts.receipt_errors_key`)."""
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
    said = (MESSAGE_STATES.get(state_tlv[0]) if state_tlv else None) or parsed.stat
    stat = _state(said, intermediate=deliver.is_intermediate_notification)
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
    if said is not None and said != stat:
        extras.append(f"intermediate_notification_stat={said}")
    raw = text + (f" [{' '.join(extras)}]" if extras else "")
    return Receipt(
        carrier=carrier,
        carrier_id=carrier_id,
        stat=stat,
        err=err,
        done_date=parsed.done_date,
        raw=raw.strip(),
        error_code=carrier_error_code(error_codes, stat, err) if error_codes else None,
    )
