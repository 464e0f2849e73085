"""The number a doctor's question names, as the store is searched for it.

People ask as they write numbers at home: "07700 900123", "(415) 555-2671". The store keeps
an outbound message's To in E.164 (the Messages API takes nothing else: 21211), so such a
spelling is read in a country first: the sender's, where the question names one (as Twilio
reads a TwiML `<Message to>` in its sender's country, `numbers.in_country_of`), else the
countries of the account's own numbers, which a number written without its country code is
meant in. It is read in none when it makes a different number in two of them: the country is
not guessed. The spelling as given is searched too: a carrier may report an inbound text's
sender (a STOP, so the opt-out's recipient) or recipient in a national spelling, and the
store keeps what it could not read as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from pigeon.domain import numbers
from pigeon.domain.diagnosis.model import unique
from pigeon.store import diagnosis as store


@dataclass(frozen=True)
class AskedNumber:
    """`number` is what the doctor searched: E.164, a short code, or the spelling as given
    when it could not be read; `read_in` the country a national spelling was read in."""

    given: str
    number: str
    read_in: str | None = None

    @property
    def spellings(self) -> list[str]:
        """What the store is searched for: the number, and the spelling as given."""
        return unique([self.number, self.given])

    def subject(self, key: str) -> dict[str, Any]:
        """The report's subject fields: the number searched, and how it was read when it was
        not given so (`{key}_as_given`, `read_in`)."""
        if self.given == self.number:
            return {key: self.number}
        return {key: self.number, f"{key}_as_given": self.given, "read_in": self.read_in}


def normalise(number: str) -> str:
    """E.164 where the number parses; short codes as they are. A '+' lost to URL decoding
    ("?To=+1415..." reads as " 1415...") is put back when the digits make a valid number with
    their country code; anything else is kept as given, and the flows ask for E.164."""
    raw = number.strip()
    if numbers.is_short_code(raw):
        return raw
    return numbers.to_e164(raw) or numbers.with_country_code(raw) or raw


def read_number(conn: Connection, account_sid: str, given: str, *, sender: str | None = None) -> AskedNumber:
    """`given` as the doctor searches for it (module docstring)."""
    raw = given.strip()
    if numbers.is_short_code(raw) or raw.startswith("+"):
        return AskedNumber(raw, normalise(raw))
    sender_region = numbers.region_of(sender) if sender and sender.startswith("+") else None
    regions = [sender_region] if sender_region else store.number_countries(conn, account_sid=account_sid)
    national = numbers.national_in(raw, regions)
    if national is not None:
        return AskedNumber(raw, national[0], national[1])
    return AskedNumber(raw, normalise(raw))


def logged_spellings(recipient: str, given: str) -> list[str]:
    """The ways the request log may hold a send to `recipient`: as the doctor reads it, as it
    was given, and an E.164 number's digits without the '+' — how the log keeps a To whose
    unencoded '+' a form read as a space (pigeon.app.send_guard.summary_of_request)."""
    return unique([recipient, given.strip(), *([recipient[1:]] if recipient.startswith("+") else [])])
