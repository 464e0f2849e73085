"""The built-in carrier network: its script by destination suffix, configuration overrides,
weighted outcomes, throttling, refusals, duplicates and one carrier id per part."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from pigeon.carriers.simulator import (
    DEFAULT_DELAY,
    DEFAULT_SCENARIOS,
    NAME,
    Scenario,
    SimulatedNetwork,
    scenarios_from_config,
    scenarios_from_section,
)
from pigeon.domain.errors import CarrierPermanentError, CarrierRetryableError
from pigeon.domain.receipts import outcome_of
from pigeon.domain.status import MessageStatus
from pigeon.ports import OutboundMessage, ScheduledReceipt, SubmitAck
from pigeon.testing import FrozenClock

S = MessageStatus


class FakeSpool:
    """A ReceiptSpool that keeps what the network owes in a list."""

    def __init__(self) -> None:
        self.batches: list[list[ScheduledReceipt]] = []

    async def schedule(self, receipts: Sequence[ScheduledReceipt]) -> None:
        self.batches.append(list(receipts))

    @property
    def receipts(self) -> list[ScheduledReceipt]:
        return [r for batch in self.batches for r in batch]


def message(to: str, *, parts: int = 1, attempt: int = 1) -> OutboundMessage:
    return OutboundMessage(
        message_sid="SM" + "0" * 32,
        account_sid="AC" + "0" * 32,
        sender="+14155550100",
        recipient=to,
        body="hi",
        encoding="GSM-7",
        parts=tuple(f"part {i}" for i in range(parts)),
        attempt=attempt,
    )


def network(**kw: Any) -> tuple[SimulatedNetwork, FakeSpool, FrozenClock]:
    spool, clock = FakeSpool(), FrozenClock()
    return SimulatedNetwork(spool, clock, **kw), spool, clock


def submit(net: SimulatedNetwork, msg: OutboundMessage) -> SubmitAck:
    return asyncio.run(net.submit(msg))


# -- the script ---------------------------------------------------------------------------------

#: suffix -> (what the network does, receipt stat, receipt err, final status, error code)
TABLE = {
    "0101": ("undelivered", "UNDELIV", "001", S.UNDELIVERED, 30003),
    "0102": ("undelivered", "UNDELIV", "002", S.UNDELIVERED, 30005),
    "0103": ("undelivered", "UNDELIV", "003", S.UNDELIVERED, 30006),
    "0104": ("undelivered", "REJECTD", "004", S.UNDELIVERED, 30007),
    "0107": ("delivered", "DELIVRD", "000", S.DELIVERED, None),
    "2671": ("delivered", "DELIVRD", "000", S.DELIVERED, None),
}


@pytest.mark.parametrize("suffix", sorted(TABLE))
def test_receipts_carry_the_scripted_state_and_map_to_the_documented_code(suffix: str) -> None:
    outcome, stat, err, status, code = TABLE[suffix]
    net, spool, clock = network()
    ack = submit(net, message(f"+1415555{suffix}"))
    assert ack.carrier == NAME and len(ack.carrier_ids) == 1
    assert ack.raw == {"scenario": outcome}
    [receipt] = spool.receipts
    assert (receipt.carrier_id, receipt.stat, receipt.err) == (ack.carrier_ids[0], stat, err)
    assert receipt.submit_date == clock.now().strftime("%y%m%d%H%M")
    mapped = outcome_of(receipt.stat, receipt.err)
    assert (mapped.status, mapped.error_code) == (status, code)


def test_the_default_table_matches_the_readme() -> None:
    outcomes = {suffix: rows[0].outcome for suffix, rows in DEFAULT_SCENARIOS.items()}
    assert outcomes == {
        "0101": "undelivered",
        "0102": "undelivered",
        "0103": "undelivered",
        "0104": "undelivered",
        "0105": "failed",
        "0106": "no_receipt",
        "0107": "delivered",
        "0108": "duplicate",
        "0109": "throttle",
    }
    assert DEFAULT_SCENARIOS["0107"][0].delay == pytest.approx(5.0)


def test_receipt_delays_default_to_about_a_third_of_a_second_and_0107_is_slow() -> None:
    net, spool, clock = network()
    submit(net, message("+14155552671"))
    submit(net, message("+14155550107"))
    fast, slow = spool.receipts
    assert fast.due_at == clock.now() + timedelta(seconds=DEFAULT_DELAY)
    assert slow.due_at == clock.now() + timedelta(seconds=5.0)
    net2, spool2, clock2 = network(default_delay=0.01)
    submit(net2, message("+14155552671"))
    assert spool2.receipts[0].due_at == clock2.now() + timedelta(seconds=0.01)


@pytest.mark.parametrize("to", ["+14155550101", "+1 (415) 555-0101", "14155550101", "+4420790101"])
def test_the_suffix_is_read_from_the_digits_only(to: str) -> None:
    net, _, _ = network()
    assert net.scenario_for(to) == DEFAULT_SCENARIOS["0101"][0]


def test_numbers_outside_the_table_are_delivered() -> None:
    net, _, _ = network()
    for to in ("+14155552671", "+14155550100", "+14155550110", "+14155550199", "+14155551101"):
        assert net.scenario_for(to).outcome == "delivered", to


def test_no_receipt_is_owed_for_0106() -> None:
    net, spool, _ = network()
    ack = submit(net, message("+14155550106"))
    assert len(ack.carrier_ids) == 1
    assert spool.receipts == []


def test_0105_refuses_the_submit_for_good_with_30008() -> None:
    net, spool, _ = network()
    with pytest.raises(CarrierPermanentError) as info:
        submit(net, message("+14155550105"))
    err = info.value
    assert err.error_code == 30008
    assert err.carrier_code == "ESME_RSYSERR"
    assert err.retryable is False
    assert spool.receipts == []


@pytest.mark.parametrize("attempt", [1, 2])
def test_0109_throttles_the_first_two_attempts(attempt: int) -> None:
    net, spool, _ = network()
    with pytest.raises(CarrierRetryableError) as info:
        submit(net, message("+14155550109", attempt=attempt))
    assert info.value.retryable is True
    assert info.value.carrier_code == "ESME_RTHROTTLED"
    assert info.value.error_code == 30001  # as SMPP's throttle past its budget: queue overflow
    assert spool.receipts == []


def test_0109_accepts_the_third_attempt_and_delivers() -> None:
    net, spool, _ = network()
    ack = submit(net, message("+14155550109", attempt=3))
    assert ack.raw == {"scenario": "throttle"}
    [receipt] = spool.receipts
    assert (receipt.stat, receipt.err) == ("DELIVRD", "000")


def test_0108_owes_two_delivered_receipts_for_one_submit() -> None:
    net, spool, _ = network()
    ack = submit(net, message("+14155550108"))
    first, second = spool.receipts
    assert first.carrier_id == second.carrier_id == ack.carrier_ids[0]
    assert first.stat == second.stat == "DELIVRD"
    assert second.due_at - first.due_at == timedelta(seconds=0.05)


def test_0108_multipart_owes_two_receipts_per_part() -> None:
    net, spool, _ = network()
    ack = submit(net, message("+14155550108", parts=3))
    assert len(ack.carrier_ids) == 3
    assert Counter(r.carrier_id for r in spool.receipts) == dict.fromkeys(ack.carrier_ids, 2)


@pytest.mark.parametrize("suffix", ["2671", "0101", "0107"])
def test_multipart_messages_get_one_carrier_id_and_one_receipt_per_part(suffix: str) -> None:
    net, spool, _ = network()
    ack = submit(net, message(f"+1415555{suffix}", parts=4))
    assert len(ack.carrier_ids) == len(set(ack.carrier_ids)) == 4
    assert [r.carrier_id for r in spool.receipts] == list(ack.carrier_ids)
    assert len({r.stat for r in spool.receipts}) == 1


def test_carrier_ids_differ_between_submits() -> None:
    net, _, _ = network()
    ids = {submit(net, message("+14155552671")).carrier_ids[0] for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) <= 80 for i in ids)  # fits carrier_refs.carrier_message_id


def test_receipts_are_spooled_in_one_batch_before_submit_returns() -> None:
    net, spool, _ = network()
    submit(net, message("+14155550108", parts=2))
    assert len(spool.batches) == 1 and len(spool.batches[0]) == 4


# -- configuration ------------------------------------------------------------------------------


def test_config_rows_extend_the_default_table() -> None:
    table = scenarios_from_config(
        [{"suffix": "0110", "outcome": "undelivered", "stat": "UNDELIV", "err": "004", "delay": 1.5}]
    )
    assert table["0110"] == (Scenario("undelivered", "UNDELIV", "004", delay=1.5),)
    assert table["0101"] == DEFAULT_SCENARIOS["0101"]  # the rest stays
    net, spool, clock = network(scenarios=table)
    submit(net, message("+14155550110"))
    [receipt] = spool.receipts
    assert (receipt.stat, receipt.err) == ("UNDELIV", "004")
    assert receipt.due_at == clock.now() + timedelta(seconds=1.5)
    assert outcome_of(receipt.stat, receipt.err).error_code == 30007


def test_config_rows_override_a_default_suffix() -> None:
    table = scenarios_from_config([{"suffix": "0101", "outcome": "delivered"}])
    net, spool, _ = network(scenarios=table)
    submit(net, message("+14155550101"))
    assert spool.receipts[0].stat == "DELIVRD"


def test_config_can_set_throttles_and_the_refusal_code() -> None:
    table = scenarios_from_config(
        [
            {"suffix": "0120", "outcome": "throttle", "throttles": 1},
            {"suffix": "0121", "outcome": "failed", "error_code": 30007},
        ]
    )
    net, _, _ = network(scenarios=table)
    with pytest.raises(CarrierRetryableError):
        submit(net, message("+14155550120", attempt=1))
    submit(net, message("+14155550120", attempt=2))
    with pytest.raises(CarrierPermanentError) as info:
        submit(net, message("+14155550121"))
    assert info.value.error_code == 30007


def test_config_rejects_an_unknown_outcome() -> None:
    with pytest.raises(ValueError, match="0110"):
        scenarios_from_config([{"suffix": "0110", "outcome": "exploded"}])


def test_numeric_suffixes_in_config_are_read_as_text() -> None:
    table = scenarios_from_config([{"suffix": 5555, "outcome": "no_receipt"}])
    assert table["5555"][0].outcome == "no_receipt"


def test_the_longest_configured_suffix_wins() -> None:
    table = scenarios_from_config(
        [{"suffix": "7", "outcome": "no_receipt"}, {"suffix": "77", "outcome": "undelivered", "err": "002"}]
    )
    net, _, _ = network(scenarios=table)
    assert net.scenario_for("+14155550107").outcome == "delivered"  # the 4-digit default row
    assert net.scenario_for("+14155552277").outcome == "undelivered"
    assert net.scenario_for("+14155552227").outcome == "no_receipt"


def test_weighted_rows_pick_by_probability_with_a_seeded_rng() -> None:
    table = scenarios_from_config(
        [
            {"suffix": "0130", "outcome": "delivered", "probability": 0.75},
            {"suffix": "0130", "outcome": "undelivered", "err": "001", "probability": 0.25},
        ]
    )
    net, _, _ = network(scenarios=table, rng=random.Random(42))
    counts = Counter(net.scenario_for("+14155550130").outcome for _ in range(4000))
    assert counts["delivered"] + counts["undelivered"] == 4000
    assert 0.70 < counts["delivered"] / 4000 < 0.80


def test_weighted_picks_are_reproducible_with_the_same_seed() -> None:
    table = scenarios_from_config(
        [
            {"suffix": "0130", "outcome": "delivered", "probability": 0.5},
            {"suffix": "0130", "outcome": "no_receipt", "probability": 0.5},
        ]
    )

    def run(seed: int) -> list[str]:
        net, _, _ = network(scenarios=table, rng=random.Random(seed))
        return [net.scenario_for("+14155550130").outcome for _ in range(50)]

    assert run(3) == run(3)
    assert set(run(3)) == {"delivered", "no_receipt"}


def test_a_zero_probability_row_is_never_picked() -> None:
    table = scenarios_from_config(
        [
            {"suffix": "0130", "outcome": "delivered", "probability": 1.0},
            {"suffix": "0130", "outcome": "failed", "probability": 0.0},
        ]
    )
    net, _, _ = network(scenarios=table, rng=random.Random(1))
    assert {net.scenario_for("+14155550130").outcome for _ in range(500)} == {"delivered"}


@pytest.mark.parametrize(
    "rows",
    [
        [{"suffix": "0130", "outcome": "delivered", "probability": 0.0}],
        [
            {"suffix": "0130", "outcome": "delivered", "probability": 0.0},
            {"suffix": "0130", "outcome": "failed", "probability": 0.0},
        ],
        [{"suffix": "0130", "outcome": "delivered", "probability": -1.0}],
        [{"suffix": "0130", "outcome": "delivered", "delay": -0.5}],
        [{"suffix": "0130", "outcome": "throttle", "throttles": -1}],
        [{"suffix": "", "outcome": "delivered"}],
        [{"suffix": "01a0", "outcome": "delivered"}],
    ],
)
def test_config_rejects_rows_the_network_could_not_follow(rows: list[dict[str, object]]) -> None:
    # Caught when the configuration is read, not as a crash on the first submit to that suffix.
    with pytest.raises(ValueError, match=r"^simulator\.scenarios(\[0\])? \(suffix '"):
        scenarios_from_config(rows)


def test_suffixes_longer_than_four_digits_match_too() -> None:
    table = scenarios_from_config([{"suffix": "20101", "outcome": "no_receipt"}])
    net, _, _ = network(scenarios=table)
    assert net.scenario_for("+14155520101").outcome == "no_receipt"
    assert net.scenario_for("+14155530101").outcome == "undelivered"  # the default 0101 row


SECTION_MISTAKES = [
    # A row without `outcome` (misspelt): a KeyError and a 75-line traceback before.
    (
        {"scenarios": [{"suffix": "0110", "outcom": "failed"}]},
        "simulator.scenarios[0] (suffix '0110'): unknown key(s) outcom; the keys are suffix, outcome, stat, err,"
        " delay, probability, throttles, error_code",
    ),
    # An unknown key: ignored before, and the row ran with the default delay.
    (
        {"scenarios": [{"suffix": "0110", "outcome": "delivered", "dealy": 20}]},
        "simulator.scenarios[0] (suffix '0110'): unknown key(s) dealy; the keys are",
    ),
    ({"scenarios": [{"suffix": "0110"}]}, "simulator.scenarios[0] (suffix '0110'): outcome is required"),
    ({"scenarios": [{"outcome": "failed"}]}, "simulator.scenarios[0]: suffix is required"),
    # [[simulator.scenario]] and `scenarioss`: ignored before, and the built-in script ran.
    (
        {"scenario": [{"suffix": "0110", "outcome": "failed"}]},
        "[simulator]: unknown key(s) scenario; its one key is scenarios ([[simulator.scenarios]])",
    ),
    ({"scenarioss": []}, "[simulator]: unknown key(s) scenarioss"),
    # "'int' object is not iterable" before, naming nothing.
    ({"scenarios": 3}, "[simulator] scenarios must be an array of tables ([[simulator.scenarios]]), got 3"),
    ({"scenarios": [3]}, "[simulator] scenarios must be an array of tables"),
    (3, "[simulator] must be a table, got 3"),
    # Values of the wrong kind: an int err was stored as the receipt's err, a text delay
    # crashed the first submit to the suffix.
    (
        {"scenarios": [{"suffix": "0110", "outcome": "undelivered", "err": 5}]},
        "simulator.scenarios[0] (suffix '0110'): err must be a string, got 5",
    ),
    (
        {"scenarios": [{"suffix": "0110", "outcome": "delivered", "delay": "2"}]},
        "simulator.scenarios[0] (suffix '0110'): delay must be a number, got '2'",
    ),
    (
        {"scenarios": [{"suffix": "0110", "outcome": "failed", "error_code": "30007"}]},
        "simulator.scenarios[0] (suffix '0110'): error_code must be an integer, got '30007'",
    ),
    ({"scenarios": [{"suffix": True, "outcome": "failed"}]}, "simulator.scenarios[0]: suffix must be a string"),
    (
        {"scenarios": [{"suffix": "0110", "outcome": "delivered"}, {"suffix": "0111", "outcome": "lost"}]},
        "simulator.scenarios[1] (suffix '0111'): outcome must be one of 'delivered', 'duplicate', 'failed',",
    ),
]


@pytest.mark.parametrize(("section", "message"), SECTION_MISTAKES, ids=[str(i) for i in range(len(SECTION_MISTAKES))])
def test_a_mistake_in_the_simulator_table_is_named(section: object, message: str) -> None:
    """As [[carriers]] refuses a key it does not know: the key, the row, one line."""
    with pytest.raises(ValueError) as refused:
        scenarios_from_section(section)
    assert str(refused.value).startswith(message), refused.value


def test_a_whole_simulator_table_is_read() -> None:
    table = scenarios_from_section(
        {
            "scenarios": [
                {
                    "suffix": "0110",
                    "outcome": "undelivered",
                    "stat": "UNDELIV",
                    "err": "001",
                    "delay": 2,
                    "probability": 0.5,
                    "throttles": 3,
                    "error_code": 30007,
                }
            ]
        }
    )
    assert table["0110"] == (Scenario("undelivered", "UNDELIV", "001", 2.0, 0.5, 3, 30007),)
    assert scenarios_from_section({}) == dict(DEFAULT_SCENARIOS)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"outcome": "undelivered", "stat": "DELIVRD"}, "stat must not be DELIVRD for an 'undelivered' row"),
        ({"outcome": "delivered", "stat": "UNDELIV"}, "stat must be DELIVRD for a 'delivered' row"),
        ({"outcome": "failed", "err": "001"}, "err is not for a 'failed' row: it sends no receipt"),
        ({"outcome": "no_receipt", "stat": "UNDELIV"}, "stat is not for a 'no_receipt' row"),
        ({"outcome": "failed", "error_code": 7}, "error_code must be an error code Pigeon knows"),
        ({"outcome": "throttle", "throttles": 10}, "throttles"),
        ({"outcome": "undelivered", "probability": 1.5}, "probability must be a chance from 0 to 1, got 1.5"),
    ],
)
def test_contradictory_or_impossible_rows_are_refused_at_load(row: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=r"^simulator\.scenarios\[0\] \(suffix '0130'\)") as refused:
        scenarios_from_config([{"suffix": "0130", **row}])
    assert problem in str(refused.value)


def test_probabilities_of_a_suffix_add_up_to_at_most_one() -> None:
    rows = [
        {"suffix": "0130", "outcome": "delivered", "probability": 0.75},
        {"suffix": "0130", "outcome": "undelivered", "probability": 0.5},
    ]
    with pytest.raises(ValueError, match=r"add up to 1\.25"):
        scenarios_from_config(rows)


def test_an_undelivered_row_without_a_stat_is_undelivered() -> None:
    [row] = scenarios_from_config([{"suffix": "0130", "outcome": "undelivered", "err": "001"}])["0130"]
    assert (row.stat, row.err) == ("UNDELIV", "001")


def test_a_single_row_with_a_chance_below_one_leaves_the_rest_delivered() -> None:
    table = scenarios_from_config([{"suffix": "0130", "outcome": "undelivered", "probability": 0.2}])
    net, _, _ = network(scenarios=table, rng=random.Random(7))
    counts = Counter(net.scenario_for("+14155550130").outcome for _ in range(4000))
    assert set(counts) == {"undelivered", "delivered"}
    assert 0.15 < counts["undelivered"] / 4000 < 0.25
