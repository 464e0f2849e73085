"""Unit tests for pigeon.app.placement: which process submits a message when carriers' binds are
leased (the rule is in its docstring and in pigeon.app.dispatch's)."""

from __future__ import annotations

from pigeon.app.placement import HandOver, Placement, needs_elsewhere, place
from pigeon.ports import CarrierEvents, OutboundMessage, Reach, SubmitAck


class Named:
    """A carrier as placement sees it: only its name matters."""

    carries_media = False

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    async def start(self, events: CarrierEvents) -> None: ...

    async def submit(self, message: OutboundMessage) -> SubmitAck:
        raise AssertionError("placement never submits")

    async def stop(self) -> None: ...


A, B, C = Named("a"), Named("b"), Named("c")
LEASED = frozenset({"a", "b", "c"})


def reach(*bound_here: str, leased: frozenset[str] = LEASED) -> Reach:
    return Reach(leased=leased, bound_here=frozenset(bound_here))


def test_carriers_bound_here_or_not_leased_are_tried_here_in_order() -> None:
    assert place([A, B], reach("a", "b"), {}, key="SM1") == Placement([A, B])
    assert place([A, B], Reach(), {"a": ["other"]}, key="SM1") == Placement([A, B])  # no leases at all
    assert not needs_elsewhere([A, B], reach("a", "b"))


def test_a_first_carrier_bound_elsewhere_leaves_the_message_to_its_holder() -> None:
    assert place([A, B], reach("b"), {"a": ["host-1"]}, key="SM1") == Placement([], offer_to="host-1")
    assert needs_elsewhere([A, B], reach("b"))


def test_carriers_bound_nowhere_before_it_do_not_keep_the_message_here() -> None:
    # a is bound by no process: its holder-to-be (host-1, which has b) tries it, in order.
    assert place([A, B], reach("c"), {"b": ["host-1"]}, key="SM1") == Placement([], offer_to="host-1")


def test_carriers_bound_nowhere_are_tried_here_when_nothing_is_bound_elsewhere() -> None:
    assert place([A, B], reach(), {}, key="SM1") == Placement([A, B])
    assert place([A, B], reach("b"), {"c": ["host-1"]}, key="SM1") == Placement([A, B])


def test_a_carrier_here_first_goes_on_at_the_carrier_bound_elsewhere() -> None:
    placed = place([A, B, C], reach("a", "c"), {"b": ["host-1"]}, key="SM1")
    assert placed == Placement([A], hand_over=HandOver("b", "host-1"))  # c waits its turn behind b


def test_several_holders_share_the_messages_each_always_to_the_same() -> None:
    holders = ["host-1", "host-2", "host-3"]
    chosen = {place([A], reach(), {"a": holders}, key=f"SM{i}").offer_to for i in range(60)}
    assert chosen == set(holders)
    assert len({place([A], reach(), {"a": holders}, key="SM7").offer_to for _ in range(5)}) == 1


def test_no_route_stays_here_to_be_refused_as_before() -> None:
    assert place([], reach(), {"a": ["host-1"]}, key="SM1") == Placement([])
