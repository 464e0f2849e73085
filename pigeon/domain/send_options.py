"""Twilio's send parameters that ask for what Pigeon does not do.

Twilio's create accepts parameters for features Pigeon does not have. Most only tune Twilio's
own service (`ProvideFeedback`, `Attempt`, `MaxPrice`, `RiskCheck` …) and are ignored as
they would change nothing here. The ones below promise the caller something about what
happens to the message or its data; sending the message without keeping that promise would
break it silently (a body that was to be discarded, kept), so a send asking for one is refused
(20422) and nothing is stored. Their other values (`retain`, `false`) ask for what Pigeon does
anyway and are taken.
"""

from __future__ import annotations

from collections.abc import Mapping

from pigeon.domain.flags import flag

_RETENTION = {
    "ContentRetention": (
        "retain",
        "discard",
        "Pigeon keeps a message's body until it is redacted (update the message with Body='') "
        "or removed with the message (PIGEON_MESSAGE_DAYS).",
    ),
    "AddressRetention": (
        "retain",
        "obfuscate",
        "Pigeon keeps a message's phone numbers as they are until the message is removed (PIGEON_MESSAGE_DAYS).",
    ),
}

_FLAGS = {
    "SendAsMms": "a message with media goes as MMS and one without as SMS; Pigeon cannot force MMS.",
    "ShortenUrls": "Pigeon does not shorten links; the body goes as it is.",
}

_SIDS = {
    "ContentSid": "Pigeon has no Content API templates; send the text as Body.",
}

#: Every parameter these rules read.
NAMES = (*_RETENTION, *_FLAGS, *_SIDS, "ApplicationSid", "StatusCallback")


def refusal(params: Mapping[str, str]) -> str | None:
    """Why a send with these parameters cannot be done as asked, or None."""
    for name, (kept, other, how) in _RETENTION.items():
        value = params.get(name)
        if value is None or value == "" or value.lower() == kept:
            continue
        if value.lower() == other:
            return f"{name}={value} is not supported: {how}"
        return f"{name} must be {kept!r} or {other!r}, not {value!r}."
    for name, why in _FLAGS.items():
        raw = params.get(name) or ""
        if raw and flag(raw) is None:
            return f"{name} must be true or false, not {raw[:40]!r}."
        if flag(raw):
            return f"{name}=true is not supported: {why}"
    for name, why in _SIDS.items():
        if params.get(name):
            return f"{name} is not supported: {why}"
    if params.get("ApplicationSid") and not params.get("StatusCallback"):
        return (
            "ApplicationSid is not supported: Pigeon has no TwiML Applications, so their "
            "status callbacks would never be sent. Give StatusCallback instead."
        )
    return None
