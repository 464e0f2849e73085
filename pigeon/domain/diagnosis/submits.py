"""How many times a message went to a carrier, and how many times the carrier said it arrived.

Every attempt is on the timeline: a `status` entry to `sending` (a first attempt, or one after
a retry) or a `resend` entry (a dispatcher reclaimed a message another dispatcher left in
`sending`: the earlier submit may or may not have reached the carrier). An attempt the carrier
refused is followed by a `retry` entry, or by a `status` entry to `failed` carrying
`refused_by`; a refused submit put nothing on the network. What remains could each have
reached the handset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pigeon.domain.diagnosis.facts import MessageFacts, Row
from pigeon.domain.diagnosis.model import Finding, event_row, part_row, receipt_row

DELIVERED_STAT = "DELIVRD"


@dataclass(frozen=True)
class Submits:
    attempts: list[Row] = field(default_factory=list)
    refused: list[Row] = field(default_factory=list)
    resends: list[Row] = field(default_factory=list)
    #: Distinct submit times among the message's carrier ids (accepted submits).
    accepted: int = 0

    @property
    def reaching(self) -> int:
        """Submits that may have put the message on the network."""
        return max(len(self.attempts) - len(self.refused), self.accepted)


def count_submits(events: Sequence[Row], parts: Sequence[Row]) -> Submits:
    attempts = [e for e in events if _is_attempt(e)]
    refused = [
        e
        for e in events
        if e.get("kind") == "retry"
        or (e.get("kind") == "status" and e.get("status") == "failed" and (e.get("detail") or {}).get("refused_by"))
    ]
    resends = [e for e in events if e.get("kind") == "resend"]
    accepted = len({p.get("submitted_at") for p in parts})
    return Submits(attempts=attempts, refused=refused, resends=resends, accepted=accepted)


def _is_attempt(e: Row) -> bool:
    return e.get("kind") == "resend" or (e.get("kind") == "status" and e.get("status") == "sending")


def delivered_receipts(events: Sequence[Row]) -> dict[str, list[Row]]:
    """carrier id -> its `DELIVRD` receipts, for ids reported delivered more than once."""
    by_id: dict[str, list[Row]] = {}
    for e in events:
        d = e.get("detail") or {}
        if e.get("kind") == "receipt" and d.get("stat") == DELIVERED_STAT:
            by_id.setdefault(str(d.get("carrier_id")), []).append(e)
    return {cid: rows for cid, rows in by_id.items() if len(rows) > 1}


_RESEND_ADVICE = [
    "A dispatcher that stops between submitting and recording the carrier's answer (kill -9, a crash, "
    "the out-of-memory killer, a lost database connection) leaves the message 'sending'; once its lease runs "
    "out another dispatcher sends it again, so that nothing is lost, at the price of a possible duplicate.",
    "Stop workers with SIGTERM (they finish the submits in flight first) and look in the dead worker's logs "
    "for why it stopped.",
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
        reasons = [str((e.get("detail") or {}).get("reason")) for e in submits.resends]
        why = "; ".join(reasons) if reasons else "the carrier accepted it more than once"
        out.append(
            Finding(
                cause="pigeon_resent",
                severity="warning",
                summary=f"Pigeon submitted {m['sid']} to the carrier {submits.reaching} times, so the recipient may "
                f"have received it {submits.reaching} times. Why: {why}.",
                evidence=[
                    *[event_row(e) for e in f.events if e.get("kind") in {"status", "resend", "retry", "failover"}],
                    *[part_row(p) for p in f.parts],
                ],
                advice=list(_RESEND_ADVICE),
            )
        )
    duplicated = delivered_receipts(f.events)
    if duplicated:
        cid, rows = next(iter(duplicated.items()))
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
