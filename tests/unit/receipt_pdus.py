"""A delivery receipt's deliver_sm, as an SMSC sends it, for the unit tests of its reading."""

from __future__ import annotations

from pigeon.carriers.smpp_pdu import DeliverSm


def receipt_sm(text: str, tlvs: dict[int, bytes] | None = None, esm_class: int = 0x04) -> DeliverSm:
    return DeliverSm(
        service_type="",
        source_ton=1,
        source_npi=1,
        source="447700900123",
        destination_ton=1,
        destination_npi=1,
        destination="14155550100",
        esm_class=esm_class,
        protocol_id=0,
        data_coding=0,
        short_message=text.encode("latin-1"),
        tlvs=tlvs or {},
    )
