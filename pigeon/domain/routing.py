"""Which carriers may carry a message, in failover order.

Routes are declarative (DESIGN.md §1 "Delivery", STYLE "avoid 8"): each names either a
destination prefix ("+44", "+1415", "+" for everything) or a country ("GB"), and an ordered
list of carriers. For a destination:

1. the route with the longest matching prefix of at least one digit wins ("+44" over "+4");
2. else the first route whose country is the destination's country;
3. else the catch-all ``prefix = "+"``, the last resort: it must not take traffic from
   the country routes, which it would as a "prefix" that every destination matches;
4. else nothing matches: no carrier (the dispatcher fails the message) — an operator who
   wants a default adds a ``prefix = "+"`` route;

and with no routes at all every configured carrier is a candidate, in configuration order.
The list returned is the failover order: the dispatcher tries the next carrier when one is
unbound or answers with a retryable error past its budget.

Pure module: country lookup goes through `pigeon.domain.numbers.region_of`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pigeon.domain.geo import country_problem
from pigeon.domain.numbers import region_of

__all__ = ["Route", "carriers_for"]

_PREFIX = re.compile(r"\+[0-9]*")
_CATCH_ALL = "+"  # the route for every destination no other route takes


@dataclass(frozen=True)
class Route:
    """Exactly one of ``prefix`` (E.164 digits with a leading "+") or ``country`` (ISO 3166 alpha-2)."""

    carriers: tuple[str, ...]
    prefix: str | None = None
    country: str | None = None

    def __post_init__(self) -> None:
        if (self.prefix is None) == (self.country is None):
            raise ValueError("a route has exactly one of prefix or country")
        if self.prefix is not None and _PREFIX.fullmatch(self.prefix) is None:
            raise ValueError(f"route prefix must be '+' followed by digits, got {self.prefix!r}")
        if self.country is not None and not (
            len(self.country) == 2 and self.country.isalpha() and self.country.isupper()
        ):
            raise ValueError(f"route country must be an ISO 3166 alpha-2 code like 'GB', got {self.country!r}")
        problem = country_problem(self.country) if self.country is not None else None
        if problem is not None:
            raise ValueError(f"route country: {problem}")
        if not self.carriers:
            raise ValueError("a route names at least one carrier")


def carriers_for(destination_e164: str, routes: Sequence[Route], carrier_names: Sequence[str]) -> list[str]:
    """The carriers for ``destination_e164`` in failover order (see the module docstring).

    Carriers a route names but ``carrier_names`` does not hold (removed or disabled) are
    skipped, and a carrier named twice is tried once.
    """
    if not routes:
        return _dedupe(carrier_names, carrier_names)
    route = (
        _by_prefix(destination_e164, routes)
        or _by_country(destination_e164, routes)
        or next((r for r in routes if r.prefix == _CATCH_ALL), None)
    )
    if route is None:
        return []
    return _dedupe(route.carriers, carrier_names)


def _by_prefix(destination: str, routes: Sequence[Route]) -> Route | None:
    best: Route | None = None
    for route in routes:
        prefix = route.prefix
        if prefix is None or prefix == _CATCH_ALL or not destination.startswith(prefix):
            continue
        # Strictly longer wins, so among equal prefixes the first configured one stays.
        if best is None or len(prefix) > len(best.prefix or ""):
            best = route
    return best


def _by_country(destination: str, routes: Sequence[Route]) -> Route | None:
    if not any(route.country for route in routes):
        return None  # spare the phone-number parse when no route is by country
    region = region_of(destination)
    if region is None:
        return None
    return next((route for route in routes if route.country == region), None)


def _dedupe(names: Iterable[str], known: Sequence[str]) -> list[str]:
    allowed = set(known)
    seen: set[str] = set()
    ordered: list[str] = []
    for name in names:
        if name in allowed and name not in seen:
            seen.add(name)
            ordered.append(name)
    return ordered
