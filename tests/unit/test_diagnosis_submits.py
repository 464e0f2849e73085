"""The doctor's count of submits and copies (`pigeon.domain.diagnosis.submits`) for a message
its carrier took twice: a late answer to an unanswered submit (`accepted_late`) gives the
first copy an id and receipts of its own."""

from __future__ import annotations

from typing import Any

from pigeon.domain.diagnosis import count_submits, diagnose_message
from tests.unit.test_diagnosis import clean_events, ev, facts, msg, one, part, receipt, sources

WHY = "acme never answered the submit of the message and may have accepted it"


def taken_twice(first_stat: str | None, second_stat: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The timeline and carrier ids of a message sent again after an unanswered submit, whose
    first copy the carrier then answered late (id c1; the resend's is c2)."""
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("retry", "queued", 11, carrier_code="smpp:response_timeout", outcome_unknown=True, reason=WHY),
        ev("resend", "sending", 12, attempt=2, reason=f"{WHY}: sent to acme again"),
        ev("status", "sent", 12, carrier="simulator", carrier_ids=["c2"]),
        ev("accepted_late", None, 13, carrier="simulator", carrier_ids=["c1"], part=1, parts=1),
    ]
    for cid, stat, t in (("c1", first_stat, 14), ("c2", second_stat, 15)):
        if stat is not None:
            events.append(receipt(stat, "000" if stat == "DELIVRD" else "001", cid=cid, t=t))
    return events, [part("c1", 1, first_stat), part("c2", 12, second_stat)]


def test_the_copies_receipts_say_how_many_reached_the_handset() -> None:
    events, parts = taken_twice("UNDELIV", "DELIVRD")
    assert count_submits(events, parts).reaching == 2
    f = one(diagnose_message(facts(events=events, parts=parts)), "pigeon_resent")
    assert "The carrier's receipts for its 2 copies: 1 delivered, 1 not delivered." in f.summary
    assert [(r["carrier_id"], r["stat"]) for r in sources(f, "receipt")] == [("c1", "UNDELIV"), ("c2", "DELIVRD")]
    assert [e["kind"] for e in sources(f, "timeline")] == ["status", "retry", "resend", "status", "accepted_late"]


def test_both_copies_delivered_is_said_so_and_is_no_carrier_duplicate() -> None:
    events, parts = taken_twice("DELIVRD", "DELIVRD")
    f = one(diagnose_message(facts(events=events, parts=parts)), "pigeon_resent")
    assert "2 copies: 2 delivered." in f.summary


def test_a_copy_without_its_receipt_is_said_so() -> None:
    events, parts = taken_twice("UNDELIV", None)
    findings = diagnose_message(facts(msg(status="sent"), events, parts=parts))
    [f] = [f for f in findings if f.cause == "pigeon_resent"]
    assert "2 copies: 0 delivered, 1 not delivered, 1 without a final receipt yet." in f.summary


def test_copies_at_two_carriers_with_the_same_id_are_no_carrier_duplicate() -> None:
    """failover_on_unknown_outcome: each carrier numbers its own ids, which may be equal."""
    first = receipt(cid="4100001", t=3)
    second = receipt(cid="4100001", t=4)
    second["detail"] = {**second["detail"], "carrier": "backup"}
    events = [*clean_events(), first, second]
    parts = [part("4100001"), {**part("4100001"), "carrier": "backup"}]
    findings = diagnose_message(facts(events=events, parts=parts))
    assert "carrier_duplicate" not in [f.cause for f in findings]
    # One id at one carrier reported delivered twice still is.
    events = [*clean_events(), receipt(t=3, duplicate=True)]
    assert one(diagnose_message(facts(events=events)), "carrier_duplicate")


def refused_late(t: float = 13) -> dict[str, Any]:
    return ev(
        "refused_late",
        None,
        t,
        carrier="acme",
        part=1,
        parts=1,
        command_status=8,
        carrier_code="ESME_RSYSERR",
        sequence=3,
        reason="the carrier refused this submit after the response timeout",
    )


def test_a_submit_refused_late_no_longer_counts_as_a_possible_duplicate() -> None:
    events, parts = taken_twice(None, "DELIVRD")
    events = [e for e in events if e["kind"] != "accepted_late"]  # refused, not accepted, in the end
    parts = parts[1:]
    assert count_submits(events, parts).reaching == 2  # unanswered: it may be at the carrier
    events.insert(5, refused_late())
    submits = count_submits(events, parts)
    assert (len(submits.attempts), len(submits.refused), submits.reaching) == (2, 1, 1)
    assert diagnose_message(facts(events=events, parts=parts)) == []


def test_a_failed_message_whose_last_submit_was_refused_late_is_said_not_to_be_at_the_carrier() -> None:
    unanswered = {"carrier": "acme", "carrier_code": "smpp:response_timeout", "outcome_unknown": True}
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("status", "failed", 11, 30410, refused_by=[unanswered], outcome_unknown=True),
    ]
    failed = msg(status="failed", error_code=30410, date_sent=None)
    [f] = [f for f in diagnose_message(facts(failed, events, parts=[])) if f.cause == "carrier_failed"]
    assert "never answered the last submit (it may have the message after all)" in f.summary
    [f] = [
        f for f in diagnose_message(facts(failed, [*events, refused_late(12)], parts=[])) if f.cause == "carrier_failed"
    ]
    assert "with a refusal (ESME_RSYSERR): it does not have the message" in f.summary
    assert count_submits([*events, refused_late(12)], []).reaching == 0
