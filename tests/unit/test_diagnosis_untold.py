"""The number flow's texts that no application was told of (pigeon.domain.diagnosis.untold)."""

from __future__ import annotations

from datetime import timedelta

from pigeon.domain.diagnosis import WebhookTarget, diagnose_number, number_checks
from tests.unit.test_diagnosis import NOW, NUMBER, T0, num, one, sources

FIRST = T0 - timedelta(hours=3)
LATEST = {"sid": "SM" + "9" * 32, "from_": "+14155552671", "to": "+14155550100", "date_created": T0}
EARLIER = {**LATEST, "sid": "SM" + "8" * 32, "date_created": FIRST}
SINCE = NOW - timedelta(hours=24)


def test_texts_received_before_the_webhook_was_set_are_counted_with_the_first_and_the_latest() -> None:
    f = num(since=SINCE, untold_count=7, untold_first=FIRST, untold=[LATEST, EARLIER])
    found = one(diagnose_number(f), "received_without_webhook")
    assert found.severity == "warning"
    assert "7 text(s) since 2026-01-14 12:00:00 UTC reached no application" in found.summary
    assert "the first at 2026-01-15 08:59:00 UTC" in found.summary
    assert f"the latest at 2026-01-15 11:59:00 UTC ({LATEST['sid']} from +14155552671)" in found.summary
    assert "has a webhook now (https://app/sms)" in found.summary
    assert [r["sid"] for r in sources(found, "message")] == [LATEST["sid"], EARLIER["sid"]]
    assert any("pigeon logs --to +14155550100" in a for a in found.advice)
    inbound = next(c for c in number_checks(f) if c["check"] == "inbound_received")
    assert inbound["no_application_told"] == 7


def test_no_webhook_now_counts_them_from_the_timeline_when_the_alerts_are_gone() -> None:
    f = num(
        since=SINCE,
        number={**NUMBER, "sms_url": None},
        target=WebhookTarget(None, "POST", None, "number"),
        untold_count=2,
        untold_first=FIRST,
        untold=[LATEST, EARLIER],
        unannounced=[],
    )
    found = one(diagnose_number(f), "no_webhook")
    assert (
        "2 text(s) since" in found.summary
        and f"the latest at 2026-01-15 11:59:00 UTC ({LATEST['sid']}" in found.summary
    )
    assert len(sources(found, "message")) == 2
    assert "received_without_webhook" not in [x.cause for x in diagnose_number(f)]


def test_a_number_whose_texts_all_reached_the_application_says_nothing_of_them() -> None:
    assert diagnose_number(num()) == []
