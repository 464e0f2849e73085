"""Composition root: Settings in, a wired application out. The only module where the store,
the carriers, the webhook sender, the workers and the API meet."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette

from pigeon.api.app import create_app
from pigeon.api.concurrency import AccountConcurrency
from pigeon.api.context import ApiContext
from pigeon.api.metrics import (
    BacklogCollector,
    ReplicaCollector,
    gathered_metrics_route,
    metrics_route,
    relayed_metrics_route,
)
from pigeon.api.request_metrics import RequestMetrics
from pigeon.app import accounts as account_use
from pigeon.app import inventory as inventory_use
from pigeon.app import numbers as number_use
from pigeon.app.accept_batch import write_new_messages
from pigeon.app.backlog import read_backlog, read_replica_lag
from pigeon.app.carrier_events import CarrierEventSink
from pigeon.app.dispatch import DispatchRound, DispatchSettings
from pigeon.app.event_delivery import deliver_event
from pigeon.app.inbound_webhook import deliver_inbound
from pigeon.app.retention import rules as retention_rules
from pigeon.carriers.config import SmppCarrierConfig, load_carriers
from pigeon.carriers.leased import LeasedCarrier
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.simulator import Scenario, SimulatedNetwork, scenarios_from_section
from pigeon.carriers.smpp import SmppCarrier
from pigeon.config import Settings, check_file_tables, denied_networks, file_table, prices_of
from pigeon.domain import storable
from pigeon.domain.pacing import PacingPolicy
from pigeon.domain.pacing import pacing_policy as read_pacing
from pigeon.domain.pricing import PriceTable
from pigeon.domain.retry import CARRIER_SUBMITS, STATUS_CALLBACKS
from pigeon.domain.routing import carriers_for
from pigeon.ports import Carrier, Clock, SystemClock
from pigeon.serving import serve_metrics
from pigeon.store import accounts as account_store
from pigeon.store import carriers as carrier_store
from pigeon.store.accept import AcceptWriter
from pigeon.store.combined import combining
from pigeon.store.engine import Database, WalCheckpointer
from pigeon.store.schema import upgrade
from pigeon.store.simulator import StoreReceiptSpool
from pigeon.webhooks.sender import HttpWebhookSender
from pigeon.workers.bind_leases import BindLeaseKeeper
from pigeon.workers.dispatcher import DispatcherWorker
from pigeon.workers.loop import log_failure
from pigeon.workers.reassembly import ReassemblyWorker
from pigeon.workers.retention import RetentionPurger
from pigeon.workers.simulator import SimulatedReceiptsWorker
from pigeon.workers.usage_triggers import UsageTriggerWorker
from pigeon.workers.webhooks import WebhookWorker

log = logging.getLogger(__name__)


@dataclass
class FirstRun:
    """What the first start of an empty store created, to show the operator once."""

    account: dict[str, Any]
    numbers: list[dict[str, Any]]


def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    db = Database.from_url(settings.database_url, replica_url=settings.database_replica_url or None)
    if migrate:
        upgrade(db.engine)
    return db


def ensure_first_account(db: Database, clock: Clock) -> FirstRun | None:
    """On an empty store: one account with two SMS-capable numbers, so `make run` can send at once."""
    with db.write() as conn:
        account_store.lock_first_run(conn)  # several processes may start on the empty store at once
        if account_store.count_accounts(conn) > 0:
            return None
        now = clock.now()
        account = account_use.create_account(conn, friendly_name="Pigeon account", now=now)
        made: list[dict[str, Any]] = []
        while len(made) < 2:
            # From +1 415 555-9000..9899: the examples in the README and the banner send to
            # other 555 numbers, which must never be one of these senders (21266, To = From).
            candidate = f"+1415555{secrets.randbelow(900) + 9000:04d}"
            if any(n["phone_number"] == candidate for n in made):
                continue
            made.append(number_use.provision(conn, account_sid=account["sid"], phone_number=candidate, now=now))
        # A sample inventory, so AvailablePhoneNumbers search and buying work out of the box.
        inventory_use.seed_default(conn, now)
        return FirstRun(account=account, numbers=made)


def build_api(
    settings: Settings,
    db: Database,
    *,
    clock: Clock | None = None,
    workers: Workers | None = None,
    registry: CollectorRegistry | None = None,
    metrics_from: str | None = None,
    worker_metrics: Sequence[str] = (),
    api_metrics: Sequence[str] = (),
    metrics_socket: str | None = None,
) -> Starlette:
    """The API; with `workers`, they run inside the API process for its lifetime.
    `metrics_from`: the Unix socket of the process whose metrics GET /metrics relays;
    `worker_metrics`, `api_metrics`: those of the worker processes and the other API processes
    whose metrics it adds to this one's; `metrics_socket`: where this process (one of those
    other API processes) serves its own, for the first to gather."""
    clock = clock or SystemClock()
    writer = AcceptWriter(
        db.engine,
        max_batch=settings.accept_batch_max,
        max_wait=settings.accept_batch_wait_ms / 1000.0,
        write_batch=write_new_messages,
    )
    prices = price_table_for(settings)
    context = ApiContext(
        db=db,
        writer=writer,
        clock=clock,
        base_url=settings.base_url,
        pacing=pacing_policy(settings),
        message_days=settings.message_days,
        concurrency=AccountConcurrency(settings.api_concurrency_per_account),
        webhook_denied_networks=tuple(denied_networks(settings.webhook_denied_networks)),
        prices=prices,
        media_basic_auth=settings.media_basic_auth,
    )

    checkpointer = WalCheckpointer(db.engine)

    registry = registry or CollectorRegistry()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with combining(db.engine):
            writer.start()
            checkpointer.start()
            stop = asyncio.Event()
            task = asyncio.create_task(workers.run(stop)) if workers is not None else None
            figures = await serve_metrics(metrics_socket, registry) if metrics_socket else None
            try:
                yield
            finally:
                if figures is not None:
                    figures.close()
                stop.set()
                if task is not None:
                    await task
                writer.stop()
                checkpointer.stop()

    requests = RequestMetrics(registry)
    if metrics_from:
        metrics = relayed_metrics_route(metrics_from)  # the first process reads the backlog
    else:
        registry.register(BacklogCollector(lambda: read_backlog(db, clock)))
        if db.replica is not None:
            registry.register(ReplicaCollector(lambda: read_replica_lag(db)))
        if worker_metrics or api_metrics:
            metrics = gathered_metrics_route(registry, worker_metrics, api_metrics)
        else:
            metrics = metrics_route(registry)
    return create_app(
        context,
        lifespan=lifespan,
        extra_routes=[metrics],
        request_log_days=settings.request_log_days,
        proxy_hops=settings.proxy_hops,
        metrics=requests,
    )


# -- the delivery pipeline -------------------------------------------------------------------


@dataclass
class Workers:
    """Everything that runs in the background, built from Settings."""

    db: Database
    clock: Clock
    spool: StoreReceiptSpool
    carriers: dict[str, Carrier]
    sink: CarrierEventSink
    dispatcher: DispatcherWorker
    simulated_receipts: SimulatedReceiptsWorker
    webhooks: WebhookWorker
    reassembly: ReassemblyWorker
    sender: HttpWebhookSender
    holder: str
    #: Takes and renews the SMPP carriers' bind leases and binds while it holds them (none
    #: with the built-in network alone).
    leases: BindLeaseKeeper | None = None
    #: Removes what is past its retention (None: everything kept for ever).
    retention: RetentionPurger | None = None
    #: Evaluates the usage triggers and queues the callbacks of those reached.
    usage_triggers: UsageTriggerWorker | None = None
    status_interval: float = 5.0

    def _save_status(self) -> None:
        with self.db.write() as conn:
            for name, carrier in self.carriers.items():
                status = getattr(carrier, "status", None)
                snapshot = status() if callable(status) else {"bound": None}
                if hasattr(snapshot, "as_dict"):
                    snapshot = snapshot.as_dict()
                carrier_store.save_status(
                    conn, carrier=name, holder=self.holder, status=_jsonable(snapshot), now=self.clock.now()
                )

    async def _report_status(self, stop: asyncio.Event) -> None:
        """Publish each carrier's bind state to the store, for `pigeon carriers` and the console."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._save_status)
            except Exception as exc:
                log_failure("recording the carriers' status", exc, self.status_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.status_interval)

    async def run(self, stop: asyncio.Event) -> None:
        with combining(self.db.engine):
            await self._run(stop)

    async def _run(self, stop: asyncio.Event) -> None:
        self.spool.start()
        for carrier in self.carriers.values():
            await carrier.start(self.sink)
        if self.leases is not None:
            await self.leases.start()
        # The leases are kept (renewed) past `stop`, while the dispatcher finishes its submits
        # and until `close` has unbound the carriers: a lease run out while this process still
        # had a bind would let another process bind beside it.
        leases = asyncio.create_task(self.leases.run(stop)) if self.leases is not None else None
        try:
            await asyncio.gather(
                self.dispatcher.run(stop),
                self.simulated_receipts.run(stop),
                self.webhooks.run(stop),
                self.reassembly.run(stop),
                self._report_status(stop),
                *([self.retention.run(stop)] if self.retention is not None else []),
                *([self.usage_triggers.run(stop)] if self.usage_triggers is not None else []),
            )
        finally:
            if self.leases is not None and leases is not None:
                await self.leases.close()  # unbind (still renewing), then free the slots for other processes
                await leases
            for carrier in self.carriers.values():
                await carrier.stop()
            await self.sender.aclose()
            self.spool.stop()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._forget_status)

    def _forget_status(self) -> None:
        with self.db.write() as conn:
            carrier_store.forget(conn, holder=self.holder)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def build_carriers(
    settings: Settings, simulator: SimulatedNetwork, metrics: CarrierMetrics, clock: Clock
) -> tuple[dict[str, Carrier], Callable[[str], list[Carrier]]]:
    """The configured SMPP carriers and the route function; the built-in network when none.

    Each SMPP carrier binds only while its process holds one of the carrier's bind leases
    (`LeasedCarrier`; `build_workers` gives them to a `BindLeaseKeeper`)."""
    config = load_carriers(settings.file_tables)
    if not config.carriers:
        only: list[Carrier] = [simulator]
        return {simulator.name: simulator}, lambda _to: only

    def leased(c: SmppCarrierConfig) -> LeasedCarrier:
        # 0 until this process binds it: a process standing by for a lease reports the carrier
        # unbound, so `max by (carrier) (pigeon_carrier_bound) == 0` fires while no process
        # holds it (a holder killed, before the takeover) instead of finding no series at all.
        metrics.bound.labels(c.name).set(0)
        return LeasedCarrier(
            c.name,
            slots=c.binds,
            lease_seconds=c.bind_lease,
            make=lambda: SmppCarrier(c, metrics=metrics, clock=clock),
        )

    carriers: dict[str, Carrier] = {c.name: leased(c) for c in config.carriers}

    def route(to: str) -> list[Carrier]:
        return [carriers[name] for name in carriers_for(to, config.routes, config.names)]

    return carriers, route


def _simulator_scenarios(settings: Settings) -> dict[str, tuple[Scenario, ...]]:
    return file_table(settings.file_tables, "simulator", scenarios_from_section)


def pacing_policy(settings: Settings) -> PacingPolicy:
    return file_table(settings.file_tables, "pacing", read_pacing)


def price_table_for(settings: Settings) -> PriceTable:
    """The [prices] table of the configuration file, or the defaults."""
    return file_table(settings.file_tables, "prices", prices_of)


def check_configuration(settings: Settings) -> None:
    """ConfigError for a configuration file whose tables cannot be used (`load_settings` has
    refused it already, unless the Settings were made some other way), and a warning for one
    that can but may not mean what it says; `pigeon serve` calls it before it starts worker
    processes."""
    check_file_tables(settings.file_tables)
    prices = price_table_for(settings)
    if gaps := prices.unpriced_kinds():
        # Allowed (an operator may mean it), but easy to do by mistake: [prices.US] alone
        # replaces the built-in list, and everything else would then go out unpriced.
        log.warning(
            'PIGEON_CONFIG: [prices."*"] gives no price for %s: messages from such senders to '
            "countries [prices] does not name will show no price and count in usage at a price of 0",
            ", ".join(gaps),
        )


def process_name(host: str, pid: int) -> str:
    """This worker process's name in the store (who claimed a message, who holds a bind):
    ``host:pid``, within the 64 characters its columns hold. A longer host name (a host name
    may have 64 characters, a Kubernetes pod's 63) keeps its start and a digest of the whole,
    so names stay distinct; past 64 characters every claim failed on PostgreSQL."""
    name = f"{host}:{pid}"
    if len(name) <= storable.PROCESS_NAME_LENGTH:
        return name
    digest = f"{zlib.crc32(host.encode()):08x}"
    keep = storable.PROCESS_NAME_LENGTH - len(digest) - len(str(pid)) - 2
    return f"{host[:keep]}~{digest}:{pid}"


def build_workers(
    settings: Settings,
    db: Database,
    *,
    clock: Clock | None = None,
    worker_id: str | None = None,
    registry: CollectorRegistry | None = None,
) -> Workers:
    clock = clock or SystemClock()
    spool = StoreReceiptSpool(db.engine)
    simulator = SimulatedNetwork(spool, clock, scenarios=_simulator_scenarios(settings))
    carriers, route = build_carriers(settings, simulator, CarrierMetrics(registry), clock)

    dispatch_settings = DispatchSettings(
        pacing=pacing_policy(settings), prices=price_table_for(settings), retry=CARRIER_SUBMITS
    )
    wid = worker_id or process_name(socket.gethostname(), os.getpid())
    leased = [c for c in carriers.values() if isinstance(c, LeasedCarrier)]
    leases = BindLeaseKeeper(db, clock, leased, holder=wid) if leased else None
    round_ = DispatchRound(
        db, route, clock, worker_id=wid, settings=dispatch_settings, reach=leases.reach if leases else None
    )
    # One connection per request slot: every webhook goes through the worker's slots.
    sender = HttpWebhookSender(
        max_connections=settings.webhook_concurrency,
        denied_networks=denied_networks(settings.webhook_denied_networks),
    )
    pacing = pacing_policy(settings)

    async def inbound(row: dict[str, Any], answered: Callable[[], None]) -> None:
        await deliver_inbound(db, sender, clock, row, pacing=pacing, answered=answered)

    async def event(row: dict[str, Any], answered: Callable[[], None]) -> None:
        await deliver_event(db, sender, clock, row, answered=answered)

    sink = CarrierEventSink(db, clock, base_url=settings.base_url, prices=price_table_for(settings))
    given_back = Counter(
        "pigeon_webhook_given_back",
        "Webhook deliveries given back to the outbox unattempted: their receiver was slow and "
        "had its share of this process's request slots.",
        registry=registry if registry is not None else CollectorRegistry(),
    )
    removed = Counter(
        "pigeon_retention_removed",
        "Rows removed past their retention, by what they were: messages (each with its timeline,"
        " media, carrier ids and webhook deliveries), finished webhook deliveries, error log entries.",
        ["what"],
        registry=registry if registry is not None else CollectorRegistry(),
    )
    kept = retention_rules(
        message_days=settings.message_days,
        webhook_history_days=settings.webhook_history_days,
        error_log_days=settings.error_log_days,
    )
    return Workers(
        db=db,
        clock=clock,
        spool=spool,
        carriers=carriers,
        sink=sink,
        dispatcher=DispatcherWorker(round_),
        simulated_receipts=SimulatedReceiptsWorker(db, clock),
        webhooks=WebhookWorker(
            db,
            sender,
            clock,
            policy=STATUS_CALLBACKS,
            handlers={"inbound": inbound, "event": event},
            concurrency=settings.webhook_concurrency,
            prefetch=settings.webhook_prefetch,
            receiver_share=settings.webhook_receiver_share or None,
            given_back=given_back.inc,
        ),
        reassembly=ReassemblyWorker(sink),
        sender=sender,
        holder=wid,
        leases=leases,
        retention=RetentionPurger(db, clock, kept, removed=lambda what, n: removed.labels(what).inc(n))
        if kept
        else None,
        usage_triggers=UsageTriggerWorker(db, clock, every=settings.usage_trigger_seconds),
    )
