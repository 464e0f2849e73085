"""The delivery pipeline assembled for tests: a real store, a frozen clock, the real built-in
network (SimulatedNetwork spooling into the store) and scripted carriers, driven by calling
the use cases directly. Nothing here sleeps: time moves only when a test advances the clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pigeon.app import accounts as account_use
from pigeon.app import numbers as number_use
from pigeon.app.dispatch import DispatchRound, DispatchSettings
from pigeon.app.receipt_batch import rematch_parked
from pigeon.app.receipts import apply_receipt, deliver_simulated_receipts
from pigeon.app.send import SendRequest, prepare_message
from pigeon.carriers.simulator import SimulatedNetwork
from pigeon.domain.pacing import PacingPolicy
from pigeon.ports import Carrier, OutboundMessage, Receipt, SubmitAck
from pigeon.store import alerts as alert_store
from pigeon.store import dispatch as dispatch_store
from pigeon.store import messages as message_store
from pigeon.store import pacing as pacing_store
from pigeon.store import webhooks as outbox
from pigeon.store.engine import Database
from pigeon.store.messages import insert_messages
from pigeon.store.simulator import StoreReceiptSpool
from pigeon.store.tables import messaging_services, phone_numbers, unmatched_receipts
from pigeon.testing import FrozenClock

CALLBACK = "https://hooks.example.com/status?app=tests"
TO = "+14155552671"
#: Long codes of the test account.
SENDER = "+14155550100"
OTHER_SENDER = "+14155550111"
#: Settings for rounds that never wait for a slot: only messages due now are submitted.
NO_LOOKAHEAD = timedelta(0)


class ScriptedCarrier:
    """A Carrier that answers each submit from a script: an exception to raise, or None to
    accept with ids "<name>-<n>-<part index>"."""

    def __init__(
        self, name: str, *answers: Exception | None, default: Exception | None = None, carries_media: bool = True
    ) -> None:
        self.name = name
        self.carries_media = carries_media
        self.answers = list(answers)
        self.default = default
        self.submitted: list[OutboundMessage] = []

    async def start(self, events: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        self.submitted.append(message)
        answer = self.answers.pop(0) if self.answers else self.default
        if answer is not None:
            raise answer
        n = len(self.submitted)
        # Like a real carrier, it honours a continuation: ids for the parts still owed only.
        resume = message.continuation
        first = resume.first_part if resume is not None and resume.parts == len(message.parts) else 1
        return SubmitAck(
            carrier=self.name,
            carrier_ids=tuple(f"{self.name}-{n}-{i}" for i in range(first - 1, len(message.parts))),
            raw={"scripted": True},
            first_part=first,
        )


@dataclass
class Pipeline:
    db: Database
    clock: FrozenClock
    account_sid: str
    auth_token: str
    spool: StoreReceiptSpool
    network: SimulatedNetwork
    carriers: list[Carrier] = field(default_factory=list)

    # -- creating messages ------------------------------------------------------------------

    def send(
        self,
        to: str = TO,
        *,
        from_: str | None = SENDER,
        body: str = "hello",
        callback: str | None = CALLBACK,
        validity: int | None = None,
        service: str | None = None,
        pacing: PacingPolicy | None = None,
        media: Sequence[str] = (),
        send_at: datetime | None = None,
    ) -> str:
        req = SendRequest(
            to=to,
            from_=from_,
            messaging_service_sid=service,
            body=body,
            media_urls=media,
            status_callback=callback,
            validity_period=str(validity) if validity is not None else None,
            schedule_type="fixed" if send_at is not None else None,
            send_at=send_at.strftime("%Y-%m-%dT%H:%M:%SZ") if send_at is not None else None,
        )
        with self.db.write() as conn:
            new = prepare_message(conn, self.account_sid, req, self.clock.now(), pacing=pacing)
            insert_messages(conn, [new])
        return str(new.message["sid"])

    def send_in_order(self, count: int, **kw: Any) -> list[str]:
        """`count` messages created a millisecond apart, so that the queue's order is theirs."""
        sids = []
        for _ in range(count):
            sids.append(self.send(**kw))
            self.clock.advance(0.001)
        return sids

    def add_service(self, *numbers: str, status_callback: str | None = None, mms_converter: bool = True) -> str:
        sid = "MG" + "5" * 32
        now = self.clock.now()
        with self.db.write() as conn:
            conn.execute(
                messaging_services.insert().values(
                    sid=sid,
                    account_sid=self.account_sid,
                    friendly_name="tests",
                    status_callback=status_callback,
                    mms_converter=mms_converter,
                    date_created=now,
                    date_updated=now,
                )
            )
            for number in numbers:
                conn.execute(
                    phone_numbers.update()
                    .where(phone_numbers.c.phone_number == number)
                    .values(messaging_service_sid=sid)
                )
        return sid

    # -- running the pipeline ---------------------------------------------------------------

    def round(
        self, worker_id: str = "dispatcher-1", *, route: Sequence[Carrier] | None = None, **kw: Any
    ) -> DispatchRound:
        kw.setdefault("lookahead", NO_LOOKAHEAD)
        carriers = list(route) if route is not None else (self.carriers or [self.network])
        return DispatchRound(
            self.db, lambda _to: carriers, self.clock, worker_id=worker_id, settings=DispatchSettings(**kw)
        )

    def dispatch(self, worker_id: str = "dispatcher-1", **kw: Any) -> int:
        """One dispatch round; how many messages it submitted (or had refused)."""
        return asyncio.run(self.round(worker_id, **kw).run_once())

    def receipts(self, advance: float = 0.0) -> int:
        """Move the clock on and let the built-in network report what is due."""
        self.clock.advance(advance)
        with self.db.write() as conn:
            return deliver_simulated_receipts(conn, now=self.clock.now())

    def rematch(self) -> int:
        """The dispatcher worker's sweep of parked receipts (it runs every second): on PostgreSQL a
        receipt can be parked by a transaction that ran alongside the one recording its id."""
        with self.db.write() as conn:
            return rematch_parked(conn, now=self.clock.now())

    def receipt(
        self,
        carrier_id: str,
        stat: str,
        *,
        err: str = "000",
        carrier: str = "simulator",
        error_code: int | None = None,
        whole_message: bool = False,
    ) -> str | None:
        """Apply one receipt; `error_code`: what the carrier's receipt_errors gave its err;
        `whole_message`: the carrier reports on whole messages (multipart_receipts = "any_part")."""
        with self.db.write() as conn:
            return apply_receipt(
                conn,
                Receipt(
                    carrier=carrier,
                    carrier_id=carrier_id,
                    stat=stat,
                    err=err,
                    done_date="2601151201",
                    raw=f"id:{carrier_id} stat:{stat} err:{err}",
                    error_code=error_code,
                    whole_message=whole_message,
                ),
                now=self.clock.now(),
            )

    # -- looking at the store ---------------------------------------------------------------

    def message(self, sid: str) -> dict[str, Any]:
        with self.db.read() as conn:
            row = message_store.get_message(conn, sid)
        assert row is not None
        return row

    def status(self, sid: str) -> str:
        return str(self.message(sid)["status"])

    def events(self, sid: str, kind: str | None = None) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = message_store.list_events(conn, sid)
        return [r for r in rows if kind is None or r["kind"] == kind]

    def timeline(self, sid: str) -> list[tuple[str, str | None]]:
        return [(e["kind"], e["status"]) for e in self.events(sid)]

    def callbacks(self, sid: str) -> list[dict[str, str]]:
        with self.db.read() as conn:
            return [dict(d["params"]) for d in outbox.list_deliveries(conn, message_sid=sid)]

    def callback_statuses(self, sid: str) -> list[str]:
        return [c["MessageStatus"] for c in self.callbacks(sid)]

    def callback_urls(self, sid: str) -> list[str]:
        with self.db.read() as conn:
            return [d["url"] for d in outbox.list_deliveries(conn, message_sid=sid)]

    def alerts(self, sid: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return alert_store.list_alerts(conn, resource_sid=sid)

    def parts(self, sid: str) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return dispatch_store.parts_of(conn, sid)

    def unmatched(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(unmatched_receipts)).scalar_one())

    def next_free(self, sender: str = SENDER) -> Any:
        with self.db.read() as conn:
            return pacing_store.next_free(conn, [sender]).get(sender)


def make_pipeline(db: Database, clock: FrozenClock) -> Pipeline:
    with db.write() as conn:
        account = account_use.create_account(conn, friendly_name="dispatch tests", now=clock.now())
        for number in (SENDER, OTHER_SENDER):
            number_use.provision(conn, account_sid=account["sid"], phone_number=number, now=clock.now())
    spool = StoreReceiptSpool(db.engine)
    spool.start()
    return Pipeline(
        db=db,
        clock=clock,
        account_sid=account["sid"],
        auth_token=account["auth_token"],
        spool=spool,
        network=SimulatedNetwork(spool, clock),
    )
