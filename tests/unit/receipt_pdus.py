"""A deliver_sm as an SMSC sends it, for the unit tests of its reading: any message, and a
delivery receipt's."""

from __future__ import annotations

from pigeon.carriers.smpp_pdu import DeliverSm


def deliver_sm(
    short_message: bytes, *, data_coding: int = 0, esm_class: int = 0, tlvs: dict[int, bytes] | None = None
) -> DeliverSm:
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
        data_coding=data_coding,
        short_message=short_message,
        tlvs=tlvs or {},
    )


def receipt_sm(text: str, tlvs: dict[int, bytes] | None = None, esm_class: int = 0x04) -> DeliverSm:
    return deliver_sm(text.encode("latin-1"), esm_class=esm_class, tlvs=tlvs)
