"""The webhook's HTTP redirects as the doctor shows them (pigeon.domain.diagnosis.hops)."""

from __future__ import annotations

import io

from rich.console import Console

from pigeon.doctor.render import render_text, to_json
from pigeon.domain.diagnosis import Report, WebhookExchange, WebhookHop, WebhookProbe, diagnose_message, diagnose_number
from pigeon.domain.diagnosis.hops import timeline_hop_rows
from tests.unit.test_diagnosis import _INBOUND, ev, facts, num, one, sources

A, B, C = "https://app/sms", "https://app/sms/", "https://www.app/sms/"


def req(url: str, status: int | None, **more: object) -> dict[str, object]:
    return {"url": url, "method": "POST", "status": status, "error_code": None, "ms": 3.0, **more}


def test_each_redirect_of_a_texts_webhook_is_a_row_with_the_location_it_followed() -> None:
    events = [ev("webhook", requests=[req(A, 301, location=B), req(B, 308, location=C), req(C, 200)])]
    rows = timeline_hop_rows(events)
    assert [(r["url"], r["status"], r["location"], r["elapsed_ms"]) for r in rows] == [
        (A, 301, B, 3.0),
        (B, 308, C, 3.0),
    ]


def test_an_entry_from_before_locations_were_kept_reads_the_next_requests_url() -> None:
    events = [ev("webhook", requests=[req(A, 302), req(B, 200)])]
    assert [r["location"] for r in timeline_hop_rows(events)] == [B]
    # A 3xx that was not followed (11216) led nowhere: the fallback's URL is not its Location.
    failed = [ev("webhook", requests=[req(A, 302, error_code=11216), req("https://fallback/", 200)])]
    assert [r["location"] for r in timeline_hop_rows(failed)] == [None]


def test_twiml_redirects_and_callbacks_are_no_hops() -> None:
    events = [ev("webhook", requests=[req(A, 200), req(B, 200)]), ev("callback", requests=[req(A, 301)])]
    assert timeline_hop_rows(events) == []


def test_a_text_answered_after_redirects_is_an_info_finding_with_each_hop() -> None:
    events = [ev("received", "received"), ev("webhook", requests=[req(A, 303, location=B), req(B, 200)])]
    f = one(diagnose_message(facts(_INBOUND, events, parts=[])), "webhook_redirected")
    assert f.severity == "info" and f"{A} → {B}" in f.summary
    assert [r["status"] for r in sources(f, "redirect")] == [303]
    assert any("303" in a for a in f.advice)


def test_the_test_requests_hops_come_before_it_in_the_evidence() -> None:
    hop = WebhookHop(A, "POST", 308, B, 2.0)
    failed = WebhookExchange(B, "POST", 500, 4.0, 11200, "boom", None, redirects=[hop])
    f = one(diagnose_number(num(probe=WebhookProbe([failed]))), "webhook_failing")
    kinds = [(r["source"], r.get("url")) for r in f.evidence if r["source"] in {"redirect", "test_request"}]
    assert kinds == [("redirect", A), ("test_request", B)]
    assert sources(f, "redirect")[0]["location"] == B


def test_the_cli_and_the_api_json_show_each_hop() -> None:
    hop = WebhookHop(A, "POST", 301, B, 2.0)
    tested = WebhookExchange(B, "POST", 200, 4.0, None, None, True, redirects=[hop])
    probe = WebhookProbe([tested])
    report = Report("number", {"phone_number": "+14155550100"}, diagnose_number(num(probe=probe)))
    [row] = [r for f in to_json(report)["findings"] for r in f["evidence"] if r["source"] == "redirect"]
    assert (row["url"], row["status"], row["location"], row["elapsed_ms"]) == (A, 301, B, 2.0)
    out = io.StringIO()
    render_text(report, Console(file=out, width=400, markup=False))
    assert (
        f"redirect: of=test_request  url={A}  method=POST  status=301  location={B}  elapsed_ms=2.0" in out.getvalue()
    )
