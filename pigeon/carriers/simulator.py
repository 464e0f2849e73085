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
| 0109 | the carrier throttles: two retryable refusals, then accepted |
| other | delivered |

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
from pigeon.domain.errors import CarrierPermanentError, CarrierRetryableError
from pigeon.domain.sids import ordered_hex
from pigeon.ports import CarrierEvents, Clock, OutboundMessage, ReceiptSpool, ScheduledReceipt, SubmitAck

NAME = "simulator"
DEFAULT_DELAY = 0.3

OUTCOMES = frozenset({"delivered", "undelivered", "failed", "no_receipt", "throttle", "duplicate"})


@dataclass(frozen=True)
class Scenario:
    """One row of the network's script."""

    outcome: str  # one of OUTCOMES
    stat: str = "DELIVRD"
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
    scenario = Scenario(
        outcome=r.choice("outcome", None, sorted(OUTCOMES)),
        stat=r.text("stat", d.stat),
        err=r.text("err", d.err),
        delay=r.number("delay", d.delay, positive=False),
        probability=r.number("probability", d.probability, positive=False),
        throttles=r.integer("throttles", d.throttles),
        error_code=r.integer("error_code", d.error_code, minimum=1),
    )
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
        if sum(s.probability for s in scenarios) <= 0:
            raise CarrierConfigError(
                f"simulator.scenarios (suffix {suffix!r}): at least one row needs a probability above 0"
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
        if len(rows) == 1:
            return rows[0]
        weights = [max(r.probability, 0.0) for r in rows]
        return self.rng.choices(list(rows), weights=weights)[0]

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
                "the simulated carrier is throttling this sender", carrier_code="ESME_RTHROTTLED", error_code=30008
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
