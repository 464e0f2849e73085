"""What an erasure removed (`pigeon erase NUMBER --yes`): a message asked about by its SID,
or a number's history, is gone because a person asked that their data be deleted.

The erasure's record (pigeon/store/erasure_log.py) says when it ran, who ran it, which
accounts it covered and how many of this account's messages went; it keeps neither the
number nor the messages. Without it the doctor would say that a message was never there, or
that the application never asked to text the number, which is not so."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pigeon.domain.diagnosis.facts import Row
from pigeon.domain.diagnosis.model import Finding, when

_GONE = (
    "What an erasure removes is gone for good: it keeps no copy of the messages, their text or the number, only "
    "its own record (when, who ran it, how many messages), with the number as a keyed fingerprint."
)
_WHY = (
    "An operator erases a phone number's data when the person asks for it (`pigeon erase NUMBER --yes`); if that "
    "was not expected, ask whoever ran it."
)
_OPT_OUTS = (
    "The number's opt-outs were kept: if it texted STOP, sends to it are still refused (21610), and "
    "`pigeon doctor blocked` shows the opt-out."
)


def erasure_row(erasure: Row) -> dict[str, Any]:
    """An erasure's record as evidence: this account's messages that went, never another's."""
    return {
        "source": "erasure",
        "erasure_id": erasure.get("erasure_id"),
        "started_at": erasure.get("started_at"),
        "finished_at": erasure.get("finished_at"),
        "erased_by": erasure.get("erased_by"),
        "scope": erasure.get("scope") or "every account",
        "messages_erased": erasure.get("messages"),
    }


def ended(erasure: Row, now: datetime) -> datetime:
    """When the erasure ended; `now` for one that has not (it may still be removing)."""
    finished = erasure.get("finished_at")
    return finished if isinstance(finished, datetime) else now


def erased_since(erasures: Sequence[Row], since: datetime, now: datetime) -> list[Row]:
    """The erasures that removed anything made or logged since `since`: those that ended then
    or later. One that ended before left what came after it whole."""
    return [e for e in erasures if ended(e, now) >= since]


def _ran(erasure: Row) -> str:
    """When: "at T", or from when to when for a run that was cut short and taken up again
    later (or one that took long), or since when for one that has not finished."""
    by = f" ({erasure['erased_by']})" if erasure.get("erased_by") else ""
    started, finished = when(erasure.get("started_at")), erasure.get("finished_at")
    if finished is None:
        return f"in an erasure that started at {started}{by} and has not finished"
    if started != when(finished):
        return f"in an erasure that started at {started} and finished at {when(finished)}{by}"
    return f"at {started}{by}"


def _unfinished(erasures: Sequence[Row]) -> list[str]:
    if all(e.get("finished_at") is not None for e in erasures):
        return []
    return [
        "An erasure that has not finished stopped part way or is still running: running "
        "`pigeon erase NUMBER --yes` again finishes it."
    ]


def message_erased(sid: str, erasure: Row) -> Finding:
    """The message `sid` went in `erasure`."""
    return Finding(
        cause="message_erased",
        severity="warning",
        summary=f"Message {sid} was erased {_ran(erasure)}, with everything Pigeon held about a phone number it was "
        "to or from.",
        evidence=[erasure_row(erasure), {"source": "message", "sid": sid, "found": False}],
        advice=[_GONE, _WHY, *_unfinished([erasure])],
    )


def number_erased(number: str, erasures: Sequence[Row]) -> Finding:
    """`number` was erased (`erasures`, newest first): what the store held before cannot be
    examined, and a finding that nothing was there would be untrue."""
    newest = erasures[0]
    mine = newest.get("messages") or 0
    return Finding(
        cause="message_erased",
        severity="warning",
        summary=f"The data of {number} was erased {_ran(newest)}: the messages to and from it ({mine} of this "
        "account's) and the request log's entries naming it were removed. What was there before cannot be "
        "examined, nor whether the application asked to text it then; what came after is here as usual.",
        evidence=[erasure_row(e) for e in erasures],
        advice=[_GONE, _OPT_OUTS, _WHY, *_unfinished(erasures)],
    )


def erased_before(number: str, erasures: Sequence[Row]) -> list[str]:
    """Advice for a finding about a window that began after `number` was erased (`erasures`,
    newest first; none: nothing to say)."""
    if not erasures:
        return []
    return [
        f"The data of {number} was erased {_ran(erasures[0])}, before this window: look no further back for its "
        "messages, they are gone."
    ]
