"""Which process submits a message, when carriers' binds are leases shared between processes.

A pure rule over the carriers a job may try (`dispatch.plan_route`), what this process can
reach (`ports.Reach`) and which other processes have which carriers bound (their leases
current, their binds up). Walking the route in order, a carrier is

* *here*: not leased, or bound in this process — tried here;
* *elsewhere*: bound only in other processes — not tried here;
* *nowhere*: leased and bound in no process — tried here like any carrier that is down: its
  `CarrierUnavailable` is the failover (or, last of all, the retry with backoff) it always was.

The first carrier *elsewhere* decides. With no carrier *here* before it, the message is left
for a process holding that carrier (`Placement.offer_to`): nothing is tried here. With one, the
carriers before it are tried here, and if they all refuse in a way that lets the message move
on, the attempt goes on at that carrier in its holder's process (`Placement.hand_over`).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pigeon.ports import Carrier, Reach


@dataclass(frozen=True)
class HandOver:
    """Where an attempt goes on when the carriers tried here refuse."""

    carrier: str
    holder: str


@dataclass(frozen=True)
class Placement:
    carriers: list[Carrier]  # to try in this process, in order
    offer_to: str | None = None  # nothing to try here: leave the message for this process
    hand_over: HandOver | None = None


def place(route: Sequence[Carrier], reach: Reach, elsewhere: Mapping[str, Sequence[str]], *, key: str) -> Placement:
    """Where the job with this route goes (module docstring). `elsewhere`: carrier -> the other
    processes that have it bound. `key` (the message SID) spreads messages over a carrier's
    holders when it allows several binds, always the same holder for the same message."""
    tried: list[Carrier] = []
    for carrier in route:
        if reach.here(carrier.name):
            tried.append(carrier)
            continue
        holders = elsewhere.get(carrier.name)
        if not holders:
            tried.append(carrier)  # bound nowhere
            continue
        holder = holders[zlib.crc32(key.encode()) % len(holders)]
        if any(reach.here(c.name) for c in tried):
            return Placement(tried, hand_over=HandOver(carrier.name, holder))
        return Placement([], offer_to=holder)
    return Placement(tried)


def needs_elsewhere(route: Sequence[Carrier], reach: Reach) -> bool:
    """Whether placing this route needs to know which carriers other processes have bound."""
    return any(not reach.here(c.name) for c in route)
