"""A message with media sent as an SMS: what the recipient gets when its media cannot go as MMS.

Twilio's MMS Converter (a Messaging Service's `mms_converter`, on by default) sends a message
whose media cannot be delivered as MMS as an SMS with links to the media instead. Pigeon does
that when no carrier routed for the recipient carries media (SMPP carries text only). Pigeon
does not host media, so the links are the media URLs the message was sent with: the body, then
each URL on a line of its own, in their order.
"""

from __future__ import annotations

from collections.abc import Sequence


def media_as_links(body: str, urls: Sequence[str]) -> str:
    """The text of a message with media sent as an SMS."""
    return "\n".join([body, *urls] if body else urls)
