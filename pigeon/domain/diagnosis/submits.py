"""How many times a message went to a carrier, and how many times the carrier said it arrived.

Every attempt is on the timeline: a `status` entry to `sending` (a first attempt, or one after
a retry) or a `resend` entry (a submit that may put the message on the network a second
time: a dispatcher reclaimed a message another one left in `sending`, a carrier never
answered an earlier submit, or another carrier took a message the first one had in part).
An attempt the carrier refused is followed by a `retry` entry, or by a `status` entry to
`failed` carrying `refused_by`; a refused submit put nothing on the network — unless the
entry says ``outcome_unknown`` (a carrier never answered it), which is no refusal. A carrier
that answers such a submit after all, late, with a refusal, leaves a `refused_late` entry:
that submit put nothing on the network either. What remains could each have reached the
handset.

Parts a carrier accepted before it refused a later part are completed by a later attempt
that sends only the missing parts, so the parts on record count per part: the message went
out as many times as its most often accepted part.

Each copy a carrier accepted has its own carrier id and receipt (a late answer to an
unanswered submit is recorded as `accepted_late`): the receipts of the copies say how many
of them reached the handset, which the finding reports with them as evidence. A carrier
duplicate is one id (at one carrier) reported delivered twice, never two copies' ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pigeon.domain.diagnosis.facts import MessageFacts, Row
from pigeon.domain.diagnosis.model import Finding, event_row, part_row, receipt_row
from pigeon.domain.receipts import outcome_of
from pigeon.domain.status import MessageStatus

DELIVERED_STAT = "DELIVRD"


@dataclass(frozen=True)
class Submits:
    attempts: list[Row] = field(default_factory=list)
    refused: list[Row] = field(default_factory=list)
    resends: list[Row] = field(default_factory=list)
    #: How many times the most often accepted part was accepted (carrier ids per part).
    accepted: int = 0

    @property
    def reaching(self) -> int:
        """Submits that may have put the message on the network."""
        return max(len(self.attempts) - len(self.refused), self.accepted)


def count_submits(events: Sequence[Row], parts: Sequence[Row]) -> Submits:
    attempts = [e for e in events if _is_attempt(e)]
    refused = [e for e in events if _is_refusal(e)]
    resends = [e for e in events if e.get("kind") == "resend"]
    per_part = Counter(p.get("part_index", 0) for p in parts)
    accepted = max(per_part.values(), default=0)
    return Submits(attempts=attempts, refused=refused, resends=resends, accepted=accepted)


def _is_refusal(e: Row) -> bool:
    detail = e.get("detail") or {}
    if e.get("kind") == "refused_late":  # an unanswered submit, refused after all
        return True
    if detail.get("outcome_unknown"):
        return False
    if e.get("kind") == "retry":
        return True
    return e.get("kind") == "status" and e.get("status") == "failed" and bool(detail.get("refused_by"))


def unanswered(events: Sequence[Row]) -> list[Row]:
    """Attempts a carrier never answered: it may have accepted them."""
    return [
        e for e in events if e.get("kind") in {"retry", "status"} and (e.get("detail") or {}).get("outcome_unknown")
    ]


def _is_attempt(e: Row) -> bool:
    return e.get("kind") == "resend" or (e.get("kind") == "status" and e.get("status") == "sending")


def delivered_receipts(events: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    """(carrier, carrier id) -> its `DELIVRD` receipts, for ids reported delivered more than
    once (copies at two carriers may have the same id: each is a submit of its own)."""
    by_id: dict[tuple[str, str], list[Row]] = {}
    for e in events:
        d = e.get("detail") or {}
        if e.get("kind") == "receipt" and d.get("stat") == DELIVERED_STAT:
            by_id.setdefault((str(d.get("carrier")), str(d.get("carrier_id"))), []).append(e)
    return {key: rows for key, rows in by_id.items() if len(rows) > 1}


def copies_said(parts: Sequence[Row]) -> str:
    """What the receipts of the most often accepted part's copies say, as a sentence ("" when
    the carrier has one copy of each part on record)."""
    per_part: dict[int, list[Row]] = {}
    for p in parts:
        per_part.setdefault(p.get("part_index", 0), []).append(p)
    copies = max(per_part.values(), key=len, default=[])
    if len(copies) < 2:
        return ""
    outcomes = [outcome_of(p["receipt_stat"]) if p.get("receipt_stat") else None for p in copies]
    delivered = sum(o is not None and o.status is MessageStatus.DELIVERED for o in outcomes)
    failed = sum(o is not None and o.final and o.status is not MessageStatus.DELIVERED for o in outcomes)
    open_ = len(copies) - delivered - failed
    said = [f"{delivered} delivered"]
    if failed:
        said.append(f"{failed} not delivered")
    if open_:
        said.append(f"{open_} without a final receipt yet")
    return f" The carrier's receipts for its {len(copies)} copies: {', '.join(said)}."


#: The timeline entries a possible duplicate is shown with: each submit, what became of it, and
#: the receipts of each copy.
_SUBMIT_EVIDENCE = frozenset({"status", "resend", "retry", "failover", "accepted_late", "refused_late", "receipt"})

_RESEND_ADVICE = [
    "A dispatcher that stops between submitting and recording the carrier's answer (kill -9, a crash, "
    "the out-of-memory killer, a lost database connection) leaves the message 'sending'; once its lease runs "
    "out another dispatcher sends it again, so that nothing is lost, at the price of a possible duplicate.",
    "Stop workers with SIGTERM (they finish the submits in flight first) and look in the dead worker's logs "
    "for why it stopped.",
    "A carrier that does not answer a submit within its response_timeout may still have taken it: Pigeon "
    "sends it again to that carrier only (with the same concatenation reference), or to the next carrier "
    "when failover_on_unknown_outcome is set. If this happens often, look at the carrier's link and its "
    "latency (`pigeon carriers`, GET /metrics), or raise response_timeout.",
    "Some carriers drop a repeated submit with the same reference; ask yours whether it can.",
]

_CARRIER_DUPLICATE_ADVICE = [
    "Send the carrier the evidence below (its message id and both receipts, raw): one submit answered with "
    "two deliveries is on their side.",
    "Pigeon records the repeated receipt and ignores it; if the recipient got one text, the carrier only "
    "repeated the receipt.",
]


def submit_findings(f: MessageFacts) -> list[Finding]:
    """pigeon_resent and carrier_duplicate for one outbound message."""
    m = f.message
    out: list[Finding] = []
    submits = count_submits(f.events, f.parts)
    if submits.reaching >= 2:
        # A resend says why it was sent again; an unanswered attempt says why it may count.
        why_rows = submits.resends or unanswered(f.events)
        reasons = list(dict.fromkeys(str(r) for e in why_rows if (r := (e.get("detail") or {}).get("reason"))))
        why = "; ".join(reasons) if reasons else "the carrier accepted it more than once"
        out.append(
            Finding(
                cause="pigeon_resent",
                severity="warning",
                summary=f"Pigeon submitted {m['sid']} to the carrier {submits.reaching} times, so the recipient may "
                f"have received it {submits.reaching} times. Why: {why}." + copies_said(f.parts),
                evidence=[
                    *[
                        receipt_row(e) if e.get("kind") == "receipt" else event_row(e)
                        for e in f.events
                        if e.get("kind") in _SUBMIT_EVIDENCE
                    ],
                    *[part_row(p) for p in f.parts],
                ],
                advice=list(_RESEND_ADVICE),
            )
        )
    duplicated = delivered_receipts(f.events)
    if duplicated:
        (_, cid), rows = next(iter(duplicated.items()))
        out.append(
            Finding(
                cause="carrier_duplicate",
                severity="warning",
                summary=f"The carrier reported one submit of {m['sid']} (carrier id {cid}) delivered {len(rows)} "
                "times: the duplicate came from the carrier, not from Pigeon.",
                evidence=[
                    *[receipt_row(e) for rows in duplicated.values() for e in rows],
                    *[part_row(p) for p in f.parts],
                ],
                advice=list(_CARRIER_DUPLICATE_ADVICE),
            )
        )
    return out
