"""The doctor's rules about erased data (pigeon.domain.diagnosis.erased), and the keyed
fingerprints an erasure's record keeps (pigeon.domain.erasure). The integration tests
(tests/integration/test_erasure_doctor.py) erase through the real command and store."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from pigeon.domain.diagnosis import (
    DuplicateFacts,
    Finding,
    MessageFacts,
    MissingFacts,
    RecipientFacts,
    diagnose_duplicates,
    diagnose_missing,
    diagnose_recipient,
)
from pigeon.domain.erasure import erasure_key, fingerprint

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=1)
NUMBER = "+14155550101"


def erasure(**kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "erasure_id": 7,
        "started_at": NOW - timedelta(minutes=10),
        "finished_at": NOW - timedelta(minutes=10),
        "erased_by": "pigeon erase, run by ops",
        "scope": None,
        "messages": 3,
    }
    return {**row, **kw}


def causes(findings: list[Finding]) -> list[str]:
    return [f.cause for f in findings]


def test_a_message_an_erasure_removed_says_when_and_who() -> None:
    f = diagnose_missing(MissingFacts(sid="SM1", account_sid="AC1", now=NOW, erasure=erasure()))
    assert (f.cause, f.severity) == ("message_erased", "warning")
    assert f.summary.startswith("Message SM1 was erased at 2026-01-15 11:50:00 UTC (pigeon erase, run by ops)")
    [row, missing] = f.evidence
    assert row["source"] == "erasure" and row["scope"] == "every account" and row["messages_erased"] == 3
    assert missing == {"source": "message", "sid": "SM1", "found": False}
    assert not any("again" in a for a in f.advice)


def test_an_erasure_taken_up_again_or_unfinished_says_so() -> None:
    later = erasure(finished_at=NOW - timedelta(minutes=2), erased_by=None, scope="AC" + "2" * 32)
    f = diagnose_missing(MissingFacts(sid="SM1", account_sid="AC1", now=NOW, erasure=later))
    assert "started at 2026-01-15 11:50:00 UTC and finished at 2026-01-15 11:58:00 UTC," in f.summary
    assert f.evidence[0]["scope"] == "AC" + "2" * 32
    cut = diagnose_missing(MissingFacts(sid="SM1", account_sid="AC1", now=NOW, erasure=erasure(finished_at=None)))
    assert "started at 2026-01-15 11:50:00 UTC (pigeon erase, run by ops) and has not finished" in cut.summary
    assert any("again finishes it" in a for a in cut.advice)


def test_an_erasure_comes_before_a_deletion_or_the_retention() -> None:
    """A message that went in an erasure is said to be erased even though it is also old."""
    facts = MissingFacts(
        sid="SM1", account_sid="AC1", now=NOW, made_at=NOW - timedelta(days=40), message_days=30, erasure=erasure()
    )
    assert diagnose_missing(facts).cause == "message_erased"


def recipient(**kw: Any) -> RecipientFacts:
    kw.setdefault("to", NUMBER)
    return RecipientFacts(since=SINCE, now=NOW, **kw)


def test_a_number_erased_in_the_window_is_not_said_never_to_have_been_asked_for() -> None:
    [f] = diagnose_recipient(recipient(erasures=[erasure(), erasure(erasure_id=6, messages=None)]))
    assert (f.cause, f.severity) == ("message_erased", "warning")
    assert f"The data of {NUMBER} was erased at 2026-01-15 11:50:00 UTC" in f.summary and "(3 of this" in f.summary
    assert [e["erasure_id"] for e in f.evidence] == [7, 6]
    assert any("opt-outs were kept" in a for a in f.advice)
    # Unfinished (still running, or cut short): it counts as ending now, inside the window.
    [f] = diagnose_recipient(recipient(erasures=[erasure(started_at=SINCE - timedelta(days=1), finished_at=None)]))
    assert f.cause == "message_erased" and "has not finished" in f.summary


def test_an_erasure_before_the_window_leaves_never_requested_with_a_word_about_it() -> None:
    old = erasure(started_at=SINCE - timedelta(days=2), finished_at=SINCE - timedelta(days=2))
    [f] = diagnose_recipient(recipient(erasures=[old]))
    assert f.cause == "never_requested"
    assert [e["source"] for e in f.evidence] == ["request_log", "erasure"]
    assert any("before this window" in a for a in f.advice)
    [plain] = diagnose_recipient(recipient())
    assert plain.cause == "never_requested" and not any("erased" in a for a in plain.advice)


def test_an_erasure_in_the_window_comes_with_what_came_after_it() -> None:
    message = {
        "sid": "SM2",
        "account_sid": "AC1",
        "direction": "outbound-api",
        "from_": "+14155550100",
        "to": NUMBER,
        "status": "queued",
        "error_code": None,
        "date_created": NOW,
        "date_updated": NOW,
        "date_sent": None,
        "next_attempt_at": NOW,
        "attempts": 0,
    }
    findings = diagnose_recipient(recipient(erasures=[erasure()], messages=[MessageFacts(message, [], NOW)]))
    assert causes(findings)[0] == "message_erased" and "never_requested" not in causes(findings)


def test_duplicates_of_an_erased_number_say_what_cannot_be_compared() -> None:
    facts = DuplicateFacts(since=SINCE, now=NOW, window_seconds=10, to=NUMBER, erasures=[erasure()])
    assert causes(diagnose_duplicates(facts)) == ["message_erased"]
    old = erasure(finished_at=SINCE - timedelta(seconds=1))
    assert diagnose_duplicates(DuplicateFacts(since=SINCE, now=NOW, window_seconds=10, to=NUMBER, erasures=[old])) == []
    assert diagnose_duplicates(DuplicateFacts(since=SINCE, now=NOW, window_seconds=10)) == []


def test_fingerprints_are_keyed_per_purpose_and_per_kind() -> None:
    content_key = bytes(range(32))
    key = erasure_key(content_key)
    assert key != content_key and len(key) == 32
    number = fingerprint(key, "number", NUMBER)
    assert number == fingerprint(key, "number", NUMBER) and len(number) == 64 and NUMBER[1:] not in number
    assert number != fingerprint(key, "sid", NUMBER)  # a number and a SID never share one
    assert number != fingerprint(erasure_key(bytes(32)), "number", NUMBER)  # another install's key
    # Not what the content key itself would give: the two purposes' fingerprints never match.
    assert number != hmac.new(content_key, f"number\x1f{NUMBER}".encode(), hashlib.sha256).hexdigest()
