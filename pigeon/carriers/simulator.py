"""The built-in carrier network: a Carrier that behaves like a mobile network, by script.

It accepts a submit, answers with a carrier id per part, and owes a delivery receipt after a
short delay. What happens is decided by the destination's last four digits, from a data
table operators can extend (`[[simulator.scenarios]]` in the config file):

| last four | outcome |
|---|---|
| 0101 | unreachable handset: undelivered, 30003 |
| 0102 | unknown handset: undelivered, 30005 |
| 0103 | landline: undelivered, 30006 |
| 0104 | carrier filtering: undelivered, 30007 |
| 0105 | unknown error: the submit fails, failed, 30008 |
| 0106 | no receipt, ever: stays sent |
| 0107 | slow receipt, about 5 s |
| 0108 | the carrier delivers twice: two delivered receipts for one submit |
| 0109 | the carrier throttles: two retryable refusals (30001, as SMPP's), then accepted |
| other | delivered |

A row's ``stat`` is its receipt's: DELIVRD for the outcomes that deliver (delivered,
duplicate, throttle), UNDELIV by default for ``undelivered``, whose stat must be a
non-delivered one; ``failed`` and ``no_receipt`` send no receipt, so a ``stat`` or ``err`` on
them is refused, as is any row whose stat contradicts its outcome. ``error_code`` must be a code
of the error catalogue, and ``throttles`` fewer than the dispatcher's attempts
(`CARRIER_SUBMITS`), or the message would fail instead of "then accepted".

``probability`` is a chance from 0 to 1: the rows of one suffix are picked with their
chances, which add up to at most 1; the rest of the time the number is delivered, as any
number without a row. So a single row with ``probability = 0.2`` happens one time in five.

Receipts it owes are handed to a `ReceiptSpool` (the store) before the submit returns, so
like a real network it still reports them after our processes restart.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pigeon.carriers.config_tables import CarrierConfigError, TableReader
from pigeon.domain.error_catalogue import explain
from pigeon.domain.errors import CarrierPermanentError, CarrierRetryableError
from pigeon.domain.retry import CARRIER_SUBMITS
from pigeon.domain.sids import ordered_hex
from pigeon.ports import CarrierEvents, Clock, OutboundMessage, ReceiptSpool, ScheduledReceipt, SubmitAck

NAME = "simulator"
DEFAULT_DELAY = 0.3

OUTCOMES = frozenset({"delivered", "undelivered", "failed", "no_receipt", "throttle", "duplicate"})


@dataclass(frozen=True)
class Scenario:
    """One row of the network's script."""

    outcome: str  # one of OUTCOMES
    stat: str = "DELIVRD"  # the receipt's; see DEFAULT_STATS for a row of the configuration
    err: str = "000"
    delay: float = DEFAULT_DELAY  # seconds until the receipt
    probability: float = 1.0  # among the rows for the same suffix
    throttles: int = 2  # refusals before acceptance, for "throttle"
    error_code: int = 30008  # for "failed": the code the refusal carries


DEFAULT_SCENARIOS: Mapping[str, tuple[Scenario, ...]] = {
    "0101": (Scenario("undelivered", "UNDELIV", "001"),),
    "0102": (Scenario("undelivered", "UNDELIV", "002"),),
    "0103": (Scenario("undelivered", "UNDELIV", "003"),),
    "0104": (Scenario("undelivered", "REJECTD", "004"),),
    "0105": (Scenario("failed", error_code=30008),),
    "0106": (Scenario("no_receipt"),),
    "0107": (Scenario("delivered", delay=5.0),),
    "0108": (Scenario("duplicate"),),
    "0109": (Scenario("throttle"),),
}
DEFAULT = Scenario("delivered")

#: Outcomes whose receipt says delivered, and those that send none.
DELIVERING = frozenset({"delivered", "duplicate", "throttle"})
NO_RECEIPT = frozenset({"failed", "no_receipt"})
#: The stat of an ``undelivered`` row that names none.
UNDELIVERED_STAT = "UNDELIV"
#: Rounding room when a suffix's chances are added up.
_EPSILON = 1e-9


#: The keys of a ``[[simulator.scenarios]]`` row, in the order the README gives them; the
#: first two are required, the others have Scenario's defaults.
ROW_KEYS = ("suffix", "outcome", "stat", "err", "delay", "probability", "throttles", "error_code")


def scenarios_from_section(section: Any) -> dict[str, tuple[Scenario, ...]]:
    """The ``[simulator]`` table of the configuration file, checked: its one key is `scenarios`,
    an array of tables. A misspelt key or table (``scenarioss``, ``[[simulator.scenario]]``)
    is refused by name: ignored, it would leave the built-in script in force without a word."""
    if not isinstance(section, Mapping):
        raise CarrierConfigError(f"[simulator] must be a table, got {section!r}")
    unknown = sorted(set(section) - {"scenarios"})
    if unknown:
        raise CarrierConfigError(
            f"[simulator]: unknown key(s) {', '.join(unknown)}; its one key is scenarios ([[simulator.scenarios]])"
        )
    rows = section.get("scenarios", [])
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise CarrierConfigError(
            f"[simulator] scenarios must be an array of tables ([[simulator.scenarios]]), got {rows!r}"
        )
    return scenarios_from_config(rows)


def _row(index: int, row: Mapping[str, Any]) -> tuple[str, Scenario]:
    """One row, every key checked against its kind when the configuration is read: a row the
    network could not follow would otherwise crash the first submit to its suffix."""
    named = row.get("suffix")
    shown = isinstance(named, str | int) and not isinstance(named, bool)
    where = f"simulator.scenarios[{index}]" + (f" (suffix {named!r})" if shown else "")
    # Unknown keys first: a misspelt `outcome` is better named as such than as a missing one.
    unknown = sorted(set(row) - set(ROW_KEYS))
    if unknown:
        raise CarrierConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(ROW_KEYS)}")
    r = TableReader(where, row)
    if shown and isinstance(named, int):
        r.used.add("suffix")  # `suffix = 5555`: TOML has no leading zeros, so the digits are all there
        suffix = str(named)
    else:
        suffix = r.text("suffix")
    if not (suffix.isascii() and suffix.isdigit()):
        raise r.fail("suffix", f"must be the last digits of a destination, got {suffix!r}")
    d = Scenario("delivered")
    outcome = r.choice("outcome", None, sorted(OUTCOMES))
    if outcome in NO_RECEIPT:
        given = [key for key in ("stat", "err") if key in row]
        if given:
            raise r.fail(given[0], f"is not for a {outcome!r} row: it sends no receipt")
    stat = r.text("stat", UNDELIVERED_STAT if outcome == "undelivered" else d.stat).upper()
    if outcome in DELIVERING and stat != "DELIVRD":
        raise r.fail("stat", f"must be DELIVRD for a {outcome!r} row, which delivers, got {stat!r}")
    if outcome == "undelivered" and stat == "DELIVRD":
        raise r.fail("stat", "must not be DELIVRD for an 'undelivered' row (UNDELIV, REJECTD, EXPIRED ...)")
    error_code = r.integer("error_code", d.error_code, minimum=1)
    if explain(error_code) is None:
        raise r.fail("error_code", f"must be an error code Pigeon knows (`pigeon errors CODE`), got {error_code}")
    budget = CARRIER_SUBMITS.max_attempts
    scenario = Scenario(
        outcome=outcome,
        stat=stat,
        err=r.text("err", d.err),
        delay=r.number("delay", d.delay, positive=False),
        probability=r.number("probability", d.probability, positive=False),
        throttles=r.integer("throttles", d.throttles, maximum=budget - 1),
        error_code=error_code,
    )
    if scenario.probability > 1:
        raise r.fail("probability", f"must be a chance from 0 to 1, got {scenario.probability:g}")
    return suffix, scenario


def scenarios_from_config(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[Scenario, ...]]:
    """The default script extended (or overridden, suffix by suffix) by config rows:
    ``{suffix = "0110", outcome = "undelivered", stat = "UNDELIV", err = "001", delay = 1.0}``.
    CarrierConfigError (a ValueError) naming the row and the key that cannot be used."""
    table: dict[str, list[Scenario]] = {}
    for index, row in enumerate(rows):
        suffix, scenario = _row(index, row)
        table.setdefault(suffix, []).append(scenario)
    for suffix, scenarios in table.items():
        total = sum(s.probability for s in scenarios)
        if total <= 0:
            raise CarrierConfigError(
                f"simulator.scenarios (suffix {suffix!r}): at least one row needs a probability above 0"
            )
        if total > 1 + _EPSILON:
            raise CarrierConfigError(
                f"simulator.scenarios (suffix {suffix!r}): the rows' probabilities add up to {total:g}; they are "
                "chances, at most 1 together (the rest of the time the number is delivered)"
            )
    merged = {k: tuple(v) for k, v in DEFAULT_SCENARIOS.items()}
    merged.update({k: tuple(v) for k, v in table.items()})
    return merged


class SimulatedNetwork:
    name = NAME
    carries_media = True  # it plays a network that delivers MMS too

    def __init__(
        self,
        spool: ReceiptSpool,
        clock: Clock,
        *,
        scenarios: Mapping[str, Sequence[Scenario]] | None = None,
        default_delay: float = DEFAULT_DELAY,
        rng: random.Random | None = None,
    ) -> None:
        self.spool = spool
        self.clock = clock
        self.scenarios = dict(scenarios if scenarios is not None else DEFAULT_SCENARIOS)
        self._lengths = sorted({len(k) for k in self.scenarios if k}, reverse=True)
        self.default = Scenario("delivered", delay=default_delay)
        self.rng = rng or random.Random()

    def scenario_for(self, recipient: str) -> Scenario:
        digits = "".join(c for c in recipient if c.isdigit())
        for length in self._lengths:  # the longest matching suffix wins
            rows = self.scenarios.get(digits[-length:])
            if rows:
                break
        else:
            return self.default
        weights = [max(r.probability, 0.0) for r in rows]
        rest = 1.0 - sum(weights)
        if len(rows) == 1 and rest <= _EPSILON:
            return rows[0]
        choices = list(rows)
        if rest > _EPSILON:  # the rows' chances leave room: the rest of the time, delivered
            choices.append(self.default)
            weights.append(rest)
        return self.rng.choices(choices, weights=weights)[0]

    async def start(self, events: CarrierEvents) -> None:
        """Receipts reach `events` through the spool's worker; nothing to connect."""

    async def stop(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        """The built-in network is always reachable: there is no bind to lose."""
        return {"kind": "simulator", "bound": True, "binds": [], "last_error": None}

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        scenario = self.scenario_for(message.recipient)
        if scenario.outcome == "throttle" and message.attempt <= scenario.throttles:
            raise CarrierRetryableError(
                "the simulated carrier is throttling this sender", carrier_code="ESME_RTHROTTLED", error_code=30001
            )
        if scenario.outcome == "failed":
            raise CarrierPermanentError(
                "the simulated carrier could not process the message",
                carrier_code="ESME_RSYSERR",
                error_code=scenario.error_code,
            )
        now = self.clock.now()
        # It never refuses a part on its own, but honours a continuation like any carrier.
        resume = message.continuation
        first = resume.first_part if resume is not None and resume.parts == len(message.parts) else 1
        ids = tuple(ordered_hex(12) for _ in message.parts[first - 1 :])
        submit_date = now.strftime("%y%m%d%H%M")
        receipts: list[ScheduledReceipt] = []
        if scenario.outcome != "no_receipt":
            copies = 2 if scenario.outcome == "duplicate" else 1
            stat = "DELIVRD" if scenario.outcome in {"delivered", "duplicate", "throttle"} else scenario.stat
            err = "000" if stat == "DELIVRD" else scenario.err
            for cid in ids:
                for copy in range(copies):
                    due = now + timedelta(seconds=scenario.delay + 0.05 * copy)
                    receipts.append(ScheduledReceipt(cid, stat, err, submit_date, due))
        await self.spool.schedule(receipts)
        return SubmitAck(carrier=NAME, carrier_ids=ids, raw={"scenario": scenario.outcome}, first_part=first)
