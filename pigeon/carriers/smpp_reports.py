"""What an SMSC tells a carrier unasked, handed durably to `CarrierEvents`.

* deliver_sm, or data_sm (SMPP 3.4 §4.7: the same receipts and messages, the text in the
  message_payload TLV): a receipt (`on_receipt`), a mobile-originated message (`on_inbound`)
  or one part of one (`on_inbound_part`), each acknowledged (deliver_sm_resp, data_sm_resp)
  only after the event is recorded; when recording raises, the SMSC gets ESME_RX_T_APPN and
  resends later. One that cannot be parsed gets generic_nack ESME_RINVCMDLEN.
* a submit_sm_resp that came after the response timeout (`pigeon.carriers.smpp_late`): an
  ESME_ROK with a message_id goes to `on_late_acceptance`, so the receipts of the copy the
  carrier took find the message; a refusal (an error status, or a generic_nack) goes to
  `on_late_refusal`, so the message's timeline says that copy is not at the carrier. A
  response is never acknowledged, so a failure to record it is logged with what it said,
  the only place it is then kept.

Each runs in a task of its own beside the session's read loop, which must keep reading.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.config import SmppCarrierConfig
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp_inbound import is_receipt, read_mo, receipt_from
from pigeon.carriers.smpp_late import ForgottenSubmit, late_acceptance, late_refusal
from pigeon.carriers.smpp_log import masked_hex, masked_receipt_text
from pigeon.carriers.smpp_session import SmppSession
from pigeon.ports import CarrierEvents, InboundPart, LateAcceptance, LateRefusal

__all__ = ["ReportHost", "SmscReports", "smpp_address"]

log = logging.getLogger(__name__)

_DELIVER_CONCURRENCY = 32  # deliver_sm being recorded at once; the SMSC's window holds the rest

#: command_id → (its name, its parser, its response) for what an SMSC delivers.
_DELIVERIES: dict[int, tuple[str, Callable[[bytes], pdu.DeliverSm], Callable[[int, int], bytes]]] = {
    pdu.DELIVER_SM: ("deliver_sm", pdu.parse_deliver_sm, pdu.deliver_sm_resp_pdu),
    pdu.DATA_SM: ("data_sm", pdu.parse_data_sm, pdu.data_sm_resp_pdu),
}


class ReportHost(Protocol):
    """What `SmscReports` needs from its carrier."""

    name: str
    config: SmppCarrierConfig
    metrics: CarrierMetrics
    last_error: str | None


class SmscReports:
    def __init__(self, host: ReportHost) -> None:
        self.host = host
        self.events: CarrierEvents | None = None  # given at the carrier's start
        self.counts = {"receipts": 0, "inbound": 0, "accepted_late": 0, "refused_late": 0}
        self.tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(_DELIVER_CONCURRENCY)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- late submit_sm_resp ------------------------------------------------------------

    def on_late(self, session: SmppSession, submit: ForgottenSubmit, header: pdu.Header, body: bytes) -> None:
        """Called by a session for an answer to a submit_sm it had stopped waiting for."""
        h = self.host
        late = late_acceptance(
            h.name,
            submit,
            status=header.status if header.command_id == pdu.SUBMIT_SM_RESP else -1,
            body=body,
            id_format=h.config.receipt_id_format,
            sequence=header.sequence,
        )
        about: dict[str, str | int] = {
            "carrier": h.name,
            "session": session.label,
            "sid": submit.message_sid,
            "part": submit.part,
            "command_status": f"0x{header.status:08X}",
            "body": body.hex(),
        }
        refused = late_refusal(
            h.name, submit, command_id=header.command_id, status=header.status, sequence=header.sequence
        )
        if refused is not None:
            log.warning("late refusal: the carrier does not have a copy counted as possibly sent", extra=about)
            self.host.metrics.submits.labels(h.name, "refused_late").inc()
            self._spawn(self._report_refused(refused, about))
            return
        if late is None:
            log.warning("late answer to a submit_sm gave up on, with no id to keep", extra=about)
            return
        log.warning("late submit_sm_resp: the carrier took a copy of a message that may have been resent", extra=about)
        self.host.metrics.submits.labels(h.name, "accepted_late").inc()
        self._spawn(self._report_late(late, about))

    async def _report_late(self, late: LateAcceptance, about: dict[str, str | int]) -> None:
        assert self.events is not None
        try:
            await self.events.on_late_acceptance(late)
        except Exception:
            self.host.metrics.errors.labels(self.host.name, "events").inc()
            log.exception("recording a late submit_sm_resp failed", extra={**about, "carrier_id": late.carrier_id})
            return
        self.counts["accepted_late"] += 1

    async def _report_refused(self, late: LateRefusal, about: dict[str, str | int]) -> None:
        assert self.events is not None
        try:
            await self.events.on_late_refusal(late)
        except Exception:
            self.host.metrics.errors.labels(self.host.name, "events").inc()
            log.exception("recording a late refusal failed", extra=about)
            return
        self.counts["refused_late"] += 1

    # --- deliver_sm and data_sm ---------------------------------------------------------

    def on_deliver(self, session: SmppSession, header: pdu.Header, body: bytes) -> None:
        """Called by a session for each deliver_sm or data_sm; answered once the event is recorded."""
        self._spawn(self._deliver(session, header, body))

    async def _deliver(self, session: SmppSession, header: pdu.Header, body: bytes) -> None:
        h = self.host
        sequence = header.sequence
        name, parse, answer = _DELIVERIES[header.command_id]
        async with self._slots:
            try:
                deliver = parse(body)
            except pdu.PduError as exc:
                h.metrics.errors.labels(h.name, "pdu").inc()
                h.last_error = f"garbled {name}: {exc}"
                log.warning(
                    f"garbled {name}",
                    extra={
                        "carrier": h.name,
                        "problem": str(exc),
                        "sequence": sequence,
                        "octets": len(body),
                        "pdu": masked_hex(header.command_id, body),  # no numbers, no text
                    },
                )
                session.respond(pdu.generic_nack_pdu(sequence, 0x02))  # ESME_RINVCMDLEN
                return
            if deliver.unread_tail is not None:
                # Taken without the optional parameters that could not be read: counted and
                # logged, since one of them may have been the receipt's id or state.
                h.metrics.errors.labels(h.name, "tlv").inc()
                log.warning(
                    f"{name} taken without its unreadable optional parameters",
                    extra={
                        "carrier": h.name,
                        "command_id": f"0x{header.command_id:08X}",
                        "sequence": sequence,
                        "problem": deliver.unread_tail,
                        "octets": len(body),
                        "pdu": masked_hex(header.command_id, body),  # no numbers, no text
                    },
                )
            try:
                await (self._receipt(deliver) if is_receipt(deliver) else self._inbound(deliver))
                status = 0
            except Exception:
                h.metrics.errors.labels(h.name, "events").inc()
                log.exception(f"recording a {name} failed; the SMSC will resend it", extra={"carrier": h.name})
                status = pdu.ESME_RX_T_APPN
            session.respond(answer(sequence, status))

    async def _receipt(self, deliver: pdu.DeliverSm) -> None:
        h = self.host
        receipt = receipt_from(
            deliver,
            carrier=h.name,
            id_format=h.config.receipt_id_format,
            error_codes=h.config.receipt_errors,
        )
        if receipt is not None and h.config.multipart_receipts == "any_part":
            receipt = dataclasses.replace(receipt, whole_message=True)
        if receipt is None:
            # Nothing to match it with: acknowledged so the SMSC stops resending, and counted.
            h.metrics.errors.labels(h.name, "receipt_without_id").inc()
            log.warning(
                "receipt names no message id",
                extra={"carrier": h.name, "receipt": masked_receipt_text(deliver.user_data)},
            )
            return
        assert self.events is not None
        await self.events.on_receipt(receipt)
        self.counts["receipts"] += 1
        h.metrics.receipts.labels(h.name, receipt.stat).inc()

    async def _inbound(self, deliver: pdu.DeliverSm) -> None:
        assert self.events is not None
        h = self.host
        message = read_mo(
            deliver,
            carrier=h.name,
            sender=smpp_address(deliver.source, deliver.source_ton),
            recipient=smpp_address(deliver.destination, deliver.destination_ton),
            reassembly_timeout=h.config.reassembly_timeout,
            default_alphabet=h.config.default_alphabet,
        )
        if isinstance(message, InboundPart):
            if not await self.events.on_inbound_part(message):
                return  # stored; its message is not complete yet
        else:
            await self.events.on_inbound(message)
        self.counts["inbound"] += 1
        h.metrics.inbound.labels(h.name).inc()


def smpp_address(number: str, ton: int) -> str:
    """An SMPP address as Pigeon writes numbers: E.164 with "+" for international numbers.

    TON 1 is international by definition; with TON 0 ("unknown", which many SMSCs send for
    everything) digits longer than a short code are read as international too. National
    (TON 2), alphanumeric and short numbers are kept as they came.

    A number starting with "0" is never given a "+": no country code starts with 0, so it is
    a national number (or an international one written with its "00" prefix), and a "+"
    would make it another number. Kept as received, a recipient like that matches none of
    the accounts' numbers (all E.164) and its message is kept as unroutable; a sender like
    that is stored as it came, and an automatic reply to it is refused with an alert. We
    cannot do better without knowing which country the SMSC's national numbers belong to.
    """
    digits = number.isascii() and number.isdigit() and not number.startswith("0")
    if digits and (ton == 1 or (ton == 0 and len(number) > 8)):
        return "+" + number
    return number
