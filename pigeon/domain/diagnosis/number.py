""" "My number receives nothing": on this account? SMS-capable? a webhook, and which one wins
(the number's or its Messaging Service's)? does the webhook answer with usable TwiML? were
messages received whose webhook failed, or that never reached the account? short-code rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pigeon.domain import numbers
from pigeon.domain.diagnosis.facts import NumberFacts, Row, WebhookExchange, WebhookProbe
from pigeon.domain.diagnosis.hops import probe_hop_rows, redirected
from pigeon.domain.diagnosis.inbound import TWIML_CODES
from pigeon.domain.diagnosis.model import Finding, Thresholds, alert_row, explained, remedy, unique, when
from pigeon.domain.diagnosis.untold import received_without_webhook, untold_rows, untold_said


def exchange_row(ex: WebhookExchange, *, test: bool = True) -> dict[str, Any]:
    return {
        "source": "test_request" if test else "webhook",
        "url": ex.url,
        "method": ex.method,
        "status": ex.status,
        "elapsed_ms": round(ex.elapsed_ms, 1),
        "error_code": ex.error_code,
        "error": ex.error,
        "twiml_valid": ex.twiml_valid,
        "replies": ex.replies,
        "response_excerpt": ex.response_excerpt,
        "location": ex.location,
    }


def request_rows(ex: WebhookExchange) -> list[dict[str, Any]]:
    """One request of the test as evidence: the redirects that led to it, then itself."""
    return [*probe_hop_rows(ex), exchange_row(ex)]


def _number_row(f: NumberFacts) -> dict[str, Any]:
    n = f.number or {}
    return {
        "source": "phone_number",
        "phone_number": f.phone_number,
        "sid": n.get("sid"),
        "type": n.get("number_type"),
        "iso_country": n.get("iso_country"),
        "sms_capable": n.get("sms_capable"),
        "sms_url": n.get("sms_url"),
        "sms_fallback_url": n.get("sms_fallback_url"),
        "messaging_service_sid": n.get("messaging_service_sid"),
    }


def _service_row(f: NumberFacts) -> dict[str, Any]:
    s = f.service or {}
    return {
        "source": "messaging_service",
        "sid": s.get("sid"),
        "inbound_request_url": s.get("inbound_request_url"),
        "fallback_url": s.get("fallback_url"),
        "use_inbound_webhook_on_number": s.get("use_inbound_webhook_on_number"),
    }


def diagnose_number(f: NumberFacts, th: Thresholds | None = None) -> list[Finding]:
    th = th or Thresholds()
    if f.number is None:
        return [
            Finding(
                cause="number_not_on_account",
                severity="error",
                summary=f"{f.phone_number} is not a number of this account: texts to it never reach this account.",
                evidence=[{"source": "phone_number", "phone_number": f.phone_number, "on_account": False}],
                advice=[
                    "Check the account you asked about (--account) and the number's format (E.164, e.g. +14155550100).",
                    "Buy the number (IncomingPhoneNumbers create) or provision it (`pigeon numbers add`).",
                ],
            )
        ]
    out: list[Finding] = []
    if not f.number.get("sms_capable"):
        out.append(
            Finding(
                cause="number_not_sms_capable",
                severity="error",
                summary=f"{f.phone_number} is not SMS-capable: texts to it are dropped (21407).",
                evidence=[_number_row(f), explained(21407)],
                advice=["Use an SMS-capable number for texting, or enable SMS on this one if its carrier supports it."],
            )
        )
    if f.target is None or not f.target.url:
        out.append(_no_webhook(f))
    elif f.untold_count:
        out.append(received_without_webhook(f))
    out.extend(_webhook(f, th))
    if f.unroutable:
        out.append(_unroutable(f))
    if f.number.get("number_type") == "short_code":
        out.append(_short_code(f))
    return out


def _no_webhook(f: NumberFacts) -> Finding:
    n = f.number or {}
    evidence = [_number_row(f)]
    if f.target is not None and f.target.source == "service":
        s = f.service or {}
        summary = (
            f"{f.phone_number} belongs to Messaging Service {s.get('sid')}, whose inbound settings take precedence, "
            "and the service has no inbound request URL"
        )
        if n.get("sms_url"):
            summary += (
                f"; the number's own SmsUrl {n['sms_url']} is not used, because the service's "
                "use_inbound_webhook_on_number is off"
            )
        summary += "."
        advice = [
            f"Set InboundRequestUrl on Messaging Service {s.get('sid')}, or",
            "set UseInboundWebhookOnNumber=true on the service so that each number's SmsUrl is used.",
        ]
        evidence.append(_service_row(f))
    else:
        summary = f"{f.phone_number} has no SmsUrl and is in no Messaging Service: texts are stored, but no application is told."
        advice = [
            "Set SmsUrl on the number (IncomingPhoneNumbers update), or add it to a Messaging Service with an "
            "InboundRequestUrl."
        ]
    if f.untold_count or f.unannounced:
        summary += " " + untold_said(f)
        evidence.extend(untold_rows(f))
        evidence.extend(alert_row(a) for a in f.unannounced)
    advice.append("Texts received meanwhile are in the message log (`pigeon logs --to NUMBER`).")
    return Finding(cause="no_webhook", severity="error", summary=summary, evidence=evidence, advice=advice)


def _rescued(probe: WebhookProbe | None) -> WebhookExchange | None:
    """The fallback URL's answer to a test request its primary URL failed, if it took it."""
    if probe is None or len(probe.exchanges) < 2 or probe.exchanges[-1].error_code is not None:
        return None
    return probe.exchanges[-1]


def _history(f: NumberFacts, alerts: Sequence[Row], lost: Sequence[Row], taken: Sequence[Row]) -> str:
    """What became of the texts the webhook failed: no URL took them, or the fallback URL did."""
    since = when(f.since)
    if not lost and not taken:  # alerts whose texts' timelines say nothing more
        return f"{len(alerts)} alert(s) since {since} say it failed for incoming texts"
    said = []
    if lost:
        said.append(f"{len(lost)} incoming text(s) since {since} were not taken by the application")
    if taken and lost:
        said.append(f"the primary URL also failed for {len(taken)} other(s), which the fallback URL took")
    elif taken:
        said.append(
            f"the primary URL failed for {len(taken)} incoming text(s) since {since}, and the fallback URL took "
            f"all {len(taken)}"
        )
    return "; ".join(said)


def _earlier_urls(f: NumberFacts, alerts: Sequence[Row]) -> list[str]:
    """The URLs of `alerts` that are neither the webhook's URL now nor its fallback URL: the
    number's webhook was changed since they were raised, and they say nothing of the new one."""
    now = {f.target.url, f.target.fallback_url} if f.target is not None else set()
    return unique(str(a["request_url"]) for a in alerts if a.get("request_url") and a.get("request_url") not in now)


def _webhook_alert_row(alert: Row, earlier: Sequence[str]) -> dict[str, Any]:
    row = alert_row(alert)
    row["earlier_url"] = row["request_url"] in earlier
    return row


def _earlier(f: NumberFacts, alerts: Sequence[Row], earlier: Sequence[str]) -> str:
    """That (some of) the alerts were for a URL the webhook no longer has."""
    count = sum(1 for a in alerts if a.get("request_url") in earlier)
    urls = ", ".join(earlier)
    if count < len(alerts):
        return f"{count} of the {len(alerts)} alerts were for an earlier webhook URL, {urls}"
    now = f", not the one it has now ({f.target.url})" if f.target is not None and f.target.url else ""
    return f"all at an earlier webhook URL, {urls}{now}"


def _now(tested: WebhookExchange | None, in_class: bool) -> str:
    """What the test request says of the webhook now, beside past failures of one kind: that
    it answers only when it passed every check; a failure of the other kind is that finding's."""
    if tested is None:
        return ""
    if tested.error_code is None:
        return " It answers the test request now."
    if in_class:
        return " The test request fails now before any TwiML is read (see webhook_failing)."
    return " The test request gets an answer now, but not usable TwiML (see invalid_twiml)."


def _webhook(f: NumberFacts, th: Thresholds) -> list[Finding]:
    """webhook_failing, invalid_twiml, webhook_slow: from the test request and from history.
    Texts the fallback URL took are not lost: when it took every one (and the test request),
    the failing primary URL is a warning."""
    probe = f.probe
    tested = probe.first if probe is not None else None
    out: list[Finding] = []
    for cause, in_class in (("webhook_failing", False), ("invalid_twiml", True)):
        failed_now = (
            tested is not None and tested.error_code is not None and (tested.error_code in TWIML_CODES) == in_class
        )
        rescued = _rescued(probe) if failed_now else None
        history = [a for a in f.webhook_alerts if (a.get("error_code") in TWIML_CODES) == in_class]
        if not failed_now and not history:
            continue
        lost = [e for e in f.webhook_failures if (e.get("error_code") in TWIML_CODES) == in_class]
        taken = [e for e in f.fallback_answers if (e.get("error_code") in TWIML_CODES) == in_class]
        code = tested.error_code if failed_now and tested else history[0].get("error_code")
        parts = []
        if failed_now and tested:
            got = f"HTTP {tested.status}" if tested.status is not None else "no answer"
            parts.append(
                f"the doctor's test request to {tested.url} got {got} in {tested.elapsed_ms:.0f} ms ({tested.error})"
                + (f", and the fallback URL {rescued.url} answered it" if rescued else "")
            )
        earlier = _earlier_urls(f, history)
        if history:
            parts.append(_history(f, history, lost, taken))
        if earlier:
            parts.append(_earlier(f, history, earlier))
        texts_lost = bool(history) and (bool(lost) or not taken)
        label = "answers with unusable TwiML" if in_class else "fails"
        out.append(
            Finding(
                cause=cause,
                severity="error" if (failed_now and not rescued) or (probe is None and texts_lost) else "warning",
                summary=f"The webhook of {f.phone_number} {label}: "
                + "; ".join(parts)
                + "."
                + ("" if failed_now else _now(tested, in_class)),
                evidence=[
                    explained(code),
                    *[row for ex in (probe.exchanges if probe else ()) for row in request_rows(ex)],
                    *[_webhook_alert_row(a, earlier) for a in history[:10]],
                ],
                advice=unique(
                    [
                        *remedy(code),
                        "Pigeon asks the webhook once per text (then its fallback URL): a text it could not hand "
                        "over stays in the message log with an alert.",
                    ]
                ),
            )
        )
    if tested is not None and tested.error_code is None and tested.elapsed_ms > th.slow_webhook_ms:
        out.append(
            Finding(
                cause="webhook_slow",
                severity="warning",
                summary=f"The webhook of {f.phone_number} took {tested.elapsed_ms / 1000:.1f} s to answer the test "
                "request; past 15 s Pigeon gives up (11205).",
                evidence=request_rows(tested),
                advice=["Answer the webhook at once and do slow work afterwards (a queue, a background job)."],
            )
        )
    if tested is not None and tested.error_code is None and tested.redirects:
        out.append(redirected(f"The webhook of {f.phone_number}", probe_hop_rows(tested), tested.url))
    return out


def _since_held(f: NumberFacts) -> str:
    if f.held_since is None:
        return f"since {when(f.since)}"
    return f"since you have had this number ({when(f.held_since)})"


def _unroutable(f: NumberFacts) -> Finding:
    reasons = unique(str(r.get("reason")) for r in f.unroutable)
    advice = []
    joined = " ".join(reasons)
    if "short code" in joined and "option is off" in joined:
        advice.append(
            "Turn on short-code inbound for the account if texts from short codes are expected "
            "(pigeon accounts short-code-inbound AC... --on); it works only from short codes of the "
            "number's own country."
        )
    if "only receives from numbers in" in joined or "own country" in joined:
        advice.append(
            "A short code takes texts only from handsets on networks of its own country: foreign numbers and "
            "subscribers roaming abroad cannot reach it; give them a long code or toll-free number."
        )
    if "another short code" in joined:
        advice.append("Short codes cannot text each other.")
    if "not SMS-capable" in joined:
        advice.append("Use an SMS-capable number for texting.")
    return Finding(
        cause="unroutable_inbound",
        severity="error",
        summary=f"{len(f.unroutable)} text(s) to {f.phone_number} {_since_held(f)} never reached the account: "
        + "; ".join(reasons)
        + ".",
        evidence=[
            {
                "source": "unroutable_inbound",
                "at": r.get("received_at"),
                "from": r.get("from_"),
                "to": r.get("to"),
                "carrier": r.get("carrier"),
                "reason": r.get("reason"),
            }
            for r in f.unroutable
        ],
        advice=advice or ["These texts were kept but not delivered to the account; they cannot be replayed."],
    )


def _short_code(f: NumberFacts) -> Finding:
    stored = (f.number or {}).get("iso_country")
    if not stored or numbers.iso_country(stored) != stored:
        return _short_code_without_country(f, stored)
    country = stored
    return Finding(
        cause="short_code_country",
        severity="info",
        summary=f"{f.phone_number} is a short code of {country}: it takes texts only from handsets on {country} "
        "networks, never from another short code; a foreign number or a subscriber roaming abroad cannot text it.",
        evidence=[_number_row(f)],
        advice=[
            "Give international or roaming users a long code or toll-free number to text.",
            "A short code outside a Messaging Service leaves STOP and HELP to your application.",
        ],
    )


def _short_code_without_country(f: NumberFacts, stored: str | None) -> Finding:
    """A short code provisioned before its country was required (or checked): with none it
    sends anywhere and takes texts from anywhere, which no carrier lets a short code do; with
    one that is no ISO country ("USA") every send from it is refused and no text reaches it."""
    if stored:
        what = f"has {stored!r} for its country, which is no ISO country code: every send from it is refused (21606) "
        what += "and no text reaches it"
    else:
        what = "has no country: Pigeon lets it send to any country and take texts from any, which its carrier will not"
    return Finding(
        cause="short_code_without_country",
        severity="warning",
        summary=f"{f.phone_number} is a short code that {what}.",
        evidence=[_number_row(f)],
        advice=[
            "A short code belongs to one country: give it its own with "
            f"pigeon numbers country {f.phone_number} CC (its ISO code, such as US).",
        ],
    )


def number_checks(f: NumberFacts) -> list[dict[str, Any]]:
    """What was checked, passed or not, for the report (shown even when all is well)."""
    if f.number is None:
        return [{"check": "on_account", "ok": False}]
    checks: list[dict[str, Any]] = [
        {"check": "on_account", "ok": True},
        {"check": "sms_capable", "ok": bool(f.number.get("sms_capable"))},
        {
            "check": "webhook",
            "ok": bool(f.target and f.target.url),
            "url": f.target.url if f.target else None,
            "method": f.target.method if f.target else None,
            "from": f.target.source if f.target else None,
        },
    ]
    if f.probe is not None and f.probe.first is not None:
        first = f.probe.first
        checks.append(
            {
                "check": "test_request",
                "ok": first.error_code is None,
                "status": first.status,
                "elapsed_ms": round(first.elapsed_ms, 1),
                "twiml_valid": first.twiml_valid,
                "error_code": first.error_code,
                "redirects": len(first.redirects),
            }
        )
    checks.append(
        {
            "check": "inbound_received",
            "ok": True,
            "count": f.inbound_received,
            "since": f.since,
            "no_application_told": f.untold_count,
        }
    )
    return checks
