"""`SmppCarrier`: the `Carrier` port over SMPP 3.4 (DESIGN.md §6, issue 6).

    SmppCarrier ─┬─ BindKeeper "transceiver"         (or "transmitter" + "receiver")
                 │    └─ SmppSession  connect, bind, enquire_link, match answers by sequence
                 ├─ SendGate          window, throughput, throttle pause, order of parts
                 ├─ smpp_submit       parts → encoded payload + UDH, TON/NPI
                 ├─ smpp_reports      deliver_sm, data_sm → CarrierEvents (smpp_inbound: Receipt,
                 │                    InboundSms, InboundPart); a late submit_sm_resp →
                 │                    LateAcceptance or LateRefusal
                 └─ smpp_errors       command_status → retry / throttle / permanent + Twilio code

``submit`` sends a message's parts one after the other (each waits for its submit_sm_resp)
while other messages use the rest of the window, and answers with one canonical carrier id
per part. What it raises, and why the dispatcher can act on it safely:

* `CarrierUnavailable`: no bind, or the bind went away before the part was written —
  nothing reached the SMSC;
* `CarrierOutcomeUnknown` with ``carrier_code`` "smpp:response_timeout" (no submit_sm_resp
  within ``response_timeout``) or "smpp:connection_lost" (the session closed first): the
  submit_sm *was written* and no answer came. The SMSC may have the message, and SMPP 3.4
  has no way to ask (query_sm needs the message_id we never got). Sending it again may
  duplicate it, so the error is not a plain refusal: the dispatcher keeps the message on
  this carrier, unless ``failover_on_unknown_outcome`` (our configuration) lets it move on
  at once — ``may_fail_over`` carries that setting — and the timeline records the resend as
  a possible duplicate either way;
* `CarrierRetryableError` for transient refusals and for throttling past the budget
  (ESME_RTHROTTLED / ESME_RMSGQFUL are first retried here, same part, after a pause);
* `CarrierPermanentError` for refusals that cannot succeed, with the Twilio code of
  `smpp_errors`.

Every error raised while a message's parts were being sent carries ``progress``
(`SubmitProgress`): how many parts, their concatenation reference, the ids of the parts
accepted before it (also named in the error's message) and the part that failed. The
dispatcher stores those ids, so the accepted parts' receipts find the message, and later
asks for the rest only (`Continuation`): the remaining parts go with the same reference and
part count, so the handset joins them with the parts it has and no accepted part is sent
twice.

A submit_sm_resp that comes after ``response_timeout`` is not lost: the session remembers
which message and part each forgotten sequence was for (`smpp_late`), and an acceptance is
reported to `CarrierEvents.on_late_acceptance`, which keeps the id of the copy the carrier
took, so its receipts find the message and the doctor counts it. A late refusal is reported
to `CarrierEvents.on_late_refusal`: that copy is not at the carrier, and the doctor stops
counting it as a possible duplicate.

Receipts and inbound messages come as deliver_sm or data_sm (the text then in the
message_payload TLV) and are read alike; each is acknowledged (deliver_sm_resp, data_sm_resp)
only after `CarrierEvents` returned; when it raises, the SMSC gets ESME_RX_T_APPN and resends
later.
Each part of a concatenated inbound message goes to the store (`on_inbound_part`) before its
deliver_sm_resp: no part is held in this process's memory, so a restart between parts loses
none, and the parts of one message may come on any bind of the carrier, in any process.

Scope: one bind (or transmitter/receiver pair) per carrier per process. Sharing a carrier's
bind allowance between hosts is not this class's business: `pigeon.carriers.leased` starts an
SmppCarrier only while its process holds one of the carrier's bind leases in the store
(DESIGN.md §8, `pigeon.workers.bind_leases`), and a new one for each lease, since a stopped
SmppCarrier stays stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pigeon.carriers import smpp_pdu as pdu
from pigeon.carriers.config import SmppCarrierConfig
from pigeon.carriers.metrics import CarrierMetrics
from pigeon.carriers.smpp_bind import BindKeeper, BindStatus, CarrierStatus, address_text
from pigeon.carriers.smpp_errors import Action, carrier_code, classify, to_error
from pigeon.carriers.smpp_gate import SendGate
from pigeon.carriers.smpp_ids import IdSource, canonical_id
from pigeon.carriers.smpp_late import ForgottenSubmit
from pigeon.carriers.smpp_reports import SmscReports
from pigeon.carriers.smpp_session import Response, SessionClosed, SmppSession
from pigeon.carriers.smpp_submit import PreparedMessage, prepare
from pigeon.domain.errors import CarrierError, CarrierOutcomeUnknown, CarrierUnavailable
from pigeon.domain.segments import SubmitProgress
from pigeon.ports import CarrierEvents, Clock, OutboundMessage, SubmitAck, SystemClock

__all__ = ["BindStatus", "CarrierStatus", "SmppCarrier"]

log = logging.getLogger(__name__)

_MAX_THROTTLE_PAUSE = 30.0


class SmppCarrier:
    """An SMPP 3.4 carrier. Build one per ``[[carriers]]`` entry; see the module docstring."""

    def __init__(
        self,
        config: SmppCarrierConfig,
        *,
        metrics: CarrierMetrics | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.carries_media = False  # SMPP 3.4 carries text only
        self.metrics = metrics or CarrierMetrics()
        self.clock: Clock = clock or SystemClock()
        self.stopping = False
        self.last_error: str | None = None
        self._events: CarrierEvents | None = None
        roles = ("transceiver",) if config.bind == "transceiver" else ("transmitter", "receiver")
        self._binds = [BindKeeper(self, role) for role in roles]
        self._gate = SendGate(window=config.window, throughput=config.throughput)
        self.reports = SmscReports(self)
        self._stop_event = asyncio.Event()
        self._bound_event = asyncio.Event()
        self._submits_in_progress = 0
        self._submitted = 0
        self._at_once = asyncio.Event()  # stop without waiting for the submits in flight
        self._stopped = asyncio.Event()

    def __repr__(self) -> str:
        return f"SmppCarrier({self.name!r}, {self.config.host}:{self.config.port}, bind={self.config.bind})"

    # --- Carrier protocol ---------------------------------------------------------------

    async def start(self, events: CarrierEvents) -> None:
        """Start binding; returns once every bind has been tried once (bound or not).

        Binding goes on in the background with backoff, so a carrier that is down at start
        does not hold up the process: its submits raise `CarrierUnavailable` until it binds.
        """
        if self._events is not None:
            raise RuntimeError(f"{self!r} is already started")
        self._events = events
        self.reports.events = events
        for bind in self._binds:
            bind.task = asyncio.create_task(bind.run(), name=f"smpp {self.name} {bind.role}")
        await asyncio.gather(*(b.first_attempt.wait() for b in self._binds))

    async def wait_bound(self, timeout: float) -> bool:
        """Wait until a bind can submit; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        # The event can lag behind a session that just died: trust only a live session.
        while self._submitter() is None:
            self._bound_event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._bound_event.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def is_bound(self) -> bool:
        """Whether a submit could go out now: running, with a live bind that can submit."""
        return not self.stopping and self._events is not None and self._submitter() is not None

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        if self.stopping or self._events is None:
            raise CarrierUnavailable(f"{self.name} is not running", carrier_code="smpp:not_bound")
        if self._submitter() is None:
            raise CarrierUnavailable(f"{self.name} is not bound", carrier_code="smpp:not_bound")
        prepared, first = self._prepare(message)
        ids: list[str] = []
        raw_ids: list[str] = []
        self._submits_in_progress += 1
        try:
            total = len(prepared.parts)
            for number, part in enumerate(prepared.parts[first - 1 :], start=first):
                about = ForgottenSubmit(message.message_sid, message.account_sid, part=number, parts=total)
                try:
                    raw_id = await self._submit_part(part, about)
                except CarrierError as exc:
                    if ids:
                        last = first + len(ids) - 1
                        which = f"part {first} was" if last == first else f"parts {first}-{last} were"
                        exc.message += f"; {which} accepted as {', '.join(ids)}"
                        exc.args = (exc.message,)
                    exc.progress = SubmitProgress(
                        parts=total,
                        reference=prepared.reference,
                        first_part=first,
                        accepted_ids=tuple(ids),
                        stopped_at=number,
                    )
                    raise
                raw_ids.append(raw_id)
                ids.append(canonical_id(raw_id, IdSource.SUBMIT, self.config.receipt_id_format))
        finally:
            self._submits_in_progress -= 1
        self._submitted += 1
        raw = {
            "message_ids": raw_ids,
            "encoding": prepared.encoding,
            "data_coding": prepared.data_coding,
            "parts": len(prepared.parts),
            "reference": prepared.reference,
        }
        if first > 1:
            raw["first_part"] = first
        return SubmitAck(carrier=self.name, carrier_ids=tuple(ids), raw=raw, first_part=first)

    def _prepare(self, message: OutboundMessage) -> tuple[PreparedMessage, int]:
        """The parts to send and the number of the first one: 1, or where a continuation resumes.

        Every submission of a message carries the reference derived from its SID
        (`smpp_submit.prepare`), whichever process makes it, so a copy sent again after a
        crash joins the parts the handset has. A continuation reuses the earlier submit's
        reference as recorded (a hold recorded before references were derived has a
        counter's); if this carrier now splits the message differently (its configuration
        changed), the whole message goes with the reference of the new split.
        """
        resume = message.continuation
        if resume is not None and 1 <= resume.first_part <= resume.parts:
            prepared = prepare(message, self.config, resume.reference)
            if len(prepared.parts) == resume.parts and prepared.reference == resume.reference:
                return prepared, resume.first_part
        return prepare(message, self.config), 1

    async def stop(self, *, at_once: bool = False) -> None:
        """Refuse new submits, let those in flight finish (one response timeout at most), unbind.

        ``at_once`` (a bind lease about to run out, `pigeon.workers.bind_leases`) waits for no
        submit in flight: the sessions close now (`smpp_bind.unbind_wait`), and a submit
        still unanswered then raises `CarrierOutcomeUnknown` ("smpp:connection_lost"), which
        the dispatcher records as possibly accepted. It cuts short a stop under way. Either
        way, this returns once every session is closed.
        """
        if at_once:
            self._at_once.set()
        if self.stopping:
            await self._stopped.wait()
            return
        self.stopping = True
        try:
            deadline = time.monotonic() + self.config.response_timeout
            while (self._submits_in_progress or self.reports.tasks) and time.monotonic() < deadline:
                if self._at_once.is_set():
                    break
                await asyncio.sleep(0.01)
            self._stop_event.set()
            reason = "carrier stopped at once" if self._at_once.is_set() else "carrier stopped"
            await asyncio.gather(*(b.session.close(reason) for b in self._binds if b.session is not None))
            tasks = [b.task for b in self._binds if b.task]
            tasks += list(self.reports.tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.metrics.bound.labels(self.name).set(0)
        finally:
            self._stopped.set()

    # --- status -------------------------------------------------------------------------

    def status(self) -> CarrierStatus:
        return CarrierStatus(
            name=self.name,
            kind="smpp",
            address=", ".join(address_text(host, port) for host, port in self.config.addresses),
            system_id=self.config.system_id,
            tls=self.config.tls is not None,
            binds=tuple(b.status() for b in self._binds),
            window_size=self.config.window,
            window_in_use=self._gate.in_flight,
            waiting=self._gate.waiting,
            throughput_limit=self.config.throughput,
            throughput_recent=self._gate.recent_rate(),
            throttled_for=self._gate.paused_for(),
            submitted=self._submitted,
            receipts=self.reports.counts["receipts"],
            inbound=self.reports.counts["inbound"],
            last_error=self.last_error,
        )

    # --- submitting ---------------------------------------------------------------------

    def _submitter(self) -> SmppSession | None:
        for bind in self._binds:
            if bind.role != "receiver" and bind.session is not None and bind.session.bound:
                return bind.session
        return None

    async def _submit_part(self, part: pdu.SubmitPart, about: ForgottenSubmit) -> str:
        """The raw message_id of one part, retrying it (first in line) while the SMSC throttles."""
        ticket = self._gate.ticket()
        throttled = 0
        while True:
            response = await self._send_once(part, ticket, about)
            if response.status == 0:
                self.metrics.submits.labels(self.name, "accepted").inc()
                return pdu.parse_message_id(response.body)
            rule = classify(response.status, self.config.status_map)
            if rule.action is Action.THROTTLE:
                throttled += 1
                self.metrics.submits.labels(self.name, "throttled").inc()
                self.metrics.throttles.labels(self.name).inc()
                self._gate.pause(min(self.config.throttle_pause * 2 ** (throttled - 1), _MAX_THROTTLE_PAUSE))
                if throttled <= self.config.throttle_retries:
                    continue
            self.metrics.submits.labels(self.name, "refused").inc()
            kind = "permanent" if rule.action is Action.PERMANENT else "retryable"
            self.metrics.errors.labels(self.name, kind).inc()
            self.last_error = f"submit_sm refused: {carrier_code(response.status)}"
            if response.status == 0x04:  # ESME_RINVBNDSTS: the SMSC thinks we are not bound; rebind
                session = self._submitter()
                if session is not None:
                    await session.close("SMSC answered ESME_RINVBNDSTS")
            raise to_error(response.status, rule, carrier=self.name, part=about.part, parts=about.parts)

    async def _send_once(self, part: pdu.SubmitPart, ticket: int, about: ForgottenSubmit) -> Response:
        """Wait for a turn, write one submit_sm, await its answer (translated to domain errors).

        A submit given up at the response timeout is remembered by its session as ``about``,
        so that a late answer still names the message and part (`smpp_reports.on_late`)."""
        await self._gate.enter(ticket)
        try:
            session = self._submitter()
            if session is None:
                raise CarrierUnavailable(f"{self.name} lost its bind before sending", carrier_code="smpp:not_bound")
            try:
                sequence, answer = session.request(lambda seq: pdu.submit_sm_pdu(seq, part))
            except SessionClosed as exc:
                raise CarrierUnavailable(f"{self.name}: {exc.reason}", carrier_code="smpp:not_bound") from exc
            self.metrics.window_in_use.labels(self.name).set(self._gate.in_flight)
            started = time.monotonic()
            try:
                response = await asyncio.wait_for(asyncio.shield(answer), self.config.response_timeout)
            except TimeoutError as exc:
                session.forget(sequence, about)
                self.metrics.submits.labels(self.name, "timeout").inc()
                self.metrics.errors.labels(self.name, "response_timeout").inc()
                self.last_error = f"no submit_sm_resp within {self.config.response_timeout:g}s"
                raise CarrierOutcomeUnknown(
                    f"{self.name}: {self.last_error}; the SMSC may have accepted the message",
                    carrier_code="smpp:response_timeout",
                    may_fail_over=self.config.failover_on_unknown_outcome,
                ) from exc
            except SessionClosed as exc:
                self.metrics.submits.labels(self.name, "lost").inc()
                raise CarrierOutcomeUnknown(
                    f"{self.name}: {exc.reason} before the submit_sm_resp; the SMSC may have accepted the message",
                    carrier_code="smpp:connection_lost",
                    may_fail_over=self.config.failover_on_unknown_outcome,
                ) from exc
            self.metrics.submit_latency.labels(self.name).observe(time.monotonic() - started)
            return response
        finally:
            self._gate.leave()
            self.metrics.window_in_use.labels(self.name).set(self._gate.in_flight)

    # --- BindHost, for the BindKeepers --------------------------------------------------

    def on_deliver(self, session: SmppSession, header: pdu.Header, body: bytes) -> None:
        self.reports.on_deliver(session, header, body)

    def on_late(self, session: SmppSession, submit: ForgottenSubmit, header: pdu.Header, body: bytes) -> None:
        self.reports.on_late(session, submit, header, body)

    def bind_changed(self) -> None:
        can_submit = self._submitter() is not None
        self.metrics.bound.labels(self.name).set(1 if can_submit else 0)
        if can_submit:
            self._bound_event.set()
        else:
            self._bound_event.clear()

    async def sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)
