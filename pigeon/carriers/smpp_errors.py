"""SMPP command_status → what Pigeon does about it (STYLE "absorb 4": translate at the boundary).

Every non-zero command_status in a submit_sm_resp (or a generic_nack answering a submit_sm)
becomes one of three outcomes:

* ``THROTTLE``: ESME_RTHROTTLED and ESME_RMSGQFUL. Nothing was accepted; the connector
  pauses that bind and resends the *same part*, before any later part of the message, up to
  its budget; past the budget it raises `CarrierRetryableError` so the dispatcher can fail
  over (Twilio 30001, "queue overflow", if the message finally fails this way);
* ``RETRY``: transient refusals (system error, bind state, temporary application error,
  unknown or reserved codes) → `CarrierRetryableError`;
* ``PERMANENT``: the SMSC will refuse this message every time → `CarrierPermanentError`.

Nothing was sent when the SMSC refuses, so a retry can never duplicate a message: the
requeue loops other gateways suffer from come from retrying *ambiguous* outcomes (timeouts,
dropped connections), which the connector reports separately.

The Twilio code is the one a user reads in the message's ``error_code``:

=============================================  =======  ==========================================
command_status                                 code     why
=============================================  =======  ==========================================
ESME_RINVDSTADR 0x0B                           30005    the network does not know the handset
ESME_RINVSRCADR 0x0A, RINVSRCTON/NPI 0x48/49   21606    the From is not valid for this carrier
ESME_RINVMSGLEN 0x01                           30019    content too long for the carrier
ESME_RX_R_APPN 0x66                            30007    the carrier's application rejected it
ESME_RTHROTTLED 0x58, ESME_RMSGQFUL 0x14       30001    carrier queue full past our budget
every other code                               30008    "unknown error"; the raw status is kept
=============================================  =======  ==========================================

The raw status always travels as ``carrier_code`` (its SMPP 3.4 §5.1.3 name, or
``0x%08X`` for codes outside the table, e.g. vendor codes 0x400–0x4FF) so the timeline and
the doctor show what the SMSC really said. A carrier's vendor codes can be classified in its
configuration (``status_map``); see `pigeon.carriers.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pigeon.domain.errors import CarrierError, CarrierPermanentError, CarrierRetryableError

__all__ = ["STATUS_NAMES", "Action", "StatusRule", "carrier_code", "classify", "to_error"]


class Action(StrEnum):
    THROTTLE = "throttle"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class StatusRule:
    action: Action
    error_code: int


ESME_ROK = 0x00000000
ESME_RTHROTTLED = 0x00000058
ESME_RMSGQFUL = 0x00000014

#: SMPP 3.4 §5.1.3 names, for carrier_code and messages.
STATUS_NAMES: Mapping[int, str] = {
    0x00: "ESME_ROK",
    0x01: "ESME_RINVMSGLEN",
    0x02: "ESME_RINVCMDLEN",
    0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS",
    0x05: "ESME_RALYBND",
    0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG",
    0x08: "ESME_RSYSERR",
    0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR",
    0x0C: "ESME_RINVMSGID",
    0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID",
    0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL",
    0x14: "ESME_RMSGQFUL",
    0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS",
    0x34: "ESME_RINVDLNAME",
    0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP",
    0x43: "ESME_RINVESMCLASS",
    0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL",
    0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON",
    0x51: "ESME_RINVDSTNPI",
    0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG",
    0x55: "ESME_RINVNUMMSGS",
    0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED",
    0x62: "ESME_RINVEXPIRY",
    0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL",
    0xC0: "ESME_RINVOPTPARSTREAM",
    0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN",
    0xC3: "ESME_RMISSINGOPTPARAM",
    0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE",
    0xFF: "ESME_RUNKNOWNERR",
}

_UNKNOWN = 30008
_THROTTLE = StatusRule(Action.THROTTLE, 30001)
_RETRY = StatusRule(Action.RETRY, _UNKNOWN)
_PERMANENT = StatusRule(Action.PERMANENT, _UNKNOWN)

#: Codes whose outcome is not "permanent, 30008". Every code not listed here and not in
#: STATUS_NAMES (reserved and vendor ranges) is RETRY: an unknown refusal is worth another
#: carrier, and a refusal never duplicates a message.
_RULES: Mapping[int, StatusRule] = {
    ESME_RTHROTTLED: _THROTTLE,
    ESME_RMSGQFUL: _THROTTLE,
    0x04: _RETRY,  # ESME_RINVBNDSTS: our bind is in the wrong state; the session is rebuilt
    0x05: _RETRY,  # ESME_RALYBND
    0x08: _RETRY,  # ESME_RSYSERR: the SMSC's own trouble
    0x0D: _RETRY,  # ESME_RBINDFAIL, RINVPASWD, RINVSYSID: only expected on bind
    0x0E: _RETRY,
    0x0F: _RETRY,
    0x45: _RETRY,  # ESME_RSUBMITFAIL: generic, most often transient
    0x64: _RETRY,  # ESME_RX_T_APPN: "temporary" by definition
    0xFF: _RETRY,  # ESME_RUNKNOWNERR
    0x01: StatusRule(Action.PERMANENT, 30019),
    0x0A: StatusRule(Action.PERMANENT, 21606),
    0x48: StatusRule(Action.PERMANENT, 21606),
    0x49: StatusRule(Action.PERMANENT, 21606),
    0x0B: StatusRule(Action.PERMANENT, 30005),
    0x66: StatusRule(Action.PERMANENT, 30007),
}


def carrier_code(status: int) -> str:
    """The raw status as the timeline keeps it: its SMPP name, else ``0x%08X``."""
    return STATUS_NAMES.get(status) or f"0x{status:08X}"


def classify(status: int, overrides: Mapping[int, StatusRule] | None = None) -> StatusRule:
    """The rule for a non-zero ``status``; ``overrides`` (a carrier's ``status_map``) win."""
    if overrides and status in overrides:
        return overrides[status]
    if status in _RULES:
        return _RULES[status]
    return _PERMANENT if status in STATUS_NAMES else _RETRY


def to_error(status: int, rule: StatusRule, *, carrier: str, part: int, parts: int) -> CarrierError:
    """The domain error for a refusal the connector will not (or no longer) retry itself."""
    where = f" (part {part} of {parts})" if parts > 1 else ""
    message = f"{carrier} refused the submission{where}: {carrier_code(status)}"
    if rule.action is Action.PERMANENT:
        return CarrierPermanentError(message, carrier_code=carrier_code(status), error_code=rule.error_code)
    return CarrierRetryableError(message, carrier_code=carrier_code(status), error_code=rule.error_code)
