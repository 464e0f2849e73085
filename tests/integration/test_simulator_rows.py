"""Operator rows of the simulator's script (`[[simulator.scenarios]]`) through the dispatcher and
its receipts, on both stores: what a row says is what the message ends as."""

from __future__ import annotations

from typing import Any

from pigeon.carriers.simulator import SimulatedNetwork, scenarios_from_section
from tests.integration.pipeline import Pipeline


def _run(pipe: Pipeline, row: dict[str, Any], to: str) -> dict[str, Any]:
    pipe.network = SimulatedNetwork(pipe.spool, pipe.clock, scenarios=scenarios_from_section({"scenarios": [row]}))
    sid = pipe.send(to=to)
    for _ in range(12):
        m = pipe.message(sid)
        if m["next_attempt_at"] is not None and m["next_attempt_at"] > pipe.clock.now():
            pipe.clock.current = m["next_attempt_at"]
        pipe.dispatch()
        pipe.receipts(advance=3)
    return pipe.message(sid)


def test_an_undelivered_row_without_a_stat_leaves_the_message_undelivered(pipe: Pipeline) -> None:
    m = _run(pipe, {"suffix": "0110", "outcome": "undelivered", "err": "001"}, "+14155550110")
    assert (m["status"], m["error_code"]) == ("undelivered", 30003)


def test_a_throttle_row_at_the_most_throttles_allowed_still_delivers(pipe: Pipeline) -> None:
    m = _run(pipe, {"suffix": "0112", "outcome": "throttle", "throttles": 9}, "+14155550112")
    assert (m["status"], m["attempts"]) == ("delivered", 10)
