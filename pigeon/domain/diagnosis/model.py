"""What the doctor says: findings, the report that carries them, thresholds, evidence rows.

A `Finding` names a cause with a stable identifier (`cause`), how bad it is (`severity`), a
summary in our own words, the evidence (rows from the store, each tagged with the `source`
it came from) and the advice. A `Report` is one flow's answer about one subject.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pigeon.domain import numbers
from pigeon.domain.error_catalogue import explain

Row = Mapping[str, Any]
T = TypeVar("T")
Severity = Literal["error", "warning", "info"]

#: Statuses a message is still on its way in (not final).
WAITING = frozenset({"accepted", "queued"})


@dataclass(frozen=True)
class Finding:
    cause: str
    severity: Severity
    summary: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """One flow's answer. `checks` lists what was looked at and passed or failed (shown even
    when there is nothing to report), for example the webhook test request."""

    flow: str
    subject: dict[str, Any]
    findings: list[Finding]
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def causes(self) -> list[str]:
        return [f.cause for f in self.findings]

    def finding(self, cause: str) -> Finding | None:
        return next((f for f in self.findings if f.cause == cause), None)


@dataclass(frozen=True)
class Thresholds:
    """When waiting becomes a problem."""

    #: A message due this long ago and still not taken by a dispatcher is stuck.
    stall: timedelta = timedelta(seconds=60)
    #: A sent message without a receipt for this long is worth a warning.
    receipt_wait: timedelta = timedelta(minutes=10)
    #: A webhook slower than this risks Twilio's 15 s limit.
    slow_webhook_ms: float = 5000.0


def explained(code: int | None) -> dict[str, Any]:
    """An error code with Pigeon's explanation, as an evidence row."""
    info = explain(code) if code is not None else None
    if info is None:
        return {"source": "error_code", "error_code": code, "name": None, "meaning": "Pigeon does not know this code."}
    return {
        "source": "error_code",
        "error_code": info.code,
        "name": info.name,
        "meaning": info.meaning,
        "causes": list(info.causes),
        "more_info": info.more_info,
    }


def _fits_a_finding(advice: str) -> bool:
    """Catalogue advice that fits `pigeon errors` but not a doctor's finding: running the
    doctor, said inside its own report, or rehearsing with the simulator, said of a real
    carrier's answer."""
    return not advice.startswith("Run `pigeon doctor") and "simulator's scripted outcomes" not in advice


def remedy(code: int | None) -> list[str]:
    """What the catalogue advises for `code`, as a finding of the doctor gives it."""
    info = explain(code) if code is not None else None
    return [a for a in info.remedy if _fits_a_finding(a)] if info else []


def event_row(event: Row) -> dict[str, Any]:
    """A timeline entry as evidence."""
    return {
        "source": "timeline",
        "message_sid": event.get("message_sid"),
        "at": event.get("at"),
        "kind": event.get("kind"),
        "status": event.get("status"),
        "error_code": event.get("error_code"),
        "detail": dict(event.get("detail") or {}),
    }


def receipt_row(event: Row) -> dict[str, Any]:
    """A receipt entry of the timeline, with the carrier's raw text."""
    d = event.get("detail") or {}
    return {
        "source": "receipt",
        "message_sid": event.get("message_sid"),
        "at": event.get("at"),
        "carrier": d.get("carrier"),
        "carrier_id": d.get("carrier_id"),
        "part": d.get("part"),
        "stat": d.get("stat"),
        "err": d.get("err"),
        "raw": d.get("raw"),
        "applied": d.get("applied"),
        "duplicate": d.get("duplicate"),
    }


def timeline(events: Iterable[Row]) -> list[dict[str, Any]]:
    """A message's timeline as evidence; receipts with the carrier's raw answer."""
    return [receipt_row(e) if e.get("kind") == "receipt" else event_row(e) for e in events]


def alert_row(alert: Row) -> dict[str, Any]:
    return {
        "source": "alert",
        "sid": alert.get("sid"),
        "at": alert.get("date_created"),
        "error_code": alert.get("error_code"),
        "resource_sid": alert.get("resource_sid"),
        "text": alert.get("alert_text"),
        "request_url": alert.get("request_url"),
        "response_status": alert.get("response_status"),
        "response_body": _excerpt(alert.get("response_body")),
    }


def request_row(req: Row) -> dict[str, Any]:
    """A request-log entry as evidence (the log keeps no bodies and no credentials)."""
    return {
        "source": "request_log",
        "sid": req.get("sid"),
        "at": req.get("at"),
        "method": req.get("method"),
        "path": req.get("path"),
        "status": req.get("status"),
        "error_code": req.get("error_code"),
        "resource_sid": req.get("resource_sid"),
        "source_ip": req.get("source_ip"),
        "user_agent": req.get("user_agent"),
        "idempotency_key": req.get("idempotency_key"),
        "to": req.get("to"),
        "from": req.get("from_"),
        # False: refused before its credentials were accepted; it only names the account.
        "credentials_accepted": req.get("account_sid") is not None,
    }


def part_row(part: Row) -> dict[str, Any]:
    """One submitted part (carrier_refs) as evidence."""
    return {
        "source": "carrier_ref",
        "message_sid": part.get("message_sid"),
        "carrier": part.get("carrier"),
        "carrier_id": part.get("carrier_message_id"),
        "part": (part.get("part_index") or 0) + 1,
        "parts": part.get("part_count"),
        "submitted_at": part.get("submitted_at"),
        "receipt_stat": part.get("receipt_stat"),
        "receipt_at": part.get("receipt_at"),
    }


def message_row(message: Row) -> dict[str, Any]:
    """The message record as evidence (never its body)."""
    return {
        "source": "message",
        "sid": message.get("sid"),
        "direction": message.get("direction"),
        "from": message.get("from_"),
        "to": message.get("to"),
        "status": message.get("status"),
        "error_code": message.get("error_code"),
        "date_created": message.get("date_created"),
        "date_sent": message.get("date_sent"),
        "attempts": message.get("attempts"),
    }


def _excerpt(text: Any, limit: int = 300) -> Any:
    if isinstance(text, str) and len(text) > limit:
        return text[:limit] + "…"
    return text


def seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())


def unique(items: Iterable[T]) -> list[T]:
    """Without repeats, in first-seen order."""
    return list(dict.fromkeys(items))


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"


def in_stored_form(number: str) -> bool:
    """Whether `number` is written as the store keeps numbers: E.164, or a short code."""
    return numbers.number_or_short_code(number) == number


def not_e164(number: str, looked_in: str) -> Finding:
    """Nothing was found for `number`, which is written neither in E.164 nor as a short code:
    `looked_in` keeps numbers in E.164, so that says nothing about the number meant."""
    return Finding(
        cause="number_not_e164",
        severity="error",
        summary=f"{number} is not written in E.164 and the doctor will not guess its country; {looked_in} "
        "keeps numbers in E.164, so finding nothing under it says nothing about the number you mean.",
        evidence=[{"source": "input", "number": number}],
        advice=[
            "Ask again with the number in E.164: '+', the country code, then the number (a US 202-555-0123 is "
            "+12025550123).",
            "Digits without the '+' are read as E.164 only when they start with a country code and make a valid "
            "number of that country.",
        ],
    )
