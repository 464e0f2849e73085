"""A bind handed from one worker process to another while a submit is in flight, against the
Node SMSC (the npm `smpp` package), on both stores: with ``binds = 1`` the SMSC must never
see two binds at once, neither when the holder shuts down cleanly (it keeps its lease until
it is unbound) nor when it is fenced (it cannot renew its lease, and closes its bind at once
instead of waiting for its submits' answers). The submit left unanswered is recorded as
such, and sent again as a possible duplicate.

The processes are `tests.integration.test_bind_leases.Process`: the worker stack of
`pigeon worker`, two of them in this test's event loop, sharing one store.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from contextlib import AbstractContextManager
from typing import Any

import pytest

from pigeon.carriers.leased import LeasedCarrier
from pigeon.domain.diagnosis import count_submits, diagnose_message
from pigeon.domain.diagnosis.facts import MessageFacts
from tests.integration.pipeline import Pipeline
from tests.integration.smsc.node import NodeSmsc
from tests.integration.smsc.support import run_within
from tests.integration.test_bind_leases import (
    LEASE,
    Process,
    carrier,
    delivered,
    holders,
    kinds,
    pipe,
    processes,
    send,
    settings,
    until,
)

__all__ = ["pipe"]  # test_bind_leases's fixture (messages at the real time of day), found here by name

pytestmark = pytest.mark.usefixtures("npm_smsc")
run = functools.partial(run_within, seconds=50)


class BrokenStore:
    """The holder's lease keeper loses the store: every renewal fails from then on."""

    def write(self) -> AbstractContextManager[Any]:
        raise ConnectionError("the store is down")


async def holding_and_standing_by(pipe: Pipeline, smsc: NodeSmsc, **changes: Any) -> tuple[Process, Process]:
    config = settings({**carrier("node", smsc.port), **changes})
    first, second = Process("host-a:1", config, pipe.db), Process("host-b:2", config, pipe.db)
    first.start()
    await until(lambda: holders(pipe.db).get("node") == ("host-a:1", "bound"), what="host-a bound")
    second.start()
    standby = second.workers.carriers["node"]
    assert isinstance(standby, LeasedCarrier)
    await asyncio.sleep(LEASE)  # host-b has looked for the slot, and found it taken
    assert standby.status()["lease"]["state"] == "standby"
    return first, second


async def unanswered_submit(pipe: Pipeline, smsc: NodeSmsc, tag: str) -> str:
    """A message whose submit_sm the SMSC takes and never answers, once it has it."""
    await smsc.configure(submit_script=["no_resp"])
    [sid] = send(pipe, 1, tag)
    await smsc.wait_event(lambda e: e.get("event") == "submit" and e["record"]["text"] == f"{tag} 0")
    return sid


async def check_one_bind_at_a_time_and_the_resend(
    pipe: Pipeline, smsc: NodeSmsc, sid: str, tag: str, *, unanswered_because: str
) -> None:
    await until(delivered(pipe.db, [sid]), timeout=30, what="delivered through host-b")
    assert holders(pipe.db)["node"] == ("host-b:2", "bound")
    state = await smsc.state()
    assert [b["status"] for b in state["binds"]] == [0, 0]  # host-a, then host-b
    assert state["max_bound"] == 1, "the SMSC saw two binds at once"
    # Two copies at the SMSC: the unanswered one, and the resend, which the doctor counts.
    assert Counter(s["text"] for s in smsc.accepted()) == Counter({f"{tag} 0": 2})
    [unanswered] = pipe.events(sid, "retry")
    assert unanswered["detail"]["outcome_unknown"] is True
    assert unanswered["detail"]["carrier_code"] == unanswered_because
    assert kinds(pipe, [sid])["resend"] == 1
    assert count_submits(pipe.events(sid), pipe.parts(sid)).reaching == 2
    facts = MessageFacts(
        message=pipe.message(sid), events=pipe.events(sid), parts=pipe.parts(sid), now=pipe.clock.now()
    )
    assert "pigeon_resent" in {f.cause for f in diagnose_message(facts)}


def test_a_clean_shutdown_keeps_its_lease_until_its_bind_is_closed(pipe: Pipeline) -> None:
    """SIGTERM while a submit waits for its answer longer than the lease: the holder's
    dispatcher waits for it (response_timeout), and its lease is renewed meanwhile; the
    standby binds only once the holder has unbound and freed the slot."""

    async def scenario() -> None:
        async with NodeSmsc.running() as smsc:
            first, second = await holding_and_standing_by(pipe, smsc, response_timeout=3 * LEASE)
            async with processes(first, second):
                sid = await unanswered_submit(pipe, smsc, "draining")
                await first.stop()  # the submit times out unanswered, then the bind closes
                await check_one_bind_at_a_time_and_the_resend(
                    pipe, smsc, sid, "draining", unanswered_because="smpp:response_timeout"
                )

    run(scenario)


def test_a_holder_that_cannot_renew_its_lease_closes_its_bind_at_once(pipe: Pipeline) -> None:
    """The holder's store calls fail while a submit waits for an answer that would take far
    longer than the lease: the holder closes its bind before its lease runs out, without
    waiting for that answer, and the standby takes the bind over once the lease has run out."""

    async def scenario() -> None:
        async with NodeSmsc.running() as smsc:
            first, second = await holding_and_standing_by(pipe, smsc, response_timeout=20 * LEASE)
            async with processes(first, second):
                sid = await unanswered_submit(pipe, smsc, "fenced")
                assert first.workers.leases is not None
                first.workers.leases.db = BrokenStore()  # type: ignore[assignment]
                await check_one_bind_at_a_time_and_the_resend(
                    pipe, smsc, sid, "fenced", unanswered_because="smpp:connection_lost"
                )

    run(scenario)
