"""The dispatcher when carriers' binds are leases held by other processes, on both stores.

The rule is in `pigeon.app.dispatch`'s docstring: a message whose carrier another process has
bound is left for that process (no attempt, no timeline entry, its sender slot kept); an
attempt whose carriers here refused goes on at the carrier bound elsewhere; only a carrier no
process has bound is refused here and failed over as before; a process with nothing bound
does not claim while another has a carrier bound.

Processes are dispatchers with their own worker ids and `Reach`; which carriers other
processes have bound is in the store (`pigeon.store.binds`), as their lease keepers leave it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

from pigeon.app import diagnose
from pigeon.app.dispatch import DispatchRound, DispatchSettings
from pigeon.domain.errors import CarrierRetryableError, CarrierUnavailable
from pigeon.ports import Carrier, Reach
from pigeon.store import binds
from tests.integration.pipeline import SENDER, Pipeline, ScriptedCarrier

NOW = timedelta(0)
LEASE = timedelta(seconds=300)  # outlasts every clock advance here


def bound_by(pipe: Pipeline, holder: str, *carriers: str) -> None:
    """`holder`'s lease keeper took a slot of each carrier and its binds are up."""
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        for carrier in carriers:
            slot = binds.acquire(conn, carrier=carrier, slots=1, holder=holder, now=now, until=now + LEASE)
            assert slot is not None
            binds.renew(
                conn, carrier=carrier, slot=slot, slots=1, holder=holder, now=now, until=now + LEASE, state="bound"
            )


def process(
    pipe: Pipeline, worker_id: str, route: Sequence[Carrier], *, leased: set[str], bound_here: set[str]
) -> DispatchRound:
    reach = Reach(leased=frozenset(leased), bound_here=frozenset(bound_here))
    carriers = list(route)
    return DispatchRound(
        pipe.db,
        lambda _to: carriers,
        pipe.clock,
        worker_id=worker_id,
        settings=DispatchSettings(lookahead=NOW),
        reach=lambda: reach,
    )


def run(round_: DispatchRound) -> int:
    return asyncio.run(round_.run_once())


def test_a_message_for_a_carrier_bound_elsewhere_is_left_for_that_process_untouched(pipe: Pipeline) -> None:
    acme_here, acme_there, backup = ScriptedCarrier("acme"), ScriptedCarrier("acme"), ScriptedCarrier("backup")
    bound_by(pipe, "host-1:1", "acme")
    bound_by(pipe, "host-2:2", "backup")
    # host-2 holds backup only: it claims (it has something bound) and meets a message for acme.
    host2 = process(pipe, "host-2:2", [acme_here], leased={"acme", "backup"}, bound_here={"backup"})
    sid = pipe.send()
    before = pipe.timeline(sid)

    assert run(host2) == 0
    assert acme_here.submitted == [] and backup.submitted == []
    row = pipe.message(sid)
    assert (row["status"], row["attempts"], row["offered_to"], row["claimed_by"]) == ("queued", 0, "host-1:1", None)
    assert pipe.timeline(sid) == before  # not a state change: nothing on the timeline
    assert pipe.callbacks(sid) == []
    slot = row["paced_at"]
    assert slot is not None and row["next_attempt_at"] == slot  # its sender slot stays reserved
    free_after_offer = pipe.next_free()
    # The doctor says whom it waits for.
    with pipe.db.read() as conn:
        [finding] = diagnose.diagnose_message(conn, pipe.account_sid, sid, now=pipe.clock.now()).findings
    assert finding.cause == "waiting_for_bind_holder" and "host-1:1" in finding.summary

    # Nobody else takes it while the offer lasts; the holder does, at the slot it has.
    assert run(process(pipe, "host-3:3", [acme_here], leased={"acme"}, bound_here=set())) == 0
    assert pipe.dispatch("host-3:3", route=[ScriptedCarrier("acme")]) == 0
    host1 = process(pipe, "host-1:1", [acme_there], leased={"acme", "backup"}, bound_here={"acme"})
    assert run(host1) == 1
    assert [m.message_sid for m in acme_there.submitted] == [sid] and acme_here.submitted == []
    assert pipe.next_free() == free_after_offer  # no second pacing slot for the same send
    sent = pipe.message(sid)
    assert (sent["status"], sent["attempts"], sent["carrier"], sent["offered_to"]) == ("sent", 1, "acme", None)
    assert pipe.timeline(sid) == [*before, ("status", "sending"), ("status", "sent")]
    assert pipe.events(sid, "failover") == [] and pipe.events(sid, "retry") == []


def test_an_offer_that_runs_out_lets_any_dispatcher_claim(pipe: Pipeline) -> None:
    bound_by(pipe, "host-1:1", "acme")
    bound_by(pipe, "host-2:2", "backup")
    host2 = process(pipe, "host-2:2", [ScriptedCarrier("acme")], leased={"acme", "backup"}, bound_here={"backup"})
    sid = pipe.send()
    assert run(host2) == 0
    pipe.clock.advance(DispatchSettings().offer.total_seconds() + 0.1)
    other = ScriptedCarrier("simulated")
    assert pipe.dispatch("host-3:3", route=[other]) == 1  # no leases there: it sends as before
    assert pipe.status(sid) == "sent" and len(other.submitted) == 1


def test_a_dispatcher_with_nothing_bound_does_not_claim_while_another_has_a_carrier_bound(pipe: Pipeline) -> None:
    bound_by(pipe, "host-1:1", "acme")
    acme = ScriptedCarrier("acme")
    standby = process(pipe, "host-2:2", [acme], leased={"acme"}, bound_here=set())
    sid = pipe.send()
    assert run(standby) == 0
    row = pipe.message(sid)
    assert (row["claimed_by"], row["offered_to"], row["paced_at"], row["attempts"]) == (None, None, None, 0)
    assert acme.submitted == []


def test_a_dispatcher_waits_while_its_own_process_is_binding_and_claims_once_the_bind_failed(
    pipe: Pipeline,
) -> None:
    now = pipe.clock.now()
    with pipe.db.write() as conn:  # this process just took acme's slot: its first bind is under way
        assert binds.acquire(conn, carrier="acme", slots=1, holder="host-2:2", now=now, until=now + LEASE) == 1
    down = ScriptedCarrier("acme", default=CarrierUnavailable("acme is not bound", carrier_code="smpp:not_bound"))
    host2 = process(pipe, "host-2:2", [down], leased={"acme"}, bound_here=set())
    sid = pipe.send()
    assert run(host2) == 0 and down.submitted == []
    with pipe.db.write() as conn:  # the bind attempt failed: now no process has acme bound
        binds.renew(
            conn, carrier="acme", slot=1, slots=1, holder="host-2:2", now=now, until=now + LEASE, state="unbound"
        )
    assert run(host2) == 1
    assert len(down.submitted) == 1 and pipe.events(sid, "retry")


def test_a_carrier_bound_nowhere_is_refused_here_and_fails_over_as_before(pipe: Pipeline) -> None:
    # acme's only slot is held by a process whose bind is down: no process has acme bound.
    now = pipe.clock.now()
    with pipe.db.write() as conn:
        binds.acquire(conn, carrier="acme", slots=1, holder="host-1:1", now=now, until=now + LEASE)
        binds.renew(
            conn, carrier="acme", slot=1, slots=1, holder="host-1:1", now=now, until=now + LEASE, state="unbound"
        )
    down = ScriptedCarrier("acme", default=CarrierUnavailable("acme is not bound", carrier_code="lease:not_held"))
    backup = ScriptedCarrier("backup")
    host2 = process(pipe, "host-2:2", [down, backup], leased={"acme", "backup"}, bound_here={"backup"})
    sid = pipe.send()
    assert run(host2) == 1
    assert len(down.submitted) == 1 and len(backup.submitted) == 1
    assert pipe.message(sid)["carrier"] == "backup"
    [failover] = pipe.events(sid, "failover")
    assert failover["detail"]["refused_by"][0]["carrier"] == "acme"


def test_with_nothing_bound_anywhere_the_retry_applies_as_before(pipe: Pipeline) -> None:
    down = ScriptedCarrier("acme", default=CarrierUnavailable("acme is not bound", carrier_code="lease:not_held"))
    standby = process(pipe, "host-2:2", [down], leased={"acme"}, bound_here=set())
    sid = pipe.send()
    assert run(standby) == 1
    [retry] = pipe.events(sid, "retry")
    assert retry["status"] == "queued" and "hand_over" not in retry["detail"]
    assert pipe.message(sid)["offered_to"] is None


def test_when_the_carriers_here_refuse_the_attempt_goes_on_at_the_carrier_bound_elsewhere(pipe: Pipeline) -> None:
    bound_by(pipe, "host-1:1", "acme")
    refusing = ScriptedCarrier("backup", default=CarrierRetryableError("system error", carrier_code="smpp:0x00000008"))
    acme_at_1, backup_at_1 = ScriptedCarrier("acme"), ScriptedCarrier("backup")
    # The route prefers backup, which host-2 has bound; acme, next, is bound in host-1.
    host2 = process(
        pipe, "host-2:2", [refusing, ScriptedCarrier("acme")], leased={"acme", "backup"}, bound_here={"backup"}
    )
    sid = pipe.send()
    assert run(host2) == 1
    [retry] = pipe.events(sid, "retry")
    assert retry["detail"]["hand_over"] == {"carrier": "acme", "holder": "host-1:1"}
    assert retry["detail"]["refused_by"][0]["carrier"] == "backup"
    row = pipe.message(sid)
    assert (row["status"], row["offered_to"], row["next_attempt_at"]) == ("queued", "host-1:1", pipe.clock.now())
    free = pipe.next_free()

    # host-1 goes on at acme at once (no backoff), in the same sender slot; backup is not asked again.
    host1 = process(pipe, "host-1:1", [backup_at_1, acme_at_1], leased={"acme", "backup"}, bound_here={"acme"})
    assert run(host1) == 1
    assert backup_at_1.submitted == [] and [m.message_sid for m in acme_at_1.submitted] == [sid]
    assert pipe.message(sid)["carrier"] == "acme" and pipe.status(sid) == "sent"
    assert pipe.next_free() == free  # the sender slot of the attempt, as a failover in one process
    assert pipe.message(sid)["attempts"] == 2  # host-1's submit counts as an attempt of its own
    assert pipe.timeline(sid)[1:] == [
        ("status", "sending"),
        ("retry", "queued"),
        ("status", "sending"),
        ("status", "sent"),
    ]


def test_a_message_left_in_sending_by_a_dead_dispatcher_keeps_its_name_when_left_for_the_holder(
    pipe: Pipeline,
) -> None:
    bound_by(pipe, "host-1:1", "acme")
    bound_by(pipe, "host-2:2", "backup")
    sid = pipe.send()
    # A third dispatcher marked it sending and died.
    crashed = process(pipe, "dead:9", [ScriptedCarrier("acme")], leased={"acme"}, bound_here={"acme"})
    _, marked = crashed._claim(Reach(leased=frozenset({"acme"}), bound_here=frozenset({"acme"})))
    assert marked is not None and pipe.status(sid) == "sending"  # due now: marked in the claim's transaction
    pipe.clock.advance(DispatchSettings().lease.total_seconds() + 1)

    host2 = process(pipe, "host-2:2", [ScriptedCarrier("acme")], leased={"acme", "backup"}, bound_here={"backup"})
    assert run(host2) == 0
    row = pipe.message(sid)
    assert (row["status"], row["offered_to"], row["claimed_by"]) == ("sending", "host-1:1", "dead:9")

    acme = ScriptedCarrier("acme")
    assert run(process(pipe, "host-1:1", [acme], leased={"acme"}, bound_here={"acme"})) == 1
    [resend] = pipe.events(sid, "resend")
    assert "dead:9" in resend["detail"]["reason"]
    assert pipe.status(sid) == "sent" and len(acme.submitted) == 1


def test_the_sender_slot_reserved_at_the_claim_is_the_one_the_holder_uses(pipe: Pipeline) -> None:
    bound_by(pipe, "host-1:1", "acme")
    bound_by(pipe, "host-2:2", "backup")
    first, second = pipe.send_in_order(2)
    host2 = process(pipe, "host-2:2", [ScriptedCarrier("acme")], leased={"acme", "backup"}, bound_here={"backup"})
    # With a look-ahead of 2 s both are claimed (the second's slot is 1 s later) and left for host-1.
    host2.settings = DispatchSettings(lookahead=timedelta(seconds=2))
    assert run(host2) == 0
    slots = [pipe.message(sid)["paced_at"] for sid in (first, second)]
    assert slots[1] - slots[0] == timedelta(seconds=1)  # a long code: one message a second
    assert pipe.next_free(SENDER) == slots[1] + timedelta(seconds=1)

    acme = ScriptedCarrier("acme")
    host1 = process(pipe, "host-1:1", [acme], leased={"acme"}, bound_here={"acme"})
    assert run(host1) == 1  # the first now; the second is due at its slot, a second later
    pipe.clock.advance(1)
    assert run(host1) == 1
    assert [m.message_sid for m in acme.submitted] == [first, second]
    assert [pipe.message(sid)["date_sent"] for sid in (first, second)] == slots
    assert pipe.next_free(SENDER) == slots[1] + timedelta(seconds=1)  # nothing reserved twice
