"""The API process's GET /metrics with worker processes: its own registry, then each worker's
families once, with a `worker` label on every sample, and `pigeon_worker_up` for each."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pigeon.api.metrics import Gathered


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
