"""The API process's GET /metrics: with worker processes, its own registry, then each worker's
families once, with a `worker` label on every sample, and `pigeon_worker_up` for each; and the
pipeline's backlog as gauges."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pigeon.api.metrics import BacklogCollector, Gathered
from pigeon.app.backlog import Backlog
from pigeon.domain.errors import StoreUnavailable


def worker_text(submits: int, bound: float) -> str:
    registry = CollectorRegistry()
    Counter("pigeon_carrier_submits", "Submits.", ["carrier"], registry=registry).labels("acme").inc(submits)
    Gauge("pigeon_carrier_bound", "Bound.", ["carrier"], registry=registry).labels("acme").set(bound)
    return generate_latest(registry).decode()


def test_each_family_once_with_every_workers_samples_labelled() -> None:
    own = CollectorRegistry()
    Counter("pigeon_api_things", "The API's own.", registry=own).inc()
    gathered = Gathered(own, [("1", worker_text(3, 1.0)), ("2", worker_text(2, 0.0)), ("3", None)])
    text = generate_latest(gathered).decode()

    assert text.count("# TYPE pigeon_carrier_submits_total counter") == 1
    assert text.count("# TYPE pigeon_carrier_bound gauge") == 1
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }
    assert values == {
        ("pigeon_api_things_total", ()): 1.0,
        ("pigeon_worker_up", (("worker", "1"),)): 1.0,
        ("pigeon_worker_up", (("worker", "2"),)): 1.0,
        ("pigeon_worker_up", (("worker", "3"),)): 0.0,  # did not answer: nothing else from it
        ("pigeon_carrier_submits_total", (("carrier", "acme"), ("worker", "1"))): 3.0,
        ("pigeon_carrier_submits_total", (("carrier", "acme"), ("worker", "2"))): 2.0,
        ("pigeon_carrier_bound", (("carrier", "acme"), ("worker", "1"))): 1.0,
        ("pigeon_carrier_bound", (("carrier", "acme"), ("worker", "2"))): 0.0,
    }


def test_the_backlog_as_gauges_and_a_store_out_of_reach_as_store_up_0() -> None:
    backlog = Backlog(
        messages={"accepted": 0, "queued": 7, "sending": 2},
        message_lag=4.5,
        deliveries={"pending": 3, "waiting": 1},
        delivery_lag=0.0,
    )
    text = generate_latest(BacklogCollector(lambda: backlog)).decode()
    assert "pigeon_store_up 1.0" in text
    assert 'pigeon_messages_waiting{status="queued"} 7.0' in text
    assert "pigeon_messages_due_lag_seconds 4.5" in text
    assert 'pigeon_webhook_deliveries_waiting{status="pending"} 3.0' in text
    assert "pigeon_webhook_due_lag_seconds 0.0" in text

    def unreachable() -> Backlog:
        raise StoreUnavailable("the database could not be reached")

    text = generate_latest(BacklogCollector(unreachable)).decode()
    assert "pigeon_store_up 0.0" in text and "pigeon_messages_waiting" not in text


def api_text(requests: int) -> str:
    registry = CollectorRegistry()
    Counter("pigeon_api_requests", "Requests.", ["route"], registry=registry).labels("/x").inc(requests)
    return generate_latest(registry).decode()


def test_the_other_api_processes_requests_join_this_ones_family() -> None:
    own = CollectorRegistry()
    Counter("pigeon_api_requests", "Requests.", ["route"], registry=own).labels("/x").inc(5)
    gathered = Gathered(own, [("1", worker_text(1, 1.0))], [("2", api_text(3)), ("3", None)])
    text = generate_latest(gathered).decode()

    assert text.count("# TYPE pigeon_api_requests_total counter") == 1  # one family, three processes
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(("pigeon_api", "pigeon_worker_up")) and not s.name.endswith("_created")
    }
    assert values == {
        ("pigeon_api_requests_total", (("route", "/x"),)): 5.0,
        ("pigeon_api_requests_total", (("api_process", "2"), ("route", "/x"))): 3.0,
        ("pigeon_worker_up", (("worker", "1"),)): 1.0,
        ("pigeon_api_process_up", (("api_process", "2"),)): 1.0,
        ("pigeon_api_process_up", (("api_process", "3"),)): 0.0,
    }
