"""Submits given up as unanswered, remembered so that a late submit_sm_resp still counts.

When no submit_sm_resp comes within ``response_timeout``, the submit is reported as an
unknown outcome and the dispatcher sends the message again. The SMSC may still answer the
first submit_sm: its submit_sm_resp then carries the carrier's id for a copy the carrier
has, whose receipts would match no message if the id were only logged. So each session
remembers, for the sequences it stopped waiting for, which message and part they were
(`ForgottenSubmits`); a late ESME_ROK with a message_id becomes a `LateAcceptance` for
`CarrierEvents.on_late_acceptance`, which records the id. A late refusal (a submit_sm_resp
with an error status, or a generic_nack) proves the opposite: that copy is not at the
carrier, although the dispatcher counted it as possibly there. It becomes a `LateRefusal`
for `CarrierEvents.on_late_refusal`, which records it on the message's timeline.

A sequence number means something only on its own TCP session, hence one memory per
session, dying with it. It is bounded in size and in time: an SMSC that answers after ten
minutes is answering something else (sequence numbers wrap), and a stalled SMSC must not
grow the process without end.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from pigeon.carriers.smpp_errors import carrier_code
from pigeon.carriers.smpp_ids import IdFormat, IdSource, canonical_id
from pigeon.carriers.smpp_pdu import GENERIC_NACK, SUBMIT_SM_RESP, parse_message_id
from pigeon.ports import LateAcceptance, LateRefusal

__all__ = ["ForgottenSubmit", "ForgottenSubmits", "late_acceptance", "late_refusal"]

#: Forgotten submits kept per session: far more than a window's worth of timeouts.
REMEMBERED = 4096
#: Seconds a forgotten submit is kept: past this a late answer is only logged.
REMEMBERED_FOR = 600.0


@dataclass(frozen=True)
class ForgottenSubmit:
    """Which message and part an unanswered submit_sm was for."""

    message_sid: str
    account_sid: str
    part: int  # 1 .. parts
    parts: int


class ForgottenSubmits:
    """sequence → `ForgottenSubmit`, the newest ``capacity`` for ``keep_for`` seconds."""

    def __init__(
        self,
        *,
        capacity: int = REMEMBERED,
        keep_for: float = REMEMBERED_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.keep_for = keep_for
        self._clock = clock
        self._kept: OrderedDict[int, tuple[float, ForgottenSubmit]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._kept)

    def remember(self, sequence: int, submit: ForgottenSubmit) -> None:
        now = self._clock()
        self._drop_expired(now)
        self._kept.pop(sequence, None)  # a sequence used again (it wrapped) names its newer submit
        self._kept[sequence] = (now, submit)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)

    def take(self, sequence: int) -> ForgottenSubmit | None:
        """The submit ``sequence`` was for, once; None if unknown or remembered too long ago."""
        kept = self._kept.pop(sequence, None)
        if kept is None or self._clock() - kept[0] > self.keep_for:
            return None
        return kept[1]

    def _drop_expired(self, now: float) -> None:
        while self._kept:
            at, _ = next(iter(self._kept.values()))
            if now - at <= self.keep_for:
                return
            self._kept.popitem(last=False)


def late_acceptance(
    carrier: str, submit: ForgottenSubmit, *, status: int, body: bytes, id_format: IdFormat, sequence: int
) -> LateAcceptance | None:
    """What a late submit_sm_resp tells: an acceptance with the carrier's id, or None (a late
    refusal, or an answer without an id, leaves nothing a receipt could match)."""
    raw_id = parse_message_id(body) if status == 0 else ""
    carrier_id = canonical_id(raw_id, IdSource.SUBMIT, id_format)
    if not carrier_id:
        return None
    return LateAcceptance(
        carrier=carrier,
        message_sid=submit.message_sid,
        account_sid=submit.account_sid,
        carrier_id=carrier_id,
        part=submit.part,
        parts=submit.parts,
        raw={"message_id": raw_id, "sequence": sequence},
    )


def late_refusal(
    carrier: str, submit: ForgottenSubmit, *, command_id: int, status: int, sequence: int
) -> LateRefusal | None:
    """What a late answer that refuses tells: that copy is not at the carrier. None for an
    acceptance (ESME_ROK) or for an answer that is not to a submit_sm."""
    if status == 0 or command_id not in (SUBMIT_SM_RESP, GENERIC_NACK):
        return None
    return LateRefusal(
        carrier=carrier,
        message_sid=submit.message_sid,
        account_sid=submit.account_sid,
        part=submit.part,
        parts=submit.parts,
        command_status=status,
        status_name=carrier_code(status),
        raw={"sequence": sequence, "command": "generic_nack" if command_id == GENERIC_NACK else "submit_sm_resp"},
    )
