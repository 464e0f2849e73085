"""The text of a message with media sent as an SMS (MMS Converter)."""

from __future__ import annotations

from pigeon.domain import mms
from pigeon.domain.mms import media_as_links


def test_the_body_then_each_link_on_a_line_of_its_own() -> None:
    urls = ["https://a.example/1.jpg", "https://a.example/2.png?x=1&y=2"]
    assert media_as_links("Hi there", urls) == "Hi there\nhttps://a.example/1.jpg\nhttps://a.example/2.png?x=1&y=2"


def test_media_alone_are_the_links_alone() -> None:
    assert media_as_links("", ["https://a.example/1.jpg"]) == "https://a.example/1.jpg"


def test_what_stops_media_from_going_as_mms() -> None:
    assert mms.obstacles(sender_mms=True, route_carries_media=True) == ()
    assert mms.obstacles(sender_mms=False, route_carries_media=True) == (mms.SENDER,)
    assert mms.obstacles(sender_mms=True, route_carries_media=False) == (mms.ROUTE,)
    assert mms.obstacles(sender_mms=False, route_carries_media=False) == (mms.SENDER, mms.ROUTE)
