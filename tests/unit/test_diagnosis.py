"""The doctor's pure rules (pigeon.domain.diagnosis): facts in, findings out, every cause.

The integration tests (tests/integration/test_diagnose.py) produce each cause by driving the
real system; these pin the rules themselves, including their edges, with hand-made facts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pigeon.domain.diagnosis import (
    OPT_IN,
    BlockedFacts,
    DuplicateFacts,
    DuplicateGroup,
    Finding,
    MessageFacts,
    MissingFacts,
    NumberFacts,
    RecipientFacts,
    Report,
    WebhookExchange,
    WebhookProbe,
    WebhookTarget,
    count_submits,
    diagnose_blocked,
    diagnose_duplicates,
    diagnose_message,
    diagnose_missing,
    diagnose_number,
    diagnose_recipient,
    group_similar,
    number_checks,
)
from pigeon.domain.optout import OPT_IN_KEYWORDS

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SID = "SM" + "a" * 32
T0 = NOW - timedelta(minutes=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def msg(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sid": SID,
        "account_sid": "AC" + "1" * 32,
        "direction": "outbound-api",
        "from_": "+14155550100",
        "to": "+14155552671",
        "status": "delivered",
        "error_code": None,
        "date_created": T0,
        "date_updated": at(2),
        "date_sent": at(1),
        "next_attempt_at": T0,
        "claimed_by": None,
        "claimed_until": None,
        "validity_period": None,
        "send_at": None,
        "attempts": 1,
        "carrier": "simulator",
        "content_hash": "h1",
    }
    row.update(kw)
    return row


def ev(
    kind: str, status: str | None = None, t: float = 0, error_code: int | None = None, **detail: Any
) -> dict[str, Any]:
    return {"message_sid": SID, "at": at(t), "kind": kind, "status": status, "error_code": error_code, "detail": detail}


def receipt(
    stat: str = "DELIVRD", err: str = "000", cid: str = "c1", t: float = 2, duplicate: bool = False
) -> dict[str, Any]:
    applied = not duplicate
    return ev(
        "receipt",
        "delivered" if stat == "DELIVRD" and applied else None,
        t,
        carrier="simulator",
        carrier_id=cid,
        part=1,
        parts=1,
        stat=stat,
        err=err,
        raw=f"id:{cid} sub:001 dlvrd:001 submit date:2601151159 done date:2601151200 stat:{stat} err:{err} text:",
        duplicate=duplicate,
        applied=applied,
    )


def part(cid: str = "c1", t: float = 1, stat: str | None = "DELIVRD") -> dict[str, Any]:
    return {
        "carrier": "simulator",
        "carrier_message_id": cid,
        "message_sid": SID,
        "part_index": 0,
        "part_count": 1,
        "submitted_at": at(t),
        "receipt_stat": stat,
        "receipt_at": at(2) if stat else None,
    }


def clean_events() -> list[dict[str, Any]]:
    return [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("status", "sent", 1, carrier="simulator", carrier_ids=["c1"]),
        ev("status", "delivered", 2, by="receipt"),
        receipt(),
    ]


def facts(message: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None, **kw: Any) -> MessageFacts:
    return MessageFacts(
        message=message or msg(),
        events=clean_events() if events is None else events,
        now=NOW,
        parts=kw.pop("parts", [part()]),
        **kw,
    )


def one(findings: list[Finding], cause: str) -> Finding:
    assert [f.cause for f in findings] == [cause], [(f.cause, f.summary) for f in findings]
    return findings[0]


def sources(f: Finding, source: str) -> list[dict[str, Any]]:
    return [e for e in f.evidence if e["source"] == source]


# -- clean ---------------------------------------------------------------------------------------------


def test_a_delivered_message_with_one_submit_and_one_receipt_has_no_findings() -> None:
    assert diagnose_message(facts()) == []


def test_a_report_knows_its_errors() -> None:
    assert not Report("message", {}, []).has_errors
    warn = Finding("pigeon_resent", "warning", "s")
    assert not Report("message", {}, [warn]).has_errors
    report = Report("message", {}, [warn, Finding("expired", "error", "s")])
    assert report.has_errors and report.causes() == ["pigeon_resent", "expired"]
    assert report.finding("expired") is report.findings[1] and report.finding("opted_out") is None


# -- final outcomes ------------------------------------------------------------------------------------


def test_carrier_undelivered_carries_the_raw_receipt_and_the_code_explained() -> None:
    events = [*clean_events()[:3], ev("status", "undelivered", 2, 30007), receipt("REJECTD", "004")]
    f = one(diagnose_message(facts(msg(status="undelivered", error_code=30007), events)), "carrier_undelivered")
    assert f.severity == "error"
    [code] = sources(f, "error_code")
    assert (code["error_code"], code["name"]) == (30007, "Message filtered")
    assert code["more_info"] == "https://www.twilio.com/docs/errors/30007" and code["causes"]
    [r] = sources(f, "receipt")
    assert (r["stat"], r["err"]) == ("REJECTD", "004") and "stat:REJECTD" in r["raw"]
    assert sources(f, "message")[0]["sid"] == SID and "body" not in sources(f, "message")[0]
    assert "(receipt stat REJECTD, err 004)" in f.summary
    assert any("Register the sender" in a for a in f.advice)


def test_carrier_undelivered_says_when_the_carriers_own_table_read_the_err() -> None:
    said = receipt("UNDELIV", "027")
    said["detail"] = {**said["detail"], "carrier": "acme", "err_means": 30005}
    events = [*clean_events()[:3], ev("status", "undelivered", 2, 30005), said]
    f = one(diagnose_message(facts(msg(status="undelivered", error_code=30005), events)), "carrier_undelivered")
    assert "(receipt stat UNDELIV, err 027, which acme's receipt_errors reads as 30005)" in f.summary


def test_an_undelivered_message_without_receipt_or_known_code_is_still_explained() -> None:
    f = one(
        diagnose_message(facts(msg(status="undelivered", error_code=39999), [ev("created", "queued")])),
        "carrier_undelivered",
    )
    assert sources(f, "error_code")[0]["meaning"] == "Pigeon does not know this code."
    assert "receipt stat" not in f.summary


def test_carrier_failed_by_refusal_names_the_carriers_answer() -> None:
    refusal = ev(
        "status", "failed", 1, 30008, attempt=1, carrier_code="ESME_RSYSERR", refused_by=[{"carrier": "simulator"}]
    )
    f = one(
        diagnose_message(facts(msg(status="failed", error_code=30008), [ev("created", "queued"), refusal], parts=[])),
        "carrier_failed",
    )
    assert "refused the submit" in f.summary and "ESME_RSYSERR" in f.summary


def test_carrier_failed_by_silence_says_the_carrier_may_have_it() -> None:
    silence = ev(
        "status",
        "failed",
        1,
        30410,
        attempt=2,
        carrier_code="smpp:response_timeout",
        outcome_unknown=True,
        refused_by=[{"carrier": "smsc", "outcome_unknown": True}],
    )
    f = one(
        diagnose_message(facts(msg(status="failed", error_code=30410), [ev("created", "queued"), silence], parts=[])),
        "carrier_failed",
    )
    assert "never answered the last submit" in f.summary and "refused" not in f.summary
    assert any("late receipt" in a for a in f.advice)


def test_carrier_failed_by_receipt() -> None:
    events = [*clean_events()[:3], ev("status", "failed", 2, 30008), receipt("UNKNOWN", "999")]
    f = one(diagnose_message(facts(msg(status="failed", error_code=30008), events)), "carrier_failed")
    assert "reported it failed" in f.summary


def test_expired() -> None:
    events = [ev("created", "queued"), ev("expired", "failed", 40, 30036, validity_period=30, waited_seconds=40)]
    f = one(
        diagnose_message(facts(msg(status="failed", error_code=30036, validity_period=30), events, parts=[])), "expired"
    )
    assert "waited 40 s" in f.summary and "validity period of 30 s" in f.summary
    assert sources(f, "error_code")[0]["error_code"] == 30036


def test_a_message_of_an_account_suspended_before_it_went_out() -> None:
    events = [ev("created", "queued"), ev("account_inactive", "failed", 3, 30002, account_status="suspended")]
    f = one(diagnose_message(facts(msg(status="failed", error_code=30002), events, parts=[])), "account_inactive")
    assert f.severity == "error"
    assert "its account was suspended before a dispatcher reached it" in f.summary and "(30002)" in f.summary
    assert sources(f, "error_code")[0]["error_code"] == 30002
    assert any("Reactivate" in a for a in f.advice)


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("number_released", "was released"),
        ("number_transferred", "moved to another account"),
        ("number_left_account", "had left the account after the message was accepted"),
    ],
)
def test_a_message_whose_number_left_the_account_before_it_went_out(kind: str, said: str) -> None:
    events = [ev("created", "queued"), ev(kind, "failed", 3, 21606, sender="+14155550100")]
    f = one(diagnose_message(facts(msg(status="failed", error_code=21606), events, parts=[])), "sender_released")
    assert f.severity == "error" and f"its From number +14155550100 {said}" in f.summary and "(21606)" in f.summary
    assert sources(f, "error_code")[0]["error_code"] == 21606


@pytest.mark.parametrize(
    ("scope", "opted_out_of", "said"),
    [
        ("number", "+14155550100", "from +14155550100 by texting STOP"),
        ("service", "MG" + "5" * 32, "from any number of Messaging Service MG" + "5" * 32 + " by texting STOP"),
    ],
)
def test_a_message_whose_recipient_opted_out_before_it_went_out(scope: str, opted_out_of: str, said: str) -> None:
    events = [
        ev("created", "scheduled"),
        ev(
            "opted_out",
            "failed",
            30,
            21610,
            sender="+14155550100",
            opted_out_of=opted_out_of,
            scope=scope,
            keyword="STOP",
            opted_out_at=at(10).isoformat(),
            inbound_message_sid="SM" + "b" * 32,
        ),
    ]
    f = one(
        diagnose_message(facts(msg(status="failed", error_code=21610), events, parts=[])), "opted_out_while_waiting"
    )
    assert f.severity == "error" and f"+14155552671 opted out of messages {said}" in f.summary
    assert at(10).strftime("%Y-%m-%d %H:%M:%S UTC") in f.summary and "(21610)" in f.summary
    assert "SM" + "b" * 32 in f.summary and "It cost nothing" in f.summary
    [row] = sources(f, "opt_out")
    assert (row["sender"], row["scope"], row["keyword"]) == (opted_out_of, scope, "STOP")
    assert sources(f, "error_code")[0]["error_code"] == 21610
    assert any("START" in a for a in f.advice)
    assert any("every sender of the Messaging Service" in a for a in f.advice) == (scope == "service")


@pytest.mark.parametrize(
    ("code", "advice"), [(21701, "was deleted"), (21704, "pool was emptied"), (21703, "can reach the recipient")]
)
def test_a_scheduled_message_whose_pool_had_no_sender_at_its_send_at(code: int, advice: str) -> None:
    service = "MG" + "5" * 32
    events = [
        ev("created", "scheduled"),
        ev(
            "no_pool_sender",
            "failed",
            30,
            code,
            messaging_service_sid=service,
            sender_was="+14155550100",
            reason="the reason",
        ),
    ]
    f = one(diagnose_message(facts(msg(status="failed", error_code=code), events, parts=[])), "no_pool_sender")
    assert f.severity == "error" and f"Messaging Service {service} had no sender" in f.summary
    assert f"({code}: the reason)" in f.summary and "+14155550100" in f.summary and "It cost nothing" in f.summary
    assert any(advice in a for a in f.advice)
    assert sources(f, "error_code")[0]["error_code"] == code


def test_canceled() -> None:
    events = [ev("created", "scheduled"), ev("canceled", "canceled", 5, by="api")]
    f = one(diagnose_message(facts(msg(status="canceled"), events, parts=[])), "canceled")
    assert f.severity == "info"


# -- waiting -------------------------------------------------------------------------------------------


def test_a_young_queued_message_is_in_progress() -> None:
    young = msg(status="queued", date_created=NOW - timedelta(seconds=5), next_attempt_at=NOW - timedelta(seconds=5))
    f = one(diagnose_message(facts(young, [ev("created", "queued")], parts=[])), "in_progress")
    assert f.severity == "info"


def test_stuck_in_queue_when_due_and_not_taken() -> None:
    stale = msg(status="queued", date_created=NOW - timedelta(minutes=5), next_attempt_at=NOW - timedelta(minutes=5))
    f = one(diagnose_message(facts(stale, [ev("created", "queued")], parts=[], queue_ahead=3)), "stuck_in_queue")
    assert f.severity == "error" and sources(f, "queue")[0]["queue_ahead"] == 3


def test_stuck_in_queue_behind_pacing_is_a_warning() -> None:
    paced = msg(status="queued", date_created=NOW - timedelta(minutes=5), next_attempt_at=NOW + timedelta(minutes=1))
    f = one(diagnose_message(facts(paced, [ev("created", "queued")], parts=[], queue_ahead=300)), "stuck_in_queue")
    assert f.severity == "warning" and "300 message(s)" in f.summary


def test_a_message_left_for_the_process_bound_to_its_carrier_names_that_process() -> None:
    left = msg(
        status="queued",
        attempts=0,
        date_created=NOW - timedelta(seconds=3),
        next_attempt_at=NOW - timedelta(seconds=1),
        offered_to="host-1:4242",
        claimed_until=NOW + timedelta(seconds=20),
    )
    f = one(diagnose_message(facts(left, [ev("created", "queued")], parts=[])), "waiting_for_bind_holder")
    assert f.severity == "info" and "host-1:4242" in f.summary and "any worker process may take it" in f.summary
    assert sources(f, "routing")[0]["offered_to"] == "host-1:4242"


def test_a_message_the_bound_process_never_took_is_a_warning_once_the_offer_ran_out() -> None:
    left = msg(
        status="sending",  # reclaimed from a dispatcher that stopped mid-submit, then left
        date_created=NOW - timedelta(minutes=5),
        next_attempt_at=NOW - timedelta(minutes=4),
        offered_to="host-1:4242",
        claimed_by="host-9:9",
        claimed_until=NOW - timedelta(minutes=3),
    )
    f = one(diagnose_message(facts(left, [ev("created", "queued")], parts=[])), "waiting_for_bind_holder")
    assert f.severity == "warning" and "resend" in f.summary and "The offer ran out" in f.summary
    assert "host-9:9" not in f.summary  # the stopped dispatcher is not the one it waits for


def test_carrier_retrying() -> None:
    m = msg(status="queued", next_attempt_at=NOW + timedelta(seconds=2))
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1),
        ev("retry", "queued", 1, carrier_code="ESME_RTHROTTLED"),
    ]
    f = one(diagnose_message(facts(m, events, parts=[])), "carrier_retrying")
    assert "ESME_RTHROTTLED" in f.summary and f.severity == "warning"


def unbound(t: float) -> dict[str, Any]:
    """A retry after no carrier could be reached: a refusal without a carrier's answer."""
    refused = [{"carrier": "c1", "carrier_code": None, "error": "no bind to c1", "retryable": True}]
    return ev("retry", "queued", t, refused_by=refused, carrier_code=None)


def test_carrier_retrying_when_pigeon_could_not_reach_the_carrier() -> None:
    m = msg(status="queued", next_attempt_at=NOW + timedelta(seconds=2))
    events = [ev("created", "queued"), unbound(1), unbound(2)]
    f = one(diagnose_message(facts(m, events, parts=[])), "carrier_retrying")
    assert "could not reach the carrier 2 time(s) (c1: no bind to c1)" in f.summary
    assert "None" not in f.summary and "turned away" not in f.summary


def test_carrier_retrying_with_refusals_and_attempts_that_reached_no_carrier() -> None:
    m = msg(status="queued", next_attempt_at=NOW + timedelta(seconds=2))
    throttled = ev("retry", "queued", 1, carrier_code="ESME_RTHROTTLED")
    silent = ev("retry", "queued", 3, carrier_code=None, outcome_unknown=True)
    f = one(diagnose_message(facts(m, [throttled, unbound(2), silent], parts=[])), "carrier_retrying")
    assert "turned it away 1 time(s) (ESME_RTHROTTLED)" in f.summary
    assert "could not reach the carrier 1 time(s) (c1: no bind to c1)" in f.summary
    assert "did not answer 1 submit(s)" in f.summary and "None" not in f.summary


def test_carrier_retrying_counts_an_unanswered_submit_as_no_refusal_whatever_its_code() -> None:
    """A submit the carrier never answered is recorded with Pigeon's own code for it
    (smpp:response_timeout): it is not the carrier turning the message away."""
    m = msg(status="queued", next_attempt_at=NOW + timedelta(seconds=2))
    silent = ev("retry", "queued", 1, carrier_code="smpp:response_timeout", outcome_unknown=True)
    f = one(diagnose_message(facts(m, [ev("created", "queued"), silent], parts=[])), "carrier_retrying")
    assert "did not answer 1 submit(s) (1 unanswered" in f.summary and "turned it away" not in f.summary


@pytest.mark.parametrize(
    ("lease", "severity"),
    [(None, "error"), (NOW - timedelta(minutes=5), "error"), (NOW - timedelta(seconds=5), "warning")],
)
def test_sending_with_an_expired_lease_is_stuck(lease: datetime | None, severity: str) -> None:
    m = msg(status="sending", claimed_by="d-1", claimed_until=lease)
    f = one(diagnose_message(facts(m, clean_events()[:2], parts=[])), "stuck_in_queue")
    assert f.severity == severity and sources(f, "claim")[0]["claimed_by"] == "d-1"


def test_sending_within_its_lease_is_in_progress() -> None:
    m = msg(status="sending", claimed_by="d-1", claimed_until=NOW + timedelta(seconds=5))
    assert one(diagnose_message(facts(m, clean_events()[:2], parts=[])), "in_progress")


def test_sent_waits_for_a_receipt_then_warns() -> None:
    fresh = msg(status="sent", date_sent=NOW - timedelta(seconds=30))
    assert one(diagnose_message(facts(fresh, clean_events()[:3], parts=[part(stat=None)])), "in_progress")
    old = msg(status="sent", date_sent=NOW - timedelta(minutes=30))
    f = one(diagnose_message(facts(old, clean_events()[:3], parts=[part(stat=None)])), "no_receipt_yet")
    assert "30 min" in f.summary and sources(f, "carrier_ref")[0]["carrier_id"] == "c1"
    assert sources(f, "unmatched_receipts") == []
    f = one(
        diagnose_message(facts(old, clean_events()[:3], parts=[part(stat=None)], unmatched_receipts=4)),
        "no_receipt_yet",
    )
    assert sources(f, "unmatched_receipts")[0]["since_submit"] == 4 and "4 receipt(s)" in f.advice[0]


def test_a_long_message_with_a_receipt_for_some_parts_only_points_at_multipart_receipts() -> None:
    old = msg(status="sent", date_sent=NOW - timedelta(minutes=30))
    some = [
        {**part("c1", stat=None), "part_count": 2},
        {**part("c2", stat="DELIVRD"), "part_index": 1, "part_count": 2},
    ]
    f = one(diagnose_message(facts(old, clean_events()[:3], parts=some)), "no_receipt_yet")
    assert "1 of its 2 parts" in f.advice[0] and 'multipart_receipts = "any_part"' in f.advice[0]
    none = [{**p, "receipt_stat": None} for p in some]
    f = one(diagnose_message(facts(old, clean_events()[:3], parts=none)), "no_receipt_yet")
    assert not any("multipart_receipts" in a for a in f.advice)


def test_a_sent_message_the_application_confirmed_arrived() -> None:
    old = msg(status="sent", date_sent=NOW - timedelta(minutes=30))
    events = [*clean_events()[:3], ev("feedback", None, 5, outcome="confirmed")]
    f = one(diagnose_message(facts(old, events, parts=[part(stat=None)])), "no_receipt_yet")
    assert f.severity == "info" and "reported feedback 'confirmed'" in f.summary
    events.append(ev("feedback", None, 6, outcome="unconfirmed"))  # the latest word counts
    f = one(diagnose_message(facts(old, events, parts=[part(stat=None)])), "no_receipt_yet")
    assert f.severity == "warning" and "feedback" not in f.summary


def test_scheduled_and_a_schedule_that_never_fired() -> None:
    later = msg(status="scheduled", send_at=NOW + timedelta(hours=1))
    f = one(diagnose_message(facts(later, [ev("created", "scheduled")], parts=[])), "scheduled")
    assert sources(f, "schedule")[0]["send_at"] == NOW + timedelta(hours=1)
    missed = msg(status="scheduled", send_at=NOW - timedelta(hours=1))
    assert (
        one(diagnose_message(facts(missed, [ev("created", "scheduled")], parts=[])), "stuck_in_queue").severity
        == "error"
    )


def test_a_carrier_id_taken_by_a_later_message_is_explained() -> None:
    events = [*clean_events(), ev("carrier_id_reused", None, 3, carrier="acme", carrier_id="7", part=1, taken_by="SM2")]
    f = one(diagnose_message(facts(events=events)), "carrier_id_reused")
    assert f.severity == "warning" and "acme id 7 to a later message (SM2)" in f.summary


def test_a_carrier_id_of_another_account_s_message_is_not_named() -> None:
    events = [*clean_events(), ev("carrier_id_reused", None, 1, carrier="acme", carrier_id="7", previous_holder=None)]
    f = one(diagnose_message(facts(events=events)), "carrier_id_reused")
    assert "to a message of another account, which was still waiting" in f.summary


def test_media_sent_as_links_is_said() -> None:
    events = clean_events()
    events[2]["detail"] |= {"media_as_links": 2, "segments_sent": 3}
    f = one(diagnose_message(facts(events=events)), "media_as_links")
    assert f.severity == "info" and "2 media file(s), in 3 segment(s)" in f.summary
    assert [row["status"] for row in f.evidence] == ["sent"]
    assert "either no carrier routed for the recipient carries media or its sender" in f.summary  # no reason kept


def test_media_sent_as_links_name_the_reason_and_only_the_advice_that_helps() -> None:
    """Before, the finding said "either the route or the sender" and advised both, and told
    users to turn MmsConverter off to have such messages fail, which for a sender that could not
    send MMS sent a real MMS from it."""
    by_sender, by_route = clean_events(), clean_events()
    by_sender[2]["detail"] |= {"media_as_links": 1, "segments_sent": 1, "media_as_links_because": ["sender"]}
    by_route[2]["detail"] |= {"media_as_links": 1, "segments_sent": 1, "media_as_links_because": ["route"]}
    sender = one(diagnose_message(facts(events=by_sender)), "media_as_links")
    route = one(diagnose_message(facts(events=by_route)), "media_as_links")
    assert "its sender +14155550100 cannot send MMS" in sender.summary and "carrier" not in sender.summary
    assert "no carrier routed for +14155552671 carries media" in route.summary and "sender" not in route.summary
    assert any("MMS-capable number" in a for a in sender.advice)
    assert not any("route the recipient" in a for a in sender.advice)
    assert any("route the recipient" in a for a in route.advice)
    assert not any("MMS-capable" in a for a in route.advice)
    for f in (sender, route):
        assert not any(a.startswith("To have such messages fail") for a in f.advice)


def _media_refused(*refusals: tuple[str, str], because: list[str] | None = None, **message: Any) -> Finding:
    refused = [{"carrier": c, "carrier_code": code, "error": "e", "retryable": False} for c, code in refusals]
    detail: dict[str, Any] = {"attempt": 1, "refused_by": refused, "carrier_code": refusals[-1][1]}
    if because is not None:
        detail["media_refused_because"] = because
    events = [ev("created", "queued"), ev("status", "sending", 1), ev("status", "failed", 1, 30011, **detail)]
    m = msg(status="failed", error_code=30011, date_sent=None, num_media="1", **message)
    return one(diagnose_message(facts(m, events, parts=[])), "media_refused")


def test_media_refused_for_a_sender_that_cannot_send_mms_says_so() -> None:
    f = _media_refused(("mms", "media:sender"), because=["sender"], messaging_service_sid="MG" + "5" * 32)
    assert f.severity == "error"
    assert "never sent (30011): its sender +14155550100 cannot send MMS" in f.summary
    assert "No carrier was asked" in f.summary and "carrier routed" not in f.summary
    assert f.advice[0].startswith("To send MMS, send from an MMS-capable number")
    assert f.advice[-1].startswith("Turn MmsConverter on for its Messaging Service")
    assert not any("route the recipient" in a for a in f.advice)


def test_media_refused_for_want_of_a_route_says_so() -> None:
    f = _media_refused(("text", "media:unsupported"))  # from a number, reason only in the codes
    assert "no carrier routed for +14155552671 carries media" in f.summary and "sender" not in f.summary
    assert f.advice == [
        "To send MMS, route the recipient to a carrier that carries media.",
        "Send through a Messaging Service with MmsConverter on (the default): such media then go as links in an SMS.",
    ]


def test_media_refused_for_both_reasons_gives_both_fixes() -> None:
    f = _media_refused(("text", "media:sender"), because=["sender", "route"])
    assert "cannot send MMS" in f.summary and "carries media" in f.summary
    assert len(f.advice) == 3


def test_status_callback_failing() -> None:
    events = [*clean_events(), ev("callback_failed", None, 3, url="https://x")]
    alert = {
        "sid": "NO1",
        "error_code": 11200,
        "alert_text": "t",
        "request_url": "https://x",
        "response_status": 404,
        "response_body": "x" * 1000,
    }
    f = one(diagnose_message(facts(events=events, alerts=[alert])), "status_callback_failing")
    [row] = sources(f, "alert")
    assert row["response_status"] == 404 and row["response_body"] == "x" * 300 + "…"


# -- submits -------------------------------------------------------------------------------------------


def test_pigeon_resent_with_the_reason_from_the_timeline() -> None:
    reason = "the dispatcher d-1 marked it sending and stopped before recording the carrier's answer"
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("resend", "sending", 40, attempt=2, reason=reason),
        ev("status", "sent", 40),
        ev("status", "delivered", 41),
        receipt(t=41),
    ]
    f = one(diagnose_message(facts(events=events)), "pigeon_resent")
    assert "2 times" in f.summary and reason in f.summary
    assert [e["kind"] for e in sources(f, "timeline")] == ["status", "resend", "status", "status"]


def test_refused_submits_do_not_count_as_resends() -> None:
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1),
        ev("retry", "queued", 1, carrier_code="ESME_RTHROTTLED"),
        ev("status", "sending", 2),
        ev("retry", "queued", 2, carrier_code="ESME_RTHROTTLED"),
        ev("status", "sending", 3),
        ev("status", "sent", 3),
        ev("status", "delivered", 4),
        receipt(t=4),
    ]
    submits = count_submits(events, [part()])
    assert (len(submits.attempts), len(submits.refused), submits.reaching) == (3, 2, 1)
    assert diagnose_message(facts(events=events)) == []


def test_an_unanswered_submit_is_no_refusal_and_its_resend_counts() -> None:
    why = "acme never answered the submit of the message and may have accepted it"
    events = [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("retry", "queued", 11, carrier_code="smpp:response_timeout", outcome_unknown=True, reason=why),
        ev("resend", "sending", 12, attempt=2, reason=f"{why}: sent to acme again"),
        ev("status", "sent", 12),
        ev("status", "delivered", 13),
        receipt(t=13),
    ]
    submits = count_submits(events, [part()])
    assert (len(submits.attempts), len(submits.refused), submits.reaching) == (2, 0, 2)
    f = one(diagnose_message(facts(events=events)), "pigeon_resent")
    assert f"Why: {why}: sent to acme again." in f.summary


def test_parts_sent_in_two_attempts_count_once() -> None:
    def piece(cid: str, index: int, t: float) -> dict[str, Any]:
        return {**part(cid, t), "part_index": index, "part_count": 2}

    events = [
        ev("created", "queued"),
        ev("status", "sending", 1, attempt=1),
        ev("retry", "queued", 1, carrier_code="ESME_RSUBMITFAIL"),  # part 1 accepted, part 2 refused
        ev("status", "sending", 3, attempt=2, from_part=2),
        ev("status", "sent", 3),
    ]
    assert count_submits(events, [piece("c1", 0, 1), piece("c2", 1, 3)]).reaching == 1
    assert count_submits(events, [piece("c1", 0, 1), piece("c2", 1, 3), piece("c3", 0, 3)]).reaching == 2


def test_two_accepted_submits_count_even_without_a_resend_entry() -> None:
    assert count_submits(clean_events(), [part("c1", 1), part("c2", 30)]).reaching == 2


def test_carrier_duplicate_one_submit_two_delivered_receipts() -> None:
    events = [*clean_events(), receipt(t=3, duplicate=True)]
    f = one(diagnose_message(facts(events=events)), "carrier_duplicate")
    assert [r["duplicate"] for r in sources(f, "receipt")] == [False, True]
    assert "came from the carrier" in f.summary


def test_submit_rules_ignore_inbound_messages() -> None:
    inbound = msg(direction="inbound", status="received")
    assert diagnose_message(facts(inbound, [ev("received", "received"), ev("webhook", None, 1)], parts=[])) == []


# -- inbound -------------------------------------------------------------------------------------------

_INBOUND = msg(direction="inbound", status="received", from_="+14155552671", to="+14155550100")


def test_inbound_no_webhook() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "no application was told", "request_url": None}
    f = one(diagnose_message(facts(_INBOUND, [ev("received", "received")], parts=[], alerts=[alert])), "no_webhook")
    assert f.severity == "error"


def test_inbound_no_webhook_from_its_timeline_once_the_alert_is_gone() -> None:
    """The timeline's no_webhook entry is enough (the error log is pruned sooner), and it says
    where the URL is missing."""
    events = [ev("received", "received"), ev("no_webhook", source="service")]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[], alerts=[])), "no_webhook")
    assert "Messaging Service that has no InboundRequestUrl" in f.summary
    assert [e["kind"] for e in sources(f, "timeline")] == ["no_webhook"]


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (11200, "webhook_failing"),
        (11205, "webhook_failing"),
        (11210, "webhook_failing"),
        (11220, "webhook_failing"),
        (11235, "webhook_failing"),
        (11236, "webhook_failing"),
        (11237, "webhook_failing"),
        (12100, "invalid_twiml"),
        (12300, "invalid_twiml"),
    ],
)
def test_inbound_webhook_failures(code: int, cause: str) -> None:
    alert = {"sid": "NO1", "error_code": code, "alert_text": "t", "request_url": "https://app", "response_status": 500}
    events = [ev("received", "received"), ev("webhook_failed", None, 1, code)]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[], alerts=[alert])), cause)
    assert f.severity == "error" and sources(f, "error_code")[0]["error_code"] == code


def test_inbound_webhook_failed_but_the_fallback_answered_is_a_warning() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://app"}
    events = [ev("received", "received"), ev("webhook", None, 1, 11200)]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[], alerts=[alert])), "webhook_failing")
    assert f.severity == "warning" and "fallback URL answered" in f.summary


def test_inbound_reply_not_sent() -> None:
    alert = {"sid": "NO1", "error_code": 14107, "alert_text": "loop", "request_url": None}
    events = [ev("received", "received"), ev("webhook", None, 1)]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[], alerts=[alert])), "reply_not_sent")
    assert f.advice


def test_a_reply_the_send_refused_is_a_reply_not_sent() -> None:
    # The application answered a STOP with a <Message>: the send refused it (21610), as Twilio does.
    alert = {"sid": "NO1", "error_code": 21610, "alert_text": "A reply ... was not sent", "request_url": None}
    events = [ev("received", "received"), ev("webhook", None, 1)]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[], alerts=[alert])), "reply_not_sent")
    assert "21610 Attempt to send to unsubscribed recipient" in f.summary
    assert any("START" in a for a in f.advice)
    # A delivery-kind alert on an inbound message is not about a reply.
    other = {"sid": "NO2", "error_code": 30009, "alert_text": "parts missing", "request_url": None}
    assert "reply_not_sent" not in {
        x.cause for x in diagnose_message(facts(_INBOUND, events, parts=[], alerts=[other]))
    }


# -- a recipient ---------------------------------------------------------------------------------------


def request(code: int | None, t: float = 0, **kw: Any) -> dict[str, Any]:
    return {
        "sid": "RQ" + "0" * 32,
        "account_sid": "AC" + "1" * 32,
        "at": at(t),
        "method": "POST",
        "path": "/Messages.json",
        "status": 400 if code else 201,
        "error_code": code,
        "to": "+14155552671",
        "from_": "+14155550100",
        "source_ip": "10.0.0.1",
        "user_agent": "ua",
        "idempotency_key": None,
        "resource_sid": None,
        **kw,
    }


def recipient(**kw: Any) -> RecipientFacts:
    kw.setdefault("to", "+14155552671")
    return RecipientFacts(since=NOW - timedelta(hours=1), now=NOW, **kw)


def test_never_requested_tells_no_request_from_requests_for_other_numbers() -> None:
    f = one(diagnose_recipient(recipient()), "never_requested")
    assert "never called the API" in f.summary
    f = one(diagnose_recipient(recipient(requests_in_window=7)), "never_requested")
    assert "7 request(s) to send" in f.summary and sources(f, "request_log")[0]["requests_in_window"] == 7


def test_a_recipient_not_in_e164_that_nothing_was_found_for_is_asked_for_again() -> None:
    f = one(diagnose_recipient(recipient(to="2025550123")), "number_not_e164")
    assert f.severity == "error" and "2025550123" in f.summary
    assert "E.164" in f.advice[0] and sources(f, "input") == [{"source": "input", "number": "2025550123"}]
    # The request log holds what the application sent as it was written: a refusal found under
    # that spelling is the answer.
    found = recipient(to="2025550123", refused_requests=[request(21211, to="2025550123")])
    one(diagnose_recipient(found), "rejected_by_api")


def test_a_short_code_recipient_is_in_its_own_form() -> None:
    one(diagnose_recipient(recipient(to="898287")), "never_requested")


def test_rejected_by_api_explains_each_code() -> None:
    f = one(diagnose_recipient(recipient(refused_requests=[request(21211), request(21606, 5)])), "rejected_by_api")
    assert [e["error_code"] for e in sources(f, "error_code")] == [21211, 21606]
    assert len(sources(f, "request_log")) == 2 and f.severity == "error"


def geo_finding(findings: list[Finding]) -> Finding:
    """The geo finding, which comes after the refusals it explains."""
    assert [f.cause for f in findings] == ["rejected_by_api", "geo_not_permitted"], [f.cause for f in findings]
    return findings[1]


def test_a_21408_names_the_geo_permissions_as_they_are_now() -> None:
    parent = "AC" + "7" * 32
    refused = [request(21408)]
    still = {"country": "GB", "allowed": ["CA", "US"], "set_by": parent}
    f = geo_finding(diagnose_recipient(recipient(to="+447700900123", refused_requests=refused, geo=still)))
    assert f.severity == "error" and "is in GB" in f.summary and "CA, US only" in f.summary and parent in f.summary
    assert sources(f, "geo_permissions")[0]["allowed"] == ["CA", "US"]
    assert any(f"pigeon accounts geo {parent} --allow CA,US,GB" in a for a in f.advice)

    since = {"country": "GB", "allowed": ["GB", "US"], "set_by": parent}
    f = geo_finding(diagnose_recipient(recipient(refused_requests=refused, geo=since)))
    assert f.severity == "info" and "allowed now" in f.summary

    nowhere = {"country": None, "allowed": ["US"], "set_by": parent}
    f = geo_finding(diagnose_recipient(recipient(refused_requests=refused, geo=nowhere)))
    assert "no country" in f.summary and any("--any" in a for a in f.advice)

    # Other refusals say nothing of geo permissions.
    assert "geo_not_permitted" not in {
        x.cause for x in diagnose_recipient(recipient(refused_requests=[request(21211)], geo=still))
    }


def test_rejected_before_the_credentials_were_accepted_is_said_so() -> None:
    """20503 (the store out of reach) and 20003 (wrong credentials): the request only names the
    account in its URL, and the finding says that it may not be the application's."""
    refused = [
        request(21211),
        request(20503, 5, status=503, account_sid=None),
        request(20003, 9, status=401, account_sid=None),
    ]
    f = one(diagnose_recipient(recipient(refused_requests=refused)), "rejected_by_api")
    assert "2 of them name this account in their URL" in f.summary
    assert [r["credentials_accepted"] for r in sources(f, "request_log")] == [True, False, False]
    assert [e["error_code"] for e in sources(f, "error_code")] == [21211, 20503, 20003]
    f = one(diagnose_recipient(recipient(refused_requests=[request(21211)])), "rejected_by_api")
    assert "name this account" not in f.summary


def test_rejected_before_a_later_success_is_a_warning() -> None:
    later = facts(msg(date_created=at(30)))
    findings = diagnose_recipient(recipient(refused_requests=[request(21211)], messages=[later]))
    f = one(findings, "rejected_by_api")
    assert f.severity == "warning" and "later request went through" in f.summary


def test_rejected_without_error_codes() -> None:
    f = one(diagnose_recipient(recipient(refused_requests=[request(None, status=500)])), "rejected_by_api")
    assert "HTTP errors" in f.summary


def test_rejected_with_21610_brings_the_opt_out() -> None:
    opt = {
        "recipient": "+14155552671",
        "sender": "+14155550100",
        "scope": "number",
        "keyword": "STOP",
        "date_created": T0,
    }
    findings = diagnose_recipient(recipient(refused_requests=[request(21610)], opt_outs=[opt]))
    assert [f.cause for f in findings] == ["rejected_by_api", "opted_out"]


def test_a_recipients_messages_are_each_diagnosed() -> None:
    bad = facts(msg(status="undelivered", error_code=30003), [ev("created", "queued")])
    findings = diagnose_recipient(recipient(messages=[facts(), bad]))
    assert [f.cause for f in findings] == ["carrier_undelivered"]


# -- blocked -------------------------------------------------------------------------------------------


def opt_out(scope: str = "number", sender: str = "+14155550100", **kw: Any) -> dict[str, Any]:
    return {
        "recipient": "+14155552671",
        "sender": sender,
        "scope": scope,
        "keyword": "STOPALL",
        "date_created": T0,
        "inbound_message_sid": "SM" + "b" * 32,
        "inbound_body": "stopall",
        "inbound_at": T0,
        **kw,
    }


def test_opted_out_carries_keyword_time_message_scope_and_the_way_back() -> None:
    f = one(
        diagnose_blocked(BlockedFacts(to="+14155552671", now=NOW, from_="+14155550100", opt_outs=[opt_out()])),
        "opted_out",
    )
    [row] = sources(f, "opt_out")
    assert (row["keyword"], row["scope"], row["inbound_body"], row["at"]) == ("STOPALL", "number", "stopall", T0)
    assert set(OPT_IN) == set(row["opt_in_keywords"]) and set(OPT_IN) <= OPT_IN_KEYWORDS
    assert "START, YES or UNSTOP to +14155550100" in f.advice[0]
    assert "texting STOPALL" in f.summary and "SM" + "b" * 32 in f.summary


def test_opted_out_of_a_service_and_of_two_senders() -> None:
    mg = "MG" + "c" * 32
    rows = [opt_out("service", mg, inbound_message_sid=None), opt_out()]
    f = one(diagnose_blocked(BlockedFacts(to="+14155552671", now=NOW, service_sid=mg, opt_outs=rows)), "opted_out")
    assert f"any number of Messaging Service {mg}" in f.summary
    assert any("every sender" in a for a in f.advice) and any("2 opt-outs" in a for a in f.advice)


def test_a_standalone_short_codes_opt_out_says_an_operator_lifts_it_not_start() -> None:
    """START texted to a short code in none of the account's services goes to its application."""
    rows = [opt_out(sender="55125", start_lifts=False, account_sid="AC" + "1" * 32)]
    f = one(diagnose_blocked(BlockedFacts(to="+14155552671", now=NOW, from_="55125", opt_outs=rows)), "opted_out")
    assert sources(f, "opt_out")[0]["opt_in_keywords"] == []
    assert not any("they text START" in a for a in f.advice)
    assert any(
        f"pigeon optouts remove --account {'AC' + '1' * 32} --recipient +14155552671 --sender 55125 --yes" in a
        for a in f.advice
    )
    # Beside an opt-out that START lifts, each is said.
    mixed = [opt_out("service", "MG" + "c" * 32), *rows]
    g = one(diagnose_blocked(BlockedFacts(to="+14155552671", now=NOW, from_="55125", opt_outs=mixed)), "opted_out")
    assert "they text START" in g.advice[0] and "pigeon optouts remove" in g.advice[1]


def test_not_blocked() -> None:
    assert diagnose_blocked(BlockedFacts(to="+14155552671", now=NOW, from_="+14155550100")) == []


def test_not_blocked_is_not_said_of_a_number_not_in_e164() -> None:
    f = one(diagnose_blocked(BlockedFacts(to="2025550123", now=NOW, from_="+14155550100")), "number_not_e164")
    assert "2025550123" in f.summary


# -- duplicates ----------------------------------------------------------------------------------------


def test_grouping_by_sender_recipient_content_and_window() -> None:
    rows = [
        msg(sid="SM1", date_created=at(0)),
        msg(sid="SM2", date_created=at(4)),
        msg(sid="SM3", date_created=at(12)),  # within 10 s of SM2: the chain goes on
        msg(sid="SM4", date_created=at(40)),  # too late
        msg(sid="SM5", date_created=at(1), content_hash="h2"),  # other text
        msg(sid="SM6", date_created=at(1), to="+14155559999"),  # other recipient
        msg(sid="SM7", date_created=at(2), content_hash=None),  # no hash (an old record): never grouped
        msg(sid="SM8", date_created=at(3), content_hash=None),
    ]
    groups = [[m["sid"] for m in g] for g in group_similar(rows, 10)]
    assert sorted(groups) == [["SM1", "SM2", "SM3"], ["SM4"], ["SM5"], ["SM6"], ["SM7"], ["SM8"]]


def test_app_sent_multiple_requests_with_each_request() -> None:
    m1, m2 = msg(sid="SM1", date_created=at(0)), msg(sid="SM2", date_created=at(1))
    reqs = [
        request(None, 0, resource_sid="SM1", idempotency_key="k1"),
        request(None, 1, resource_sid="SM2", idempotency_key="k2", source_ip="10.0.0.2"),
    ]
    group = DuplicateGroup([facts(m1), facts(m2)], reqs)
    f = one(
        diagnose_duplicates(DuplicateFacts(since=T0, now=NOW, window_seconds=10, groups=[group])),
        "app_sent_multiple_requests",
    )
    assert [r["resource_sid"] for r in sources(f, "request_log")] == ["SM1", "SM2"]
    assert "2 address(es)" in f.summary and "k1, k2" in f.summary
    assert any("different addresses" in a for a in f.advice) and any("different Idempotency-Key" in a for a in f.advice)


def test_app_sent_multiple_requests_without_a_request_log() -> None:
    group = DuplicateGroup([facts(msg(sid="SM1")), facts(msg(sid="SM2"))])
    f = one(
        diagnose_duplicates(DuplicateFacts(since=T0, now=NOW, window_seconds=10, groups=[group])),
        "app_sent_multiple_requests",
    )
    assert "no entry" in f.summary


def test_no_duplicates_is_not_said_of_a_number_not_in_e164() -> None:
    assert diagnose_duplicates(DuplicateFacts(since=T0, now=NOW, window_seconds=10, to="+14155552671")) == []
    assert diagnose_duplicates(DuplicateFacts(since=T0, now=NOW, window_seconds=10)) == []
    f = one(
        diagnose_duplicates(DuplicateFacts(since=T0, now=NOW, window_seconds=10, to="2025550123")), "number_not_e164"
    )
    assert "2025550123" in f.summary


def test_duplicates_checks_each_single_record() -> None:
    dup = facts(events=[*clean_events(), receipt(t=3, duplicate=True)])
    findings = diagnose_duplicates(
        DuplicateFacts(since=T0, now=NOW, window_seconds=10, groups=[DuplicateGroup([dup]), DuplicateGroup([facts()])])
    )
    assert [f.cause for f in findings] == ["carrier_duplicate"]


# -- a number ------------------------------------------------------------------------------------------

NUMBER = {
    "sid": "PN" + "1" * 32,
    "phone_number": "+14155550100",
    "number_type": "local",
    "iso_country": "US",
    "sms_capable": True,
    "sms_url": "https://app/sms",
    "sms_fallback_url": None,
    "messaging_service_sid": None,
}
TARGET = WebhookTarget("https://app/sms", "POST", None, "number")


def exchange(
    status: int | None = 200, code: int | None = None, ms: float = 12.0, twiml: bool | None = True
) -> WebhookExchange:
    return WebhookExchange("https://app/sms", "POST", status, ms, code, "boom" if code else None, twiml)


def num(**kw: Any) -> NumberFacts:
    base: dict[str, Any] = {"phone_number": "+14155550100", "now": NOW, "since": T0, "number": NUMBER, "target": TARGET}
    base.update(kw)
    return NumberFacts(**base)


def test_a_healthy_number_has_no_findings_and_says_what_was_checked() -> None:
    f = num(probe=WebhookProbe([exchange()]), inbound_received=3)
    assert diagnose_number(f) == []
    checks = {c["check"]: c for c in number_checks(f)}
    assert [c["ok"] for c in checks.values()] == [True] * 5
    assert (checks["test_request"]["status"], checks["test_request"]["twiml_valid"]) == (200, True)
    assert checks["inbound_received"]["count"] == 3


def test_number_not_on_account() -> None:
    f = num(number=None, target=None)
    one(diagnose_number(f), "number_not_on_account")
    assert number_checks(f) == [{"check": "on_account", "ok": False}]


def test_number_not_sms_capable() -> None:
    f = one(diagnose_number(num(number={**NUMBER, "sms_capable": False})), "number_not_sms_capable")
    assert sources(f, "error_code")[0]["error_code"] == 21407


def test_no_webhook_on_the_number_lists_the_texts_nobody_was_told_of() -> None:
    untold = [{"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": None, "date_created": T0}]
    f = one(
        diagnose_number(
            num(
                number={**NUMBER, "sms_url": None},
                target=WebhookTarget(None, "POST", None, "number"),
                unannounced=untold,
            )
        ),
        "no_webhook",
    )
    assert "1 text(s)" in f.summary and len(sources(f, "alert")) == 1


def test_no_webhook_because_the_service_wins() -> None:
    mg = "MG" + "2" * 32
    service = {"sid": mg, "inbound_request_url": None, "fallback_url": None, "use_inbound_webhook_on_number": False}
    f = one(
        diagnose_number(
            num(
                number={**NUMBER, "messaging_service_sid": mg},
                service=service,
                target=WebhookTarget(None, "POST", None, "service"),
            )
        ),
        "no_webhook",
    )
    assert "SmsUrl https://app/sms is not used" in f.summary and sources(f, "messaging_service")[0]["sid"] == mg
    assert any("UseInboundWebhookOnNumber" in a for a in f.advice)


@pytest.mark.parametrize(
    ("status", "code", "cause"),
    [
        (500, 11200, "webhook_failing"),
        (None, 11205, "webhook_failing"),
        (None, 11210, "webhook_failing"),
        (None, 11236, "webhook_failing"),
        (200, 12300, "invalid_twiml"),
        (200, 12100, "invalid_twiml"),
    ],
)
def test_a_failing_test_request(status: int | None, code: int, cause: str) -> None:
    f = one(diagnose_number(num(probe=WebhookProbe([exchange(status, code, twiml=False)]))), cause)
    assert f.severity == "error" and sources(f, "test_request")[0]["error_code"] == code


def test_past_failures_with_a_webhook_that_answers_now_are_a_warning() -> None:
    alert = {"sid": "NO1", "error_code": 11205, "alert_text": "t", "request_url": "https://app/sms"}
    f = one(
        diagnose_number(num(probe=WebhookProbe([exchange()]), webhook_alerts=[alert], webhook_failures=[{}, {}])),
        "webhook_failing",
    )
    assert f.severity == "warning" and "2 incoming text(s)" in f.summary


FALLBACK_EXCHANGE = WebhookExchange("https://backup/sms", "POST", 200, 3.0, None, None, True)


def test_texts_the_fallback_url_took_are_not_said_lost() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://app/sms"}
    taken = [{"kind": "webhook", "error_code": 11200}] * 3
    f = one(diagnose_number(num(webhook_alerts=[alert] * 3, fallback_answers=taken)), "webhook_failing")
    assert f.severity == "warning"
    assert "the fallback URL took all 3" in f.summary and "not taken" not in f.summary


def test_texts_lost_beside_texts_the_fallback_took_are_an_error() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://app/sms"}
    lost = [{"kind": "webhook_failed", "error_code": 11200}]
    taken = [{"kind": "webhook", "error_code": 11200}] * 2
    found = diagnose_number(num(webhook_alerts=[alert] * 3, webhook_failures=lost, fallback_answers=taken))
    f = one(found, "webhook_failing")
    assert f.severity == "error"
    assert "1 incoming text(s)" in f.summary and "were not taken" in f.summary
    assert "also failed for 2 other(s), which the fallback URL took" in f.summary


def test_a_test_request_the_fallback_url_answered_is_a_warning() -> None:
    probe = WebhookProbe([exchange(500, 11200, twiml=None), FALLBACK_EXCHANGE])
    f = one(diagnose_number(num(probe=probe)), "webhook_failing")
    assert f.severity == "warning" and "the fallback URL https://backup/sms answered it" in f.summary
    # A fallback that fails the test too takes nothing.
    failing = WebhookExchange("https://backup/sms", "POST", 503, 3.0, 11200, "boom", None)
    f = one(diagnose_number(num(probe=WebhookProbe([exchange(500, 11200, twiml=None), failing]))), "webhook_failing")
    assert f.severity == "error" and "fallback" not in f.summary


def test_webhook_alerts_without_their_timeline_are_counted_as_failures() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://app/sms"}
    f = one(diagnose_number(num(webhook_alerts=[alert, alert])), "webhook_failing")
    assert f.severity == "error" and "2 alert(s)" in f.summary


def test_past_failures_without_a_test_request_are_an_error() -> None:
    alert = {"sid": "NO1", "error_code": 12100, "alert_text": "t", "request_url": "https://app/sms"}
    assert one(diagnose_number(num(webhook_alerts=[alert])), "invalid_twiml").severity == "error"


BAD_TWIML_NOW = WebhookProbe([exchange(200, 12100, twiml=False)])
REFUSED_NOW = WebhookProbe([exchange(500, 11200, twiml=None)])


@pytest.mark.parametrize(
    ("alert_code", "probe", "cause", "said"),
    [
        # Past HTTP failures, and the test request's answer is bad TwiML: it does not answer.
        (11200, BAD_TWIML_NOW, "webhook_failing", "The test request gets an answer now, but not usable TwiML"),
        (12100, REFUSED_NOW, "invalid_twiml", "The test request fails now before any TwiML is read"),
    ],
)
def test_past_failures_of_one_kind_and_a_test_request_failing_the_other_way(
    alert_code: int, probe: WebhookProbe, cause: str, said: str
) -> None:
    """It said "It answers the test request now." beside the other finding's ERROR for the
    very same test request (reviewer's doctor_bad_twiml.txt)."""
    alert = {"sid": "NO1", "error_code": alert_code, "alert_text": "t", "request_url": "https://app/sms"}
    found = diagnose_number(num(probe=probe, webhook_alerts=[alert], webhook_failures=[{"error_code": alert_code}]))
    f = next(f for f in found if f.cause == cause)
    assert "answers the test request now" not in f.summary
    assert f.summary.endswith(said + f" (see {({'webhook_failing', 'invalid_twiml'} - {cause}).pop()}).")
    assert sorted(x.cause for x in found) == ["invalid_twiml", "webhook_failing"]


def test_alerts_for_an_earlier_webhook_url_are_said_to_be() -> None:
    old = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://old/sms"}
    f = one(
        diagnose_number(num(probe=WebhookProbe([exchange()]), webhook_alerts=[old], webhook_failures=[{}])),
        "webhook_failing",
    )
    assert "all at an earlier webhook URL, https://old/sms, not the one it has now (https://app/sms)" in f.summary
    assert f.summary.endswith("It answers the test request now.") and f.severity == "warning"
    assert [a["earlier_url"] for a in sources(f, "alert")] == [True]
    # Some at the URL it has now (or its fallback URL), some at an earlier one.
    fallback = {**old, "sid": "NO2", "request_url": "https://backup/sms"}
    now = {**old, "sid": "NO3", "request_url": "https://app/sms"}
    target = WebhookTarget("https://app/sms", "POST", "https://backup/sms", "number")
    f = one(diagnose_number(num(target=target, webhook_alerts=[old, fallback, now])), "webhook_failing")
    assert "1 of the 3 alerts were for an earlier webhook URL, https://old/sms." in f.summary
    assert [a["earlier_url"] for a in sources(f, "alert")] == [True, False, False]
    # None earlier: nothing said of URLs; an alert without a URL is none.
    unknown = {**old, "request_url": None}
    f = one(diagnose_number(num(webhook_alerts=[now, unknown])), "webhook_failing")
    assert "earlier" not in f.summary and [a["earlier_url"] for a in sources(f, "alert")] == [False, False]
    # A number whose webhook is gone: its alerts are for an earlier URL, and no URL is now.
    gone = WebhookTarget(None, "POST", None, "number")
    found = diagnose_number(num(number={**NUMBER, "sms_url": None}, target=gone, webhook_alerts=[old]))
    f = next(f for f in found if f.cause == "webhook_failing")
    assert f.summary.endswith("all at an earlier webhook URL, https://old/sms.")


def test_a_probe_without_an_exchange_says_nothing_of_now() -> None:
    alert = {"sid": "NO1", "error_code": 11200, "alert_text": "t", "request_url": "https://app/sms"}
    f = one(diagnose_number(num(probe=WebhookProbe([]), webhook_alerts=[alert])), "webhook_failing")
    assert f.summary.endswith("say it failed for incoming texts.")


def test_a_slow_webhook() -> None:
    f = one(diagnose_number(num(probe=WebhookProbe([exchange(ms=7200)]))), "webhook_slow")
    assert "7.2 s" in f.summary


@pytest.mark.parametrize(
    ("reason", "advice"),
    [
        ("+14155550100 does not take messages from short codes (the account option is off)", "short-code inbound"),
        ("the short code 72345 only receives from numbers in US", "roaming abroad"),
        ("a short code cannot receive from another short code", "cannot text each other"),
        ("+14155550100 is not SMS-capable", "SMS-capable number"),
        ("something else", "cannot be replayed"),
    ],
)
def test_unroutable_inbound_advice_follows_the_reason(reason: str, advice: str) -> None:
    row = {"received_at": T0, "from_": "22395", "to": "+14155550100", "carrier": "simulator", "reason": reason}
    f = one(diagnose_number(num(unroutable=[row], probe=WebhookProbe([exchange()]))), "unroutable_inbound")
    assert any(advice in a for a in f.advice) and sources(f, "unroutable_inbound")[0]["from"] == "22395"


@pytest.mark.parametrize(
    ("number", "since", "said"),
    [
        ({**NUMBER, "held_since": T0 + timedelta(seconds=30)}, T0 + timedelta(seconds=30), "since you have had this"),
        ({**NUMBER, "held_since": T0 - timedelta(days=9)}, T0, "since 2026-01-15 11:59:00 UTC"),
        ({**NUMBER, "date_created": T0 + timedelta(seconds=5)}, T0 + timedelta(seconds=5), "since you have had"),
        (NUMBER, T0, "since 2026-01-15 11:59:00 UTC"),
        (None, T0, None),
    ],
)
def test_texts_no_account_took_are_read_from_when_the_account_holds_the_number(
    number: dict[str, Any] | None, since: datetime, said: str | None
) -> None:
    """Texts kept as unroutable belong to no account: those before the account held the number
    were its former holder's, or to a number nobody held."""
    f = num(number=number)
    assert f.unroutable_since == since
    if said is None:
        return
    row = {"received_at": NOW, "from_": "+14155550999", "to": "+14155550100", "carrier": "sim", "reason": "x"}
    facts = num(number=number, unroutable=[row], probe=WebhookProbe([exchange()]))
    found = one(diagnose_number(facts), "unroutable_inbound")
    assert f"1 text(s) to +14155550100 {said}" in found.summary


def test_short_code_country() -> None:
    short = {**NUMBER, "phone_number": "72345", "number_type": "short_code", "iso_country": "US"}
    f = one(
        diagnose_number(num(phone_number="72345", number=short, probe=WebhookProbe([exchange()]))), "short_code_country"
    )
    assert f.severity == "info" and "short code of US" in f.summary


@pytest.mark.parametrize(("stored", "said"), [(None, "has no country"), ("USA", "no ISO country code")])
def test_a_short_code_without_a_real_country_is_a_warning(stored: str | None, said: str) -> None:
    """Stored before the country was required (or checked): it sends anywhere, or nowhere."""
    short = {**NUMBER, "phone_number": "72345", "number_type": "short_code", "iso_country": stored}
    found = diagnose_number(num(phone_number="72345", number=short, probe=WebhookProbe([exchange()])))
    f = one(found, "short_code_without_country")
    assert f.severity == "warning" and said in f.summary
    assert "pigeon numbers country 72345" in f.advice[0]
    assert "short_code_country" not in [x.cause for x in found]


@pytest.mark.parametrize(
    ("code", "remedy"),
    [(11236, "Renew the certificate"), (11235, "host name the certificate was issued for"), (11210, "Check the URL")],
)
def test_a_webhook_that_fails_before_http_gets_the_advice_of_its_code(code: int, remedy: str) -> None:
    """DNS, TLS and certificate failures have their own codes, and the doctor says what to fix."""
    f = one(diagnose_number(num(probe=WebhookProbe([exchange(None, code, twiml=False)]))), "webhook_failing")
    assert any(remedy in advice for advice in f.advice), f.advice


# -- a message the store does not have --------------------------------------------------------------


def test_a_missing_message_deleted_through_the_api_names_the_request() -> None:
    made = NOW - timedelta(days=3)
    deletion = {
        "sid": "RQ" + "1" * 32,
        "account_sid": "AC" + "1" * 32,
        "at": NOW - timedelta(hours=1),
        "method": "DELETE",
        "path": "/2010-04-01/Accounts/AC…/Messages/SM….json",
        "status": 204,
        "source_ip": "10.0.0.7",
        "user_agent": "cleanup-cron/1.0",
    }
    f = diagnose_missing(
        MissingFacts(sid="SM1", account_sid="AC1", now=NOW, made_at=made, deletions=[deletion], message_days=1)
    )
    assert (f.cause, f.severity) == ("message_deleted", "warning")  # deleted wins over retention
    assert "10.0.0.7, cleanup-cron/1.0" in f.summary and "RQ" + "1" * 32 in f.summary
    assert [e["source"] for e in f.evidence] == ["request_log", "sid"]


def test_a_missing_message_older_than_the_retention_was_removed_by_it() -> None:
    facts = MissingFacts(sid="SM1", account_sid="AC1", now=NOW, made_at=NOW - timedelta(days=31), message_days=30)
    f = diagnose_missing(facts)
    assert (f.cause, f.severity) == ("message_past_retention", "warning")
    assert "PIGEON_MESSAGE_DAYS=30" in f.summary
    # Young enough to be kept, messages kept for ever, or a SID that does not say when: not found.
    for other in (
        MissingFacts(sid="SM1", account_sid="AC1", now=NOW, made_at=NOW - timedelta(days=29), message_days=30),
        MissingFacts(sid="SM1", account_sid="AC1", now=NOW, made_at=NOW - timedelta(days=31)),
        MissingFacts(sid="SM1", account_sid="AC1", now=NOW, message_days=30),
    ):
        missing = diagnose_missing(other)
        assert (missing.cause, missing.severity) == ("message_not_found", "error")
        assert [e["source"] for e in missing.evidence] == ["message"] + (["sid"] if other.made_at else [])


def test_a_message_whose_country_was_taken_off_the_geo_permissions() -> None:
    events = [
        ev("created", "queued"),
        ev("geo_not_permitted", "failed", 3, 21408, country="GB", allowed_countries=["CA", "US"]),
    ]
    f = one(diagnose_message(facts(msg(status="failed", error_code=21408), events, parts=[])), "geo_not_permitted")
    assert f.severity == "error"
    assert "is in GB" in f.summary and "allowed CA, US only (21408)" in f.summary
    assert sources(f, "error_code")[0]["error_code"] == 21408
    assert any("pigeon accounts geo" in a for a in f.advice)


def test_a_recipient_who_opted_back_in_is_said_so_and_automatic_replies_are_no_later_request() -> None:
    replies = [facts(msg(direction="outbound-reply", date_created=at(30), body="You are subscribed again."))]
    findings = diagnose_recipient(recipient(refused_requests=[request(21610)], messages=replies, opt_outs=[]))
    assert [f.cause for f in findings] == ["rejected_by_api", "opted_back_in"]
    rejected, back = findings
    assert rejected.severity == "error" and "later request went through" not in rejected.summary
    assert not any("stop sending" in a.lower() for a in rejected.advice)
    assert back.severity == "info" and "START" in back.summary


def test_opted_back_in_names_the_refused_senders_when_the_requests_did() -> None:
    named = diagnose_recipient(recipient(refused_requests=[request(21610), request(21610, 1)], opt_outs=[]))
    assert "not opted out of messages from +14155550100 now" in named[1].summary
    unnamed = diagnose_recipient(recipient(refused_requests=[request(21610, from_=None)], opt_outs=[]))
    assert "is not opted out now" in unnamed[1].summary


def test_a_findings_advice_does_not_send_the_reader_back_to_the_doctor() -> None:
    from pigeon.domain.diagnosis.model import remedy
    from pigeon.domain.error_catalogue import explain

    for code in (30003, 30008):
        info = explain(code)
        assert info is not None and any(a.startswith("Run `pigeon doctor") for a in info.remedy)  # `pigeon errors`
        assert remedy(code) and not any(a.startswith("Run `pigeon doctor") for a in remedy(code))
        assert not any("scripted outcomes" in a for a in remedy(code))
