"""A message with media sent as an SMS: what the recipient gets when its media cannot go as MMS.

Twilio's MMS Converter (a Messaging Service's `mms_converter`, on by default) sends a message
whose media cannot be delivered as MMS as an SMS with links to the media instead. Pigeon does
that when its sender cannot send MMS, or no carrier routed for the recipient carries media
(SMPP carries text only): `obstacles` names which. Without the converter, such a message fails
with 30011 before any submit. Pigeon does not host media, so the links are the media URLs the
message was sent with: the body, then each URL on a line of its own, in their order.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Why a message's media cannot go as MMS: its sender cannot send MMS (a number without the
#: capability, a short code or an alphanumeric sender) ...
SENDER = "sender"
#: ... or no carrier routed for its recipient carries media.
ROUTE = "route"


def media_as_links(body: str, urls: Sequence[str]) -> str:
    """The text of a message with media sent as an SMS."""
    return "\n".join([body, *urls] if body else urls)


def obstacles(*, sender_mms: bool, route_carries_media: bool) -> tuple[str, ...]:
    """What stops a message's media from going as MMS (`SENDER`, `ROUTE`); empty when nothing does."""
    return (*(() if sender_mms else (SENDER,)), *(() if route_carries_media else (ROUTE,)))
