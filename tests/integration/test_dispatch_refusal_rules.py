"""What a route's refusals decide, through the real dispatcher on both stores
(`pigeon.domain.refusals`): a carrier nobody could reach costs no attempt and the message waits
for its ValidityPeriod; a retryable refusal anywhere on the route is retried even when another
carrier refused for good; a refusal about this carrier only moves on to the next one."""

from __future__ import annotations

from typing import Any

from pigeon.carriers.smpp_errors import classify, to_error
from pigeon.domain.errors import CarrierError, CarrierOutcomeUnknown, CarrierRetryableError, CarrierUnavailable
from pigeon.domain.refusals import UNREACHED_MAX_DELAY
from pigeon.domain.retry import RetryPolicy
from pigeon.ports import Carrier
from tests.integration.pipeline import Pipeline, ScriptedCarrier


def _esme(status: int, carrier: str) -> CarrierError:
    return to_error(status, classify(status), carrier=carrier, part=1, parts=1)


def _unbound() -> CarrierUnavailable:
    return CarrierUnavailable("not bound", carrier_code="smpp:not_bound")


def _drive(pipe: Pipeline, sid: str, route: list[Carrier], rounds: int, **kw: Any) -> list[float]:
    """Dispatch `rounds` times, each when the message is due; the waits between attempts."""
    waits = []
    for _ in range(rounds):
        m = pipe.message(sid)
        if m["status"] != "queued":
            break
        if m["next_attempt_at"] is not None and m["next_attempt_at"] > pipe.clock.now():
            waits.append((m["next_attempt_at"] - pipe.clock.now()).total_seconds())
            pipe.clock.current = m["next_attempt_at"]
        pipe.dispatch(route=route, **kw)
    return waits


# -- 1. a carrier nobody can reach ----------------------------------------------------------------


def test_an_unbound_carrier_costs_no_attempt_and_the_message_waits_with_capped_backoff(pipe: Pipeline) -> None:
    down = ScriptedCarrier("acme", default=_unbound())
    sid = pipe.send(validity=36_000)
    start = pipe.clock.now()
    waits = _drive(pipe, sid, [down], rounds=40)
    msg = pipe.message(sid)
    assert (pipe.clock.now() - start).total_seconds() > 600  # ten minutes down
    assert (msg["status"], msg["attempts"], msg["error_code"]) == ("queued", 0, None)
    assert len(down.submitted) > 30  # a round may only reserve the sender's next slot
    assert max(waits) <= UNREACHED_MAX_DELAY and waits[-1] > UNREACHED_MAX_DELAY * 0.85
    retry = pipe.events(sid, "retry")[-1]
    assert retry["detail"]["unreached"] is True
    assert pipe.alerts(sid) == []
    down.default = None  # the bind is back
    _drive(pipe, sid, [down], rounds=1)
    assert (pipe.status(sid), pipe.message(sid)["attempts"]) == ("sent", 1)


def test_a_message_waiting_for_a_bind_fails_when_its_validity_period_runs_out(pipe: Pipeline) -> None:
    down = ScriptedCarrier("acme", default=_unbound())
    sid = pipe.send(validity=300)
    _drive(pipe, sid, [down], rounds=60)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 30036)


def test_a_carrier_that_answers_still_counts_against_the_budget(pipe: Pipeline) -> None:
    busy = ScriptedCarrier("busy", default=CarrierRetryableError("busy", carrier_code="ESME_RSYSERR"))
    down = ScriptedCarrier("down", default=_unbound())
    sid = pipe.send()
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=1, jitter=0)
    _drive(pipe, sid, [down, busy], rounds=10, retry=policy)
    msg = pipe.message(sid)
    assert (msg["status"], msg["attempts"], msg["error_code"]) == ("failed", 3, 30008)


# -- 2. a retryable refusal anywhere on the route -------------------------------------------------


def test_a_throttling_primary_is_retried_although_the_backup_refuses_for_good(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x58, "acme"))  # throttled past the connector's budget, then takes it
    backup = ScriptedCarrier("backup", default=_esme(0x0A, "backup"))
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("queued", None)
    _drive(pipe, sid, [acme, backup], rounds=3)
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"], len(acme.submitted)) == ("sent", "acme", 2)


def test_retries_run_out_with_the_code_of_the_carrier_that_could_have_taken_it(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", default=_esme(0x58, "acme"))
    backup = ScriptedCarrier("backup", default=_esme(0x0A, "backup"))
    sid = pipe.send()
    policy = RetryPolicy(max_attempts=2, base_delay=1, max_delay=1, jitter=0)
    _drive(pipe, sid, [acme, backup], rounds=5, retry=policy)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 30001)
    assert pipe.events(sid)[-1]["detail"]["error_from"] == "acme"


def test_every_carrier_refusing_for_good_fails_with_the_most_specific_code(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x34, "acme"))  # ESME_RINVDLNAME: permanent, 30008
    backup = ScriptedCarrier("backup", _esme(0x0A, "backup"))  # the From is not valid here: 21606
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 21606)
    failed = pipe.events(sid)[-1]
    assert failed["detail"]["error_from"] == "backup"
    assert [r["carrier"] for r in failed["detail"]["refused_by"]] == ["acme", "backup"]
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 21606 and "Every carrier of its route refused" in alert["alert_text"]


# -- 3. refusals about one carrier move on ----------------------------------------------------------


def test_a_sender_refused_by_the_primary_goes_out_through_the_backup(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x0A, "acme"))  # ESME_RINVSRCADR, 21606
    backup = ScriptedCarrier("backup")
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"], len(backup.submitted)) == ("sent", "backup", 1)
    [failover] = pipe.events(sid, "failover")
    assert failover["detail"]["refused_by"][0]["carrier_code"] == "ESME_RINVSRCADR"


def test_an_unmapped_permanent_status_moves_on_too(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x34, "acme"))
    backup = ScriptedCarrier("backup")
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    assert (pipe.status(sid), pipe.message(sid)["carrier"]) == ("sent", "backup")


def test_a_refusal_about_the_content_stops_the_route(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x66, "acme"))  # ESME_RX_R_APPN: filtered, 30007
    backup = ScriptedCarrier("backup")
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30007)
    assert backup.submitted == []


def test_a_handset_verdict_after_a_throttle_fails_at_once(pipe: Pipeline) -> None:
    acme = ScriptedCarrier("acme", _esme(0x58, "acme"))
    backup = ScriptedCarrier("backup", _esme(0x0B, "backup"))  # unknown handset, 30005
    sid = pipe.send()
    pipe.dispatch(route=[acme, backup])
    assert (pipe.status(sid), pipe.message(sid)["error_code"]) == ("failed", 30005)


# -- 6. a submit never answered -------------------------------------------------------------------


def test_retries_that_run_out_after_an_unanswered_submit_fail_with_30410(pipe: Pipeline) -> None:
    acme = ScriptedCarrier(
        "acme",
        CarrierOutcomeUnknown("no submit_sm_resp", carrier_code="smpp:connection_lost"),
        default=CarrierRetryableError("system error", carrier_code="ESME_RSYSERR"),
    )
    sid = pipe.send()
    policy = RetryPolicy(max_attempts=3, base_delay=1, max_delay=1, jitter=0)
    _drive(pipe, sid, [acme], rounds=5, retry=policy)
    msg = pipe.message(sid)
    assert (msg["status"], msg["error_code"]) == ("failed", 30410)
    [alert] = pipe.alerts(sid)
    assert alert["error_code"] == 30410 and "never answered" in alert["alert_text"]


def test_an_unanswered_submit_then_a_lost_bind_waits_for_the_bind(pipe: Pipeline) -> None:
    acme = ScriptedCarrier(
        "acme", CarrierOutcomeUnknown("no submit_sm_resp", carrier_code="smpp:connection_lost"), default=_unbound()
    )
    sid = pipe.send()
    _drive(pipe, sid, [acme], rounds=20)
    msg = pipe.message(sid)
    assert (msg["status"], msg["carrier"], msg["attempts"]) == ("queued", "acme", 1)
