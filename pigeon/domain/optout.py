"""Opt-out keywords: STOP, START and HELP handling as Twilio's users expect it.

A keyword counts only when it is the whole message: trimmed, in any case ("stop" and
" STOP " opt out; "STOP PLEASE" does not). An opt-out covers the recipient's number and the
sender, or the whole Messaging Service when the sender belongs to one.
"""

from __future__ import annotations

from enum import StrEnum


class KeywordKind(StrEnum):
    OPT_OUT = "STOP"
    OPT_IN = "START"
    HELP = "HELP"


OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

DEFAULT_REPLIES = {
    KeywordKind.OPT_OUT: (
        "You are unsubscribed and will get no more messages from this number. Reply START to subscribe again."
    ),
    KeywordKind.OPT_IN: (
        "You are subscribed again and will get messages from this number. Reply HELP for help, STOP to "
        "unsubscribe. Msg&Data rates may apply."
    ),
    KeywordKind.HELP: "Reply STOP to unsubscribe, START to subscribe again. Msg&Data rates may apply.",
}


def normalise(body: str) -> str:
    return body.strip().upper()


def classify(body: str) -> tuple[KeywordKind, str] | None:
    """(kind, keyword) when the whole message is an opt-out, opt-in or help keyword."""
    word = normalise(body)
    if word in OPT_OUT_KEYWORDS:
        return KeywordKind.OPT_OUT, word
    if word in OPT_IN_KEYWORDS:
        return KeywordKind.OPT_IN, word
    if word in HELP_KEYWORDS:
        return KeywordKind.HELP, word
    return None
