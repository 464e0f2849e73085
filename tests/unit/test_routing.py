"""Unit tests for pigeon.domain.routing: which carriers, in which failover order."""

from __future__ import annotations

import pytest

from pigeon.domain.routing import Route, carriers_for

CARRIERS = ["acme", "backup", "cheap"]


def test_without_routes_every_carrier_in_configuration_order() -> None:
    assert carriers_for("+447700900123", [], CARRIERS) == CARRIERS
    assert carriers_for("+447700900123", [], []) == []


def test_longest_prefix_wins_over_shorter_and_over_country() -> None:
    routes = [
        Route(("cheap",), prefix="+"),
        Route(("backup", "acme"), prefix="+44"),
        Route(("acme",), prefix="+447700"),
        Route(("cheap", "acme"), country="GB"),
    ]
    assert carriers_for("+447700900123", routes, CARRIERS) == ["acme"]
    assert carriers_for("+447911123456", routes, CARRIERS) == ["backup", "acme"]
    assert carriers_for("+14155550100", routes, CARRIERS) == ["cheap"]  # the catch-all


def test_equal_prefixes_keep_the_first_configured() -> None:
    routes = [Route(("acme",), prefix="+1"), Route(("backup",), prefix="+1")]
    assert carriers_for("+14155550100", routes, CARRIERS) == ["acme"]


def test_country_when_no_prefix_matches() -> None:
    routes = [
        Route(("backup",), prefix="+33"),
        Route(("acme", "backup"), country="US"),
        Route(("cheap",), country="GB"),
    ]
    assert carriers_for("+14155550100", routes, CARRIERS) == ["acme", "backup"]
    assert carriers_for("+447700900123", routes, CARRIERS) == ["cheap"]
    assert carriers_for("+33612345678", routes, CARRIERS) == ["backup"]


def test_no_matching_route_means_no_carrier() -> None:
    assert carriers_for("+33612345678", [Route(("acme",), prefix="+44")], CARRIERS) == []
    assert carriers_for("+33612345678", [Route(("acme",), country="GB")], CARRIERS) == []


def test_a_destination_without_a_country_matches_no_country_route() -> None:
    assert carriers_for("+80012345678", [Route(("acme",), country="US")], CARRIERS) == []  # non-geographic
    assert carriers_for("not a number", [Route(("acme",), country="US")], CARRIERS) == []


def test_unknown_and_repeated_carriers_are_skipped() -> None:
    routes = [Route(("gone", "acme", "acme", "backup"), prefix="+44")]
    assert carriers_for("+447700900123", routes, CARRIERS) == ["acme", "backup"]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"carriers": ("acme",)}, "exactly one of prefix or country"),
        ({"carriers": ("acme",), "prefix": "+44", "country": "GB"}, "exactly one of prefix or country"),
        ({"carriers": ("acme",), "prefix": "44"}, "prefix must be"),
        ({"carriers": ("acme",), "prefix": "+4a"}, "prefix must be"),
        ({"carriers": ("acme",), "country": "gb"}, "alpha-2"),
        ({"carriers": ("acme",), "country": "GBR"}, "alpha-2"),
        ({"carriers": (), "prefix": "+44"}, "at least one carrier"),
    ],
)
def test_invalid_routes_are_refused(kwargs: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Route(**kwargs)  # type: ignore[arg-type]


def test_the_catch_all_prefix_is_the_last_resort_after_country_routes() -> None:
    routes = [Route(("acme",), country="GB"), Route(("cheap",), prefix="+"), Route(("backup",), prefix="+1")]
    assert carriers_for("+447700900123", routes, CARRIERS) == ["acme"]  # the country, not "+"
    assert carriers_for("+14155550100", routes, CARRIERS) == ["backup"]  # a real prefix still wins
    assert carriers_for("+33612345678", routes, CARRIERS) == ["cheap"]  # nothing else: the catch-all
    assert carriers_for("+33612345678", routes[:1], CARRIERS) == []


def test_a_country_the_numbering_plans_do_not_know_is_refused_with_the_code_meant() -> None:
    with pytest.raises(ValueError, match=r"'UK' is not a country code .*; did you mean 'GB'\?"):
        Route(("acme",), country="UK")
    assert Route(("acme",), country="GB").country == "GB"
