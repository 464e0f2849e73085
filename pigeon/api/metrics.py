"""GET /metrics: Prometheus text exposition of this process's registry (carrier metrics,
and whatever else the composition root registers there), and with `pigeon serve --workers N`
of its worker processes' too."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pigeon.app.backlog import Backlog
from pigeon.domain.errors import StoreUnavailable

log = logging.getLogger(__name__)


def metrics_route(registry: CollectorRegistry) -> Route:
    async def metrics(request: Request) -> Response:
        # In a thread: the registry's collectors may read the store (`BacklogCollector`).
        return Response(await asyncio.to_thread(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


class BacklogCollector:
    """The pipeline's backlog, read from the store at each scrape (`pigeon.store.backlog`):
    what an operator alerts on when messages or callbacks stop going out. The store out of
    reach is `pigeon_store_up 0`, not a failed scrape."""

    def __init__(self, read: Callable[[], Backlog]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        try:
            backlog = self.read()
        except StoreUnavailable as exc:
            log.warning("metrics: the store did not answer: %s", exc)
            yield _store_up(0.0)
            return
        yield _store_up(1.0)
        yield _by_status(
            "pigeon_messages_waiting", "Outbound messages not yet handed to a carrier, by status.", backlog.messages
        )
        yield GaugeMetricFamily(
            "pigeon_messages_due_lag_seconds",
            "How long the longest-due accepted or queued message has been due (0: none is late).",
            value=backlog.message_lag,
        )
        yield _by_status(
            "pigeon_webhook_deliveries_waiting",
            "Webhook deliveries (status callbacks, inbound, Event Streams) not made yet: pending "
            "(due, in flight or backing off) and waiting (behind an earlier one of the same message).",
            backlog.deliveries,
        )
        yield GaugeMetricFamily(
            "pigeon_webhook_due_lag_seconds",
            "How long the longest-due pending webhook delivery has been due, in flight included (0: none).",
            value=backlog.delivery_lag,
        )


class ReplicaCollector:
    """The read replica (PIGEON_DATABASE_REPLICA_URL), read at each scrape: whether it
    answered, and how far behind the primary it is, which is how stale listings can be."""

    def __init__(self, read_lag: Callable[[], float | None]) -> None:
        self.read_lag = read_lag

    def collect(self) -> Iterator[Metric]:
        try:
            lag = self.read_lag()
        except StoreUnavailable as exc:
            log.warning("metrics: the read replica did not answer: %s", exc)
            yield _replica_up(0.0)
            return
        yield _replica_up(1.0)
        if lag is not None:  # else not a standby: `pigeon serve` warned at start
            yield GaugeMetricFamily(
                "pigeon_replica_lag_seconds",
                "How far the read replica is behind the primary (0 when it has replayed all it received).",
                value=lag,
            )


def _replica_up(value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily("pigeon_replica_up", "1 when the read replica answered this scrape.", value=value)


def _store_up(value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily("pigeon_store_up", "1 when the database answered this scrape.", value=value)


def _by_status(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, n in counts.items():
        family.add_metric([status], float(n))
    return family


def relayed_metrics_route(uds_path: str) -> Route:
    """GET /metrics answered by another Pigeon process over its Unix socket: the API processes
    after the first relay the first's figures, where the carriers are (pigeon/serving.py)."""
    transport = httpx.AsyncHTTPTransport(uds=uds_path)

    async def metrics(request: Request) -> Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://pigeon", timeout=10.0) as client:
            try:
                answer = await client.get("/metrics")
            except httpx.HTTPError:
                return Response("the process that holds the metrics is not answering\n", status_code=503)
        return Response(answer.content, status_code=answer.status_code, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


#: How long a scrape waits for a worker process's figures.
WORKER_TIMEOUT = 5.0


def gathered_metrics_route(
    registry: CollectorRegistry, workers: Sequence[str], api_processes: Sequence[str] = ()
) -> Route:
    """GET /metrics of `pigeon serve --workers N --api-processes M`: this process's figures,
    and each worker process's and other API process's, read from the Unix socket it serves
    them on (`pigeon worker --metrics-socket`, `pigeon serve-api --metrics-socket`).

    A worker's series get a label ``worker`` ("1" to "N", the same for the process that
    replaces one that died), since each process counts its own submits, receipts and binds:
    `sum by (carrier)` gives the whole. The other API processes' series (their requests) get
    ``api_process`` ("2" to "M"; this one's have none). ``pigeon_worker_up`` and
    ``pigeon_api_process_up`` say which answered; a process that does not (one being
    restarted) is left out of that scrape, not waited for."""

    async def metrics(request: Request) -> Response:
        texts = await asyncio.gather(*(_read(path) for path in [*workers, *api_processes]))
        gathered = Gathered(
            registry,
            [(str(i), text) for i, text in enumerate(texts[: len(workers)], start=1)],
            [(str(i), text) for i, text in enumerate(texts[len(workers) :], start=2)],
        )
        return Response(await asyncio.to_thread(generate_latest, gathered), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


async def _read(path: str) -> str | None:
    try:
        async with asyncio.timeout(WORKER_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(path)
            try:
                return (await reader.read()).decode()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None


class Gathered:
    """A collector for one scrape: this process's registry, then the other processes' families
    with their label added (one family per name, whichever processes have it)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        workers: Sequence[tuple[str, str | None]],
        api_processes: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        self.registry = registry
        self.workers = workers
        self.api_processes = api_processes

    def collect(self) -> Iterator[Metric]:
        # This process's families first, with the others' samples added to them: a name may
        # appear once only in an exposition (the API processes all count requests).
        families: dict[str, Metric] = {}
        for family in self.registry.collect():
            families[family.name] = mine = Metric(family.name, family.documentation, family.type)
            mine.samples = list(family.samples)
        ups = []
        for label, processes, up_name, what in (
            ("worker", self.workers, "pigeon_worker_up", "worker process"),
            ("api_process", self.api_processes, "pigeon_api_process_up", "other API process"),
        ):
            if not processes:
                continue
            up = GaugeMetricFamily(up_name, f"1 when the {what} answered this scrape.", labels=[label])
            for name, text in processes:
                up.add_metric([name], 0.0 if text is None else 1.0)
                for family in text_string_to_metric_families(text or ""):
                    merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                    for sample in family.samples:
                        merged.add_sample(sample.name, {**sample.labels, label: name}, sample.value, sample.timestamp)
            ups.append(up)
        yield from families.values()
        yield from ups
