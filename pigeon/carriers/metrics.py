"""Prometheus metrics of the carrier connectors, labelled by carrier.

The metrics live in a `CollectorRegistry` the caller passes in — the one the ``/metrics``
endpoint serves — never in prometheus_client's global default registry, so two tests (or
two apps in one process) never see each other's counts. Create one `CarrierMetrics` per
registry and hand it to every carrier: registering the same names twice in a registry fails.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CarrierMetrics"]

# Submit latency: a healthy SMSC answers in milliseconds; the top buckets catch the ones that
# stall right up to the response timeout.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CarrierMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.submits = Counter(
            "pigeon_carrier_submits",
            "Message parts submitted to a carrier, by outcome "
            "(accepted, refused, throttled, timeout, lost, accepted_late, refused_late).",
            ["carrier", "outcome"],
            registry=r,
        )
        self.receipts = Counter(
            "pigeon_carrier_receipts", "Delivery receipts received, by receipt state.", ["carrier", "stat"], registry=r
        )
        self.inbound = Counter(
            "pigeon_carrier_inbound", "Mobile-originated messages received (after reassembly).", ["carrier"], registry=r
        )
        self.throttles = Counter(
            "pigeon_carrier_throttles",
            "ESME_RTHROTTLED / ESME_RMSGQFUL answers, each pausing the bind.",
            ["carrier"],
            registry=r,
        )
        self.errors = Counter(
            "pigeon_carrier_errors",
            "Connector errors by kind (bind, connection, response_timeout, permanent, retryable, pdu, tlv, events).",
            ["carrier", "kind"],
            registry=r,
        )
        self.submit_latency = Histogram(
            "pigeon_carrier_submit_latency_seconds",
            "Time from writing a submit_sm to its submit_sm_resp.",
            ["carrier"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.window_in_use = Gauge(
            "pigeon_carrier_window_in_use", "submit_sm awaiting their submit_sm_resp.", ["carrier"], registry=r
        )
        self.bound = Gauge("pigeon_carrier_bound", "1 when the carrier can submit, else 0.", ["carrier"], registry=r)
